#!/usr/bin/env bash
# The long sweep of the randomized schedule test (Tests/FanfareTests/ScheduleSimulation):
# the node's and its streams' state machines through many seeded random schedules. The test
# command runs 3,000; this runs more, from another base seed, and prints how many and how
# long. A failure prints its seed, which `FANFARE_SCHEDULE_SEED=<seed>` replays.
#
#   Benchmarks/schedules.sh [count] [base]          (default: 200,000 from seed 1,000,000)
#
# Not a test of speed: the figure is for closing notes.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
base=${2:-1000000}
swift build --build-tests >/dev/null
FANFARE_SCHEDULES=$count FANFARE_SCHEDULE_BASE=$base \
    swift test --skip-build --filter ScheduleSimulationTests 2>&1 | grep -E "schedules of|seed|passed|failed"
