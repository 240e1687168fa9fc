#!/usr/bin/env bash
# Checks the node's non-Swift sources (Sources/Fanfare/Resources, embedded in the binary)
# with their own tools: the OpenAPI description with openapi-spec-validator, the pages'
# JavaScript with node --check. (The Lua library is loaded into a real Redis by the tests.)
set -euo pipefail
cd "$(dirname "$0")/.."

resources=Sources/Fanfare/Resources
.venv/bin/openapi-spec-validator "$resources/openapi.json"
for script in "$resources"/*.js; do
    # An ES module (fanfare.js, and the pages that import it) is checked as one: node 20's
    # plain --check lets a module's syntax errors through.
    if grep -qE '^(import|export) ' "$script"; then
        node --input-type=module --check <"$script"
    else
        node --check "$script"
    fi
done
echo "resources: openapi.json is valid OpenAPI; $(ls "$resources"/*.js | wc -l) scripts parse"
