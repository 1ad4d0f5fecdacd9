#!/bin/bash
# bench/run.sh - esgate against nginx as a reverse proxy, and each row against
# its strongest peer (HAProxy, nghttpx, h2o, Varnish: issue 21), same
# upstream, same worker or thread count, in one run of interleaved rounds;
# a route with a Redis-backed rate_limit (set high, issue 18) against the
# same route without one, when redis-server is there; then system calls
# per request (a short strace run of each) and the
# cost-growth table; writes bench/RESULTS.md.  `make bench` runs it (after
# installing what DEB_BENCH lists if missing).
#
# Knobs (environment): BENCH_SECONDS (5) per load, BENCH_ROUNDS (5: the
# median of 5 interleaved rounds is what a verdict reads; 3 let one busy
# round of the shared machine decide a row),
# BENCH_IDLE_CONNS (10000), BENCH_OUT (bench/RESULTS.md), BUILD (build),
# PYTHON (/usr/bin/python3), BENCH_RAW_DIR (keep the raw JSON there),
# BENCH_SYSCALL_SECONDS (2) per strace run, BENCH_GROWTH_SECONDS
# (BENCH_SECONDS) per growth point.  A smoke test of the scripts:
# BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_IDLE_CONNS=300 BENCH_OUT=/tmp/x.md.
#
# BENCH_VS=OTHER/esgate: instead, this build's esgate against another
# esgate binary (an older commit built elsewhere), same configuration,
# same upstream, in BENCH_ROUNDS interleaved rounds of the BENCH_VS_LOADS
# (h1-ka-c64,h2-c16-m10); prints req/s and CPU per request of each and the
# ratios this/other, median (min-max) over the rounds; BENCH_VS_TOGETHER=1
# loads both at the same time instead (each with its own load generator),
# so that a busy machine's noise falls on both alike.  RESULTS.md is left
# alone; BENCH_VS_OUT=FILE writes the table there, with the machine, the
# date and the commands.  E.g.: BENCH_VS=/tmp/old/build/esgate
# BENCH_ROUNDS=8 bench/run.sh
#
# BENCH_PIPELINE_DEPTH (8): upstream.pipeline_depth of every esgate started
# here (README, "Pipelining to the nodes"); set it empty to leave the key
# out (an esgate older than the key refuses it: BENCH_VS against such a
# binary).  BENCH_VS_OTHER_DEPTH, if set, is the other esgate's instead
# (e.g. BENCH_VS=build/esgate BENCH_VS_OTHER_DEPTH=1: this build with and
# without pipelining).
#
# Every process started here is stopped on exit (trap), by its pid.
set -eu
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
SECONDS_PER_LOAD=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-5}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
OUT=${BENCH_OUT:-bench/RESULTS.md}
PIPELINE_DEPTH=${BENCH_PIPELINE_DEPTH-8}
BENCH="$PYTHON bench/bench.py"
start_time=$(date +%s)

die() { echo "bench: $*" >&2; exit 1; }
for t in nginx wrk h2load "$BUILD/esgate" "$BUILD/esdemo" "$PYTHON"; do
	command -v "$t" >/dev/null || die "$t not found (make bench-deps all)"
done

# 10,000 idle connections: the client script and esgate's workers each need
# that many descriptors.  Raise the soft limit as far as the hard one allows.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((IDLE_CONNS + 200)) ] || die "open files limit $(ulimit -n) too low for $IDLE_CONNS connections"

