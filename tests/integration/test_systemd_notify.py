"""systemd integration: sd_notify datagrams (READY, RELOADING, STOPPING,
STATUS, WATCHDOG) on NOTIFY_SOCKET, and socket activation (LISTEN_FDS)."""

import os
import re
import shutil
import signal
import socket
import struct
import threading
import time

from harness import Load, TestFailure, children, free_port, get, make_config, pid_alive, wait_for


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
    for m in msgs:
        f = m[1]
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


# ---- binary upgrade (USR2) under systemd ------------------------------------

class FakeSystemd(NotifySocket):
    """The notify socket, with each datagram's sender (SO_PASSCRED), and
    systemd's NotifyAccess=main rule: a datagram counts only if its sender
    is the main process; MAINPID= from the main process moves it."""

    def __init__(self, tmpdir):
        super().__init__(tmpdir)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def _run(self):
        creds = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self.stopping.is_set():
            try:
                data, anc, _, _ = self.sock.recvmsg(65536, creds)
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", blob[:12])[0]
            text = data.decode("utf-8", "replace")
            fields = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
            with self.lock:
                self.msgs.append((time.monotonic(), fields, text, pid))

    def wait(self, key, count=1, timeout=10, pred=None, sender=None):
        def check():
            ms = [m for m in self.all() if key in m[1] and (pred is None or pred(m[1]))
                  and (sender is None or m[3] == sender)]
            return ms if len(ms) >= count else None

        return wait_for(check, timeout, "%d notify datagram(s) with %s from %s; got %s" % (
            count, key, sender, [(m[3], m[2]) for m in self.all()]))

    def effective(self, first_main):
        """The datagrams systemd (NotifyAccess=main) would act on, with the
        main pid after each; and those it would refuse."""
        main, took, refused = first_main, [], []
        for m in self.all():
            if m[3] != main:
                refused.append(m)
                continue
            took.append(m)
            if "MAINPID" in m[1]:
                main = int(m[1]["MAINPID"])
        return took, refused, main


def _watchdog_argv():
    # WATCHDOG_PID must be the master's pid: sh sets it to its own and execs esgate.
    return ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"']


def _upgrade(ctx, g, sigs_after=()):
    """USR2 (and SIGS_AFTER right behind it); returns the new master's pid."""
    regex = r"\[info\] master\[%d\]: USR2: started the new binary .+ as pid (\d+)$" % g.pid
    g.signal(signal.SIGUSR2)
    for s in sigs_after:
        g.signal(s)
    new = int(g.wait_log(regex, alive=False)[0].group(1))
    ctx.own_pid(new)
    return new


def test_usr2_under_systemd_only_the_main_process_speaks(ctx):
    """gunicorn#2856: the old master's STOPPING=1 while it drains stopped the
    service under its successor.  Here the old master hands over with
    MAINPID= and is silent after it; the new master is silent before it."""
    n = FakeSystemd(ctx.tmpdir)
    try:
        d = ctx.esdemo()
        g = ctx.esgate(make_config(d.port, workers=2), ready=False, argv_prefix=_watchdog_argv(),
                       env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "2000000"})
        g.wait_ready(2)
        old = g.pid
        n.wait("READY", sender=old)
        with Load(g.port, threads=4) as load:
            load.wait_ok(200)
            new = _upgrade(ctx, g)
            g.wait_log(r"\[info\] master\[%d\]: binary upgrade: the old master \(pid %d\) handed the service "
                       r"over; main process now$" % (new, old), timeout=15, alive=False)
            assert g.wait_exit(15) == 0, "the old master did not exit 0"
            g.exit_checked = True
            ready = n.wait("READY", sender=new)[0]
            n.wait("WATCHDOG", sender=new, timeout=3)
            load.wait_ok(200)
        assert not load.failures, load.failures[:3]
        msgs = n.all()
        handover = [i for i, m in enumerate(msgs) if "MAINPID" in m[1]]
        assert len(handover) == 1, [(m[3], m[2]) for m in msgs]
        h = msgs[handover[0]]
        assert h[3] == old and h[1]["MAINPID"] == str(new), h
        assert not [m for m in msgs[handover[0] + 1:] if m[3] == old], (
            "the old master spoke after the handover", [(m[3], m[2]) for m in msgs])
        assert not [m for m in msgs[:handover[0]] if m[3] != old], (
            "the new master spoke before the handover", [(m[3], m[2]) for m in msgs])
        assert "binary upgrade from pid %d" % old in ready[1]["STATUS"], ready[2]
        took, refused, main = n.effective(old)
        assert not refused and main == new, refused
        assert _kinds(took) == ["READY", "READY"], [(m[3], m[2]) for m in took]
        # The service's status is the new master's from then on.
        n.wait("STATUS", sender=new, pred=lambda f: "binary upgrade from pid %d" % old in f["STATUS"])
        # Stopping the new master is the service's stop: STOPPING=1 from it.
        os.kill(new, signal.SIGQUIT)
        wait_for(lambda: not pid_alive(new), 10, "the new master to exit")
        n.wait("STOPPING", sender=new, timeout=2)
        assert not n.effective(old)[1]
    finally:
        n.close()


