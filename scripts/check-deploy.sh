#!/usr/bin/env bash
# Static checks of Deploy/: the nginx config renders and passes `nginx -t`, and
# docker-compose.yml validates against the Compose specification (no Docker engine here).
set -euo pipefail
cd "$(dirname "$0")/.."

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
Deploy/render-nginx.sh 127.0.0.1:18080 127.0.0.1:18081 127.0.0.1:18082 127.0.0.1:18083 "$workdir" >"$workdir/nginx.conf"
nginx -t -q -c "$workdir/nginx.conf" -p "$workdir" -e stderr
echo "nginx -t: Deploy/nginx/fanfare.conf.template is valid"

.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
