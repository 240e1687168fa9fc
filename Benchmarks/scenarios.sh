#!/usr/bin/env bash
# Runs the standard load scenarios against a local cluster of 2 nodes + Redis, all on
# loopback, with release builds. Prints the load generator's figures for each scenario.
#
#   Benchmarks/scenarios.sh [scenario ...]                      (default: all but compare, streams)
#   PEER=nchan Benchmarks/scenarios.sh [scenario ...]           the same against nchan
#   RUNS=3 Benchmarks/scenarios.sh compare                      both side by side, with ratios
#   BEFORE_BINARY=/tmp/old/fanfare RUNS=2 Benchmarks/scenarios.sh compare
#                                                               and an older build of the node beside them
#   FANFARE_BINARY=../old/.build/release/fanfare Benchmarks/scenarios.sh flat
#                                                               another build of the node (before/after)
#   PERF=1 Benchmarks/scenarios.sh bounded                      with the servers' syscalls and context
#                                                               switches per delivery (perf stat)
#   RUNS=10 TOKENS=100 RATE=50 Benchmarks/scenarios.sh runs     fewer, shorter runs (RUNS here counts the
#                                                               runs, not compare's rounds)
#
# Scenarios: idle flat bounded paced fanout latency spread spread-bounded batch resume
# resume-busy replay catchup floor streams compare acks shards runs.
#
# `flat` and `spread` let 1,000 and 2,000 events be outstanding: events pile up per stream
# and go out many to a write. `bounded` and `spread-bounded` are the same loads with at
# most 256 events outstanding, so latency stays in tens of milliseconds: throughput at a
# latency a user accepts. Every throughput figure comes with its p99.
#
# `paced` publishes at a fixed 200 events/s to 1,000 subscribers (an open loop: the rate
# does not wait for deliveries), the load where holding each turn's events a few
# milliseconds (`NODE_OPTIONS="--event-loops 1 --write-delay-ms 5"`) puts several events
# in one write; compare it with the default.
#
# `runs` streams RUNS runs at once (default 200), each of TOKENS token events (default
# 1,000) at RATE tokens/s (default 50: 20 s a run), one publish per token (TOKENS_PER_PUBLISH
# for small batches at high rates), then a final `complete` event; run starts are spread
# over 2 s. Each run has 2 followers, one on each node, opened with `?from=start` before it
# starts. It reports tokens delivered/s, publish→receive p50/p99, server and Redis CPU per
# delivered token, and how many runs every follower had whole (every event once and in
# order, then `__end`, then the end of the response), with lost, duplicate and out-of-order
# counts; the generator exits non-zero, and so does the script, when a run is incomplete.
# Fanfare only.
#
# `shards` runs `spread` (each publish reaches one stream of 1,000 channels) twice: the two
# nodes on the one Redis, then on a Redis Cluster of three primaries (no replicas), with
# the Redis CPU per publish summed over the servers.
#
# `acks` adds a replica of the cluster's Redis and runs 1,000 subscribers at 10 events/s
# twice: publishes acknowledged by the master, then once a replica has them
# (`--replica-acks 1`): the cost of acknowledged-means-kept on the publish answer.
#
# Each node runs one event loop, as each nchan instance runs one worker: two server
# threads on the two cores either way (NODE_OPTIONS replaces `--event-loops 1` with other
# node options, e.g. NODE_OPTIONS= for one loop per core).
#
# The peer is nchan (nginx with Debian's libnginx-mod-nchan, see Benchmarks/nchan-peer.sh):
# two nginx instances of one worker each sharing the same Redis, in place of the two nodes.
# Its streams are the same as a node's (a broadcast channel and one of their own) and so
# are the payloads; the resume scenarios and `batch` are Fanfare's only.
#
# `compare` runs idle, latency, flat, fanout and spread against Fanfare and nchan in turn,
# RUNS times (default 3), then the floor, and prints each figure's median for both and
# their ratio: the table of the README's benchmark section, from one sitting.
#
# `streams` holds 100,200 streams over 6 nodes (one generator process per node, as the
# open-file limit is 20,000 per process) and broadcasts 10 events at 1/s: streams held,
# loss, p99 and RSS per stream.
#
# `floor` runs no node: it measures what the kernel alone costs to broadcast over loopback
# TCP on this machine (raw write(2) of one frame per connection, 2 writer threads for the 2
# nodes), for the fanout and latency shapes. No server that writes one frame per delivery
# can spend less system time per delivery, or finish a round sooner, on the same cores.
# (9,000 connections, not 10,000: both ends live in one process, under the open-file limit.)
#
# Not a test: the figures go into closing notes and docs.
set -euo pipefail
# nginx (and other daemons) live in /usr/sbin, which an ordinary user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
cd "$(dirname "$0")/.."
source Benchmarks/nchan-peer.sh

