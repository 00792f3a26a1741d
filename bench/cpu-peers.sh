#!/usr/bin/env bash
# The CPU comparison of docs/perf.md (issue #15) in one go: ours, PyTorch (1 and 2 threads) and
# ONNX Runtime on the tiny DDPM++ rows, then the --quick conv/GEMM rows, then the ratio tables.
# Run alone on an idle machine from the repository root after `dotnet build -c Release`; needs
# /usr/bin/python3 with torch and an optimised BLAS (apt-get install python3-torch libopenblas0-pthread). Writes out/perf/.
#
# `--avx2` plays an AVX2-only machine on an AVX-512 one: ours with DOTNET_EnableAVX512=0, PyTorch
# with oneDNN and ATen held to AVX2 (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA, ATEN_CPU_CAPABILITY;
# check with DNNL_VERBOSE=1; OpenBLAS with OPENBLAS_CORETYPE=Haswell), results under out/perf/avx2/. ONNX Runtime runs native code in our
# process and has no such switch: its rows stay on AVX-512 and are not a like-for-like peer there.
set -euo pipefail
cd "$(dirname "$0")/.."
B="dotnet Edm.Bench/bin/Release/net10.0/Edm.Bench.dll"
PY=/usr/bin/python3
if [ "${1:-}" = "--avx2" ]; then
    export DOTNET_EnableAVX512=0 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
    CORETYPE=Haswell   # OpenBLAS's AVX2 kernels, for PyTorch's matmuls
    P=out/perf/avx2
elif [ -n "${1:-}" ]; then
    echo "error: unknown option '$1' (allowed: --avx2)" >&2; exit 2
else
    P=out/perf
    CORETYPE=
fi
mkdir -p $P out/onnx
# PyTorch as a user who tunes it would run it (2026-12-06 finding, docs/perf.md): an optimised BLAS
# (Debian's python3-torch calls whatever libblas.so.3 the alternatives system points at; with the
# netlib reference one its matmuls run at ~4 GFLOP/s: apt-get install libopenblas0-pthread), and
# glibc malloc kept from returning large blocks to the kernel (without it every big tensor is fresh
# mmap pages, and on these VMs the page faults doubled PyTorch's conv times).
TORCH_ENV="${CORETYPE:+OPENBLAS_CORETYPE=$CORETYPE} MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=100000000000"
BLAS=$($PY -c "import torch; torch.ones(64, 64) @ torch.ones(64, 64); print(' '.join(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l.lower()})))")
echo "PyTorch's BLAS: $BLAS"
case "$BLAS" in
    *openblas*|*mkl*|*blis*) ;;
    *) echo "error: PyTorch is not using an optimised BLAS ($BLAS): its matmuls would run at reference speed; apt-get install libopenblas0-pthread" >&2; exit 2 ;;
esac
date -u; uptime
[ -f out/onnx/ddpmpp-tiny-32.onnx ] || $PY bench/torch_baseline.py --export-onnx out/onnx
$B info --device cpu | head -8
$B kernels --device cpu --op step_ddpmpp_tiny,step_ddpmpp_tiny_fwd --onnx out/onnx --json $P/tiny-ours.json
for t in 1 2; do env -u OPENBLAS_CORETYPE $TORCH_ENV $PY bench/torch_baseline.py --device cpu --ops step_ddpmpp_tiny,step_ddpmpp_tiny_fwd --threads $t --json $P/tiny-torch-t$t.json; done
$B kernels --device cpu --quick --op conv2d,conv2d-bwd,gemm --json $P/conv-ours.json
for t in 1 2; do env -u OPENBLAS_CORETYPE $TORCH_ENV $PY bench/torch_baseline.py --device cpu --quick --ops conv2d,conv2d-bwd,gemm --threads $t --json $P/conv-torch-t$t.json; done
# A second run of ours: the spread between the two says how noisy the machine was.
$B kernels --device cpu --op step_ddpmpp_tiny,step_ddpmpp_tiny_fwd --onnx out/onnx --json $P/tiny-ours-2.json
for t in 1 2; do $B compare $P/tiny-ours.json $P/tiny-torch-t$t.json; done
for t in 1 2; do $B compare $P/conv-ours.json $P/conv-torch-t$t.json; done
date -u; uptime
