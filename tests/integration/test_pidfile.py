"""The pidfile is locked for the master's life: a second esgate with the
same pidfile refuses to start; a stale one (dead pid, no lock) is replaced."""

import fcntl
import os
import subprocess

from harness import get, make_config, pid_alive


def _read(path):
    with open(path) as f:
        return f.read()


def test_second_instance_with_the_same_pidfile_is_refused(ctx):
    d = ctx.esdemo()
    pidfile = os.path.join(ctx.tmpdir, "esgate.pid")
    g = ctx.esgate(make_config(d.port, extra="pidfile: %s\n" % pidfile))
    assert _read(pidfile) == "%d\n" % g.pid
    # The lock is held: nobody else can take it.
    with open(pidfile) as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("the pidfile is not locked")
        except BlockingIOError:
            pass
    g2 = ctx.esgate(make_config(d.port, extra="pidfile: %s\n" % pidfile), ready=False, name="second")
    rc = g2.wait_exit(10)
    g2.exit_checked = True
    text = g2.log_text()
    assert rc == 1, "second esgate exit status %r; log:\n%s" % (rc, text)
    want = "esgate is already running (pid %d, pidfile %s)" % (g.pid, pidfile)
    assert want in text, "expected %r in:\n%s" % (want, text)
    assert "worker 1 (pid" not in text, text
    # The first one is untouched and still owns the pidfile.
    assert _read(pidfile) == "%d\n" % g.pid
    assert not [f for f in os.listdir(ctx.tmpdir) if f.endswith(".tmp")], os.listdir(ctx.tmpdir)
    assert pid_alive(g.pid)
    assert get(g.port, "/")[0] == 200


def test_stale_pidfile_is_replaced(ctx):
    d = ctx.esdemo()
    pidfile = os.path.join(ctx.tmpdir, "esgate.pid")
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    dead = p.pid
    assert not pid_alive(dead)
    with open(pidfile, "w") as f:
        f.write("%d\n" % dead)
    g = ctx.esgate(make_config(d.port, extra="pidfile: %s\n" % pidfile))
    assert _read(pidfile) == "%d\n" % g.pid
    assert "already running" not in g.log_text()
    assert get(g.port, "/")[0] == 200