scripts/install-dependencies.sh
fanfare=${FANFARE_BINARY:-.build/release/fanfare}
[[ -n ${FANFARE_BINARY:-} ]] || swift build -c release --product fanfare
# The load generator is the benchmarks package's own (Benchmarks/Package.swift).
swift build -c release --package-path Benchmarks --product fanfare-load
load=Benchmarks/.build/release/fanfare-load
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

workdir=$(mktemp -d)
# Ports 10,000-15,100: the tests take theirs from 20,000-32,000, so a benchmark and a test
# run never meet.
redis_port=$(( (RANDOM % 5000) + 10000 ))
ports=($(( redis_port + 1 )) $(( redis_port + 2 )))
replica_port=$(( redis_port + 20 ))
# A three-primary Redis Cluster for `shards`, its bus ports ten above.
cluster_ports=($(( redis_port + 30 )) $(( redis_port + 31 )) $(( redis_port + 32 )))
peer=${PEER:-fanfare}
pids=()
failed=()
cleanup() {
    nchan_stop
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    redis-cli -p "$replica_port" shutdown nosave >/dev/null 2>&1 || true
    for port in "${cluster_ports[@]}"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$workdir"
}
trap cleanup EXIT

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" \
    --logfile "$workdir/redis.log" --daemonize yes
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis_pid=$(redis-cli -p "$redis_port" info server | tr -d '\r' | sed -n 's/^process_id://p')
# What the nodes use, what each run empties first, and whose CPU counts (see `shards`).
redis_url="redis://127.0.0.1:$redis_port"
flush_ports=("$redis_port")
measured_redis_pids=$redis_pid

