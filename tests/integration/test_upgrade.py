"""USR2: binary upgrade.  The master execs its binary again, handing over the
listening sockets; the new master's workers serve, then the old master
drains and exits.  A new binary that fails to start changes nothing."""

import os
import re
import signal

from harness import ESGATE, Load, children, get, make_config, pid_alive, wait_for


def _read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def _start_upgrade(ctx, g):
    """Sends USR2; returns the new master's pid (owned by ctx for teardown)."""
    regex = r"\[info\] master\[%d\]: USR2: started the new binary (.+) as pid (\d+)$" % g.pid
    before = g.count(regex)
    g.signal(signal.SIGUSR2)
    # The whole upgrade may be over (old master gone) by the time we look.
    m = g.wait_log(regex, count=before + 1, alive=False)
    exe, new = m[-1].group(1), int(m[-1].group(2))
    ctx.own_pid(new)
    assert exe == os.path.realpath(ESGATE), (exe, ESGATE)
    return new


def test_usr2_upgrade_under_load_loses_nothing(ctx):
    d = ctx.esdemo()
    pidfile = os.path.join(ctx.tmpdir, "esgate.pid")
    g = ctx.esgate(make_config(d.port, workers=2, extra="pidfile: %s\n" % pidfile))
    assert _read_pid(pidfile) == g.pid
    status, _, body = d.get("/")
    assert status == 200
    old_workers = g.workers()
    assert len(old_workers) == 2, old_workers
    with Load(g.port, threads=8, expect_body=body) as load:
        load.wait_ok(300)
        new = _start_upgrade(ctx, g)
        m = g.wait_log(r"\[info\] master\[%d\]: inherited 127\.0\.0\.1:%d \(fd (\d+)\) from the old master$"
                       % (new, g.port), alive=False)
        fd = int(m[0].group(1))
        g.wait_log(r"\[info\] master\[%d\]: binary upgrade: serving; asking the old master \(pid %d\) to hand over and drain$"
                   % (new, g.pid), timeout=15, alive=False)
        new_workers = wait_for(lambda: (lambda ws: ws if len(ws) == 2 else None)(children(new)), 10,
                               "2 workers under the new master %d" % new)
        assert not set(new_workers) & set(old_workers)
        for p in new_workers:
            g.wait_log(r"\[info\] master\[%d\]: worker \d+ \(pid %d\) started, generation 1$" % (new, p),
                       alive=False)
        assert g.count(r"\[info\] worker \d+\[\d+\]: generation 1 serving") == 4
        # The old master drains and exits 0; its workers go with it.
        g.wait_log(r"\[info\] master\[%d\]: graceful stop" % g.pid, timeout=5, alive=False)
        rc = g.wait_exit(15)
        assert rc == 0, "old master exit status %r" % rc
        g.exit_checked = True
        wait_for(lambda: not any(pid_alive(p) for p in old_workers), 10, "the old workers to exit")
        assert pid_alive(new)
        n_after = load.ok()
        load.wait_ok(500, timeout=15)
    assert not load.failures, "%d failed request(s) across the binary upgrade, first: %s" % (
        len(load.failures), load.failures[:3])
    assert load.ok() - n_after >= 500
    # The new master took over the very socket, bound nothing itself.
    assert g.count(r"master\[%d\]: listening on" % new) == 0, g.log_text()
    inode = os.readlink("/proc/%d/fd/%d" % (new, fd))
    assert re.match(r"socket:\[\d+\]$", inode), inode
    # The pidfile is the new master's, and the old one did not remove it.
    assert _read_pid(pidfile) == new
    for _ in range(20):
        s, _, b = get(g.port, "/")
        assert (s, b) == (200, body), (s, b[:200])
    # The new master obeys signals: TERM stops it and its workers, pidfile gone.
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not pid_alive(new), 10, "the new master %d to exit after TERM" % new)
    wait_for(lambda: not any(pid_alive(p) for p in new_workers), 5, "the new master's workers to exit")
    g.wait_log(r"\[info\] master\[%d\]: exiting$" % new, alive=False)
    assert not os.path.exists(pidfile), "pidfile left behind by the new master"


def test_usr2_with_a_failing_new_binary_keeps_serving(ctx):
    d = ctx.esdemo()
    pidfile = os.path.join(ctx.tmpdir, "esgate.pid")
    good = make_config(d.port, workers=2, extra="pidfile: %s\n" % pidfile)
    g = ctx.esgate(good)
    workers = g.workers()
    # The exec'ed master reads the file again: a broken one makes it exit 1.
    g.write_config(make_config(d.port, workers=0, extra="pidfile: %s\n" % pidfile))
    new = _start_upgrade(ctx, g)
    g.wait_log(r"\[error\] master\[%d\]: binary upgrade failed: the new master \(pid %d\) exited with status 1; "
               r"still serving$" % (g.pid, new), timeout=10)
    wait_for(lambda: not pid_alive(new), 5, "the failed new master to be reaped")
    assert g.proc.poll() is None, "the old master exited"
    assert sorted(g.workers()) == sorted(workers), (workers, g.workers())
    assert _read_pid(pidfile) == g.pid
    assert g.count(r"master\[%d\]:" % new) == 0, "the failed master logged as a master:\n" + g.log_text()
    for _ in range(20):
        assert get(g.port, "/")[0] == 200
    # Fixed: a second USR2 is accepted (not "already in progress") and works.
    g.write_config(good)
    new2 = _start_upgrade(ctx, g)
    assert g.count(r"already in progress") == 0
    g.wait_log(r"\[info\] master\[%d\]: binary upgrade: serving; asking the old master \(pid %d\) to hand over and drain$"
               % (new2, g.pid), timeout=15, alive=False)
    assert g.wait_exit(15) == 0
    g.exit_checked = True
    assert _read_pid(pidfile) == new2
    for _ in range(20):
        assert get(g.port, "/")[0] == 200
