#!/usr/bin/env bash
# Installs what Fanfare needs to build, run and test, if it is missing.
# Debian/Ubuntu: apt-get (as root, or through sudo). Swift itself must already be installed.
set -euo pipefail
# nginx (and other daemons) live in /usr/sbin, which an ordinary user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
cd "$(dirname "$0")/.."

missing=()
pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v nginx >/dev/null || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
# The test command checks the browser pages' JavaScript with node --check.
command -v node >/dev/null || missing+=(nodejs)
# The Python test tools live in a virtual environment of their own (see below).
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
# The browser tests drive Debian's Chromium through chromedriver.
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)

if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
    if command -v apt-get >/dev/null; then
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v brew >/dev/null; then
        brew install hiredis redis nginx chromedriver
    else
        echo "please install: ${missing[*]}" >&2
        exit 1
    fi
fi

# The Python tools the tests use live in .venv, a virtual environment this project owns,
# at the versions pinned in scripts/python-requirements.txt (never the system's Python).
venv=.venv
if ! cmp -s scripts/python-requirements.txt "$venv/installed-requirements.txt"; then
    echo "installing: Python test tools into $venv (pinned in scripts/python-requirements.txt)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/python-requirements.txt
    cp scripts/python-requirements.txt "$venv/installed-requirements.txt"
fi

command -v swift >/dev/null || {
    echo "Swift 6 is required: https://www.swift.org/install/" >&2
    exit 1
}
