#!/usr/bin/env bash
# Assembles the PTX of every kernel (as EdmDevice compiles it: ILGPU's PTX backend, sm_90, the
# engine's optimisation level) with NVIDIA's ptxas, without a GPU: catches PTX the driver would
# reject, and prints each kernel's registers, spills and shared memory (ptxas -v).
# Usage: scripts/ptxas-check.sh [PTXAS]   (default: ptxas on the PATH)
# ptxas without the CUDA toolkit, on Debian: enable 'contrib non-free', then
#   apt-get download nvidia-cuda-toolkit && dpkg -x nvidia-cuda-toolkit_*.deb /tmp/cudatk   # /tmp/cudatk/usr/bin/ptxas
# ptxas 11.8 reads PTX ISA up to 7.8; ILGPU writes a newer .version line for sm_90, so the line is
# lowered to 7.8 for this check (no kernel here uses an instruction newer than ISA 7.8).
set -uo pipefail
cd "$(dirname "$0")/.."
ptxas=${1:-ptxas}
command -v "$ptxas" > /dev/null || { echo "error: ptxas not found ('$ptxas'); see the header of $0" >&2; exit 2; }
dump=$(mktemp -d /tmp/edm-ptx.XXXXXX)
EDM_PTX_DUMP=$dump dotnet test Edm.Tests -c Release --filter "FullyQualifiedName~PtxCompileTests" > "$dump/test.log" 2>&1 \
  || { tail -20 "$dump/test.log"; echo "error: the PTX compile tests failed (log: $dump/test.log)" >&2; exit 1; }
n=0 bad=0
printf "%-60s %5s %6s %7s %s\n" kernel regs spillB sharedB stack
for f in "$dump"/*.ptx; do
  n=$((n + 1))
  sed -i -E 's/^\.version [0-9.]+/.version 7.8/' "$f"
  if ! out=$("$ptxas" -arch=sm_90 -v -o /dev/null "$f" 2>&1); then
    bad=$((bad + 1)); echo "FAIL $(basename "$f" .ptx):"; echo "$out" | head -5; continue
  fi
  regs=$(grep -o 'Used [0-9]* registers' <<< "$out" | grep -o '[0-9]*' | sort -n | tail -1)
  spill=$(grep -o '[0-9]* bytes spill stores' <<< "$out" | grep -o '^[0-9]*' | sort -n | tail -1)
  smem=$(grep -o '[0-9]* bytes smem' <<< "$out" | grep -o '^[0-9]*' | sort -n | tail -1)
  stack=$(grep -o '[0-9]* bytes stack frame' <<< "$out" | grep -o '^[0-9]*' | sort -n | tail -1)
  printf "%-60s %5s %6s %7s %s\n" "$(basename "$f" .ptx)" "${regs:-?}" "${spill:-0}" "${smem:-0}" "${stack:-0}"
done
echo "$n kernels assembled for sm_90, $bad rejected by ptxas ($dump)"
[ "$bad" -eq 0 ]
