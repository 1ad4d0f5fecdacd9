"""Liveness: hung workers (no heartbeat for "timeout") are aborted and
replaced; max_requests retires workers without failing a request; workers
that crash at start are restarted with exponential backoff."""

import os
import re
import signal
import time

from harness import Load, get, make_config, pid_alive, wait_for

# run.py runs these alone: they load the machine or measure time and memory
SERIAL = True


def test_stopped_worker_is_killed_and_replaced(ctx):
    d, g = ctx.start(workers=2, extra="timeout: 2s\n")
    old = g.workers()
    assert len(old) == 2, old
    victim, other = old
    os.kill(victim, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        m = g.wait_log(r"\[error\] master\[%d\]: worker (\d+) \(pid %d\) timed out: no heartbeat for (\d+) ms; "
                       r"SIGABRT$" % (g.pid, victim), timeout=5)
        slot, silence = int(m[0].group(1)), int(m[0].group(2))
        detected = time.monotonic() - stopped_at
        assert 2000 <= silence <= 4000, "silence %d ms (timeout 2 s)" % silence
        assert detected >= 1.0, "timed out %.2fs after SIGSTOP, before the 2 s timeout could pass" % detected
        # A replacement at once, in the same slot.
        m = g.wait_log(r"\[info\] master\[%d\]: worker %d \(pid (\d+)\) started, generation 1$" % (g.pid, slot),
                       count=2, timeout=5)
        repl = int(m[1].group(1))
        assert repl not in old
        g.wait_log(r"\[info\] worker %d\[%d\]: generation 1 serving" % (slot, repl), timeout=5)
        # The stopped one cannot act on SIGABRT: SIGKILL 2 s later.
        wait_for(lambda: not pid_alive(victim), 5, "the stopped worker %d to be killed" % victim)
        elapsed = time.monotonic() - stopped_at
        assert elapsed <= 5.0, "the hung worker was gone only %.2fs after SIGSTOP" % elapsed
    finally:
        if pid_alive(victim):
            os.kill(victim, signal.SIGCONT)
    g.wait_log(r"\[warn\] master\[%d\]: worker %d \(pid %d\) killed by signal 9 \(Killed\) after its deadline$"
               % (g.pid, slot, victim), timeout=3)
    assert sorted(g.wait_workers(2, exclude=[victim])) == sorted([other, repl])
    assert pid_alive(other)
    for _ in range(50):
        assert get(g.port, "/", timeout=5)[0] == 200
    # The healthy worker was never accused.
    assert g.count(r"\(pid %d\) timed out" % other) == 0
    assert g.count(r"timed out: no heartbeat") == 1, g.log_text()


def test_healthy_idle_workers_are_not_timed_out(ctx):
    # timeout 1s: heartbeats every 250 ms keep idle workers alive.
    d, g = ctx.start(workers=2, extra="timeout: 1s\n")
    old = g.workers()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:  # 3 s of idleness, checked as we go
        assert g.count(r"timed out") == 0, g.log_text()
        assert sorted(g.workers()) == sorted(old)
        time.sleep(0.1)
    assert get(g.port, "/")[0] == 200


def test_max_requests_retires_workers_without_failures(ctx):
    max_requests, jitter, threads = 200, 50, 8
    d, g = ctx.start(workers=2, extra="max_requests: %d\nmax_requests_jitter: %d\n" % (max_requests, jitter))
    status, _, body = d.get("/")
    assert status == 200
    first = g.workers()
    with Load(g.port, threads=threads, expect_body=body) as load:
        # Each worker serves at most max + jitter: 2000 requests need >= 6 retirements.
        load.wait_ok(2000, timeout=20)
        g.wait_log(r"\[info\] master\[%d\]: worker \d+ \(pid \d+\) retiring \(max_requests\); "
                   r"starting its replacement$" % g.pid, count=4, timeout=10)
    assert not load.failures, "%d failed request(s) across max_requests retirements, first: %s" % (
        len(load.failures), load.failures[:3])
    text = g.log_text()
    served = [(int(m.group(1)), int(m.group(2))) for m in re.finditer(
        r"\[info\] worker \d+\[(\d+)\]: served (\d+) requests \(max_requests\): retiring$", text, re.M)]
    assert len(served) >= 4, text
    for pid, n in served:
        assert max_requests <= n <= max_requests + jitter + threads, "worker %d served %d" % (pid, n)
        assert g.count(r"\(pid %d\) retiring \(max_requests\)" % pid) == 1
    # Different counts: the jitter is per worker (all equal would be a 1 in 51^k chance).
    assert len({n for _, n in served}) > 1, served
    for pid in first:
        g.wait_log(r"\[info\] master\[%d\]: worker \d+ \(pid %d\) exited$" % (g.pid, pid))
    retired = [pid for pid, _ in served]
    wait_for(lambda: not any(pid_alive(p) for p in retired), 10, "retired workers to exit")
    ws = g.wait_workers(2, timeout=10)
    assert not set(ws) & set(first), (first, ws)
    assert g.count(r"killed by signal|exited with status|died") == 0, text


def test_crash_loop_backs_off(ctx):
    # Workers resolve upstream host names at start: this one never resolves.
    text = make_config(nodes=["http://esgate-no-such-host.invalid:80"], workers=2)
    g = ctx.esgate(text, ready=False)
    g.allowed_markers = ("[crit]",)
    g.wait_log(r"\[info\] master\[%d\]: listening on 127\.0\.0\.1:(\d+)$" % g.pid)
    t0 = time.monotonic()
    g.wait_log(r"cannot create the upstream client", timeout=5)
    g.wait_log(r"\[error\] master\[%d\]: worker 1 died while starting 3 time\(s\) in a row; next start in 400 ms$"
               % g.pid, timeout=5)
    while time.monotonic() - t0 < 6.0:  # observe ~6 s of crash loop, failing early if the master dies
        assert g.proc.poll() is None, "the master exited (%s)" % g.proc.returncode
        time.sleep(0.1)
    assert pid_alive(g.pid)
    log = g.log_text()
    for slot in (1, 2):
        starts = len(re.findall(r"master\[\d+\]: worker %d \(pid \d+\) started" % slot, log))
        assert 3 <= starts <= 8, "slot %d started %d times in ~6 s:\n%s" % (slot, starts, log)
        delays = [int(x) for x in re.findall(
            r"\[error\] master\[\d+\]: worker %d died while starting \d+ time\(s\) in a row; next start in (\d+) ms"
            % slot, log)]
        assert delays == [100 * 2 ** i for i in range(len(delays))], "slot %d delays %s" % (slot, delays)
        counts = [int(x) for x in re.findall(r"worker %d died while starting (\d+) time" % slot, log)]
        assert counts == list(range(1, len(counts) + 1)), counts
    # The master still works: a HUP with a good upstream starts a generation that serves.
    d = ctx.esdemo()
    g.write_config(make_config(d.port, workers=2))
    g.signal(signal.SIGHUP)
    g.wait_log(r"\[info\] master\[%d\]: configuration OK: starting generation 2 with 2 worker\(s\)$" % g.pid)
    g.wait_log(r"\[info\] worker \d+\[\d+\]: generation 2 serving", count=2, timeout=10)
    port = int(g.wait_log(r"master\[%d\]: listening on 127\.0\.0\.1:(\d+)$" % g.pid)[0].group(1))
    wait_for(lambda: get(port, "/healthz", timeout=2)[0] == 200, 10, "GET /healthz 200 after the fix")
    assert get(port, "/")[0] == 200
    g.wait_workers(2)
    # TERM stops it cleanly (teardown checks exit 0).
