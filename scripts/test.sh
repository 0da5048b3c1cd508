#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine, then run it.
# Debian: nginx (CDN stand-in), chromium (browser tests); PyPI: the project with its test extras;
# pyenv's Python 3.12 runs the existing horde-model-reference client (built by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"   # GitHub runners are not root but have passwordless sudo
if command -v apt-get >/dev/null; then
    need=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    command -v chromium >/dev/null || need+=(chromium chromium-driver)
    if [ ${#need[@]} -gt 0 ]; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
    fi
fi

python3 -m pip install -q -e ".[test]"
python3 -m ruff check .
python3 -m pytest -q -p no:cacheprovider "$@"
