"""systemd integration: sd_notify datagrams (READY, RELOADING, STOPPING,
STATUS, WATCHDOG) on NOTIFY_SOCKET, and socket activation (LISTEN_FDS)."""

import os
import re
import shutil
import signal
import socket
import threading
import time

from harness import TestFailure, free_port, get, make_config, wait_for


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket;
    a thread collects (monotonic time, {key: value}, raw text) per datagram."""

    def __init__(self, tmpdir):
        self.path = os.path.join(tmpdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.lock = threading.Lock()
        self.msgs = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            fields = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.lock:
                self.msgs.append((time.monotonic(), fields, text))

    def close(self):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()

    def all(self):
        with self.lock:
            return list(self.msgs)

    def wait(self, key, count=1, timeout=10, pred=None):
        """Waits until COUNT datagrams carry KEY (and satisfy PRED); returns them."""
        def check():
            ms = [m for m in self.all() if key in m[1] and (pred is None or pred(m[1]))]
            return ms if len(ms) >= count else None

        return wait_for(check, timeout, "%d notify datagram(s) with %s; got %s" % (
            count, key, [m[2] for m in self.all()]))


def _kinds(msgs):
    """The sequence of READY / RELOADING / STOPPING events, in order."""
    out = []
    for _, f, _ in msgs:
        for k in ("READY", "RELOADING", "STOPPING"):
            if f.get(k) == "1":
                out.append(k)
    return out


def test_notify_ready_reloading_stopping(ctx):
    n = NotifySocket(ctx.tmpdir)
    try:
        d = ctx.esdemo()
        g = ctx.esgate(make_config(d.port, workers=2), env={"NOTIFY_SOCKET": n.path})
        ready = n.wait("READY")
        assert ready[0][1].get("STATUS", "").startswith("generation 1: "), ready[0][2]
        # STATUS updates report the workers of the generation.
        n.wait("STATUS", pred=lambda f: re.match(r"generation 1: 2 of 2 worker\(s\) ready; last reload: ",
                                                 f["STATUS"]) is not None)

        # A good reload: RELOADING with MONOTONIC_USEC, then READY once generation 2 serves.
        before_us = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        g.signal(signal.SIGHUP)
        rel = n.wait("RELOADING")[0][1]
        after_us = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        assert "MONOTONIC_USEC" in rel, rel
        assert before_us - 1000 <= int(rel["MONOTONIC_USEC"]) <= after_us + 1000, (before_us, rel, after_us)
        assert rel.get("STATUS") == "reloading", rel
        g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
        r2 = n.wait("READY", count=2)[1][1]
        assert r2["STATUS"].startswith("generation 2: "), r2
        n.wait("STATUS", pred=lambda f: re.match(r"generation 2: 2 of 2 worker\(s\) ready; last reload: ok",
                                                 f["STATUS"]) is not None)

        # A failed reload: RELOADING, then READY right away, saying why.
        good = open(g.config_path).read()
        g.write_config(make_config(d.port, workers=0))
        g.signal(signal.SIGHUP)
        g.wait_log(r"reload failed: still running generation 2")
        n.wait("RELOADING", count=2)
        r3 = n.wait("READY", count=3)[2][1]
        assert "last reload: failed: " in r3["STATUS"], r3
        assert '"workers" must be an integer' in r3["STATUS"], r3
        g.write_config(good)

        g.signal(signal.SIGTERM)
        assert g.wait_exit(10) == 0
        g.exit_checked = True
        stop = n.wait("STOPPING", timeout=2)[0][1]
        assert stop["STOPPING"] == "1", stop
        kinds = _kinds(n.all())
        assert kinds == ["READY", "RELOADING", "READY", "RELOADING", "READY", "STOPPING"], (
            kinds, [m[2] for m in n.all()])
    finally:
        n.close()


def test_notify_stopping_on_quit(ctx):
    n = NotifySocket(ctx.tmpdir)
    try:
        d = ctx.esdemo()
        g = ctx.esgate(make_config(d.port, workers=1), workers=1, env={"NOTIFY_SOCKET": n.path})
        n.wait("READY")
        g.signal(signal.SIGQUIT)
        n.wait("STOPPING", timeout=5)
        assert g.wait_exit(10) == 0
        g.exit_checked = True
        assert _kinds(n.all()) == ["READY", "STOPPING"], [m[2] for m in n.all()]
    finally:
        n.close()


def test_watchdog_pings_every_second(ctx):
    n = NotifySocket(ctx.tmpdir)
    try:
        d = ctx.esdemo()
        # WATCHDOG_PID must be the master's pid: sh sets it to its own and execs esgate.
        cfg_path = os.path.join(ctx.tmpdir, "esgate0.yaml")
        g = ctx.esgate(make_config(d.port, workers=2), ready=False,
                       env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "2000000"},
                       argv_prefix=["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"'])
        assert g.config_path == cfg_path
        g.wait_ready(2)
        g.wait_log(r"\[info\] master\[%d\]: systemd watchdog every 2000 ms$" % g.pid)
        t_ready = n.wait("READY")[0][0]
        n.wait("WATCHDOG", count=4, timeout=6)
        pings = [t for t, f, _ in n.all() if f.get("WATCHDOG") == "1"]
        assert pings[0] >= t_ready - 0.5, "a watchdog ping well before READY"
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert all(0.7 <= x <= 1.5 for x in gaps), "watchdog gaps %s" % gaps
    finally:
        n.close()


def test_watchdog_pid_of_another_process_disables_it(ctx):
    n = NotifySocket(ctx.tmpdir)
    try:
        d = ctx.esdemo()
        g = ctx.esgate(make_config(d.port, workers=1), workers=1,
                       env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
        n.wait("READY")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # the absence of pings: observe for more than 2 periods
            time.sleep(0.1)
        assert not [m for m in n.all() if "WATCHDOG" in m[1]], [m[2] for m in n.all()]
        assert g.count(r"systemd watchdog") == 0
    finally:
        n.close()


def test_socket_activation(ctx):
    sa = shutil.which("systemd-socket-activate")
    if sa is None:
        raise TestFailure("systemd-socket-activate not found (package systemd)")
    d = ctx.esdemo()
    # The file's listen (port 0) is ignored in favour of systemd's socket.
    # The port is free right now (bound, read, closed); a lost race shows
    # as systemd-socket-activate failing to bind, and is retried.
    for attempt in range(5):
        port = free_port()
        g = ctx.esgate(make_config(d.port, workers=2), ready=False, argv_prefix=[sa, "-l", "127.0.0.1:%d" % port])
        wait_for(lambda: g.proc.poll() is not None or "as 3." in g.log_text(), 10, "systemd-socket-activate to listen")
        if g.proc.poll() is None:
            break
        g.exit_checked = True
        assert attempt < 4, g.log_text()
    g.wait_log(r"^Listening on 127\.0\.0\.1:%d as 3\.$" % port)
    # Without --accept, systemd-socket-activate execs esgate (same pid) on
    # the first connection, which esgate then serves.
    status, _, body = d.get("/")
    s2, _, b2 = get(port, "/", timeout=15)
    assert (s2, b2) == (status, body), (s2, b2)
    g.wait_log(r"\[info\] master\[%d\]: socket activation: 1 socket\(s\) from systemd replace \"listen\"$"
               % g.pid)
    g.wait_log(r"\[info\] master\[%d\]: listening on 127\.0\.0\.1:%d \(socket from systemd\)$" % (g.pid, port))
    g.wait_log(r"\[info\] worker \d+\[\d+\]: generation 1 serving", count=2)
    assert g.count(r"master\[\d+\]: listening on 127\.0\.0\.1:\d+$") == 0, g.log_text()
    g.port = port
    for _ in range(20):
        s2, _, b2 = get(port, "/")
        assert (s2, b2) == (status, body), (s2, b2)
    # A reload keeps systemd's socket.
    g.signal(signal.SIGHUP)
    g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
    assert g.count(r"closing 127") == 0
    for _ in range(20):
        assert get(port, "/")[0] == 200
