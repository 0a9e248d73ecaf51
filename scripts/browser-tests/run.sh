#!/usr/bin/env bash
# Browser tests of the web pages: Debian's headless Chromium driven by Playwright (pytest).
# Installs what is missing (chromium, chromium-driver; a venv .venv-browser with the Python
# packages), builds qrlogin, and runs the suite; the tests start their own `qrlogin serve`
# processes on free ports with in-memory databases. Exits non-zero on any failure.
#
#   scripts/browser-tests/run.sh [pytest args...]
#
# Environment: QRLOGIN_SCRATCH_PATH (swift build folder, default .build), QRLOGIN_BIN (use this
# qrlogin binary instead of building), QRLOGIN_ARTIFACTS (screenshots and server logs, default
# .artifacts/browser).
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; then
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
fi

venv=.venv-browser
requirements=scripts/browser-tests/requirements.txt
. scripts/lib/venv.sh
python_venv "$venv" "$requirements"

if [ -z "${QRLOGIN_BIN:-}" ]; then
    scratch=${QRLOGIN_SCRATCH_PATH:-.build}
    echo "== building qrlogin"
    swift build --scratch-path "$scratch" --product qrlogin
    QRLOGIN_BIN="$(swift build --scratch-path "$scratch" --show-bin-path)/qrlogin"
fi
export QRLOGIN_BIN

echo "== browser tests"
# Playwright must not try to download its own browsers: it uses /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider scripts/browser-tests "$@"