tmp=$(mktemp -d /tmp/esgate-bench.XXXXXX)
chmod 755 "$tmp" # nginx's workers (nobody) may need their temp dirs
pids=""
child="" # the load-running python, while it runs
cleanup() {
	rc=$?
	if [ -n "$child" ]; then
		pkill -TERM -P "$child" 2>/dev/null || true # its wrk or h2load
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
		for f in "$tmp"/esgate*.log "$tmp"/idle.log "$tmp"/*/error.log; do
			[ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
		done
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# Long commands run in the background and are waited for, so that a signal
# stops the run at once (bash runs traps only between foreground commands).
fg() {
	"$@" &
	child=$!
	wait "$child"
	child=""
}

# ---- the upstream's answer: the bytes esdemo sends for GET / ---------------
"$BUILD/esdemo" --port 0 >"$tmp/esdemo.out" 2>"$tmp/esdemo.log" &
esdemo=$!
pids="$pids $esdemo"
for _ in $(seq 100); do grep -q 'listening on' "$tmp/esdemo.out" && break; sleep 0.05; done
demo_port=$(sed -n 's/^esdemo listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/esdemo.out" | head -n 1)
[ -n "$demo_port" ] || die "esdemo did not start"
ctype=$($BENCH fetch "http://127.0.0.1:$demo_port/" "$tmp/body.json")
kill "$esdemo"; wait "$esdemo" 2>/dev/null || true
pids=${pids/ $esdemo/} # gone: its pid must not be signalled again

# ---- nginx: the upstream (the "cluster") and the contender ------------------
read -r up_port px_port px_h2port px_cport <<<"$($BENCH freeports 4)"
start_nginx() { # NAME: PREFIX=$tmp/NAME holds nginx.conf
	"$(command -v nginx)" -p "$tmp/$1" -c "$tmp/$1/nginx.conf" -e "$tmp/$1/error.log" -g 'daemon off;' \
		>"$tmp/$1.log" 2>&1 &
	pids="$pids $!"
	eval "${1}_pid=$!"
}
mkdir -p "$tmp/upstream" "$tmp/proxy"
$BENCH nginx-upstream "$tmp/upstream" "$up_port" "$tmp/body.json" "$ctype"
$BENCH nginx-proxy "$tmp/proxy" "$px_port" "$px_h2port" "$up_port" "$px_cport"
nginx -t -q -p "$tmp/upstream" -c "$tmp/upstream/nginx.conf" -e "$tmp/upstream/error.log"
nginx -t -q -p "$tmp/proxy" -c "$tmp/proxy/nginx.conf" -e "$tmp/proxy/error.log"
start_nginx upstream
$BENCH wait-ready "$upstream_pid" "$up_port" 2 --path /
if [ -z "${BENCH_VS:-}" ] && [ -z "${BENCH_AUTH_ONLY:-}" ]; then # else the contender is another esgate, or none
	start_nginx proxy
	$BENCH wait-ready "$proxy_pid" "$px_port" 2 --path /
fi

# ---- the strongest peer of each row (issue 21), each from its Debian package,
# 2 threads or workers: HAProxy 2.6 (HTTP/1.1, and h2c on a second port),
# nghttpx and h2o standalone (HTTP/2), Varnish (the micro-cache).  A peer
# whose package is missing is left out (make bench-deps installs them all).
peer_args=""
syscall_targets=""
if [ -z "${BENCH_VS:-}" ]; then
	read -r ha_port ha_h2port nx_port h2o_port vc_port <<<"$($BENCH freeports 5)"
	start_peer() { # NAME COMMAND...: NAME_pid
		local name=$1
		shift
		"$@" >"$tmp/$name.log" 2>&1 &
		pids="$pids $!"
		eval "${name}_pid=$!"
	}
	for d in haproxy nghttpx h2o varnish; do mkdir -p "$tmp/$d" && chmod 755 "$tmp/$d"; done
	if command -v haproxy >/dev/null; then
		$BENCH haproxy-conf "$tmp/haproxy" "$ha_port" "$ha_h2port" "$up_port"
		start_peer haproxy haproxy -db -f "$tmp/haproxy/haproxy.cfg"
		$BENCH wait-ready "$haproxy_pid" "$ha_port" 0 --path /
		peer_args="$peer_args --peer haproxy:$haproxy_pid:$ha_port:$ha_h2port"
		syscall_targets="$syscall_targets --target haproxy=$haproxy_pid:$ha_port:$ha_h2port"
	fi
	if command -v nghttpx >/dev/null; then
		mapfile -t nx_argv < <($BENCH nghttpx-args "$tmp/nghttpx" "$nx_port" "$up_port")
		start_peer nghttpx "${nx_argv[@]}"
		$BENCH wait-ready "$nghttpx_pid" "$nx_port" 1 --path /
		peer_args="$peer_args --peer nghttpx:$nghttpx_pid:$nx_port"
		syscall_targets="$syscall_targets --target nghttpx=$nghttpx_pid:$nx_port"
	fi
	if command -v h2o >/dev/null; then
		$BENCH h2o-conf "$tmp/h2o" "$h2o_port" "$up_port"
		start_peer h2o h2o -c "$tmp/h2o/h2o.conf"
		$BENCH wait-ready "$h2o_pid" "$h2o_port" 0 --path /
		peer_args="$peer_args --peer h2o:$h2o_pid:$h2o_port"
		syscall_targets="$syscall_targets --target h2o=$h2o_pid:$h2o_port"
	fi
	if command -v varnishd >/dev/null; then
		$BENCH varnish-vcl "$tmp/varnish" "$up_port"
		# -t 1: a 1 s TTL; no grace, no keep (default_grace/default_keep and the VCL)
		start_peer varnish varnishd -F -j none -a "127.0.0.1:$vc_port" -f "$tmp/varnish/default.vcl" \
			-n "$tmp/varnish/work" -t 1 -p default_grace=0 -p default_keep=0 -p thread_pools=2 -s malloc,64m
		$BENCH wait-ready "$varnish_pid" "$vc_port" 1 --path /
		peer_args="$peer_args --peer varnish:$varnish_pid:$vc_port"
	fi
fi

# ---- esgate: 2 workers (the contender), 1 worker (scaling), and a fresh one
# for the idle connections (long keepalive_timeout, so none is closed while
# they are counted).

start_esgate() { # NAME WORKERS KEEPALIVE [EXTRA-YAML-LINE] [BINARY] [PIPELINE-DEPTH]
	local depth=${6-$PIPELINE_DEPTH}
	{
		[ -n "${4:-}" ] && echo "$4"
		echo "listen: [127.0.0.1:0]"
		echo "workers: $2"
		echo "keepalive_timeout: $3"
		echo "log: {level: warn}"
		echo "upstream:"
		echo "  nodes: [http://127.0.0.1:$up_port]"
		if [ -n "$depth" ]; then echo "  pipeline_depth: $depth"; fi
		if [ "$(id -u)" = 0 ]; then echo "user: nobody"; fi
	} >"$tmp/$1.yaml"
	"${5:-$BUILD/esgate}" -c "$tmp/$1.yaml" >"$tmp/$1.log" 2>&1 &
	pids="$pids $!"
	eval "${1}_pid=$!"
	eval "${1}_port=$($BENCH listenport $!)"
	eval "$BENCH wait-ready \$${1}_pid \$${1}_port $2"
}
if [ -n "${BENCH_VS:-}" ]; then
	[ -x "$BENCH_VS" ] || die "BENCH_VS=$BENCH_VS is not an executable"
	start_esgate esgate 2 10s
	start_esgate other 2 10s "" "$BENCH_VS" "${BENCH_VS_OTHER_DEPTH-$PIPELINE_DEPTH}"
	echo "bench: this esgate ($BUILD/esgate) against $BENCH_VS, ${ROUNDS} rounds of ${SECONDS_PER_LOAD}s" >&2
	fg $BENCH vs --a "$other_pid:$other_port" --a-name other --b "$esgate_pid:$esgate_port" --b-name this \
		--upstream "$upstream_pid:$up_port" --loads "${BENCH_VS_LOADS:-h1-ka-c64,h2-c16-m10}" \
		--seconds "$SECONDS_PER_LOAD" --rounds "$ROUNDS" --workdir "$tmp" --out "$tmp/vs.json" \
		${BENCH_VS_TOGETHER:+--together} >"$tmp/vs.md"
	cat "$tmp/vs.md"
	if [ -n "${BENCH_VS_OUT:-}" ]; then
		{
			echo "# esgate against another build of esgate"
			echo
			echo "Written by \`bench/run.sh\` with BENCH_VS; \"this\" is $("$BUILD/esgate" -v | head -n 1) built from"
			echo "$(git describe --always --dirty 2>/dev/null || echo "this tree"), \"other\" is $BENCH_VS."
			echo
			echo "- **Date**: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
			echo "- **Loads**: ${ROUNDS} rounds of ${SECONDS_PER_LOAD} s each, $([ -n "${BENCH_VS_TOGETHER:-}" ] && echo "both contenders loaded at the same time" || echo "the contenders in turn, A B then B A"); nginx (2 workers) as the upstream, 2 esgate workers each"
			echo "- **Ratios** are this/other within each round: median (min-max)."
			echo
			cat "$tmp/vs.md"
		} >"$BENCH_VS_OUT"
	fi
	for f in "$tmp"/esgate.log "$tmp"/other.log; do
		[ -s "$f" ] && { echo "== $f" >&2; head -n 20 "$f" >&2; }
	done
	[ -n "${BENCH_RAW_DIR:-}" ] && mkdir -p "$BENCH_RAW_DIR" && cp "$tmp/vs.json" "$BENCH_RAW_DIR/"
	exit 0
fi
# client authentication: one esgate, the cluster info on three routes
$BENCH auth-config "$tmp"
# shellcheck disable=SC1091
. "$tmp/auth.env"
run_auth() { # the rows, into $tmp/auth.md
	start_esgate esgate_auth 2 10s "$(cat "$tmp/auth.yaml")"
	echo "bench: client authentication, ${ROUNDS} rounds of ${SECONDS_PER_LOAD}s, esgate :$esgate_auth_port" >&2
	fg $BENCH auth --esgate "$esgate_auth_pid:$esgate_auth_port" --upstream "$upstream_pid:$up_port" \
		--apikey "$APIKEY" --bearer "$BEARER" --seconds "$SECONDS_PER_LOAD" --rounds "$ROUNDS" \
		--workdir "$tmp" --out "$tmp/auth.json" >"$tmp/auth.md"
	[ -s "$tmp/esgate_auth.log" ] && { echo "== esgate_auth.log" >&2; head -n 20 "$tmp/esgate_auth.log" >&2; }
	return 0
}
if [ -n "${BENCH_AUTH_ONLY:-}" ]; then
	run_auth
	cat "$tmp/auth.md"
	[ -n "${BENCH_AUTH_OUT:-}" ] && cp "$tmp/auth.md" "$BENCH_AUTH_OUT"
	exit 0
fi

start_esgate esgate 2 10s
start_esgate esgate1 1 10s
# (past the default limits.max_connections of 4,096 a worker: the idle row holds 10,000)
start_esgate idle 2 300s "limits: {max_connections: 32768}"
# the cached scenario: GET / (cluster_info) with a 1 s micro-cache, which
# implies coalescing
start_esgate esgate_cache 2 10s "cluster_info: {cache_ttl: 1s}"
$BENCH wait-ready "$proxy_pid" "$px_cport" 2 --path /
# the Redis-backed limit: rate_limit in Redis, set high enough never to
# refuse, on /limited, against /plain, the same route without a limit
rl_args=()
if command -v redis-server >/dev/null; then
	read -r redis_port <<<"$($BENCH freeports 1)"
	redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
		>"$tmp/redis.log" 2>&1 &
	pids="$pids $!"
	for _ in $(seq 100); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
	start_esgate esgate_rl 2 10s "rate_limit: {redis: {address: \"127.0.0.1:$redis_port\"}}
routes:
  - {path: /plain, methods: [GET], upstream: {method: GET, path: /}}
  - {path: /limited, methods: [GET], upstream: {method: GET, path: /}, rate_limit: {rate: 1000000/s}}"
	rl_args=(--esgate-rl "$esgate_rl_pid:$esgate_rl_port")
else
	echo "bench: redis-server not found: no Redis-backed limit row (make bench-deps)" >&2
fi

# ---- run ----------------------------------------------------------------------
echo "bench: ${ROUNDS} rounds of ${SECONDS_PER_LOAD}s loads; upstream :$up_port, nginx :$px_port (h2 :$px_h2port)," \
	"esgate :$esgate_port, esgate 1 worker :$esgate1_port" >&2
fg $BENCH run --esgate "$esgate_pid:$esgate_port" --esgate1 "$esgate1_pid:$esgate1_port" \
	--nginx "$proxy_pid:$px_port:$px_h2port:$px_cport" --upstream "$upstream_pid:$up_port" \
	--esgate-cache "$esgate_cache_pid:$esgate_cache_port" "${rl_args[@]}" $peer_args \
	--seconds "$SECONDS_PER_LOAD" --rounds "$ROUNDS" --workdir "$tmp" --out "$tmp/raw.json"
# System calls per request: a short separate run of each contender under
# strace (it slows what it traces several times over: never during the
# timed runs).
# shellcheck disable=SC2086 # lists of words
fg $BENCH syscalls --target "esgate=$esgate_pid:$esgate_port" --target "nginx=$proxy_pid:$px_port:$px_h2port" \
	$syscall_targets --loads h1-ka-c64,h1-close-c64,h2-c16-m10 --seconds "${BENCH_SYSCALL_SECONDS:-2}" \
	--workdir "$tmp" --out "$tmp/syscalls.json"
# The cost-growth table: esgate alone, one dimension at a time.
fg $BENCH growth --esgate "$BUILD/esgate" --upstream "$up_port" --upstream-root "$tmp/upstream" \
	--seconds "${BENCH_GROWTH_SECONDS:-$SECONDS_PER_LOAD}" --idle "$IDLE_CONNS" --workdir "$tmp" \
	--pipeline-depth "$PIPELINE_DEPTH" --out "$tmp/growth.json"
fg $BENCH idle --pid "$idle_pid" --port "$idle_port" --n "$IDLE_CONNS" --out "$tmp/idle.json"
run_auth
# HTTPS (issue 15): esgate, nginx and HAProxy terminating TLS, its own
# upstream and processes (bench/tls.py; `make bench-tls` runs it alone).
tls_ok=1
fg $PYTHON bench/tls.py --build "$BUILD" --seconds "$SECONDS_PER_LOAD" --rounds "$ROUNDS" --out "$tmp/tls.md" \
	>/dev/null || { tls_ok=0; echo "bench: the TLS rows failed (bench/tls.py)" >&2; }

# Anything worrying in the servers' logs (esgate at warn, nginx at warn)?
for f in "$tmp"/esgate.log "$tmp"/esgate1.log "$tmp"/esgate_cache.log "$tmp"/esgate_rl.log "$tmp"/idle.log "$tmp"/upstream/error.log "$tmp"/proxy/error.log; do
	[ -s "$f" ] && { echo "== $(basename "$(dirname "$f")")/$(basename "$f")"; head -n 20 "$f"; }
done >"$tmp/serverlogs.txt" 2>/dev/null || true

{
	echo "command=${BENCH_COMMAND:-bench/run.sh} (BENCH_SECONDS=$SECONDS_PER_LOAD BENCH_ROUNDS=$ROUNDS BENCH_IDLE_CONNS=$IDLE_CONNS)"
	echo "elapsed=$(($(date +%s) - start_time))"
	echo "commit=$(git describe --always --dirty 2>/dev/null || echo "not a git checkout")"
	echo "nofile=$(ulimit -n)"
	echo "esgate_version<<EOF"; "$BUILD/esgate" -v; echo "EOF"
	echo "nginx_version=$(nginx -v 2>&1)"
	echo "haproxy_version=$(haproxy -v 2>/dev/null | head -n 1)"
	echo "nghttpx_version=$(nghttpx --version 2>/dev/null | head -n 1)"
	echo "h2o_version=$(h2o --version 2>/dev/null | head -n 1)"
	echo "varnish_version=$(varnishd -V 2>&1 | head -n 1)"
	echo "wrk_version=$(wrk -v 2>&1 | head -n 1)"
	echo "h2load_version=$(h2load --version)"
	echo "python_version=$($PYTHON --version 2>&1)"
} >"$tmp/meta.txt"
if [ -n "${BENCH_RAW_DIR:-}" ]; then # keep the raw data (developing report.py)
	mkdir -p "$BENCH_RAW_DIR"
	cp "$tmp"/raw.json "$tmp"/idle.json "$tmp"/syscalls.json "$tmp"/growth.json "$tmp"/meta.txt "$tmp"/serverlogs.txt "$tmp"/esgate.yaml \
		"$tmp"/esgate_cache.yaml "$BENCH_RAW_DIR"/
	cp "$tmp"/proxy/nginx.conf "$BENCH_RAW_DIR"/proxy.conf
	cp "$tmp"/upstream/nginx.conf "$BENCH_RAW_DIR"/upstream.conf
fi
$PYTHON bench/report.py --raw "$tmp/raw.json" --idle "$tmp/idle.json" --meta "$tmp/meta.txt" \
	--syscalls "$tmp/syscalls.json" --growth "$tmp/growth.json" \
	--nginx-conf "$tmp/proxy/nginx.conf" --upstream-conf "$tmp/upstream/nginx.conf" \
	--esgate-conf "$tmp/esgate.yaml" --esgate-cache-conf "$tmp/esgate_cache.yaml" --serverlogs "$tmp/serverlogs.txt" >"$OUT.tmp"
{
	echo
	echo "## Client authentication"
	echo
	echo "The same route to the cluster info (\`GET /\` upstream) on one esgate (2 workers), without an"
	echo "\`auth\` rule, with \`auth: {schemes: [api_key]}\` and with \`auth: {schemes: [jwt]}\` (HS256;"
	echo "the worker's caches of verified credentials answer after a key's or token's first request),"
	echo "in ${ROUNDS} interleaved rounds of ${SECONDS_PER_LOAD} s; ratios to the route without auth within each"
	echo "round, median (min-max).  The issue's bar: each auth row at least 0.95 of the row without."
	echo "Counted per request (\`bench/costs.py instructions --load auth-none|auth-key|auth-jwt\`, one"
	echo "worker, callgrind, main 41a166f of 2026-12-07): about 9,400 user-space instructions without auth,"
	echo "10,800 with an API key, 11,000 with a cached JWT (on 2026-12-06, before the caches of verified"
	echo "credentials, the connection's memo and esgate's reading of plain request heads: 16,061, 25,440"
	echo "and 28,765); what an authenticated request still costs more is mostly the auth stage (about 750"
	echo "with its callees) and libh2o's handling of one more header (about 400); 5.0 system calls each."
	echo "bench/PROFILE.md has where it goes."
	echo
	cat "$tmp/auth.md"
	if [ "$tls_ok" = 1 ]; then
		echo
		sed '1s/^# /## /' "$tmp/tls.md"
	fi
} >>"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "bench: wrote $OUT in $(($(date +%s) - start_time))s" >&2
