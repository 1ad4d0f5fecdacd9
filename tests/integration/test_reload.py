"""SIGHUP: a valid file starts a new generation and drains the old one
without failing a request; a broken file is reported and changes nothing."""

import re
import signal

from harness import Load, get, make_config, pid_alive, wait_for


def _body(d):
    status, _, body = d.get("/")
    assert status == 200 and body
    return body


def _assert_gone(pids, timeout=15):
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout,
             "old workers %s to exit" % [p for p in pids if pid_alive(p)])


def test_hup_2_to_4_workers_under_load_loses_nothing(ctx):
    d, g = ctx.start(workers=2)
    body = _body(d)
    old = g.workers()
    assert len(old) == 2, old
    with Load(g.port, threads=8, expect_body=body) as load:
        load.wait_ok(300)
        g.write_config(make_config(d.port, workers=4))
        g.signal(signal.SIGHUP)
        g.wait_log(r"\[info\] master\[%d\]: configuration OK: starting generation 2 with 4 worker\(s\)$" % g.pid)
        g.wait_log(r"\[info\] master\[%d\]: generation 2 serving; draining 2 old worker\(s\)$" % g.pid, timeout=15)
        new = g.wait_workers(4, timeout=15, exclude=old)
        _assert_gone(old)
        n_after = load.ok()
        load.wait_ok(500, timeout=15)
    assert not load.failures, "%d failed request(s) across the reload, first: %s" % (
        len(load.failures), load.failures[:3])
    assert load.ok() - n_after >= 500
    assert len(set(new)) == 4 and not set(new) & set(old), (old, new)
    assert g.count(r"\[info\] worker \d+\[\d+\]: generation 2 serving \(libev epoll backend\)") == 4
    for pid in old:
        g.wait_log(r"\[info\] master\[%d\]: worker \d+ \(pid %d\) exited$" % (g.pid, pid))
        g.wait_log(r"\[info\] worker \d+\[%d\]: exiting$" % pid)
    # The new generation answers.
    assert get(g.port, "/")[0] == 200


def _check_failed_reload(ctx, bad_config, line, col, message):
    d, g = ctx.start(workers=2)
    old = g.workers()
    assert len(old) == 2
    g.write_config(bad_config(d.port))
    g.signal(signal.SIGHUP)
    g.wait_log(r"reload failed: still running generation 1 with the previous configuration$")
    text = g.log_text()
    want = "[error] master[%d]: %s:%d:%d: %s" % (g.pid, g.config_path, line, col, message)
    assert want in text, "expected %r in the log:\n%s" % (want, text)
    assert re.search(r"\[error\] master\[%d\]: reload failed: still running generation 1 with the previous "
                     r"configuration$" % g.pid, text, re.M)
    assert "generation 2" not in text, text
    # Nothing changed: same workers, still serving.
    assert sorted(g.workers()) == sorted(old), (old, g.workers())
    assert all(pid_alive(p) for p in old)
    for _ in range(20):
        status, _, body = get(g.port, "/")
        assert status == 200, (status, body)
    # A fixed file is then accepted, and is generation 2 (the failure used no number).
    g.write_config(make_config(d.port, workers=2))
    g.signal(signal.SIGHUP)
    g.wait_log(r"configuration OK: starting generation 2 with 2 worker\(s\)$")
    g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
    g.wait_workers(2, timeout=15, exclude=old)


def test_hup_with_workers_0_is_rejected(ctx):
    # make_config puts "workers: 0" on line 2; the value starts in column 10.
    _check_failed_reload(ctx, lambda port: make_config(port, workers=0), 2, 10,
                         '"workers" must be an integer >= 1 or "auto"')


def test_hup_with_unknown_key_is_rejected(ctx):
    # extra= goes in at line 6 (after listen, workers, graceful_timeout, keepalive_timeout, log).
    _check_failed_reload(ctx, lambda port: make_config(port, extra="foo: 1\n"), 6, 1, 'unknown key "foo"')


def test_five_hups_in_a_row_under_load(ctx):
    d, g = ctx.start(workers=2)
    body = _body(d)
    seen = set(g.workers())
    with Load(g.port, threads=8, expect_body=body) as load:
        load.wait_ok(200)
        for gen in range(2, 7):
            g.signal(signal.SIGHUP)
            g.wait_log(r"configuration OK: starting generation %d with 2 worker\(s\)$" % gen, timeout=10)
            seen |= set(g.workers())
        g.wait_log(r"generation 6 serving; draining \d+ old worker\(s\)$", timeout=15)
        final = wait_for(lambda: (lambda ws: ws if len(ws) == 2 and all(
            g.count(r"worker \d+ \(pid %d\) started, generation 6$" % p) for p in ws) else None)(g.workers()),
            20, "exactly the 2 workers of generation 6; have %s" % g.workers())
        n_after = load.ok()
        load.wait_ok(300, timeout=15)
    assert not load.failures, "%d failed request(s) across 5 reloads, first: %s" % (
        len(load.failures), load.failures[:3])
    assert load.ok() - n_after >= 300
    _assert_gone(seen - set(final))
    assert len(g.workers()) == 2, g.workers()
    assert g.count(r"reload failed") == 0
