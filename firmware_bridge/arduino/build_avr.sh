#!/usr/bin/env bash
# Compile hartool_imu_stream for an AVR board headlessly with Debian's Arduino packages:
#   apt-get install -y --no-install-recommends arduino-builder arduino-core-avr gcc-avr avr-libc
# Usage: firmware_bridge/arduino/build_avr.sh [FQBN] [BUILD_DIR]   (default arduino:avr:uno, a temp dir)
# Nano 33 IoT (SAMD) and ESP32 cores are not packaged by Debian: build those in the Arduino IDE / arduino-cli.
set -euo pipefail
fqbn="${1:-arduino:avr:uno}"
build="${2:-$(mktemp -d)}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$build"
# -DDECIMAL_DIG=9: Debian bookworm pairs arduino-core-avr 1.8.7 with avr-gcc 5.4, whose <float.h> does not
# define DECIMAL_DIG for C++, so the core's WString.cpp fails to build without it (nothing of ours uses it).
exec arduino-builder -compile \
  -hardware /usr/share/arduino/hardware -hardware /usr/share/arduino-builder \
  -tools /usr/share/arduino-builder -tools /usr/bin \
  -fqbn "$fqbn" -build-path "$build" -warnings all \
  -prefs=compiler.cpp.extra_flags=-DDECIMAL_DIG=9 \
  "$here/hartool_imu_stream/hartool_imu_stream.ino"
