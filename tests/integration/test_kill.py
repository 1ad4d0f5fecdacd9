"""kill -9 of a worker: the master replaces it and service continues."""

import os
import signal
import time

from harness import Load, get, pid_alive, wait_for


def test_kill_9_worker_under_load(ctx):
    d, g = ctx.start(workers=2)
    status, _, body = d.get("/")
    assert status == 200
    threads = 8
    old = g.workers()
    assert len(old) == 2, old
    victim = old[0]
    with Load(g.port, threads=threads, expect_body=body) as load:
        load.wait_ok(300)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        g.wait_log(r"\[error\] master\[%d\]: worker (\d+) \(pid %d\) killed by signal 9 \(Killed\)$" % (g.pid, victim))
        wait_for(lambda: not pid_alive(victim), 5, "the killed worker to be reaped")
        ws = g.wait_workers(2, timeout=10, exclude=[victim])
        replacement = (set(ws) - set(old)).pop()
        g.wait_log(r"\[info\] master\[%d\]: worker \d+ \(pid %d\) started, generation 1$" % (g.pid, replacement))
        g.wait_log(r"\[info\] worker \d+\[%d\]: generation 1 serving" % replacement)
        load.wait_ok(500, timeout=10)
        end = time.monotonic()
    assert pid_alive(g.pid) and g.proc.poll() is None, "the master died"
    gap = load.max_gap(killed_at, end)
    assert gap <= 1.0, "no successful request for %.2fs around the kill" % gap
    late = [f for f in load.failures if f[0] > killed_at + 2.0 or f[0] < killed_at]
    assert not late, "failures away from the moment of the kill: %s" % late[:3]
    assert len(load.failures) <= threads, "%d failures (> %d connections): %s" % (
        len(load.failures), threads, load.failures[:3])
    # The killed worker's slot number is the replacement's.
    slot = g.wait_log(r"worker (\d+) \(pid %d\) killed by signal 9" % victim)[0].group(1)
    assert g.count(r"worker %s \(pid %d\) started, generation 1$" % (slot, replacement)) == 1
    # Afterwards: 200 fresh-connection requests, all 200.
    for i in range(200):
        s, _, b = get(g.port, "/")
        assert s == 200 and b == body, (i, s, b[:200])