# Starts the servers of $peer on the ports given (default: the two of the cluster).
start_servers() {
    local port
    (($#)) || set -- "${ports[@]}"
    pids=()
    # Each run starts from an empty Redis: no history or counts of the run before, and no
    # function library (another build may load its own).
    for port in "${flush_ports[@]}"; do
        redis-cli -p "$port" flushall >/dev/null
        redis-cli -p "$port" function flush >/dev/null
    done
    if [[ $peer == nchan ]]; then
        mkdir -p "$workdir/nchan"
        nchan_start "$workdir/nchan" "$redis_port" "$@"
        pids=("${nchan_pids[@]}")
        return
    fi
    for port in "$@"; do
        "$fanfare" serve --host 127.0.0.1 --port "$port" --node-id "bench-$port" \
            --redis "$redis_url" --log-level warning ${NODE_OPTIONS---event-loops 1} \
            >"$workdir/node-$port.log" 2>&1 &
        pids+=($!)
    done
    for port in "$@"; do
        for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    done
}
stop_servers() {
    if [[ $peer == nchan ]]; then
        nchan_stop
    else
        for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
        wait "${pids[@]}" 2>/dev/null || true
    fi
    pids=()
}

# A replica of the cluster's Redis, once it has synced (for `acks`).
start_replica() {
    [[ -z ${replica_started:-} ]] || return 0
    redis-cli -p "$redis_port" config set repl-diskless-sync-delay 0 >/dev/null
    redis-server --port "$replica_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" \
        --dbfilename replica.rdb --logfile "$workdir/replica.log" --replicaof 127.0.0.1 "$redis_port" --daemonize yes
    for _ in $(seq 100); do
        redis-cli -p "$replica_port" info replication 2>/dev/null | grep -q master_link_status:up && break
        sleep 0.1
    done
    replica_started=1
}

# The three-primary cluster for `shards`, once.
start_redis_cluster() {
    [[ -z ${cluster_started:-} ]] || return 0
    local port hosts=() cluster_pids=()
    for port in "${cluster_ports[@]}"; do
        mkdir -p "$workdir/cluster-$port"
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir/cluster-$port" \
            --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port $((port + 10)) \
            --logfile "$workdir/cluster-$port.log" --daemonize yes
        hosts+=("127.0.0.1:$port")
    done
    for port in "${cluster_ports[@]}"; do
        for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas 0 --cluster-yes >"$workdir/cluster-create.log"
    for port in "${cluster_ports[@]}"; do
        for _ in $(seq 100); do redis-cli -p "$port" cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
        cluster_pids+=("$(redis-cli -p "$port" info server | tr -d '\r' | sed -n 's/^process_id://p')")
    done
    cluster_url="redis-cluster://$(IFS=,; echo "${hosts[*]}")"
    cluster_pid_list=$(IFS=,; echo "${cluster_pids[*]}")
    cluster_started=1
}

urls() {
    local port list=()
    for port in "$@"; do list+=("http://127.0.0.1:$port"); done
    (IFS=,; echo "${list[*]}")
}

# run <label> <generator options...>: one scenario against $peer; its `result:` lines are
# kept in $workdir/results as "<peer> <label> key=value ...".
run() {
    local label=$1 name=$2
    shift 2
    echo "== $name ($peer)"
    start_servers
    local perf_pid=
    if [[ -n ${PERF:-} ]]; then
        perf stat -x, -o "$workdir/perf" -p "$(IFS=,; echo "${pids[*]}")" \
            -e context-switches,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_read \
            -e syscalls:sys_enter_epoll_wait,syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvfrom 2>/dev/null &
        perf_pid=$!
    fi
    # A generator that fails (e.g. `runs` with an incomplete run) fails the script, after the
    # other scenarios.
    "$load" --peer "$peer" --nodes "$(urls "${ports[@]}")" \
        --pids "$(IFS=,; echo "${pids[*]}")" --redis-pid "$measured_redis_pids" "$@" | tee "$workdir/last" ||
        failed+=("$label")
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
        perf_report "$workdir/perf" "$workdir/last"
    fi
    sed -n "s/^result: /${tag:-$peer} $label /p" "$workdir/last" >>"$workdir/results"
    stop_servers
}

# With PERF=1: the servers' syscalls and context switches over the whole run (connecting
# included), per delivery and per publish, from `perf stat`.
perf_report() {
    python3 - "$1" "$2" <<'PY'
import re, sys
counts = {}
for line in open(sys.argv[1]):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0].replace(".", "").isdigit():
        counts[parts[2].replace("syscalls:sys_enter_", "")] = float(parts[0])
text = open(sys.argv[2]).read()
def figure(key):
    found = re.findall(rf"{key}=([0-9.]+)", text)
    return float(found[-1]) if found else 0.0
seconds = 10.0
deliveries = figure("deliveries_per_s") * seconds
publishes = figure("events_per_s") * seconds
line = ", ".join(
    f"{name} {count / deliveries:.3f}/delivery {count / publishes:.2f}/publish" for name, count in sorted(counts.items())
    if deliveries and publishes
)
print(f"perf (servers, whole run, over 10 s of load): {line}")
print("result: " + " ".join(f"{name.replace('-', '_')}_per_delivery={count / deliveries:.4f}" for name, count in sorted(counts.items()) if deliveries))
PY
}

scenario() {
    case $1 in
    idle) run idle "10,000 idle connections" --connections 10000 --events 0 ;;
    flat)
        run flat "1,000 subscribers, broadcast flat out for 10 s, 16 publishes in flight" \
            --connections 1000 --events 1000000 --seconds 10 --window 1000 --publishers 16 --settle-seconds 1
        ;;
    bounded)
        run bounded "1,000 subscribers, broadcast flat out for 10 s, 16 publishes in flight, at most 256 events outstanding" \
            --connections 1000 --events 1000000 --seconds 10 --window 256 --publishers 16 --settle-seconds 1
        ;;
    paced)
        run paced "1,000 subscribers at 200 events/s (open loop): what write coalescing (--write-delay-ms) buys" \
            --connections 1000 --events 2000 --rate 200 --publishers 16 --paced-publishers 16 --settle-seconds 1
        ;;
    spread-bounded)
        run spread-bounded "1,000 subscribers on 1,000 channels, flat out for 10 s, at most 256 events outstanding" \
            --connections 1000 --spread --events 10000000 --seconds 10 --window 256 --publishers 16 --settle-seconds 1
        ;;
    fanout) run fanout "10,000 subscribers at 10 events/s" --connections 10000 --events 100 --rate 10 --settle-seconds 1 ;;
    latency) run latency "1,000 subscribers at 1 event/s" --connections 1000 --events 20 --rate 1 --settle-seconds 1 ;;
    spread)
        run spread "1,000 subscribers on 1,000 channels, flat out for 10 s: each publish reaches one stream" \
            --connections 1000 --spread --events 10000000 --seconds 10 --window 2000 --publishers 16 --settle-seconds 1
        ;;
    batch)
        [[ $peer == fanfare ]] || { echo "== batch: Fanfare only (nchan has no batch publish)"; return; }
        run batch "1,000 subscribers, batches of 100 events to one stream each (token by token), 8 in flight, for 10 s" \
            --connections 1000 --spread --batch 100 --events 100000000 --seconds 10 --window 20000 --publishers 8 \
            --settle-seconds 1
        ;;
    resume) run resume "1,000 clients reconnect 100 events behind" --connections 1000 --events 0 --resume-behind 100 ;;
    resume-busy)
        run resume-busy "1,000 clients reconnect 100 events behind, among 200,000 events of other channels" \
            --connections 1000 --events 0 --resume-behind 100 --resume-noise 200000 --redis "127.0.0.1:$redis_port"
        ;;
    replay) run replay "one client replays 10,000 missed events" --connections 1 --events 0 --resume-behind 10000 ;;
    catchup)
        run catchup "one client catches up 10 MiB (10,000 events of 1 KiB) on one connection" \
            --connections 1 --events 0 --resume-behind 10000 --payload-bytes 1000
        ;;
    floor)
        echo "== floor: 9,000 loopback connections at 10 rounds/s, no server"
        "$load" --floor --connections 9000 --events 100 --rate 10 | tee "$workdir/last"
        echo "== floor: 1,000 loopback connections at 1 round/s, no server"
        "$load" --floor --connections 1000 --events 10 --rate 1 | tee -a "$workdir/last"
        ;;
    streams) streams ;;
    compare) compare ;;
    acks)
        [[ $peer == fanfare ]] || { echo "== acks: Fanfare only"; return; }
        start_replica
        local options=${NODE_OPTIONS---event-loops 1}
        NODE_OPTIONS="$options --replica-acks 0" run acks-master "1,000 subscribers at 10 events/s, acknowledged by the master" \
            --connections 1000 --events 100 --rate 10 --settle-seconds 1
        NODE_OPTIONS="$options --replica-acks 1" run acks-replica \
            "1,000 subscribers at 10 events/s, acknowledged once a replica has it (--replica-acks 1)" \
            --connections 1000 --events 100 --rate 10 --settle-seconds 1
        ;;
    runs)
        [[ $peer == fanfare ]] || { echo "== runs: Fanfare only (nchan has no runs)"; return; }
        local count=${RUNS:-200} tokens=${TOKENS:-1000} rate=${RATE:-50}
        run runs "$count runs of $tokens tokens at $rate tokens/s each, 2 followers a run (one on each node)" \
            --runs --run-count "$count" --tokens "$tokens" --token-rate "$rate" --followers 2 \
            --tokens-per-publish "${TOKENS_PER_PUBLISH:-1}" --stagger-seconds 2
        ;;
    shards)
        [[ $peer == fanfare ]] || { echo "== shards: Fanfare only"; return; }
        local spread=(--connections 1000 --spread --events 10000000 --seconds 10 --window 2000 --publishers 16
            --settle-seconds 1)
        run shards-1 "1,000 subscribers on 1,000 channels, flat out for 10 s, on one Redis" "${spread[@]}"
        start_redis_cluster
        redis_url=$cluster_url
        flush_ports=("${cluster_ports[@]}")
        measured_redis_pids=$cluster_pid_list
        # The cluster has no replicas: publishes wait for none (a cluster's default is 1).
        NODE_OPTIONS="${NODE_OPTIONS---event-loops 1} --replica-acks 0" run shards-3 \
            "1,000 subscribers on 1,000 channels, flat out for 10 s, on a Redis Cluster of 3 primaries" "${spread[@]}"
        redis_url="redis://127.0.0.1:$redis_port"
        flush_ports=("$redis_port")
        measured_redis_pids=$redis_pid
        ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

