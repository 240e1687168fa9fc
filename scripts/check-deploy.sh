#!/usr/bin/env bash
# Static checks of Deploy/: the nginx config renders and passes `nginx -t`,
# docker-compose.yml, docker-compose.sentinel.yml and docker-compose.cluster.yml validate against the Compose specification
# (no Docker engine here),
# and the Dockerfile builds with a Swift at least as new as the package needs.
set -euo pipefail
# nginx (and other daemons) live in /usr/sbin, which an ordinary user's PATH lacks.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin:/sbin" ;; esac
cd "$(dirname "$0")/.."

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
Deploy/render-nginx.sh 127.0.0.1:18080 127.0.0.1:18081 127.0.0.1:18082 127.0.0.1:18083 "$workdir" >"$workdir/nginx.conf"
nginx -t -q -c "$workdir/nginx.conf" -p "$workdir" -e stderr
echo "nginx -t: Deploy/nginx/fanfare.conf.template is valid"

.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml docker-compose.sentinel.yml docker-compose.cluster.yml

# Package.swift names the oldest Swift that builds the package (the code uses the
# standard library of that release); the image must not be older.
needed=$(sed -n '1s|^// swift-tools-version:\([0-9.]*\).*|\1|p' Package.swift)
image=$(sed -n 's|^FROM swift:\([0-9][0-9.]*\).*|\1|p' Deploy/Dockerfile | head -1)
if [[ -z $needed || -z $image ]]; then
    echo "cannot read the Swift versions of Package.swift ($needed) and Deploy/Dockerfile ($image)" >&2
    exit 1
fi
if [[ $(printf '%s\n%s\n' "$needed" "$image" | sort -V | head -1) != "$needed" ]]; then
    echo "Deploy/Dockerfile builds with swift:$image, older than the Swift $needed the package needs" >&2
    exit 1
fi
echo "Dockerfile: swift:$image builds a package that needs Swift $needed"