def _upgrade_that_cannot_serve(ctx, n):
    """esdemo and esgate (2 workers) talking to N, then USR2 with a file
    whose workers die at start (the access log is a directory): the new
    master runs but never serves, so it does not ask for the handover
    until the file is fixed.  Returns (esdemo, esgate, old pid, new pid)."""
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=2), env={"NOTIFY_SOCKET": n.path})
    n.wait("READY", sender=g.pid)
    g.allowed_markers = ("[crit]",)  # "cannot open the access log", from its workers
    g.write_config(make_config(d.port, workers=2, extra="access_log: {file: %s}\n" % ctx.tmpdir))
    new = _upgrade(ctx, g)
    g.wait_log(r"\[error\] master\[%d\]: worker \d+ died while starting" % new, timeout=10, alive=False)
    return d, g, g.pid, new


def test_hup_during_usr2_is_the_new_masters_reload(ctx):
    """systemctl reload during an upgrade: the HUP reaches the old master
    (still the main process), which answers RELOADING=1 and passes it on;
    the new master reloads, and its READY=1 after the handover ends the
    reload.  The old master starts no generation of its own."""
    n = FakeSystemd(ctx.tmpdir)
    try:
        d, g, old, new = _upgrade_that_cannot_serve(ctx, n)
        g.write_config(make_config(d.port, workers=3))
        g.signal(signal.SIGHUP)
        g.wait_log(r"\[info\] master\[%d\]: HUP: passed on to the new master \(pid %d\)$" % (old, new),
                   alive=False)
        g.wait_log(r"\[info\] master\[%d\]: configuration OK: starting generation 2 with 3 worker\(s\)$" % new,
                   timeout=15, alive=False)
        assert g.wait_exit(15) == 0
        g.exit_checked = True
        wait_for(lambda: len(children(new)) == 3, 10, "3 workers under the new master")
        r = n.wait("READY", sender=new)[0][1]
        assert r["STATUS"].startswith("generation 2: 3 worker(s) serving"), r
        assert g.count(r"master\[%d\]: configuration OK: starting generation" % old) == 0, g.log_text()
        took, refused, main = n.effective(old)
        assert not refused and main == new, [(m[3], m[2]) for m in refused]
        kinds = _kinds(took)
        assert kinds == ["READY", "RELOADING", "READY"], [(m[3], m[2]) for m in took]
        rel = [m for m in took if "RELOADING" in m[1]][0]
        assert rel[3] == old and "MONOTONIC_USEC" in rel[1], rel
        for _ in range(10):
            assert get(g.port, "/")[0] == 200
    finally:
        n.close()


