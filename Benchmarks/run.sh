#!/usr/bin/env bash
# QR encoder benchmark: our encoder against libqrencode, both measured in this run.
# Installs Debian's libqrencode-dev if missing, builds in release mode and prints the figures.
# Usage: Benchmarks/run.sh [--quick]   (--quick: short rounds, a smoke test for CI)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! dpkg -s libqrencode-dev >/dev/null 2>&1; then
    echo "benchmark: installing libqrencode-dev"
    export DEBIAN_FRONTEND=noninteractive
    if ! sudo_if_needed apt-get install -y -q libqrencode-dev >/dev/null; then
        sudo_if_needed apt-get update -q >/dev/null
        sudo_if_needed apt-get install -y -q libqrencode-dev >/dev/null
    fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! swift build -c release --product qr-benchmark >"$log" 2>&1; then
    cat "$log"
    echo "benchmark: build failed"
    exit 1
fi
"$(swift build -c release --show-bin-path)/qr-benchmark" "$@"
