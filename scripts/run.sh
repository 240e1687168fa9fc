#!/usr/bin/env bash
# Runs a Fanfare node. Installs what is missing and builds in release mode first.
#
#   scripts/run.sh                          embedded: one node, no Redis, on :8080
#   FANFARE_REDIS_URL=redis://127.0.0.1:6379 scripts/run.sh   a cluster node on that Redis
#
# Any arguments are passed to `fanfare serve` (see `fanfare serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-dependencies.sh
swift build -c release --product fanfare
exec .build/release/fanfare serve "$@"
