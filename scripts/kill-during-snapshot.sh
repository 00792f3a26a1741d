#!/usr/bin/env bash
# Reliability check of training checkpoints: starts a training run that writes a snapshot and a
# training state after every step, SIGKILLs it at a random moment (often in the middle of a write),
# and checks that the newest snapshot and state still load (`checkpoint check`), then resumes from
# them; repeated ROUNDS times. A kill that lands inside a write leaves a hidden ".name.tmp-*" file
# (counted below) but never a torn snapshot or state, because every file is renamed into place only
# when complete (AtomicFile).
#   usage: scripts/kill-during-snapshot.sh [ROUNDS] [DATASET]   (defaults: 8, out/mnist-32.zip)
# Needs a Release build (dotnet build -c Release) and the dataset (scripts/get-mnist.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-8}"
data="${2:-$root/out/mnist-32.zip}"
dll="$root/Edm.Bench/bin/Release/net10.0/Edm.Bench.dll"
[ -f "$dll" ] || { echo "error: build first: dotnet build -c Release" >&2; exit 2; }
[ -e "$data" ] || { echo "error: dataset '$data' not found; run scripts/get-mnist.sh" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
run="$work/run"
train=(dotnet "$dll" train --data "$data" --preset ddpmpp-tiny --resolution 8 --batch 8 --kimg 1000 --snap 0.008 --tick 0.008 --out "$run" --device cpu)

failures=0 torn=0
for ((i = 1; i <= rounds; i++)); do
    if ls "$run"/training-state-*.safetensors >/dev/null 2>&1; then resume=(--resume "$run"); else resume=(); fi
    "${train[@]}" "${resume[@]}" >"$work/log-$i" 2>&1 &
    pid=$!
    # Wait for this run's first checkpoint (start-up takes seconds: JIT, dataset), then one is
    # written after every step: kill at a random moment among them.
    # Odd rounds: a random moment after the first checkpoint; even rounds: the moment a write's
    # temporary file appears (inside a snapshot or state write).
    for ((w = 0; w < 600; w++)); do grep -q '^saved' "$work/log-$i" 2>/dev/null && break; sleep 0.1; done
    if ((i % 2)); then
        delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 2 * rand() }')
        sleep "$delay"
        when="${delay}s after a checkpoint"
    else
        when="as a write's temporary file appeared"
        for ((w = 0; w < 20000; w++)); do
            compgen -G "$run/.*.tmp-*" >/dev/null && break
        done
    fi
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    tmp=$(find "$run" -maxdepth 1 -name '.*.tmp-*' 2>/dev/null | wc -l)
    [ "$tmp" -gt 0 ] && torn=$((torn + 1))
    if ! ls "$run"/training-state-*.safetensors >/dev/null 2>&1; then
        echo "round $i: killed $when, before the first state was written"
        continue
    fi
    if out=$(dotnet "$dll" checkpoint check "$run" --device cpu 2>&1); then
        echo "round $i: killed $when, temp files left: $tmp; newest loads: $(echo "$out" | sed -n 1p | sed 's|.*/||')"
    else
        echo "round $i: FAILED (killed $when): $out"
        failures=$((failures + 1))
    fi
    find "$run" -maxdepth 1 -name '.*.tmp-*' -delete
done

# Finally, resuming from what the kills left must train on.
if ls "$run"/training-state-*.safetensors >/dev/null 2>&1; then
    state=$(dotnet "$dll" checkpoint check "$run" --device cpu | sed -n 1p)
    kimg=$(echo "$state" | sed -E 's/.*kimg ([0-9.]+).*/\1/')
    next=$(awk -v k="$kimg" 'BEGIN { printf "%.3f", k + 0.016 }')
    if dotnet "$dll" train --data "$data" --out "$run" --resume "$run" --kimg "$next" --device cpu >"$work/log-final" 2>&1; then
        echo "final resume from kimg $kimg to $next: ok ($(grep -c '^tick' "$work/log-final") ticks)"
    else
        echo "final resume FAILED: $(tail -1 "$work/log-final")"; failures=$((failures + 1))
    fi
fi
echo "rounds $rounds, kills inside a write (temp file left) $torn, failures $failures"
[ "$failures" -eq 0 ]
