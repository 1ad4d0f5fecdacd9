"""TTIN / TTOU change the number of workers until the next reload; INT stops
like TERM; USR1 reopens log.file in the master and in every worker."""

import os
import signal
import time

from harness import Load, fd_links, get, make_config, pid_alive, wait_for


def _wait_gone(pids, timeout=10):
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout,
             "pids %s to exit" % [p for p in pids if pid_alive(p)])


def test_ttin_ttou_change_workers_without_failures(ctx):
    d, g = ctx.start(workers=2)
    status, _, body = d.get("/")
    assert status == 200
    first = g.workers()
    assert len(first) == 2, first
    with Load(g.port, threads=8, expect_body=body) as load:
        load.wait_ok(200)
        g.signal(signal.SIGTTIN)
        g.wait_log(r"\[info\] master\[%d\]: TTIN: 3 worker\(s\)$" % g.pid)
        three = g.wait_workers(3)
        assert set(first) < set(three), (first, three)
        new = (set(three) - set(first)).pop()
        g.wait_log(r"\[info\] master\[%d\]: worker 3 \(pid %d\) started, generation 1$" % (g.pid, new))
        g.wait_log(r"\[info\] worker 3\[%d\]: generation 1 serving" % new)
        load.wait_ok(200)

        g.signal(signal.SIGTTOU)
        g.wait_log(r"\[info\] master\[%d\]: TTOU: 2 worker\(s\)$" % g.pid)
        # The newest slot drains; the others stay.
        g.wait_log(r"\[info\] master\[%d\]: worker 3 \(pid %d\) exited$" % (g.pid, new))
        _wait_gone([new])
        assert sorted(g.wait_workers(2)) == sorted(first)

        g.signal(signal.SIGTTOU)
        g.wait_log(r"\[info\] master\[%d\]: TTOU: 1 worker\(s\)$" % g.pid)
        one = g.wait_workers(1)
        assert one[0] in first, (first, one)
        load.wait_ok(200)
    assert not load.failures, "%d failed request(s) across TTIN/TTOU, first: %s" % (
        len(load.failures), load.failures[:3])
    # No respawn of the retired slots.
    time.sleep(0.5)  # nothing to poll for: the absence of a respawn
    assert len(g.workers()) == 1, g.workers()
    assert g.count(r"worker [23] \(pid \d+\) started") == 2, g.log_text()


def test_ttou_keeps_the_last_worker(ctx):
    d, g = ctx.start(workers=1)
    (only,) = g.workers()
    for n in (1, 2):  # one at a time: pending signals of one kind coalesce
        g.signal(signal.SIGTTOU)
        g.wait_log(r"\[warn\] master\[%d\]: TTOU: keeping the last worker$" % g.pid, count=n)
    assert g.workers() == [only]
    assert pid_alive(only)
    assert g.count(r"TTOU: \d+ worker\(s\)") == 0
    for _ in range(20):
        assert get(g.port, "/")[0] == 200


def test_hup_restores_the_configured_worker_count(ctx):
    d, g = ctx.start(workers=2)
    g.signal(signal.SIGTTIN)
    g.wait_log(r"TTIN: 3 worker\(s\)$")
    g.signal(signal.SIGTTIN)
    g.wait_log(r"TTIN: 4 worker\(s\)$")
    before = g.wait_workers(4)
    g.signal(signal.SIGHUP)
    g.wait_log(r"\[info\] master\[%d\]: configuration OK: starting generation 2 with 2 worker\(s\)$" % g.pid)
    g.wait_log(r"\[info\] master\[%d\]: generation 2 serving; draining 4 old worker\(s\)$" % g.pid, timeout=15)
    after = g.wait_workers(2, timeout=15, exclude=before)
    _wait_gone(before)
    assert len(after) == 2
    # TTOU after the reload counts from the file's number.
    g.signal(signal.SIGTTOU)
    g.wait_log(r"TTOU: 1 worker\(s\)$")
    g.wait_workers(1)
    assert get(g.port, "/")[0] == 200


def test_int_stops_now(ctx):
    d, g = ctx.start()
    workers = g.workers()
    assert get(g.port, "/")[0] == 200
    t0 = time.monotonic()
    g.signal(signal.SIGINT)
    rc = g.wait_exit(3)
    assert rc == 0, "exit status %r %.2fs after INT" % (rc, time.monotonic() - t0)
    _wait_gone(workers, timeout=2)
    assert "[info] master[%d]: exiting" % g.pid in g.log_text()


def test_usr1_reopens_the_log_file(ctx):
    d = ctx.esdemo()
    # Workers run as nobody and reopen the file themselves: its directory
    # must be searchable for them (as /var/log is).
    os.chmod(ctx.tmpdir, 0o755)
    path = os.path.join(ctx.tmpdir, "esgate-file.log")
    rotated = path + ".1"
    text = make_config(d.port, workers=2).replace("log: {level: info}\n", "log: {level: info, file: %s}\n" % path)
    assert path in text
    g = ctx.esgate(text, ready=False)
    g.log_files = [rotated, path]
    g.wait_ready(2)
    pids = [g.pid] + g.workers()
    # Everything went to the file; nothing after the dup2 went to stderr.
    with open(path) as f:
        first = f.read()
    assert "[info] master[%d]: listening on" % g.pid in first, first
    assert first.count("generation 1 serving") == 2, first
    for _ in range(5):
        assert get(g.port, "/")[0] == 200
    os.rename(path, rotated)
    g.signal(signal.SIGUSR1)
    wait_for(lambda: os.path.exists(path), 5, "a new log file at %s" % path)

    def reopened():
        with open(path) as f:
            return "[info] master[%d]: USR1: log file reopened" % g.pid in f.read()

    wait_for(reopened, 5, "the master's USR1 line in the new file")
    # Every process's stderr is the new file (the old one is now at ROTATED).
    wait_for(lambda: all(fd_links(p).get(2) == path for p in pids), 5,
             "stderr of master and workers to be %s; have %s" % (path, {p: fd_links(p).get(2) for p in pids}))
    # Each worker writes to the new file from now on: TERM makes every
    # worker log a line; it must land in the new file.
    g.signal(signal.SIGTERM)
    assert g.wait_exit(10) == 0
    g.exit_checked = True
    with open(path) as f:
        new = f.read()
    with open(rotated) as f:
        old = f.read()
    assert "USR1: log file reopened" not in old, old
    assert "listening on" in old and "listening on" not in new, (old, new)
    for pid in pids[1:]:
        assert "[%d]: " % pid in old, "worker %d logged nothing before USR1:\n%s" % (pid, old)
        assert "[%d]: Terminated: stopping now" % pid in new, "worker %d did not log to the new file:\n%s" % (
            pid, new)
    assert "[info] master[%d]: exiting" % g.pid in new, new
    # stderr (the captured output) got nothing once the file was open.
    with open(g.log_path) as f:
        captured = f.read()
    assert "listening on" not in captured, captured
