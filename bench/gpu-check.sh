#!/usr/bin/env bash
# The GPU check, built to survive its window: stages, each under its own `timeout` and inside one
# overall deadline, each writing its results as soon as it has them (the benches rewrite their JSON
# after every row; a failing row is recorded, not fatal), and a snapshot of every result so far packed
# into $OUT/gpu-check.tar.gz every 15 s and after every stage, so that a run killed at any point
# still returns what it measured (the device tool returns at most 8 files from $OUT).
#
# Here (with the .NET SDK):  ../shared/gpu/pack            # .gpu/app.tar.gz (not committed)
#                            bash bench/gpu-check.sh --rehearse   # every stage on the CPU, tiny sizes
# On the GPU machine, from the checkout root (device run, carry [".gpu"]):
#                            bash bench/gpu-check.sh [--deadline SECONDS]
#
# Stages (logs and JSON in $WORK, packed into $OUT/gpu-check.tar.gz; $OUT/summary.txt beside it):
#   1 env        nvidia-smi, driver, CUDA compiler, PyTorch/CUDA/cuDNN versions, which libcublas
#   2 smoke      CUDA_LAUNCH_BLOCKING=1: open the device, list it, one tiny bench row
#   3 torch      PyTorch's rows, TF32 off (torch.json), then TF32 on for the GEMM/conv/step rows
#                (torch-tf32.json)
#   4 ours       the DDPM++ step and its parts (ours-step.json), then every other op (ours.json;
#                the GEMM is the engine's choice: the 128x128 kernel of 128-bit shared loads, variant 5, where
#                there are as many tiles as SMs), then GEMM,
#                conv and the step with the 64x64 kernel (EDM_GEMM_GPU=tiled: ours-tiled.json) and with
#                the 128x128 kernel of scalar shared loads, variant 3 (EDM_GEMM_GPU=tiled128: ours-tiled128.json),
#                then conv and the step with im2col + GEMM instead of the implicit GEMMs (EDM_CONV_GPU=im2col:
#                ours-im2col.json)
#   5 verify     every kernel against the float64 references (verify.json), the TF32 GEMM too
#                (against the product of TF32-rounded inputs); then ours with TF32 on (EDM_TF32=1:
#                ours-tf32.json)
#   6 compare    ours vs PyTorch, TF32 off (compare.txt) and both with TF32 on (compare-tf32.txt)
# Exit code: 0 when every stage succeeded, else the first failing stage's code (124: its timeout).
set -uo pipefail
cd "$(dirname "$0")/.."

rehearse=0 deadline=450
while [ $# -gt 0 ]; do
  case "$1" in
    --rehearse) rehearse=1; shift ;;
    --deadline) deadline=${2:?--deadline needs seconds}; shift 2 ;;
    *) echo "usage: bash bench/gpu-check.sh [--rehearse] [--deadline SECONDS]" >&2; exit 2 ;;
  esac
done
[ -f .gpu/app.tar.gz ] || { echo "error: .gpu/app.tar.gz missing: run ../shared/gpu/pack in the checkout first and carry .gpu" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d /tmp/gpu-check-out.XXXXXX)}
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
mkdir -p "$OUT"
export OUT WORK
: > "$WORK/summary.txt"
start=$SECONDS

if [ $rehearse -eq 1 ]; then
  # The same stages on the CPU accelerator at the smallest sizes: finds a broken script or pack here.
  device=cpu quick=(--quick) ops="add,gemm,conv2d,groupnorm,attention" step_ops="step_ddpmpp_tiny"
  torch_ops="add,gemm,conv2d,groupnorm,attention,step_ddpmpp_tiny" tf32_ops="gemm,conv2d"
  tiled_ops="gemm" conv_ops="conv2d"
else
  # The step and its parts first (the figure that matters most), then every other op.
  device=cuda quick=() step_ops="step_ddpmpp,step_ddpmpp_tiny,step_ddpmpp_tiny_fwd,step_ddpmpp_conv,step_ddpmpp_groupnorm,step_ddpmpp_attention"
  ops="gelu,silu,axpy,add,sum,normal,permute,concat,attention,attention_fwd_bwd,augment,conv2d,conv2d-bwd,dropout,gemm,groupnorm,groupnorm_fwd_bwd,point_denoise,adam,upsample2x,avgpool2x,fir-down,fir-up,softmax,tape"
  torch_ops="" tf32_ops="gemm,conv2d,conv2d-bwd,attention,step_ddpmpp"
  tiled_ops="gemm,conv2d,conv2d-bwd,step_ddpmpp" conv_ops="conv2d,conv2d-bwd,step_ddpmpp"
