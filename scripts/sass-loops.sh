#!/usr/bin/env bash
# The loops of GPU kernels in NVIDIA's SASS for sm_90, without a GPU: for each kernel whose name
# matches PATTERN, assembles the PTX that EdmDevice compiles (ILGPU's PTX backend at the engine's
# optimisation level, dumped by the PTX compile tests) with ptxas, disassembles it with cuobjdump,
# and prints every loop (a backward branch) with its instruction count and mix: FFMA, HMMA, shared
# loads (LDS), global loads (LDG), barriers. This is how GEMM variant 5 and the implicit-GEMM
# convolutions were tuned (docs/kernels.md): e.g. a depth tile's loop of 263 instructions for 128
# FFMA, whose inner loop is 149. Counts are static: an outer loop's count includes each inner
# loop's body once (the dynamic count per depth tile of variant 5 is 263 - 149 + 4 x 149 = 710).
# Counts are not times; the GPU check gives those.
# Usage: scripts/sass-loops.sh PATTERN [CUDA_BIN]   e.g. scripts/sass-loops.sh 'GemmTileKernel|ConvImplicit'
#   CUDA_BIN: folder with ptxas and cuobjdump (default: the PATH); on Debian without the CUDA
#   toolkit, see scripts/ptxas-check.sh's header (the same package has both).
set -uo pipefail
cd "$(dirname "$0")/.."
pattern=${1:?usage: scripts/sass-loops.sh PATTERN [CUDA_BIN]}
bin=${2:-}
ptxas=${bin:+$bin/}ptxas cuobjdump=${bin:+$bin/}cuobjdump
for tool in "$ptxas" "$cuobjdump"; do
  command -v "$tool" > /dev/null || { echo "error: $tool not found; see the header of scripts/ptxas-check.sh" >&2; exit 2; }
done
dump=$(mktemp -d /tmp/edm-sass.XXXXXX)
EDM_PTX_DUMP=$dump dotnet test Edm.Tests -c Release --filter "FullyQualifiedName~PtxCompileTests" > "$dump/test.log" 2>&1 \
  || { tail -20 "$dump/test.log"; echo "error: the PTX compile tests failed (log: $dump/test.log)" >&2; exit 1; }
found=0
for f in "$dump"/*.ptx; do
  k=$(basename "$f" .ptx)
  [[ $k =~ $pattern ]] || continue
  found=$((found + 1))
  sed -i -E 's/^\.version [0-9.]+/.version 7.8/' "$f"   # ptxas 11.8 reads ISA 7.8 (see ptxas-check.sh)
  regs=$("$ptxas" -arch=sm_90 -v -o "$dump/$k.cubin" "$f" 2>&1 | grep -o 'Used [0-9]* registers' | tail -1)
  "$cuobjdump" -sass "$dump/$k.cubin" | grep -E '^\s+/\*[0-9a-f]+\*/' | sed -E 's@^\s+/\*([0-9a-f]+)\*/\s+@\1 @; s@ *;.*@@' > "$dump/$k.sass"
  echo "$k: $regs, $(wc -l < "$dump/$k.sass") instructions"
  python3 - "$dump/$k.sass" <<'EOF'
import re, sys
rows = [line.split(None, 1) for line in open(sys.argv[1]) if line.strip()]
addr = [int(a, 16) for a, _ in rows]
ins = [i for _, i in rows]
for a, i in zip(addr, ins):
    m = re.search(r"BRA (0x[0-9a-f]+)", i)
    if not m or int(m.group(1), 16) >= a:
        continue
    lo = int(m.group(1), 16)
    body = [j for b, j in zip(addr, ins) if lo <= b <= a]
    count = lambda op: sum(1 for j in body if re.search(r"\b" + op + r"\b", j))
    print(f"  loop {lo:#06x}-{a:#06x}: {len(body):4d} instructions, FFMA {count('FFMA')}, HMMA {count('HMMA')}, "
          f"LDS {count('LDS')}, LDG {count('LDG')}, BAR {count('BAR')}")
EOF
done
[ "$found" -gt 0 ] || { echo "error: no kernel matches '$pattern' (names: ls $dump)" >&2; exit 2; }
