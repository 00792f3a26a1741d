#!/usr/bin/env bash
# The CPU comparison of docs/perf.md (issue #15) in one go: ours, PyTorch (1 and 2 threads) and
# ONNX Runtime on the tiny DDPM++ rows, then the --quick conv/GEMM rows, then the ratio tables.
# Run alone on an idle machine from the repository root after `dotnet build -c Release`; needs
# /usr/bin/python3 with torch (apt-get install python3-torch). Writes out/perf/.
set -euo pipefail
cd "$(dirname "$0")/.."
B="dotnet Edm.Bench/bin/Release/net10.0/Edm.Bench.dll"
PY=/usr/bin/python3
mkdir -p out/perf out/onnx
date -u; uptime
[ -f out/onnx/ddpmpp-tiny-32.onnx ] || $PY bench/torch_baseline.py --export-onnx out/onnx
$B info --device cpu | head -8
$B kernels --device cpu --op step_ddpmpp_tiny,step_ddpmpp_tiny_fwd --onnx out/onnx --json out/perf/tiny-ours.json
for t in 1 2; do env -u OPENBLAS_CORETYPE $PY bench/torch_baseline.py --device cpu --ops step_ddpmpp_tiny,step_ddpmpp_tiny_fwd --threads $t --json out/perf/tiny-torch-t$t.json; done
$B kernels --device cpu --quick --op conv2d,conv2d-bwd,gemm --json out/perf/conv-ours.json
for t in 1 2; do env -u OPENBLAS_CORETYPE $PY bench/torch_baseline.py --device cpu --quick --ops conv2d,conv2d-bwd,gemm --threads $t --json out/perf/conv-torch-t$t.json; done
# A second run of ours: the spread between the two says how noisy the machine was.
$B kernels --device cpu --op step_ddpmpp_tiny,step_ddpmpp_tiny_fwd --onnx out/onnx --json out/perf/tiny-ours-2.json
for t in 1 2; do $B compare out/perf/tiny-ours.json out/perf/tiny-torch-t$t.json; done
for t in 1 2; do $B compare out/perf/conv-ours.json out/perf/conv-torch-t$t.json; done
date -u; uptime
