#!/usr/bin/env bash
# pi_arm64_check.sh - prove that `pip install 'hartool[edge]'` runs on arm64 (Raspberry Pi OS-like) without
# TensorFlow, and that it predicts what the x86 host predicts.
#
# What it does (run as root on a Debian/Ubuntu x86_64 machine; not part of `make test`):
#   1. builds (once) an arm64 Debian root with debootstrap + qemu-user-static from Debian's packages, using
#      the Debian mirror this host's apt already uses (or --mirror URL);
#   2. copies the host's CA bundle and pip configuration into it, and pip-installs the project there with
#      only the `edge` extra (aarch64 wheels from the package registry) into /opt/hartool-venv;
#   3. checks: `uname -m` is aarch64, `pip list` has no TensorFlow, `import tensorflow` fails;
#   4. on the host (the repo's .venv, which needs the dataset): N preprocessed test windows of the bundle,
#      every artifact's predictions on them, and a replay file of the wire bytes a device would send
#      (`ax,ay,az,gx,gy,gz\r\n`, 4 decimals) from held-out subject 9;
#   5. inside the root: the same predictions, `hartool benchmark`, and `hartool stream --jsonl` on the
#      replay file (tflite-int8 and tflite-fp32), compared with the host's:
#        fp32/fp16 artifacts: argmax identical for every window, max |dp| <= 1e-5;
#        quantized artifacts (int8, dynamic-range, int16x8) are NOT bit-exact across architectures: x86
#          and arm64 integer kernels round differently. Measured with LiteRT 2.3 / ORT 1.32 on the default
#          CNN (2026-12-03): tflite-int8 differs in 115 of 300 windows, by at most 2 output steps; tflite-
#          dynamic by < 1 step; tflite-int16x8 and onnx-int8 (uint8 QDQ since 2026-12-03; its int8-activation
#          form was 1-2 steps off on 28 windows) bit-exact. So for these: argmax / stream labels identical
#          except near ties (top-2 margin <= 0.05 on either machine; counted and shown), and >= 95% of
#          windows within one output step of the artifact's own scale (its int8 output step; 1/256 for
#          ORT's float-output QDQ models): a fixed 1e-3 was finer than one step and failed an artifact
#          with equal argmax on 300/300 windows. --strict applies the float rule to every artifact.
# Timings under qemu are emulated, not Pi timings: the benchmark only shows "functional on arm64".
#
# Usage: benchmarks/pi_arm64_check.sh [BUNDLE_DIR] [--root DIR] [--keep] [options]
#   BUNDLE_DIR        a bundle with manifest.json and artifacts (default: demo-out/bundles/cnn in the repo)
#   --root DIR        where the arm64 root lives (default /var/tmp/hartool-arm64-root); reused while its
#                     completion marker is there, so reruns skip debootstrap
#   --keep            keep this run's work directory (windows, predictions, JSONL, benchmark JSON) and the
#                     root's /work copy; otherwise both are removed at the end. The root itself is always
#                     kept for the next run (delete it with --rebuild or rm -rf)
#   --rebuild         delete the root first and build it again
#   --strict          quantized artifacts must also match to 1e-5 with identical labels everywhere
#   --near-tie X      quantized artifacts: top-2 margin under which a label may differ (default 0.05)
#   --mirror URL      Debian mirror for debootstrap (default: read from this host's apt sources)
#   --suite NAME      Debian suite (default bookworm, the base of Raspberry Pi OS 12)
#   --windows N       windows compared (default 300);  --samples N  replayed samples (default 3000)
#   --subject N       replayed subject (default 9);     --runs N     benchmark runs (default 200)
#   --host-python P   host interpreter with hartool + dataset (default REPO/.venv/bin/python)
# Exit status: 0 when every check passed (SKIP is not a failure), 1 when one failed, 2 on a usage error.

set -euo pipefail

T_START=$EPOCHREALTIME
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ---------------------------------------------------------------------------------------------------------
# Arguments

BUNDLE="$REPO/demo-out/bundles/cnn"
ROOT=/var/tmp/hartool-arm64-root
KEEP=0
REBUILD=0
STRICT=0
MIRROR=""
SUITE=bookworm
N_WINDOWS=300
N_SAMPLES=3000
SUBJECT=9
RUNS=200
HOST_PY="$REPO/.venv/bin/python"
NEAR_TIE=0.05

