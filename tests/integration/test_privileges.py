"""Privileges: as root, workers run as "user" (or as root only with
allow_root: true); without either the master refuses to start."""

import os
import re

from harness import TestFailure, get, make_config, proc_status, run_cli

REFUSAL = 'refusing to run workers as root: set "user" (e.g. nobody) or "allow_root: true"'


def _require_root():
    if os.geteuid() != 0:
        raise TestFailure("this test needs root (the suite runs as root)")


def _ids(pid):
    st = proc_status(pid)
    uid = [int(x) for x in st["Uid"].split()]
    gid = [int(x) for x in st["Gid"].split()]
    groups = sorted(int(x) for x in st.get("Groups", "").split())
    return uid, gid, groups


def _root_config(port):
    """make_config without the "user: nobody" it adds for root."""
    text = make_config(port)
    assert text.endswith("user: nobody\n"), text
    return text[:-len("user: nobody\n")]


def test_root_without_user_is_refused(ctx):
    _require_root()
    d = ctx.esdemo()
    text = _root_config(d.port)
    g = ctx.esgate(text, ready=False)
    rc = g.wait_exit(10)
    g.exit_checked = True
    log = g.log_text()
    assert rc == 1, "exit status %r; log:\n%s" % (rc, log)
    assert REFUSAL in log, log
    assert not re.search(r"worker \d+ \(pid", log), "a worker was started:\n" + log
    # esgate -t says the same.
    rc, out, err = run_cli(["-t", "-c", g.config_path])
    assert rc == 1, (rc, out, err)
    assert "configuration OK" not in out, out
    assert REFUSAL in err, err


def test_user_nobody_workers_drop_root(ctx):
    _require_root()
    d, g = ctx.start(workers=2)
    assert "user: nobody" in open(g.config_path).read()
    assert get(g.port, "/")[0] == 200
    workers = g.workers()
    assert len(workers) == 2, workers
    for pid in workers:
        uid, gid, groups = _ids(pid)
        assert uid == [65534] * 4, "worker %d Uid %s" % (pid, uid)
        assert gid == [65534] * 4, "worker %d Gid %s" % (pid, gid)
        assert groups == [65534], "worker %d Groups %s" % (pid, groups)
    uid, gid, _ = _ids(g.pid)
    assert uid == [0] * 4, "master Uid %s" % uid
    assert gid[0] == 0, "master Gid %s" % gid
    # esgate -t accepts the file.
    rc, out, err = run_cli(["-t", "-c", g.config_path])
    assert rc == 0 and "configuration OK" in out, (rc, out, err)


def test_allow_root_workers_stay_root(ctx):
    _require_root()
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra="allow_root: true\n"))
    assert "user:" not in open(g.config_path).read()
    assert get(g.port, "/")[0] == 200
    workers = g.workers()
    assert len(workers) == 2, workers
    for pid in workers:
        uid, gid, _ = _ids(pid)
        assert uid == [0] * 4, "worker %d Uid %s" % (pid, uid)
        assert gid[0] == 0, "worker %d Gid %s" % (pid, gid)
    rc, out, err = run_cli(["-t", "-c", g.config_path])
    assert rc == 0 and "configuration OK" in out, (rc, out, err)
