#!/usr/bin/env bash
# Renders Deploy/nginx/fanfare.conf.template for nginx running outside a container.
#   Deploy/render-nginx.sh LISTEN NODE1 NODE2 NODE3 WORKDIR > nginx.conf
set -euo pipefail
template="$(dirname "$0")/nginx/fanfare.conf.template"
listen=$1 node1=$2 node2=$3 node3=$4 workdir=$5
mkdir -p "$workdir"
sed -e "s|\${FANFARE_LISTEN}|$listen|g" -e "s|\${FANFARE_NODE_1}|$node1|g" \
    -e "s|\${FANFARE_NODE_2}|$node2|g" -e "s|\${FANFARE_NODE_3}|$node3|g" \
    -e "s|\${FANFARE_PID}|$workdir/nginx.pid|g" -e "s|\${FANFARE_TMP}|$workdir|g" "$template"