usage() { sed -n '2,/^# Exit status/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
need_value() { [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --root) need_value "$@"; ROOT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --rebuild) REBUILD=1; shift ;;
        --strict) STRICT=1; shift ;;
        --near-tie) need_value "$@"; NEAR_TIE=$2; shift 2 ;;
        --mirror) need_value "$@"; MIRROR=$2; shift 2 ;;
        --suite) need_value "$@"; SUITE=$2; shift 2 ;;
        --windows) need_value "$@"; N_WINDOWS=$2; shift 2 ;;
        --samples) need_value "$@"; N_SAMPLES=$2; shift 2 ;;
        --subject) need_value "$@"; SUBJECT=$2; shift 2 ;;
        --runs) need_value "$@"; RUNS=$2; shift 2 ;;
        --host-python) need_value "$@"; HOST_PY=$2; shift 2 ;;
        -*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) BUNDLE=$1; shift ;;
    esac
done
BUNDLE=$(cd "$BUNDLE" 2>/dev/null && pwd) || { echo "error: bundle directory not found: $BUNDLE" >&2; exit 2; }
[ -f "$BUNDLE/manifest.json" ] || { echo "error: $BUNDLE has no manifest.json" >&2; exit 2; }
case "$ROOT" in /?*) ;; *) echo "error: --root must be an absolute path" >&2; exit 2 ;; esac
ROOT=${ROOT%/}
[ "$ROOT" != "/" ] || { echo "error: --root cannot be /" >&2; exit 2; }
HOST_HARTOOL="$(dirname "$HOST_PY")/hartool"

MARKER="$ROOT/.hartool-arm64-root-complete"    # written after a successful debootstrap
PARTIAL="$ROOT/.hartool-arm64-root-partial"    # written before it: only such a folder is ever deleted
VENV=/opt/hartool-venv                          # inside the root
INNER=benchmarks/pi_arm64_inner.py

# ---------------------------------------------------------------------------------------------------------
# Bookkeeping: stage timings and PASS/FAIL/SKIP lines, summarised at exit whatever happens

STAGE_NAMES=(); STAGE_SECS=(); RESULTS=(); FAILS=0
CUR_STAGE=""; CUR_T0=""
WORK=""

