#!/usr/bin/env bash
# Installs what the tests' real services and firmware checks need, from the registries that serve them.
# Idempotent: installs only what is missing; safe to run before every `make test`.
#
#   Debian (apt-get): mosquitto (MQTT broker; the tests fall back to amqtt without it), chromium + chromium-driver (the live
#                     page tests drive it headless),
#                     gcc-avr avr-libc (AVR build of hartool_frame.h), arduino-builder arduino-core-avr
#                     (the sketch build), nodejs npm (only when node is missing),
#                     gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc-riscv64-unknown-elf
#                     picolibc-riscv64-unknown-elf (`hartool export c`: Cortex-M builds run under qemu, RV32IMC builds),
#                     systemd (systemd-analyze verifies the unit `hartool service` prints).
#   npm:              @micropython/micropython-webassembly-pyscript into .cache/npm (gitignored), where
#                     tests/firmware/test_micropython_wire.py finds it without any environment variable.
#   pip:              paho-mqtt and amqtt into the venv when missing (normally there from `make venv`);
#                     tflite-micro on x86-64 (the dev extra's oracle for `hartool export c`).
#
# A step that fails prints a warning and the script goes on: the tests that need it then skip, saying why.
# Usage: tests/setup_services.sh   (PYTHON=... to pick the interpreter; default .venv/bin/python)
set -u
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$repo/.venv/bin/python}"
mpy_version="1.27.0"
mpy_pkg="@micropython/micropython-webassembly-pyscript"
status=0

say() { printf 'setup_services: %s\n' "$*" >&2; }

# --- Debian packages ----------------------------------------------------------------------------------
apt_missing=()
for pkg in mosquitto chromium chromium-driver gcc-avr avr-libc arduino-builder arduino-core-avr \
           gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf \
           systemd; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || apt_missing+=("$pkg")
done
command -v node >/dev/null 2>&1 || apt_missing+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_missing+=(npm)
if ((${#apt_missing[@]})); then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then sudo_cmd=(sudo -n); else sudo_cmd=(false); fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "warning: no apt-get; install by hand: ${apt_missing[*]}"
    status=1
  elif [ "${sudo_cmd[*]}" = "false" ]; then
    say "warning: need root for apt-get; run: sudo apt-get install -y ${apt_missing[*]}"
    status=1
  else
    say "apt-get install ${apt_missing[*]}"
    if ! { "${sudo_cmd[@]}" apt-get update -qq \
           && "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
              "${apt_missing[@]}" >/dev/null; }; then
      say "warning: apt-get install failed for: ${apt_missing[*]}"
      status=1
    fi
  fi
fi

# --- npm: MicroPython (WebAssembly port) ----------------------------------------------------------------
mjs="$repo/.cache/npm/node_modules/$mpy_pkg/micropython.mjs"
if [ ! -f "$mjs" ]; then
  if command -v npm >/dev/null 2>&1; then
    say "npm install $mpy_pkg@$mpy_version into .cache/npm"
    mkdir -p "$repo/.cache/npm"
    if ! npm install --prefix "$repo/.cache/npm" --no-audit --no-fund --loglevel=error \
         "$mpy_pkg@$mpy_version" >/dev/null; then
      say "warning: npm install $mpy_pkg failed"
      status=1
    fi
  else
    say "warning: npm not found; MicroPython vectors will skip"
    status=1
  fi
fi

# --- tflite-runtime 2.14 in its own venv (it needs numpy<2 and Python <= 3.11) ------------------------
# tests/export/test_quantize_hygiene.py finds it at .cache/tflrt/bin/python.
tflrt="$repo/.cache/tflrt"
if [ ! -x "$tflrt/bin/python" ] || ! "$tflrt/bin/python" -c "import tflite_runtime" 2>/dev/null; then
  py311="$(command -v python3.11 || true)"
  if [ -n "$py311" ]; then
    say "tflite-runtime 2.14 venv in .cache/tflrt"
    if ! { "$py311" -m venv "$tflrt" \
           && "$tflrt/bin/python" -m pip install -q "tflite-runtime==2.14.0" "numpy<2"; }; then
      say "warning: tflite-runtime venv failed"
      status=1
    fi
  else
    say "warning: no python3.11 for the tflite-runtime venv; its check will skip"
    status=1
  fi
fi

# --- pip: MQTT client and the pure-Python broker ------------------------------------------------------
if [ -x "$py" ]; then
  for mod in "paho.mqtt:paho-mqtt>=2.0" "amqtt:amqtt>=0.12.1"; do
    if ! "$py" -c "import ${mod%%:*}" 2>/dev/null; then
      say "pip install ${mod#*:}"
      "$py" -m pip install -q "${mod#*:}" || { say "warning: pip install ${mod#*:} failed"; status=1; }
    fi
  done
  # The TFLite Micro interpreter (the C generator's oracle) has x86-64 wheels only; elsewhere its tests skip.
  if [ "$(uname -m)" = "x86_64" ] && ! "$py" -c "import tflite_micro" 2>/dev/null; then
    say "pip install tflite-micro"
    "$py" -m pip install -q tflite-micro || { say "warning: pip install tflite-micro failed"; status=1; }
  fi
else
  say "warning: no interpreter at $py (make venv first); skipping pip checks"
  status=1
fi

[ "$status" -eq 0 ] && say "all test services present"
exit 0  # never fail `make test` here: the tests that miss something skip and say why