# 100,200 streams over 6 nodes, a generator process per node; a seventh publishes.
streams() {
    local count=6 per=16700 index stream_ports=() listeners=() logs=() ready
    for index in $(seq "$count"); do stream_ports+=($(( redis_port + 10 + index ))); done
    echo "== $((count * per)) streams over $count nodes, broadcast 10 events at 1/s ($peer)"
    start_servers "${stream_ports[@]}"
    for index in $(seq 0 $((count - 1))); do
        logs+=("$workdir/streams-$index.log")
        "$load" --peer "$peer" --nodes "$(urls "${stream_ports[$index]}")" \
            --pids "${pids[$index]}" --connections "$per" --first-stream $((index * per)) \
            --listen-events 10 --listen-seconds 120 >"${logs[$index]}" 2>&1 &
        listeners+=($!)
    done
    for _ in $(seq 600); do
        ready=$( (grep -l "connections established" "${logs[@]}" 2>/dev/null || true) | wc -l)
        ((ready == count)) && break
        sleep 0.5
    done
    ((ready == count)) || { echo "only $ready of $count generators connected" >&2; cat "${logs[@]}" >&2; exit 1; }
    sleep 2
    "$load" --peer "$peer" --nodes "$(urls "${stream_ports[@]}")" --connections 0 \
        --events 10 --rate 1 --publishers 1
    wait "${listeners[@]}" || true
    local rss=0 delivered=0 missing=0 p99=0 line
    for index in $(seq 0 $((count - 1))); do
        echo "-- node $index"; cat "${logs[$index]}"
        line=$(grep "KiB per connection" "${logs[$index]}" | head -1)
        rss=$(( rss + $(sed -n 's/^result: rss_bytes_per_stream=\([0-9]*\).*/\1/p' "${logs[$index]}") ))
        delivered=$(( delivered + $(sed -n 's/^result: delivered=\([0-9]*\).*/\1/p' "${logs[$index]}") ))
        missing=$(( missing + $(sed -n 's/^result: delivered=[0-9]* missing=\(-\?[0-9]*\).*/\1/p' "${logs[$index]}") ))
    done
    p99=$(sed -n 's/.*latency_p99_ms=\([0-9.]*\).*/\1/p' "${logs[@]}" | sort -n | tail -1)
    echo "streams: $((count * per)) held on $count nodes; delivered $delivered, missing $missing;"
    echo "  worst node p99 $p99 ms; RSS $(( rss / count )) bytes per stream (mean of the nodes)"
    stop_servers
}

