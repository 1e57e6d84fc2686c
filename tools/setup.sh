#!/usr/bin/env bash
# One command for a fresh Debian 12 / Raspberry Pi OS machine: apt packages, the venv, the package.
#   tools/setup.sh            everything for development and CI (unit, tests, training, tflite-runtime check venv)
#   tools/setup.sh --unit     only what a pole unit needs (no training, no test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=dev
[ "${1:-}" = "--unit" ] && mode=unit

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

apt_packages=(python3 python3-venv python3-dev gcc portaudio19-dev libportaudio2 libasound2 alsa-utils libsndfile1)
if [ "$mode" = dev ]; then
    apt_packages+=(mosquitto mosquitto-clients)
fi
if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
else
    echo "setup: no apt-get here; install these yourself: ${apt_packages[*]}" >&2
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
if [ "$mode" = unit ]; then
    .venv/bin/pip install -q -e '.[pi]'
else
    .venv/bin/pip install -q -e '.[pi,dev,train]'
    # The shipped model must also load in tflite-runtime 2.14 (numpy < 2, Python <= 3.11): a small second venv.
    if python3 -c 'import sys; sys.exit(sys.version_info[:2] > (3, 11))'; then
        python3 -m venv .venv-tflite214
        .venv-tflite214/bin/pip install -q 'tflite-runtime==2.14.0' 'numpy<2'
    fi
fi
echo "setup: done. Try: .venv/bin/polewatch demo"
