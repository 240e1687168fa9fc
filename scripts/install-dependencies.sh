#!/usr/bin/env bash
# Installs what Fanfare needs to build, run and test, if it is missing.
# Debian/Ubuntu: apt-get (as root, or through sudo). Swift itself must already be installed.
set -euo pipefail

missing=()
pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v nginx >/dev/null || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
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

# The Compose file is validated against its schema, vendored in check-jsonschema (PyPI).
if ! command -v check-jsonschema >/dev/null; then
    echo "installing: check-jsonschema (pip)"
    python3 -m pip install -q check-jsonschema
fi

# The browser tests use Selenium (PyPI) with that chromedriver.
if ! python3 -c "import selenium" 2>/dev/null; then
    echo "installing: selenium (pip)"
    python3 -m pip install -q selenium
fi

# The HTTP API is fuzzed against its OpenAPI description with schemathesis (PyPI).
if ! command -v schemathesis >/dev/null; then
    echo "installing: schemathesis (pip)"
    python3 -m pip install -q schemathesis
    command -v pyenv >/dev/null && pyenv rehash || true
fi

command -v swift >/dev/null || {
    echo "Swift 6 is required: https://www.swift.org/install/" >&2
    exit 1
}
