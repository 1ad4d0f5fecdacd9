#!/bin/bash
# bench/soak.sh - a million GET / through esgate (2 workers) to esdemo, in
# ten exact batches of `h2load --h1 -n 100000 -c 64`; after each batch every
# worker's VmRSS is read from /proc.  Fails (exit 1) unless every request
# got a 2xx and each worker's settled RSS after the last batch is within
# 10 % of its RSS after the first; appends a dated
# section to bench/SOAK.md either way.  `make soak` runs it; 1-3 minutes on
# 2 CPUs.
#
# Knobs (environment): SOAK_REQUESTS (1000000), SOAK_STEP (100000),
# SOAK_CONNS (64), SOAK_OUT (bench/SOAK.md), BUILD (build),
# PYTHON (/usr/bin/python3).
#
# Every process started here is stopped on exit (trap), by its pid.
set -eu
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
REQUESTS=${SOAK_REQUESTS:-1000000}
STEP=${SOAK_STEP:-100000}
CONNS=${SOAK_CONNS:-64}
OUT=${SOAK_OUT:-bench/SOAK.md}

die() { echo "soak: $*" >&2; exit 1; }
for t in h2load "$BUILD/esgate" "$BUILD/esdemo" "$PYTHON"; do
	command -v "$t" >/dev/null || die "$t not found (make all; apt-get install nghttp2-client)"
done

tmp=$(mktemp -d /tmp/esgate-soak.XXXXXX)
pids=""
child="" # the load-running python, while it runs
cleanup() {
	rc=$?
	if [ -n "$child" ]; then
		pkill -TERM -P "$child" 2>/dev/null || true # its h2load
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ $rc != 0 ]; then
		for f in "$tmp"/esdemo.log "$tmp"/esgate.log; do
			[ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
		done
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---- esdemo: the upstream; its port from its stdout ---------------------------
"$BUILD/esdemo" --port 0 >"$tmp/esdemo.out" 2>"$tmp/esdemo.log" &
pids="$pids $!"
for _ in $(seq 100); do grep -q 'listening on' "$tmp/esdemo.out" 2>/dev/null && break; sleep 0.05; done
demo_port=$(sed -n 's/^esdemo listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/esdemo.out" | head -n 1)
[ -n "$demo_port" ] || die "esdemo did not start"

# ---- esgate: 2 workers, log level warn ----------------------------------------
{
	echo "listen: [127.0.0.1:0]"
	echo "workers: 2"
	echo "log: {level: warn}"
	echo "upstream:"
	echo "  nodes: [http://127.0.0.1:$demo_port]"
	if [ "$(id -u)" = 0 ]; then echo "user: nobody"; fi
} >"$tmp/esgate.yaml"
"$BUILD/esgate" -c "$tmp/esgate.yaml" >"$tmp/esgate.log" 2>&1 &
esgate_pid=$!
pids="$pids $esgate_pid"
# At log level warn the master does not log its "listening on" line, so the
# kernel-picked port is read from the master's listening socket in /proc.
esgate_port=$($PYTHON bench/bench.py listenport "$esgate_pid")
$PYTHON bench/bench.py wait-ready "$esgate_pid" "$esgate_port" 2 --path /

echo "soak: $REQUESTS requests in batches of $STEP, $CONNS connections; esgate :$esgate_port" \
	"(master $esgate_pid), esdemo :$demo_port" >&2
$PYTHON bench/soak.py run --master "$esgate_pid" --port "$esgate_port" --requests "$REQUESTS" \
	--step "$STEP" --conns "$CONNS" --log "$tmp/esgate.log" --out "$OUT" \
	--command "${SOAK_COMMAND:-bench/soak.sh}" &
child=$!
wait "$child" # in the background, so that a signal stops the run at once
child=""