now() { echo "$EPOCHREALTIME"; }
os_name() { sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"'; }
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
stage() {   # stage NAME: end the current stage (recording its time), start the next one
    stage_end
    CUR_STAGE=$1; CUR_T0=$(now)
    printf '\n=== %s\n' "$1"
}
stage_end() {
    if [ -n "$CUR_STAGE" ]; then
        STAGE_NAMES+=("$CUR_STAGE"); STAGE_SECS+=("$(secs_since "$CUR_T0")")
        CUR_STAGE=""
    fi
}
result() {  # result PASS|FAIL|SKIP NAME DETAIL...
    local status=$1 name=$2; shift 2
    RESULTS+=("$(printf '%-4s  %-28s %s' "$status" "$name" "$*")")
    printf '%s  %s: %s\n' "$status" "$name" "$*"
    [ "$status" != FAIL ] || FAILS=$((FAILS + 1))
}

summary() {
    local rc=$?
    trap - EXIT
    local aborted=$CUR_STAGE
    stage_end
    if [ -n "$aborted" ] && [ "$rc" -ne 0 ]; then
        result FAIL "aborted" "stage '$aborted' failed (exit $rc); see the output above"
    fi
    echo
    echo "==================== pi_arm64_check summary ===================="
    echo "host: $(uname -m) $(os_name)  root: $ROOT ($SUITE arm64, qemu-user)"
    echo "bundle: $BUNDLE"
    echo "stage times (s):"
    local i
    for i in "${!STAGE_NAMES[@]}"; do printf '  %-34s %8s\n' "${STAGE_NAMES[$i]}" "${STAGE_SECS[$i]}"; done
    echo "checks:"
    for i in "${RESULTS[@]}"; do echo "  $i"; done
    printf 'total wall time: %ss\n' "$(secs_since "$T_START")"
    echo "note: timings inside the root are qemu-emulated: functional on arm64, not Raspberry Pi timings"
    # The root's /work copy and the host work dir are removed unless --keep.
    if [ "$KEEP" = 1 ]; then
        [ -z "$WORK" ] || echo "kept: host work dir $WORK, root copy $ROOT/work"
    else
        [ -z "$WORK" ] || rm -rf -- "$WORK"
        [ ! -f "$MARKER" ] || rm -rf -- "$ROOT/work"
    fi
    if [ "$FAILS" -gt 0 ]; then
        echo "RESULT: FAIL ($FAILS failed check(s))"; exit 1
    fi
    echo "RESULT: PASS"; exit 0
}
trap summary EXIT

# ---------------------------------------------------------------------------------------------------------
# Host side helpers

# The first Debian mirror this host's apt uses: an entry listing $SUITE wins, else any URI ending in /debian.
# Reads one-line (.list) and deb822 (.sources) files; security/updates mirrors are not used.
host_debian_mirror() {
    local files=() f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    awk -v suite="$SUITE" '
        function emit(uri, suites,   n, s, i) {
            n = split(suites, s, /[ \t]+/)
            for (i = 1; i <= n; i++) if (s[i] != "") print uri, s[i]
        }
        function flush(   n, u, i) {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
                n = split(uris, u, /[ \t]+/)
                for (i = 1; i <= n; i++) if (u[i] != "") emit(u[i], suites)
            }
            types = uris = suites = enabled = ""
        }
        FNR == 1 { flush() }
        /^[ \t]*#/ { next }
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[ \t]*$/) { flush(); next }
            line = $0; key = tolower(line); sub(/:.*/, "", key); sub(/^[^:]*:[ \t]*/, "", line)
            if (key == "types") types = line; else if (key == "uris") uris = line
            else if (key == "suites") suites = line; else if (key == "enabled") enabled = tolower(line)
            next
        }
        $1 == "deb" { sub(/\[[^]]*\]/, ""); print $2, $3 }
        END { flush() }
    ' "${files[@]}" | awk -v suite="$SUITE" '
        $2 ~ /-(security|updates|backports)$/ { next }
        $2 == suite && !exact { exact = $1 }
        $1 ~ /\/debian\/?$/ && !any { any = $1 }
        END { if (exact) print exact; else if (any) print any }
    '
}

# Files and folders named by the host pip configuration (config files and PIP_* variables): files are
# copied into the root at the same path, folders (local indexes, find-links) are bind-mounted read-only at
# the same path while commands run there, so pip inside the root sees the same registry configuration.
PIP_CONF_FILES=()
for f in /etc/pip.conf /etc/xdg/pip/pip.conf "$HOME/.pip/pip.conf" "$HOME/.config/pip/pip.conf" \
         ${PIP_CONFIG_FILE:+"$PIP_CONFIG_FILE"}; do
    [ -f "$f" ] && PIP_CONF_FILES+=("$f")
