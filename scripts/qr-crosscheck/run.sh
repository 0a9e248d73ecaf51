#!/usr/bin/env bash
# Cross-checks the QR encoder and renderers against zxing-cpp, zbar and Nayuki's qrcodegen.
# Self-contained: installs what it needs (Debian packages, a Python venv in .venv-qr), builds
# the helper executable from Benchmarks/ in release mode, runs the check and exits non-zero on
# any failure. Run from anywhere: scripts/qr-crosscheck/run.sh [--cases N] [--seed S]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: zbar's library for pyzbar, rsvg-convert to rasterise SVG.
missing=()
for pkg in libzbar0 librsvg2-bin; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "qr-crosscheck: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! sudo_if_needed apt-get install -y -q "${missing[@]}" >/dev/null; then
        sudo_if_needed apt-get update -q >/dev/null
        sudo_if_needed apt-get install -y -q "${missing[@]}" >/dev/null
    fi
fi

# Python venv with the decoders and the reference encoder.
venv="$root/.venv-qr"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import zxingcpp, qrcodegen, pyzbar, PIL" 2>/dev/null; then
    echo "qr-crosscheck: installing Python packages into .venv-qr"
    "$venv/bin/pip" install -q --disable-pip-version-check zxing-cpp qrcodegen pyzbar pillow
fi

# One helper process encodes every case.
echo "qr-crosscheck: building qr-crosscheck-helper (release)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! swift build -c release --package-path Benchmarks --product qr-crosscheck-helper >"$log" 2>&1; then
    cat "$log"
    echo "qr-crosscheck: build failed"
    echo "0 passed, 1 failed"
    exit 1
fi
helper="$(swift build -c release --package-path Benchmarks --show-bin-path)/qr-crosscheck-helper"

"$venv/bin/python" "$root/scripts/qr-crosscheck/crosscheck.py" "$helper" "$@"
