#!/usr/bin/env bash
# The failover gap of a cluster: brings up `scripts/run.sh --sentinel` on loopback (three
# nodes, nginx, a master with two replicas, three sentinels; the nodes acknowledge a publish
# once a replica has it), keeps a stream open through nginx, publishes every 20 ms, SIGKILLs
# the master (or stops it) and reports, per round:
#   - accepted again: from the kill to the first publish acknowledged again;
#   - caught up: from the kill to the stream receiving that publish.
#
#   Benchmarks/failover.sh [--redis-cluster] [rounds]   (default 3; a fresh cluster each round)
#   FANFARE_BINARY=path Benchmarks/failover.sh   another build of the node
#   FAILOVER_SIGNAL=STOP Benchmarks/failover.sh  stop the master instead (SIGSTOP): it keeps
#                                                its sockets, as when it is cut off; it gets
#                                                SIGCONT once the round is measured
#
# --redis-cluster: `run.sh --redis-cluster` instead (three primaries with a replica each),
# and the primary killed is the one serving the stream's channel. With one replica per
# primary, a promoted replica has none left to confirm a publish, so these nodes run with
# --replica-acks 0: the figure is the gap itself, without the acknowledgement promise.
#
# Ports 10,000-15,100, as the other benchmarks. Not a test: the figures go into closing
# notes and docs. The sentinels declare a master down after 2 s, and a cluster node after
# its 2 s node timeout (local-cluster.sh), which bounds the gap from below.
set -euo pipefail
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
cd "$(dirname "$0")/.."

topology=(--sentinel)
if [[ ${1:-} == --redis-cluster ]]; then
    topology=(--redis-cluster --replica-acks 0)
    shift
fi
rounds=${1:-3}
signal=${FAILOVER_SIGNAL:-KILL}
case $signal in KILL | STOP) ;; *) echo "FAILOVER_SIGNAL is KILL or STOP, not '$signal'" >&2; exit 2 ;; esac
binary=${FANFARE_BINARY:-}
if [[ -z $binary ]]; then
    swift build -c release --product fanfare
    binary=.build/release/fanfare
fi
workdir=$(mktemp -d)
cluster=
master=
cleanup() {
    [[ -n $master ]] && kill -CONT "$master" 2>/dev/null
    [[ -n $cluster ]] && kill -INT -- "-$cluster" 2>/dev/null && wait "$cluster" 2>/dev/null
    rm -rf "$workdir"
}
trap cleanup EXIT

now() { date +%s.%N; }

for round in $(seq "$rounds"); do
    port=$(( (RANDOM % 4900) + 10000 ))
    setsid env FANFARE_BINARY="$binary" scripts/run.sh "${topology[@]}" --port "$port" >"$workdir/cluster.log" 2>&1 &
    cluster=$!
    for _ in $(seq 600); do grep -q "Ctrl-C stops everything" "$workdir/cluster.log" && break; sleep 0.1; done
    url="http://127.0.0.1:$port"
    curl -sN "$url/api/sse/subscribe/failover-watch" >"$workdir/stream" &
    watcher=$!
    sleep 0.5
    master_port=$((port + 4))
    if [[ ${topology[0]} == --redis-cluster ]]; then
        # The primary whose slots hold the channel's keys answers; the others say MOVED.
        master_port=
        for candidate in $((port + 4)) $((port + 5)) $((port + 6)); do
            if [[ $(redis-cli -p "$candidate" exists "fanfare:h:{client:failover-watch}") =~ ^[0-9]+$ ]]; then
                master_port=$candidate
            fi
        done
        if [[ -z $master_port ]]; then
            echo "round $round: no primary serves the stream's channel" >&2
            exit 1
        fi
    fi
    master=$(redis-cli -p "$master_port" info server | tr -d '\r' | sed -n 's/^process_id://p')
    kill -"$signal" "$master"
    killed=$(now)
    accepted=
    for _ in $(seq 3000); do
        answer=$(curl -s -m 10 --json '{"clientId":"failover-watch","event":"after","payload":1}' "$url/api/sse/notify" || true)
        if [[ $answer == *'"ok":true'* ]]; then
            accepted=$(now)
            break
        fi
        sleep 0.02
    done
    caught=
    for _ in $(seq 3000); do
        grep -q "^event: after" "$workdir/stream" && { caught=$(now); break; }
        sleep 0.01
    done
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    [[ $signal == STOP ]] && kill -CONT "$master"
    if [[ -z $accepted || -z $caught ]]; then
        echo "round $round: no publish accepted or received within 60 s; logs: $(grep -o '/tmp/fanfare-cluster[^)]*' "$workdir/cluster.log")" >&2
        exit 1
    fi
    printf 'round %d: accepted again %.2f s, caught up %.2f s after the kill\n' "$round" \
        "$(echo "$accepted - $killed" | bc)" "$(echo "$caught - $killed" | bc)"
    kill -INT -- "-$cluster" 2>/dev/null || true
    wait "$cluster" 2>/dev/null || true
    cluster=
    master=
done
