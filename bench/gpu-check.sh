#!/usr/bin/env bash
# One-command GPU check: verify, our kernels bench, the PyTorch baseline on the same card, and the
# comparison, back to back (so that the ratios compare like with like), every log under $OUT.
#
# Here (with the .NET SDK):   ../shared/gpu/pack          # writes .gpu/app.tar.gz (not committed)
# On the GPU machine, from the checkout root (device call: carry [".gpu"]):
#   bash bench/gpu-check.sh [--quick] [--ops a,b,...] [--device cuda|cpu]
# Writes to $OUT (default: a fresh /tmp folder): nvidia-smi.txt, verify.log/.json,
# kernels.log + ours.json, torch.log + torch.json, compare.txt, summary.txt.
# Exit code: 0 when every step succeeded, else the first failing step's code (verify: 1 = a check failed).
# --device cpu runs the same steps on the CPU (to try the script without a GPU).
# Without --ops every op runs, the training step included: step_ddpmpp (DDPM++ forward + EDM loss +
# backward at batch 128 on a GPU, --quick too; PyTorch's same step is the peer row in compare.txt)
# and its parts step_ddpmpp_conv / _groupnorm / _attention (ours only). Just the step:
#   bash bench/gpu-check.sh --ops step_ddpmpp,step_ddpmpp_conv,step_ddpmpp_groupnorm,step_ddpmpp_attention
set -uo pipefail
cd "$(dirname "$0")/.."

quick=() ops="" device=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick); shift ;;
    --ops) ops=${2:?--ops needs a comma-separated list}; shift 2 ;;
    --device) device=${2:?--device needs cuda or cpu}; shift 2 ;;
    *) echo "usage: bash bench/gpu-check.sh [--quick] [--ops a,b,...] [--device cuda|cpu]" >&2; exit 2 ;;
  esac
done
[ -f .gpu/app.tar.gz ] || { echo "error: .gpu/app.tar.gz missing: run ../shared/gpu/pack in the checkout first and carry .gpu" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
mkdir -p "$OUT"
export OUT
# The first python3 that imports torch (the PATH one, else the system one).
python=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" > /dev/null && "$p" -c "import torch" 2> /dev/null; then python=$(command -v "$p"); break; fi
done
[ -n "$python" ] || echo "warning: no python3 with torch found; the torch step will fail" >&2
python=${python:-python3}

status=0
step() { # step NAME CMD...: runs CMD with stdout+stderr to $OUT/NAME.log, records its exit code.
  local name=$1; shift
  echo "== $name: $*" | tee -a "$OUT/summary.txt"
  local t0=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after $((SECONDS - t0)) s (log: $OUT/$name.log)" | tee -a "$OUT/summary.txt"
  [ $rc -ne 0 ] && [ $status -eq 0 ] && status=$rc
  return $rc
}
app() { bash .gpu/run-on-gpu.sh Edm.Bench "$@"; }

: > "$OUT/summary.txt"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "(no nvidia-smi)" > "$OUT/nvidia-smi.txt"
head -12 "$OUT/nvidia-smi.txt"

step verify app verify --device "$device" --json "$OUT/verify.json"
grep -E "passed, [0-9]+ failed" "$OUT/verify.log"
# Full JIT up front: with tiered compilation the first launches run unoptimised host code.
step kernels env DOTNET_TieredCompilation=0 bash .gpu/run-on-gpu.sh Edm.Bench kernels --device "$device" \
  --json "$OUT/ours.json" "${quick[@]}" --op "${ops:-all}"
step torch "$python" bench/torch_baseline.py --device "$device" --json "$OUT/torch.json" "${quick[@]}" ${ops:+--ops "$ops"}
if [ -f "$OUT/ours.json" ] && [ -f "$OUT/torch.json" ]; then
  step compare app compare "$OUT/ours.json" "$OUT/torch.json"
  # run-on-gpu.sh wraps the output in its banner (card, command) and an exit line; keep the table.
  sed -n '/^+ Edm.Bench compare/,$p' "$OUT/compare.log" | sed '1d;/^exit code/d' > "$OUT/compare.txt"
  cat "$OUT/compare.txt"
fi
echo "overall exit $status; logs in $OUT" | tee -a "$OUT/summary.txt"
exit $status
