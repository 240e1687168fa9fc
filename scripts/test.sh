#!/usr/bin/env bash
# The test command: installs what is missing, checks formatting, builds with warnings
# as errors, and runs every test. Tests that need Redis start their own redis-server on
# free loopback ports and stop it; under CI (CI=true) they fail if redis-server is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-dependencies.sh
# The tests find the Python tools (schemathesis, Selenium's python3) in the project's venv.
export PATH="$PWD/.venv/bin:$PATH"

echo "== format"
swift format lint --strict --recursive Package.swift Sources Tests Benchmarks

echo "== deploy files"
# With an ordinary user's PATH (no /usr/sbin): the scripts find nginx all the same.
env PATH="$PWD/.venv/bin:/usr/local/bin:/usr/bin:/bin" scripts/check-deploy.sh

echo "== resources"
scripts/check-resources.sh

echo "== javascript client (node's own test runner)"
node --test Clients/js/test/

echo "== build"
swift build --build-tests -Xswiftc -warnings-as-errors --explicit-target-dependency-import-check error

echo "== benchmarks package (its load generator has a test of its own)"
swift build --package-path Benchmarks -Xswiftc -warnings-as-errors --product fanfare-load

echo "== test"
swift test --skip-build -Xswiftc -warnings-as-errors --explicit-target-dependency-import-check error