fi

# The first python3 that imports torch (the PATH one, else the system one).
python=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" > /dev/null && "$p" -c "import torch" 2> /dev/null; then python=$(command -v "$p"); break; fi
done
python=${python:-python3}

snapshot() { # packs $WORK into $OUT atomically (a kill mid-write leaves the previous pack)
  local tmp="$OUT/.gpu-check.tar.gz.$BASHPID"
  tar -czf "$tmp" -C "$WORK" . 2> /dev/null
  # tar exits 1 when a log grew while it read it: the pack is still whole.
  if [ $? -le 1 ]; then mv -f "$tmp" "$OUT/gpu-check.tar.gz"; else rm -f "$tmp"; fi
  cp -f "$WORK/summary.txt" "$OUT/summary.txt" 2> /dev/null
}
( while sleep 15; do snapshot; done ) &
snapper=$!
trap 'kill $snapper 2> /dev/null; wait $snapper 2> /dev/null; snapshot' EXIT

status=0
step() { # step NAME MAX_SECONDS CMD...: CMD under timeout (capped by the deadline), output to $WORK/NAME.log
  local name=$1 max=$2; shift 2
  local left=$((deadline - (SECONDS - start)))
  local limit=$((max < left ? max : left))
  if [ "$limit" -lt 5 ]; then
    echo "== $name: skipped, the deadline (${deadline} s) is reached" | tee -a "$WORK/summary.txt"
    [ $status -eq 0 ] && status=124
    return 124
  fi
  echo "== $name (limit ${limit} s): $*" | tee -a "$WORK/summary.txt"
  local t0=$SECONDS
  # Through bash -c so that exported shell functions (app, env_info) run under timeout too.
  timeout -k 5 "$limit" bash -c '"$@"' _ "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc after $((SECONDS - t0)) s$([ $rc -eq 124 ] && echo ' (timeout)')" | tee -a "$WORK/summary.txt"
  [ $rc -ne 0 ] && [ $status -eq 0 ] && status=$rc
  snapshot
  return $rc
}
# ILGPU.Algorithms' cuBLAS binding (our GEMM bench's baseline) opens libcublas.so.10/11/12; a CUDA 13
# image (PyTorch's cu130 wheel) has libcublas.so.13, whose cublas*_v2 entry points are the same: a
# link named .so.12 lets the binding load it (the env stage and the gemm rows' baseline name say
# which library was used; without one the baseline is our naive kernel).
shim=$(mktemp -d /tmp/cublas-shim.XXXXXX)
for d in $("$python" -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib"))' 2> /dev/null) /usr/local/cuda/lib64; do
  if [ -e "$d/libcublas.so.13" ] && [ ! -e "$d/libcublas.so.12" ]; then
    ln -sf "$d/libcublas.so.13" "$shim/libcublas.so.12"; ln -sf "$d/libcublasLt.so.13" "$shim/libcublasLt.so.12" 2> /dev/null
    export LD_LIBRARY_PATH="$shim:$d:${LD_LIBRARY_PATH:-}"
    echo "cuBLAS: $d/libcublas.so.13 linked as libcublas.so.12 for ILGPU's binding" >> "$WORK/summary.txt"
    break
  fi
done
# The packed app, unpacked once (run-on-gpu.sh also puts libcuda.so and cuBLAS on the loader path).
app() { bash .gpu/run-on-gpu.sh Edm.Bench "$@"; }
export -f app
export python

echo "gpu-check $(date -u +%FT%TZ) $([ $rehearse -eq 1 ] && echo '(rehearsal on the CPU)') packed from $(cat .gpu/commit.txt 2> /dev/null || echo '?')" | tee -a "$WORK/summary.txt"

env_info() {
  nvidia-smi || echo "(no nvidia-smi)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv || true
  command -v nvcc > /dev/null && nvcc --version | tail -2
  "$python" -c 'import torch, sys; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' || echo "(no torch)"
  "$python" -c 'import nvidia.cublas, os; d = os.path.join(nvidia.cublas.__path__[0], "lib"); print("cublas (PyTorch wheel):", d, sorted(os.listdir(d)))' 2>&1 | tail -1
  ls /usr/local/cuda/lib64/libcublas.so* 2> /dev/null || echo "no libcublas under /usr/local/cuda/lib64"
  ldconfig -p | grep -E "libcuda\.so|libcublas" || true
  uname -a; nproc; free -g | head -2
}
export -f env_info
step env 30 env_info
step smoke 90 env CUDA_LAUNCH_BLOCKING=1 bash -c "bash .gpu/run-on-gpu.sh Edm.Bench info --device $device && bash .gpu/run-on-gpu.sh Edm.Bench kernels --device $device --op add --quick --reps 1 --json $WORK/smoke.json"
smoke=$?
if [ $smoke -ne 0 ] && [ $rehearse -eq 0 ]; then
  echo "the device does not open or run: later stages of ours are skipped; PyTorch's still run" | tee -a "$WORK/summary.txt"
fi

step torch 100 "$python" bench/torch_baseline.py --device "$device" --json "$WORK/torch.json" "${quick[@]}" ${torch_ops:+--ops "$torch_ops"}
step torch-tf32 60 "$python" bench/torch_baseline.py --device "$device" --tf32 --json "$WORK/torch-tf32.json" "${quick[@]}" --ops "$tf32_ops"
if [ $smoke -eq 0 ]; then
  # Full JIT up front: with tiered compilation the first launches run unoptimised host code.
  step ours-step 110 env DOTNET_TieredCompilation=0 bash .gpu/run-on-gpu.sh Edm.Bench kernels --device "$device" --json "$WORK/ours-step.json" "${quick[@]}" --op "$step_ops"
  step ours 120 env DOTNET_TieredCompilation=0 bash .gpu/run-on-gpu.sh Edm.Bench kernels --device "$device" --json "$WORK/ours.json" "${quick[@]}" --op "$ops"
  step ours-tiled 60 env DOTNET_TieredCompilation=0 EDM_GEMM_GPU=tiled bash .gpu/run-on-gpu.sh Edm.Bench kernels --device "$device" --json "$WORK/ours-tiled.json" "${quick[@]}" --op "$tiled_ops"
  # Variant 3 (scalar shared loads), the default before variant 5: the A/B of the 128-bit loads.
  step ours-tiled128 60 env DOTNET_TieredCompilation=0 EDM_GEMM_GPU=tiled128 bash .gpu/run-on-gpu.sh Edm.Bench kernels --device "$device" --json "$WORK/ours-tiled128.json" "${quick[@]}" --op "$tiled_ops"
  # Convolutions by im2col + GEMM, the kernel path's algorithm before the implicit GEMMs.
  step ours-im2col 60 env DOTNET_TieredCompilation=0 EDM_CONV_GPU=im2col bash .gpu/run-on-gpu.sh Edm.Bench kernels --device "$device" --json "$WORK/ours-im2col.json" "${quick[@]}" --op "$conv_ops"
  step verify 120 app verify --device "$device" --json "$WORK/verify.json"
  grep -E "passed, [0-9]+ failed|FAIL|tf32" "$WORK/verify.log" | head -20 | tee -a "$WORK/summary.txt"
  # TF32 tensor cores (EDM_TF32=1: GEMMs of at least one 128x128 tile), against PyTorch with TF32 on.
  [ $rehearse -eq 0 ] && step ours-tf32 60 env DOTNET_TieredCompilation=0 EDM_TF32=1 bash .gpu/run-on-gpu.sh Edm.Bench kernels --device "$device" --json "$WORK/ours-tf32.json" "${quick[@]}" --op "$tiled_ops,attention"
fi
# One file of ours for the comparison: the step rows and the rest.
"$python" -c 'import json, sys; rows = [r for f in sys.argv[2:] for r in (json.load(open(f)) if __import__("os").path.exists(f) else [])]; json.dump(rows, open(sys.argv[1], "w"), indent=1)' \
  "$WORK/ours-all.json" "$WORK/ours-step.json" "$WORK/ours.json" 2> /dev/null || true
for t in "" -tf32; do
  ours="$WORK/ours-all.json"
  # TF32 against TF32 only: without our TF32 rows there is no TF32 comparison.
  [ "$t" = -tf32 ] && ours="$WORK/ours-tf32.json"
  if [ -s "$ours" ] && [ -f "$WORK/torch$t.json" ]; then
    step "compare$t" 20 app compare "$ours" "$WORK/torch$t.json"
    # run-on-gpu.sh wraps the output in its banner (card, command) and an exit line; keep the table.
    sed -n '/^+ Edm.Bench compare/,$p' "$WORK/compare$t.log" | sed '1d;/^exit code/d' > "$WORK/compare$t.txt"
    cat "$WORK/compare$t.txt"
  fi
done
echo "overall exit $status after $((SECONDS - start)) s; results in $OUT/gpu-check.tar.gz" | tee -a "$WORK/summary.txt"
exit $status
