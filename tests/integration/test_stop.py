"""Stopping: QUIT drains in-flight requests, TERM stops now, the pidfile."""

import os
import signal
import socket
import threading
import time

from harness import get, make_config, pid_alive, wait_for


def test_quit_finishes_in_flight_request(ctx):
    d, g = ctx.start(esdemo_args=("--latency", "1500"), request_timeout="5s")
    workers = g.workers()
    result = {}

    def slow():
        try:
            result["resp"] = get(g.port, "/", timeout=10)
        except Exception as e:  # noqa: BLE001
            result["error"] = e
        result["t"] = time.monotonic()

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    # In flight: esdemo has it (and sits on it for 1.5 s).
    wait_for(lambda: d.stats()["requests"] >= 1, 5, "the request to reach esdemo")
    quit_at = time.monotonic()
    g.signal(signal.SIGQUIT)
    g.wait_log(r"\[info\] master\[%d\]: graceful stop" % g.pid, timeout=5)
    g.wait_log(r"\[info\] worker \d+\[\d+\]: draining", count=len(workers), timeout=5)
    # Nobody listens any more: a new connection is refused at once.
    try:
        s = socket.create_connection(("127.0.0.1", g.port), timeout=2)
        s.close()
        raise AssertionError("connect() after QUIT succeeded")
    except ConnectionRefusedError:
        pass
    assert t.is_alive(), "the slow request finished before QUIT took effect"
    t.join(10)
    assert "error" not in result, result
    status, _, body = result["resp"]
    assert status == 200, (status, body)
    assert result["t"] > quit_at
    rc = g.wait_exit(10)
    exited_at = time.monotonic()
    assert rc == 0, "master exit status %r after QUIT" % rc
    assert exited_at >= result["t"]
    assert not any(pid_alive(p) for p in workers), workers
    assert "[info] master[%d]: exiting" % g.pid in g.log_text()


def test_term_stops_within_2s(ctx):
    d, g = ctx.start()
    for _ in range(20):
        assert get(g.port, "/")[0] == 200
    workers = g.workers()
    assert len(workers) == 2
    t0 = time.monotonic()
    g.signal(signal.SIGTERM)
    rc = g.wait_exit(2)
    assert rc == 0, "exit status %r %.2fs after TERM" % (rc, time.monotonic() - t0)
    # No orphan: every worker went with the master.
    wait_for(lambda: not any(pid_alive(p) for p in workers), 2,
             "workers %s to be gone" % [p for p in workers if pid_alive(p)])


def test_pidfile(ctx):
    d = ctx.esdemo()
    pidfile = os.path.join(ctx.tmpdir, "esgate.pid")
    g = ctx.esgate(make_config(d.port, extra="pidfile: %s\n" % pidfile))
    with open(pidfile) as f:
        assert f.read().strip() == str(g.pid)
    g.signal(signal.SIGTERM)
    assert g.wait_exit(5) == 0
    assert not os.path.exists(pidfile), "pidfile left behind after exit"
    assert not [f for f in os.listdir(ctx.tmpdir) if f.endswith(".tmp")], os.listdir(ctx.tmpdir)
