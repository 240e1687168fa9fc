#!/usr/bin/env bash
# Installs what Fanfare needs to build, run and test (with --run: build and run), if it
# is missing.
# Debian/Ubuntu: apt-get (as root, or through sudo). Swift itself must already be installed.
set -euo pipefail
# nginx (and other daemons) live in /usr/sbin, which an ordinary user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
cd "$(dirname "$0")/.."

# --run: only what building and running Fanfare needs (scripts/run.sh); without it, the
# test tools too (the test command).
for_tests=1
[[ ${1:-} == --run ]] && for_tests=0

if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
updated=0
# Installs one group of Debian packages on its own, so one name a distribution lacks
# cannot keep the others from being installed; returns whether it worked.
apt_install() {
    command -v apt-get >/dev/null || return 1
    if ((!updated)); then
        "${sudo[@]}" apt-get update -qq
        updated=1
    fi
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

missing=()
pkg-config --exists hiredis 2>/dev/null || missing+=(libhiredis-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v nginx >/dev/null || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
if ((for_tests)); then
    command -v openssl >/dev/null || missing+=(openssl)
    # The test command checks the browser pages' JavaScript with node --check.
    command -v node >/dev/null || missing+=(nodejs)
    # The Python test tools live in a virtual environment of their own (see below).
    python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    if command -v apt-get >/dev/null; then
        apt_install "${missing[@]}" || { echo "apt-get could not install: ${missing[*]}" >&2; exit 1; }
    elif command -v brew >/dev/null; then
        brew install hiredis redis nginx
    else
        echo "please install: ${missing[*]}" >&2
        exit 1
    fi
fi

# The browser tests drive Chromium through chromedriver: Debian names them chromium and
# chromium-driver; Ubuntu has chromium-browser and chromium-chromedriver instead.
if ((for_tests)); then
    browser=0
    if { command -v chromium || command -v chromium-browser; } >/dev/null && command -v chromedriver >/dev/null; then
        browser=1
    fi
    if ((!browser)); then
        echo "installing: Chromium and chromedriver, for the browser tests"
        apt_install chromium chromium-driver 2>/dev/null ||
            apt_install chromium-browser chromium-chromedriver 2>/dev/null ||
            { command -v brew >/dev/null && brew install chromedriver; } ||
            echo "could not install Chromium and chromedriver: the browser tests need them" \
                "(apt: chromium chromium-driver)" >&2
    fi
fi

if ((!for_tests)); then
    command -v swift >/dev/null || {
        echo "Swift 6 is required: https://www.swift.org/install/" >&2
        exit 1
    }
    exit 0
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
