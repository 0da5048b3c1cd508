#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine, then lint, type-check and test.
# Debian: nginx (CDN stand-in), chromium (browser tests); PyPI: the project with its test extras.
# Two things come from outside and are checked first, so a missing one fails in seconds, not mid-run:
#   - a Python 3.12: the tests run the existing horde-model-reference 8.6.2 client (Python >= 3.12) in a
#     virtual environment they make with `python3.12`; found through HMR_PYTHON312, pyenv, python3.12 on
#     PATH or uv, in that order;
#   - the corpus (HMR_CORPUS, default ../shared/corpus): scripts/fetch-corpus makes it.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "scripts/test.sh: $*" >&2; exit 1; }

is_python312() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; }

find_python312() {
    if [ -n "${HMR_PYTHON312:-}" ]; then
        is_python312 "$HMR_PYTHON312" || fail "HMR_PYTHON312=$HMR_PYTHON312 is not a working Python 3.12"
        echo "$HMR_PYTHON312"; return
    fi
    local py version
    if command -v pyenv >/dev/null; then
        # 3.12.1 is the version the client tests name (PYENV_VERSION); any installed 3.12 will do
        version=$(pyenv versions --bare 2>/dev/null | grep -x '3\.12\.1' ||
                  pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | sort -V | tail -n 1 || true)
        py="$(pyenv prefix "$version" 2>/dev/null)/bin/python3.12"
        if [ -n "$version" ] && is_python312 "$py"; then echo "$py"; return; fi
    fi
    py=$(command -v python3.12 || true)
    if is_python312 "$py"; then echo "$py"; return; fi
    if command -v uv >/dev/null; then
        py=$(uv python find 3.12 2>/dev/null || true)
        if is_python312 "$py"; then echo "$py"; return; fi
    fi
    fail "no Python 3.12 found (the tests run horde-model-reference 8.6.2 with it). Install one, for example" \
         "'pyenv install 3.12.1', 'uv python install 3.12' or 'apt install python3.12' (Ubuntu 24.04), or" \
         "set HMR_PYTHON312=/path/to/python3.12"
}

python312=$(find_python312)
# the interpreter itself, not a symlink or a shim in front of it: the tests' virtual environment points there
python312=$("$python312" -c 'import os, sys; print(os.path.realpath(sys.executable))')
# The tests call `python3.12` (with PYENV_VERSION=3.12.1 for pyenv's shim): a wrapper first on PATH makes
# that name the interpreter found above, whichever way it was found. It execs the real path, so the
# virtual environment the tests make keeps working after the wrapper is gone.
shims=$(mktemp -d)
trap 'rm -rf "$shims"' EXIT
printf '#!/usr/bin/env bash\nexec %q "$@"\n' "$python312" > "$shims/python3.12"
chmod +x "$shims/python3.12"
export PATH="$shims:$PATH"
echo "Python 3.12 for the existing client: $python312"

corpus=${HMR_CORPUS:-../shared/corpus}
[ -d "$corpus/legacy/current" ] ||
    fail "no corpus at $corpus. Make it with 'scripts/fetch-corpus --reference-python PY $corpus' (PY: a" \
         "Python with horde-model-reference==8.6.2 installed), or point HMR_CORPUS at an existing one"
[ -d "$corpus/reference-v2" ] ||
    fail "$corpus has no reference-v2/: run scripts/fetch-corpus again with --reference-python PY"

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
# ruff finds *.py files only: the extensionless script is named explicitly
python3 -m ruff check . scripts/fetch-corpus
python3 -m mypy
python3 -m mypy --strict scripts/fetch-corpus
# the docs are tested too: a broken link, API reference or generated page fails here, in seconds (the
# output goes into the temporary folder removed on exit; not --quiet, which would hide strict's warnings)
NO_MKDOCS_2_WARNING=1 python3 -m mkdocs build --strict -d "$shims/docs-site"
# The suite reads the corpus only through HMR_CORPUS (a codebase test keeps it so): it runs on a copy in
# this run's temporary folder (about 26 MB, under a second), so every run shows it passes with the corpus
# in another folder than the default one.
cp -R "$corpus" "$shims/corpus"
HMR_CORPUS="$shims/corpus" python3 -m pytest -q -p no:cacheprovider "$@"
