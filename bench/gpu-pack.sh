#!/usr/bin/env bash
# Packs Edm.Bench for a GPU machine (../shared/gpu/pack: .gpu/app.tar.gz, self-contained linux-x64),
# then drops the libraries the GPU check never loads, so that the checkout plus .gpu stays under the
# device tool's 64 MiB (70 -> 41 MiB): ONNX Runtime's native library (the CPU peer of `kernels
# --onnx`), SkiaSharp, and BenchmarkDotNet's disassembler, Roslyn and tracing assemblies (the `bdn`
# command). The commands that need them fail there; every command of the GPU check runs.
# Usage: bash bench/gpu-pack.sh   (from anywhere in the checkout)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
../shared/gpu/pack Edm.Bench > /dev/null
tmp=$(mktemp -d)
tar -xzf .gpu/app.tar.gz -C "$tmp"
rm -f "$tmp"/app/libonnxruntime*.so "$tmp"/app/onnxruntime*.dll "$tmp"/app/libSkiaSharp.so "$tmp"/app/libcapstone.so \
  "$tmp"/app/Microsoft.CodeAnalysis*.dll "$tmp"/app/Microsoft.Diagnostics.*.dll
tar -C "$tmp" -cf - app | gzip -9 > .gpu/app.tar.gz
rm -rf "$tmp"
# The device machine's copy of .git need not match the tree sent: say here what was packed.
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+uncommitted')" > .gpu/commit.txt
echo "packed .gpu/app.tar.gz ($(du -m .gpu/app.tar.gz | cut -f1) MiB) for the GPU check: bash bench/gpu-check.sh"