# Both peers in turn, RUNS times, then the floor; medians and ratios.
compare() {
    local round which current=$fanfare
    : >"$workdir/results"
    for round in $(seq "${RUNS:-3}"); do
        for which in fanfare nchan ${BEFORE_BINARY:+before}; do
            peer=$which tag=$which fanfare=$current
            if [[ $which == before ]]; then peer=fanfare fanfare=$BEFORE_BINARY; fi
            for name in idle latency flat bounded fanout spread spread-bounded; do scenario "$name"; done
        done
    done
    peer=fanfare tag=fanfare fanfare=$current
    scenario batch
    scenario floor
    python3 - "$workdir/results" "$workdir/last" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    peer, label, *pairs = line.split()
    for pair in pairs:
        key, value = pair.split("=")
        rows.setdefault((label, key), {}).setdefault(peer, []).append(float(value))
floor = open(sys.argv[2]).read()
table = [
    ("latency", "answer_p50_ms", "1,000 subscribers, 1 event/s: publish answer p50 (ms)"),
    ("latency", "latency_p50_ms", "same: publish→receive p50 (ms)"),
    ("latency", "latency_p99_ms", "same: publish→receive p99 (ms)"),
    ("flat", "deliveries_per_s", "1,000 subscribers, broadcast, 16 in flight: deliveries/s"),
    ("flat", "node_user_us_per_delivery", "same: user CPU per delivery, servers (µs)"),
    ("flat", "latency_p99_ms", "same: publish→receive p99 (ms)"),
    ("flat", "servers_us_per_delivery", "same: CPU per delivery, servers + Redis, user + system (µs)"),
    ("bounded", "deliveries_per_s", "same, at most 256 events outstanding: deliveries/s"),
    ("bounded", "latency_p99_ms", "same: publish→receive p99 (ms)"),
    ("bounded", "servers_us_per_delivery", "same: CPU per delivery, servers + Redis, user + system (µs)"),
    ("idle", "rss_bytes_per_stream", "10,000 idle streams: RSS per stream (bytes)"),
    ("fanout", "node_us_per_delivery", "10,000 subscribers, 10 events/s: server CPU per delivery (µs)"),
    ("fanout", "latency_p99_ms", "same: publish→receive p99 (ms)"),
    ("fanout", "missing", "same: deliveries missing"),
    ("spread", "events_per_s", "1,000 subscribers on 1,000 channels, flat out: publishes/s"),
    ("spread", "servers_us_per_publish", "same: CPU per publish, servers + Redis, user + system (µs)"),
    ("spread", "node_us_per_publish", "same: server CPU per publish (µs)"),
    ("spread", "redis_us_per_publish", "same: Redis CPU per publish (µs)"),
    ("spread", "latency_p99_ms", "same: publish→receive p99 (ms)"),
    ("spread-bounded", "events_per_s", "same, at most 256 events outstanding: publishes/s"),
    ("spread-bounded", "latency_p99_ms", "same: publish→receive p99 (ms)"),
    ("spread-bounded", "servers_us_per_publish", "same: CPU per publish, servers + Redis, user + system (µs)"),
    ("batch", "events_per_s", "batches of 100 to 1,000 channels: events/s (Fanfare only)"),
    ("batch", "redis_us_per_publish", "same: Redis CPU per event (µs)"),
]
def median(values):
    return statistics.median(values) if values else None
def show(value):
    if value is None: return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
print()
print(f"== side by side, medians of {max((len(v) for r in rows.values() for v in r.values()), default=0)} runs")
before_runs = any("before" in peers for peers in rows.values())
if before_runs:
    print("| scenario | nchan | Fanfare before | Fanfare | Fanfare / nchan | Fanfare / before |")
    print("|---|---|---|---|---|---|")
else:
    print("| scenario | nchan | Fanfare | Fanfare / nchan |")
    print("|---|---|---|---|")
for label, key, text in table:
    values = rows.get((label, key), {})
    fanfare, nchan = median(values.get("fanfare", [])), median(values.get("nchan", []))
    ratio = f"{fanfare / nchan:.2f}" if fanfare is not None and nchan else "–"
    if before_runs:
        before = median(values.get("before", []))
        change = f"{fanfare / before:.2f}" if fanfare is not None and before else "–"
        print(f"| {text} | {show(nchan)} | {show(before)} | {show(fanfare)} | {ratio} | {change} |")
    else:
        print(f"| {text} | {show(nchan)} | {show(fanfare)} | {ratio} |")
print()
print("every run (scenario key: values per server, in run order):")
for (label, key), peers in sorted(rows.items()):
    if any(key == k and label == l for l, k, _ in table):
        print(f"  {label} {key}: " + "; ".join(f"{p} " + ", ".join(show(v) for v in vs) for p, vs in sorted(peers.items())))
print()
print("floor (no server, same sitting):")
for line in floor.splitlines():
    if line.startswith(("floor:", "round due", "writer CPU", "subscriber CPU")):
        print("  " + line)
PY
}

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(idle flat fanout latency spread batch resume resume-busy replay catchup floor)
for name in "${scenarios[@]}"; do scenario "$name"; done
((${#failed[@]} == 0)) || { echo "failed: ${failed[*]}" >&2; exit 1; }
