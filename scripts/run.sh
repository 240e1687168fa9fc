#!/usr/bin/env bash
# Runs Fanfare. Installs what is missing and builds in release mode first.
#
#   scripts/run.sh                        the local cluster: Redis (append-only), three nodes
#                                         and nginx on loopback; nginx on :8080 (Ctrl-C stops all)
#   scripts/run.sh --port 9090            the same with nginx on :9090 (nodes on the next ports)
#   scripts/run.sh --embedded [args]      one node, no Redis, on :8080; args go to `fanfare serve`
#
# FANFARE_BINARY=path runs that fanfare executable instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-dependencies.sh --run
binary=${FANFARE_BINARY:-}
if [[ -z $binary ]]; then
    # Without debug information (101 MB → 38 MB); the symbols stay, so a crash's
    # backtrace still names its functions.
    swift build -c release --product fanfare -Xlinker --strip-debug
    binary=.build/release/fanfare
fi
if [[ ${1:-} == --embedded ]]; then
    shift
    exec "$binary" serve "$@"
fi
exec Deploy/local-cluster.sh --binary "$binary" "$@"
