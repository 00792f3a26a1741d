#!/usr/bin/env bash
# GPU check of training and generation (not run yet: needs the merged tree on a device machine).
# Pack first (../shared/gpu/pack), then on the device, from the checkout root, carrying
# [".gpu", "out/mnist-32.zip"]:  bash scripts/gpu-train-check.sh
# Checks: MNIST 32x32 ddpmpp-tiny trains on CUDA (img/s, loss), two identical fresh runs and a
# run resumed half-way print their per-tick losses (a, b, c: equal on the CPU accelerator; on CUDA
# they show how far atomics make it differ), ~3 minutes more training, checkpoint check, a grid.
set -o pipefail; OUT=${OUT:-/tmp/gpu-train-check}; mkdir -p $OUT; rm -rf /tmp/g /tmp/a /tmp/b /tmp/c /tmp/gen
D=out/mnist-32.zip; T="--preset ddpmpp-tiny --batch 64 --lr 2e-3 --lr-rampup 1"
bash .gpu/run-on-gpu.sh Edm.Bench train --data $D $T --kimg 0.64 --snap 0.64 --tick 0.128 --out /tmp/g --device cuda > $OUT/train1.log 2>&1; tail -7 $OUT/train1.log
L=$(mktemp -d); ln -sf $(ldconfig -p | awk '/libcuda\.so\.1 /{print $NF}' | head -1) $L/libcuda.so; export LD_LIBRARY_PATH=$L:${LD_LIBRARY_PATH:-}
A=/tmp/edm-app/app/Edm.Bench
for r in a b; do $A train --data $D $T --kimg 0.256 --snap 0.128 --tick 0.064 --out /tmp/$r --device cuda > /dev/null 2>&1 || echo FAIL-$r; done
$A train --data $D $T --kimg 0.128 --snap 0.128 --tick 0.064 --out /tmp/c --device cuda > /dev/null 2>&1; $A train --data $D --out /tmp/c --resume /tmp/c --kimg 0.256 --device cuda > /dev/null 2>&1 || echo FAIL-c
for r in a b c; do echo "$r: $(grep -o '"loss":[^,]*' /tmp/$r/stats.jsonl | tr '\n' ' ')"; done
timeout 180 $A train --data $D --out /tmp/g --resume /tmp/g --kimg 500 --snap 2 --tick 2 --device cuda > $OUT/train2.log 2>&1; tail -5 $OUT/train2.log
$A checkpoint check /tmp/g --device cuda
S=$(ls /tmp/g/network-snapshot-*.safetensors | sort | tail -1); echo $S
$A generate --network $S --seeds 0-63 --steps 18 --batch 64 --outdir /tmp/gen --grid $OUT/mnist-grid-cuda.png --device cuda 2>&1 | tail -2
cp /tmp/g/stats.jsonl $OUT/stats-cuda.jsonl