done
pip_config_paths() {
    {
        [ ${#PIP_CONF_FILES[@]} -eq 0 ] || grep -hv '^[[:space:]]*[#;]' "${PIP_CONF_FILES[@]}" || true
        env | grep -E '^PIP_' || true
    } | tr -s ' \t=,"'\'';' '\n' | grep -E '^(file://)?/' | sed 's#^file://##; s#/*$##' | grep . | sort -u
}

# Run a shell command inside the root. A private mount namespace (unshare) holds /proc, /dev/shm and the
# read-only pip folders, so nothing stays mounted when the command ends, even on failure or Ctrl-C.
# /sys is deliberately NOT mounted: with both the host's /sys CPU lists and qemu's pass-through of the
# host's x86 /proc/cpuinfo visible, the cpuinfo library inside onnxruntime and LiteRT/XNNPACK crashes
# (SIGSEGV) at start-up. Without /sys it only warns (those warnings are filtered from the output).
# Only a clean environment goes in: HOME, PATH (venv first), locale, PIP_* and proxy variables.
_in_root_ns() {
    set -e
    local cmd=$1 d
    mount -t proc proc "$ROOT/proc"
    mount -t tmpfs -o mode=1777,size=256m shm "$ROOT/dev/shm"
    while IFS= read -r d; do
        if [ -z "$d" ] || [ ! -d "$d" ]; then continue; fi
        mkdir -p "$ROOT$d" && mount --bind -o ro "$d" "$ROOT$d"
    done <<< "$BIND_DIRS"
    local envs=(HOME=/root LANG=C.UTF-8 PATH="$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    while IFS= read -r d; do [ -n "$d" ] && envs+=("$d"); done \
        < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY|all_proxy|ALL_PROXY)=' || true)
    exec chroot "$ROOT" /usr/bin/env -i "${envs[@]}" /bin/sh -c "$cmd"
}
QEMU_NOISE='^(Error in cpuinfo: |onnxruntime (cpuid_info )?warning: .*cpuinfo|onnxruntime cpuid_info warning: Unknown CPU vendor|INFO: Created TensorFlow Lite XNNPACK delegate)'
in_root() {
    ROOT=$ROOT VENV=$VENV BIND_DIRS=$BIND_DIRS unshare --mount --propagation private -- \
        bash -c "$(declare -f _in_root_ns); _in_root_ns \"\$1\"" _ "$1" \
        2> >(grep --line-buffered -vE "$QEMU_NOISE" >&2)
}

# ---------------------------------------------------------------------------------------------------------
stage "host prerequisites"

[ "$(id -u)" = 0 ] || { echo "error: run as root (debootstrap, chroot and mounts need it)" >&2; exit 2; }
echo "host: $(uname -m), $(os_name)"
[ "$(uname -m)" = x86_64 ] || echo "warning: this check is meant for an x86_64 host (this one is $(uname -m))"
[ -x "$HOST_PY" ] || { echo "error: host interpreter $HOST_PY missing (run 'make venv' first)" >&2; exit 2; }
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from the host's package sources"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# binfmt_misc lets the kernel run aarch64 binaries through qemu (the F flag keeps the interpreter open,
# so it need not exist inside the root).
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { echo "error: qemu-aarch64 binfmt handler is not enabled (update-binfmts --enable qemu-aarch64)" >&2; exit 1; }
echo "binfmt: qemu-aarch64 $(sed -n 's/^flags: /flags /p' /proc/sys/fs/binfmt_misc/qemu-aarch64)"
# A local PEP 503 index (.../simple) usually links its files from next to it: bind its parent folder.
BIND_DIRS=$(pip_config_paths | while IFS= read -r p; do
                [ -d "$p" ] || continue
                case "$p" in */simple) dirname "$p" ;; *) echo "$p" ;; esac
            done | sort -u || true)
[ -z "$BIND_DIRS" ] || echo "local pip folders shown read-only in the root: $(echo "$BIND_DIRS" | tr '\n' ' ')"
WORK=$(mktemp -d /tmp/hartool-arm64.XXXXXX)
echo "work dir: $WORK"

# ---------------------------------------------------------------------------------------------------------
stage "arm64 root (debootstrap)"

if [ "$REBUILD" = 1 ] && [ -d "$ROOT" ]; then
    if [ -f "$MARKER" ] || [ -f "$PARTIAL" ]; then rm -rf -- "$ROOT"
    else echo "error: $ROOT was not made by this script; not deleting it" >&2; exit 2; fi
fi
if [ -f "$MARKER" ]; then
    echo "reusing $ROOT ($(cat "$MARKER"))"
else
    if [ -d "$ROOT" ] && [ -n "$(ls -A "$ROOT")" ]; then
        # An interrupted build: start over, but only in a folder this script made.
        [ -f "$PARTIAL" ] || { echo "error: $ROOT exists, is not empty and was not made by this script" >&2; exit 2; }
        echo "removing the incomplete root $ROOT"
        rm -rf -- "$ROOT"
    fi
    if [ -z "$MIRROR" ]; then
        MIRROR=$(host_debian_mirror)
        [ -n "$MIRROR" ] || { echo "error: no Debian mirror in this host's apt sources; pass --mirror URL" >&2; exit 2; }
        echo "mirror from the host's apt sources: $MIRROR"
    fi
    mkdir -p "$ROOT"
    touch "$PARTIAL"
    # minbase + python3-venv is all the edge install needs; ca-certificates for pip over https.
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$ROOT" "$MIRROR"
    echo "$SUITE arm64 from $MIRROR, built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$MARKER"
    rm -f "$PARTIAL"
fi
ARCH=$(in_root 'uname -m')
if [ "$ARCH" = aarch64 ]; then result PASS "uname -m is aarch64" "inside the root: $ARCH"
else result FAIL "uname -m is aarch64" "inside the root: $ARCH"; exit 1; fi

# ---------------------------------------------------------------------------------------------------------
stage "edge install (pip, in root)"

# CA bundle, DNS and the host's pip configuration (plus the files it names) into the root.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
for f in "${PIP_CONF_FILES[@]}"; do
    dest="$ROOT${f/#$HOME//root}"
    mkdir -p "$(dirname "$dest")" && cp "$f" "$dest"
done
while IFS= read -r p; do
    [ -f "$p" ] || continue
    mkdir -p "$ROOT$(dirname "$p")" && cp "$p" "$ROOT$p"
done < <(pip_config_paths)
# The project source only: pyproject.toml, README.md and toolkit/ (no .venv, no caches).
rm -rf "$ROOT/src" && mkdir -p "$ROOT/src"
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/toolkit" "$ROOT/src/"
find "$ROOT/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
# The venv is made once; pip then (re)installs the project with only the edge extra every run.
in_root "[ -x $VENV/bin/python ] || python3 -m venv $VENV"
# (pip's "Location ... is ignored" lines are the host's local index lacking a package: noise, filtered.)
in_root "pip install --progress-bar off '/src[edge]' > /tmp/pip-install.log 2>&1; rc=\$?
         grep -v \"^WARNING: Location '\" /tmp/pip-install.log; exit \$rc"
in_root "pip list --format=freeze" > "$WORK/arm64-pip-list.txt"
echo "installed in the root: $(grep -iE '^(hartool|ai-edge-litert|onnxruntime|numpy)==' "$WORK/arm64-pip-list.txt" | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------------------
stage "no-TensorFlow checks"

tf_pkgs=$(grep -iE '^(tensorflow|tf-nightly|tf_nightly|intel-tensorflow)[-_a-z]*==' "$WORK/arm64-pip-list.txt" || true)
if [ -z "$tf_pkgs" ]; then result PASS "pip list has no tensorflow" "$(wc -l < "$WORK/arm64-pip-list.txt") packages, none tensorflow*"
else result FAIL "pip list has no tensorflow" "found: $(echo "$tf_pkgs" | tr '\n' ' ')"; fi
if tf_out=$(in_root 'python -c "import tensorflow" 2>&1'); then
    result FAIL "import tensorflow fails" "it imported"
else
    result PASS "import tensorflow fails" "$(echo "$tf_out" | tail -n 1)"
fi
cp "$REPO/$INNER" "$ROOT/opt/pi_arm64_inner.py"
env_json=$(in_root "python /opt/pi_arm64_inner.py env")
echo "root env: $env_json"
if echo "$env_json" | grep -q '"tflite_backends": \["litert"\]' && echo "$env_json" | grep -q '"onnx_backends": \["onnxruntime"\]'; then
    result PASS "edge interpreters present" "LiteRT for .tflite, onnxruntime for .onnx"
else
    result FAIL "edge interpreters present" "$env_json"
fi

# ---------------------------------------------------------------------------------------------------------
stage "host inputs + predictions (x86)"

"$HOST_PY" "$REPO/$INNER" inputs "$BUNDLE" "$WORK" --n "$N_WINDOWS" --subject "$SUBJECT" --samples "$N_SAMPLES"
"$HOST_PY" "$REPO/$INNER" predict "$BUNDLE" "$WORK/windows.npy" "$WORK/host_preds.npz" 2>&1 | grep -v '^INFO: '

# ---------------------------------------------------------------------------------------------------------
stage "arm64 predictions + compare"

# The bundle, the windows and the replay file go to /work inside the root.
rm -rf "$ROOT/work" && mkdir -p "$ROOT/work/bundle"
cp -a "$BUNDLE/." "$ROOT/work/bundle/"
cp "$WORK/windows.npy" "$WORK/replay.txt" "$ROOT/work/"
if in_root "python /opt/pi_arm64_inner.py predict /work/bundle /work/windows.npy /work/arm64_preds.npz" \
        && [ -f "$ROOT/work/arm64_preds.npz" ]; then
    cp "$ROOT/work/arm64_preds.npz" "$ROOT/work/arm64_preds.npz.json" "$WORK/"
    strict=(--near-tie "$NEAR_TIE"); [ "$STRICT" = 0 ] || strict=(--strict)
    while IFS= read -r line; do
        case "$line" in
            PASS*|FAIL*) status=${line%% *}; rest=${line#* predictions }; detail=${rest#* }
                         result "$status" "predictions ${rest%% *}" "${detail#"${detail%%[! ]*}"}" ;;
            *) echo "$line" ;;
        esac
    done < <("$HOST_PY" "$REPO/$INNER" compare-preds "${strict[@]}" "$WORK/host_preds.npz" "$WORK/arm64_preds.npz" 2>&1 || true)
else
    result FAIL "predictions" "the root could not predict (see above)"
fi

# ---------------------------------------------------------------------------------------------------------
stage "hartool benchmark (in root)"

if [ -f "$ROOT/src/toolkit/hartool/cli/bench_cmd.py" ]; then
    if in_root "hartool benchmark /work/bundle --runs $RUNS --out /tmp/arm64.json" && in_root "test -s /tmp/arm64.json"; then
        cp "$ROOT/tmp/arm64.json" "$WORK/arm64.json"
        result PASS "hartool benchmark" "functional on arm64 (emulated timings)$([ "$KEEP" = 0 ] || echo "; JSON: $WORK/arm64.json")"
    else
        result FAIL "hartool benchmark" "exited non-zero or wrote no JSON"
    fi
else
    result SKIP "hartool benchmark" "skipped: benchmark command not available"
fi

# ---------------------------------------------------------------------------------------------------------
stage "hartool stream replay (host + root)"

# Two artifacts stream the same bytes on both machines (stdout is JSONL only):
#   tflite-int8 (what a Pi runs): labels identical, except near ties (see --strict / --near-tie);
#   tflite-fp32: labels identical, no exception: proves parsing, windowing and preprocessing match.
stream_one() {  # stream_one ARTIFACT [compare-stream options...]
    local art=$1; shift
    if ! grep -q "\"name\": *\"$art\"" "$BUNDLE/manifest.json"; then
        result SKIP "stream labels ($art)" "skipped: no $art artifact in the bundle"; return 0
    fi
    if ! "$HOST_HARTOOL" stream "$BUNDLE" --port "$WORK/replay.txt" --jsonl --artifact "$art" \
            > "$WORK/host_stream_$art.jsonl" 2> "$WORK/host_stream_$art.err"; then
        cat "$WORK/host_stream_$art.err"
        result FAIL "stream labels ($art)" "hartool stream exited non-zero on the x86 host"; return 0
    fi
    if ! in_root "hartool stream /work/bundle --port /work/replay.txt --jsonl --artifact $art \
                  > /work/arm64_stream_$art.jsonl 2> /work/arm64_stream_$art.err"; then
        cat "$ROOT/work/arm64_stream_$art.err"
        result FAIL "stream labels ($art)" "hartool stream exited non-zero in the arm64 root"; return 0
    fi
    echo "arm64 $art: $(grep -E '^summary:' "$ROOT/work/arm64_stream_$art.err" || echo 'no summary line')"
    cp "$ROOT/work/arm64_stream_$art.jsonl" "$WORK/"
    local line
    line=$("$HOST_PY" "$REPO/$INNER" compare-stream "$@" "$WORK/host_stream_$art.jsonl" \
           "$WORK/arm64_stream_$art.jsonl" 2>&1 || true)
    case "$line" in
        PASS*) result PASS "stream labels ($art)" "${line#PASS stream labels }" ;;
        *) result FAIL "stream labels ($art)" "${line#FAIL stream labels }" ;;
    esac
}
if [ -f "$ROOT/src/toolkit/hartool/cli/stream_cmd.py" ]; then
    if [ "$STRICT" = 1 ]; then stream_one tflite-int8; else stream_one tflite-int8 --near-tie "$NEAR_TIE"; fi
    stream_one tflite-fp32
else
    result SKIP "hartool stream" "skipped: stream command not available"
fi

stage_end
