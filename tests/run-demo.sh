#!/bin/sh
# make run: the bundled demo upstream (esdemo) and esgate in the foreground.
# esdemo takes a free port (9200 may be held by a real Elasticsearch); the
# demo config is conf/esgate.yaml with the node URL pointing at it.
# Ctrl-C stops both.
set -eu
build=${1:-build}
conf=conf/esgate.yaml
demo_conf=$build/demo.yaml

portfile=$(mktemp)
"$build/esdemo" --port 0 >"$portfile" &
esdemo=$!
trap 'kill $esdemo 2>/dev/null; rm -f "$portfile"' EXIT INT TERM
for _ in $(seq 100); do
	grep -q 'listening on' "$portfile" && break
	sleep 0.05
done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$portfile")
[ -n "$port" ] || { echo "esdemo did not start" >&2; exit 1; }
sed "s#http://127.0.0.1:9200#http://127.0.0.1:$port#" "$conf" >"$demo_conf"
listen=$(sed -n 's/^listen: *\[\([^],]*\).*/\1/p' "$demo_conf")
echo "esdemo (demo Elasticsearch) on 127.0.0.1:$port"
echo "esgate on $listen — try:  curl http://$listen/   (Ctrl-C stops both)"
"$build/esgate" -c "$demo_conf" &
esgate=$!
trap 'kill $esgate $esdemo 2>/dev/null; wait $esgate 2>/dev/null; rm -f "$portfile"' EXIT INT TERM
wait $esgate