def test_hup_during_a_failed_usr2_reloads_the_old_master(ctx):
    """The HUP passed on to a new master that then fails: the old master
    does the reload itself, and its READY=1 ends it."""
    n = FakeSystemd(ctx.tmpdir)
    try:
        d, g, old, new = _upgrade_that_cannot_serve(ctx, n)
        g.signal(signal.SIGHUP)
        g.wait_log(r"master\[%d\]: HUP: passed on to the new master" % old)
        # The new master reloads the file still naming the directory; only
        # once it has read it may the good file go in, else the new master
        # reads that one, serves, takes over, and there is no failure.
        g.wait_log(r"\[info\] master\[%d\]: configuration OK: starting generation 2 with 2 worker\(s\)$" % new)
        g.write_config(make_config(d.port, workers=3))
        os.kill(new, signal.SIGTERM)
        g.wait_log(r"\[error\] master\[%d\]: binary upgrade failed: the new master \(pid %d\) exited" % (old, new))
        g.wait_log(r"\[info\] master\[%d\]: configuration OK: starting generation 2 with 3 worker\(s\)$" % old)
        g.wait_workers(3, timeout=10)
        wait_for(lambda: _kinds(n.effective(old)[0])[-1:] == ["READY"] and len(_kinds(n.effective(old)[0])) >= 4,
                 10, "READY after the reload")
        kinds = _kinds(n.effective(old)[0])
        assert kinds == ["READY", "RELOADING", "RELOADING", "READY"], [(m[3], m[2]) for m in n.all()]
        assert not [m for m in n.all() if m[3] == new]
    finally:
        n.close()


def test_stop_during_usr2_stops_both_masters(ctx):
    """systemctl stop before the handover: QUIT reaches the old master,
    which stops the new one too and exits only after it, so systemd never
    sees the main process go while another master still runs."""
    n = FakeSystemd(ctx.tmpdir)
    try:
        d, g, old, new = _upgrade_that_cannot_serve(ctx, n)
        g.signal(signal.SIGQUIT)
        assert g.wait_exit(15) == 0
        g.exit_checked = True
        assert not pid_alive(new), "the new master outlived the old one"
        lines = g.log_lines()
        gone = [i for i, l in enumerate(lines) if "master[%d]: the new master (pid %d) exited" % (old, new) in l]
        last = [i for i, l in enumerate(lines) if "master[%d]: exiting" % old in l]
        assert gone and last and gone[0] < last[0], g.log_text()
        assert g.count(r"master\[%d\]: binary upgrade: the old master" % new) == 0
        assert not [m for m in n.all() if m[3] == new], [(m[3], m[2]) for m in n.all()]
        assert not [m for m in n.all() if "MAINPID" in m[1]]
        assert _kinds(n.all()) == ["READY", "STOPPING"], [(m[3], m[2]) for m in n.all()]
    finally:
        n.close()


def test_stop_after_usr2_waits_for_the_old_master(ctx):
    """systemctl stop after the handover: QUIT reaches the new master, which
    exits only once the old master has finished its last request (systemd
    kills what is left when the main process goes)."""
    n = FakeSystemd(ctx.tmpdir)
    try:
        d = ctx.esdemo()
        g = ctx.esgate(make_config(d.port, workers=1), workers=1, env={"NOTIFY_SOCKET": n.path})
        old = g.pid
        d.control(latency_ms=1500)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=get(g.port, "/")), daemon=True)
        t.start()
        wait_for(lambda: d.requests() >= 1, 5, "the slow request upstream")
        new = _upgrade(ctx, g)
        g.wait_log(r"\[info\] master\[%d\]: binary upgrade: the old master \(pid %d\) handed the service "
                   r"over; main process now$" % (new, old), timeout=15, alive=False)
        os.kill(new, signal.SIGQUIT)
        wait_for(lambda: not pid_alive(new), 10, "the new master to exit")
        t.join(5)
        assert result.get("r", (None,))[0] == 200, result
        assert g.wait_exit(5) == 0
        g.exit_checked = True
        lines = g.log_lines()
        old_exit = [i for i, l in enumerate(lines) if "master[%d]: exiting" % old in l]
        gone = [i for i, l in enumerate(lines) if "master[%d]: the old master (pid %d) is gone" % (new, old) in l]
        new_exit = [i for i, l in enumerate(lines) if "master[%d]: exiting" % new in l]
        assert old_exit and gone and new_exit and old_exit[0] < gone[0] < new_exit[0], g.log_text()
        assert not n.effective(old)[1]
    finally:
        n.close()
