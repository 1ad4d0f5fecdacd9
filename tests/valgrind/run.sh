#!/bin/sh
# tests/valgrind/run.sh - esgate's master and workers under valgrind's
# memcheck, through a selection of the integration tests.
#
#     tests/valgrind/run.sh [FILTER...]        (make check-valgrind)
#
# Builds an -O1 -g esgate into $VALGRIND_BUILD (default build/valgrind), runs
# tests/integration/run.py with ESGATE_WRAP=valgrind ... (every esgate the
# harness starts, and the workers it forks, run under memcheck, one log per
# process) and ESGATE_TIME_SCALE (default 5: every harness timeout x 5), then
# reads the logs.  Fails if a test failed, or a log has errors (ERROR SUMMARY
# not 0: invalid reads/writes, uninitialised values, bad frees...) or a
# definite leak.  A log without a summary (a process killed by SIGKILL) is
# only listed.  FILTER: run.py filters instead of the default selection (about
# 3 minutes), which leaves out the 10,000-request tests (too slow), the ones
# that measure worker RSS (valgrind's own memory counts), the long reload
# soak of test_reload_http2, and test_nodes (its upstream timeouts of a
# second or less are part of what it tests, and valgrind's slowdown trips
# them: ESGATE_TIME_SCALE stretches the harness, not esgate's config); of
# test_cache, the tests without a 1 s TTL or an RSS bound (the same reasons).
# Logs are kept on failure.

set -eu
cd "$(dirname "$0")/../.."

BUILD=${VALGRIND_BUILD:-build/valgrind}
MAKE=${MAKE:-make}
PYTHON=${PYTHON:-/usr/bin/python3}
SCALE=${ESGATE_TIME_SCALE:-5}

if [ $# -gt 0 ]; then
	TESTS="$*"
else
	TESTS="test_errors. test_keepalive.test_1000_requests test_keepalive.test_head test_keepalive.test_pipelining
test_keepalive.test_new_connection test_reload.test_hup_2_to_4 test_reload.test_hup_with_unknown_key
test_reload.test_five_hups test_stop. test_routes. test_streaming.test_client_gone_mid_body
test_streaming.test_upstream_dying test_streaming.test_gzip test_streaming.test_no_gzip test_signals.
test_kill. test_upgrade. test_metrics. test_access_log. test_auth. test_sniff. test_http2.test_nghttp
test_http2.test_curl test_http2.test_answer_heads test_liveness. test_upstream_client. test_pipelining. test_client_gone. test_epoll. test_redis.test_redis_killed_fail_closed
test_redis.test_redis_reload_moves_workers test_dls.test_each_tenant_sees_only_its_own_documents
test_dls.test_one_connection_changing_tenants_gets_each_ones_filter
test_client_auth.test_refusals_are_401_and_never_reach_the_upstream
test_client_auth.test_api_key_and_jwt_accepted_credentials_never_forwarded test_tls.test_curl test_tls.test_python
test_tls.test_sni test_tls.test_renegotiation test_tls.test_silent test_tls.test_metrics test_tls_mtls.
test_tls.test_a_small test_tls_tickets.test_twenty test_tls_tickets.test_each test_tls_tickets.test_tls13 test_tls_reload.test_key test_limits.test_head_over test_limits.test_hpack
test_limits.test_h2_header test_limits.test_connections_per test_limits.test_max_connections
test_limits.test_limits_over_tls test_h2body.test_h2_body_buffer_small test_h2body.test_h2_bodies_are test_h2body.test_h2_body_past test_hostile.test_refusals test_hostile.test_host test_cache.test_a_hit_is_the_miss_with_age
test_cache.test_clients_leaving_do_not_cancel_the_shared_request test_cache.test_metrics_count_exactly
test_accept_balance.test_a_burst test_accept_balance.test_ttou test_drain_idle."
fi

command -v valgrind >/dev/null || { echo "valgrind is not installed (make check-valgrind installs it)"; exit 1; }
$MAKE --no-print-directory BUILD="$BUILD" SANITIZE= CFLAGS=-O1 "$BUILD/esgate" "$BUILD/esdemo"

logs=$(mktemp -d /tmp/esgate-valgrind-XXXXXX)
chmod 755 "$logs"
# --vgdb=no: workers drop to another user and could not remove the vgdb pipes.
wrap="valgrind --trace-children=yes --vgdb=no --leak-check=full --errors-for-leak-kinds=definite"
wrap="$wrap --error-exitcode=99 --num-callers=30 --log-file=$logs/vg.%p.log"

start=$(date +%s)
rc=0
# shellcheck disable=SC2086 # TESTS is a list of words
ESGATE_BUILD=$BUILD ESGATE_WRAP=$wrap ESGATE_TIME_SCALE=$SCALE $PYTHON tests/integration/run.py $TESTS || rc=$?

# One line per log: pid, role, errors, bytes definitely lost (- : no summary).
nlogs=0 nbad=0 nincomplete=0
for f in "$logs"/vg.*.log; do
	[ -e "$f" ] || continue
	nlogs=$((nlogs + 1))
	pid=${f##*/vg.}; pid=${pid%.log}
	errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -n 1)
	lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | tail -n 1)
	if grep -q "All heap blocks were freed" "$f"; then lost=0; fi
	# The master's parent is run.py; a worker's is the master (also under valgrind).
	ppid=$(sed -n 's/.*Parent PID: \([0-9]*\).*/\1/p' "$f" | head -n 1)
	if [ -n "$ppid" ] && [ -e "$logs/vg.$ppid.log" ]; then role=worker; else role=master; fi
	if [ -z "$errors" ]; then
		nincomplete=$((nincomplete + 1))
		echo "valgrind: $role $pid: no summary (killed?): $f"
		continue
	fi
	if [ "$errors" != 0 ] || [ "${lost:-0}" != 0 ]; then
		nbad=$((nbad + 1))
		echo "valgrind: $role $pid: $errors error(s), ${lost:-0} bytes definitely lost: $f"
		sed -n '/^==[0-9]*== Command:/p; /^==[0-9]*== \(Invalid\|Conditional\|Use of uninit\|Syscall param\|Mismatched\|Source and destination\|Argument\|[0-9,]* bytes in [0-9,]* blocks are definitely\)/,/^==[0-9]*== $/p' "$f" | head -n 200
	fi
done

echo "valgrind: $nlogs process log(s), $nbad with errors or definite leaks, $nincomplete without a summary;" \
	"tests exit $rc; $(($(date +%s) - start)) s; logs in $logs"
if [ "$rc" != 0 ] || [ "$nbad" != 0 ] || [ "$nlogs" = 0 ]; then
	exit 1
fi
rm -rf "$logs"
echo "valgrind OK"
