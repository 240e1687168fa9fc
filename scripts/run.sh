#!/usr/bin/env bash
# Runs Fanfare. For now (before the node lands) this shows the two libraries at work:
# a throwaway redis-server on a free loopback port, `fanfare demo` publishing through it
# and printing the SSE frames, then everything is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-dependencies.sh
swift build -c release --product fanfare

workdir=$(mktemp -d)
port=$(( (RANDOM % 10000) + 20000 ))
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" \
    --logfile "$workdir/redis.log" --daemonize yes --pidfile "$workdir/redis.pid"
trap 'kill "$(cat "$workdir/redis.pid")" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

.build/release/fanfare demo --redis "redis://127.0.0.1:$port" "$@"
