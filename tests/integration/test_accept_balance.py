"""The spread of new connections over the workers (worker/handoff.h): a
worker that just accepted a connection while holding more than the least
loaded worker of its generation (plus a slack) passes the descriptor to
that worker, so a burst is shared instead of landing on whichever worker
the scheduler ran first; a worker that does not read what it was passed
(stopped) has it taken back after 200 ms; a worker leaving (TTOU)
or killed loses no connection that was passed to it, and one that drains
(TTOU, HUP) serves none of what was queued to it: a live worker does.  Connections are told
apart by which worker's process holds the socket (/proc), as test_metrics
does."""

import http.client
import os
import re
import signal
import socket
import struct
import subprocess
import time

from harness import (TIME_SCALE, Load, TestFailure, children as harness_children, connection_owner, get,
                     make_config, proc_status, read_response, socket_inodes, wait_for)

# run.py runs these alone: a burst measured while other tests load the CPUs
# says little about the spread
SERIAL = True


def owners(g, socks):
    """{pid: count} of the workers holding SOCKS (each accepted first)."""
    pids = g.workers()
    got = {pid: 0 for pid in pids}
    for s in socks:
        cport = s.getsockname()[1]
        owner = wait_for(lambda: connection_owner(pids, g.port, cport), 10, "a worker to hold port %d" % cport)
        got[owner] += 1
    return got


def per_worker(g):
    """{pid: client connections it holds} (ss)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", "sport", "= :%d" % g.port],
                         capture_output=True, text=True).stdout
    return {pid: out.count("pid=%d," % pid) for pid in g.workers()}


def metric(g, name):
    status, _, body = get(g.port, "/metrics")
    assert status == 200, status
    m = re.search(rb"^%s (\d+)" % name.encode(), body, re.M)
    return int(m.group(1)) if m else None


def handoff_counts(g):
    """(handed off, received, taken back) from one scrape."""
    status, _, body = get(g.port, "/metrics")
    assert status == 200, status
    got = [re.search(rb"^esgate_connections_%s_total (\d+)" % n, body, re.M)
           for n in (b"handed_off", b"handoff_received", b"taken_back")]
    return tuple(int(m.group(1)) if m else None for m in got)


def assert_none_lost(g, some=True):
    """Every connection handed over (at least one if SOME) was read by its
    worker or taken back: none is queued (the test's connections are all
    answered) or was closed unserved."""
    handed, received, taken = handoff_counts(g)
    assert received is not None, "no esgate_connections_handoff_received_total"
    assert (handed >= 1 or not some) and handed == received + taken, (
        "handed off %d, received %d, taken back %d" % (handed, received, taken))


def test_a_burst_of_connections_is_shared_between_the_workers(ctx):
    """16 connections opened at once (h2load -c16's burst, as raw sockets)
    end with at least 5 on each worker; on the bench machine the worker
    that woke first took 15 or 16 of 16 without the hand-off."""
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))
    for attempt in range(3):
        socks = [socket.create_connection(("127.0.0.1", g.port)) for _ in range(16)]
        got = owners(g, socks)
        for s in socks:
            s.close()
        wait_for(lambda: sum(per_worker(g).values()) == 0, 10, "the workers to see the connections closed")
        assert sorted(got.values())[0] >= 5, "a burst of 16 connections split %s (attempt %d)" % (got, attempt)
    accepted = metric(g, "esgate_connections_accepted_total")
    handed = metric(g, "esgate_connections_handed_off_total")
    # 48 of the bursts' plus the scrapes'; a handed one is counted once
    assert accepted is not None and accepted >= 48, accepted
    assert handed is not None and handed <= accepted, (handed, accepted)
    assert_none_lost(g)


def test_h2load_burst_uses_both_workers(ctx):
    """The real client of the HTTP/2 bench row: its 16 connections land on
    both workers (counted from ss while it runs), every request answered."""
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))
    p = subprocess.Popen(["h2load", "-c16", "-m10", "-D", "%d" % int(4 * TIME_SCALE),
                          "http://127.0.0.1:%d/" % g.port], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def split():
            per = per_worker(g)
            return per if sum(per.values()) == 16 else None

        per = wait_for(split, 10, "h2load's 16 connections accepted")
    finally:
        out = p.communicate(timeout=30 * TIME_SCALE)[0].decode(errors="replace")
    assert min(per.values()) >= 5, "h2load's 16 connections split %s" % per
    assert p.returncode == 0 and " 0 failed" in out, out[-800:]


def test_a_stopped_worker_does_not_hold_up_new_connections(ctx):
    """With one worker stopped (SIGSTOP: it holds nothing, so the running
    one passes it connections from the fourth on), every new connection is
    still answered: what the stopped worker does not read is taken back
    after 200 ms, and it is sent nothing more while its loop stands still."""
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))
    stopped, running = g.workers()
    os.kill(stopped, signal.SIGSTOP)
    conns = []
    try:
        t0 = time.monotonic()
        for i in range(30):
            c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10 * TIME_SCALE)
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise TestFailure("connection %d: status %d" % (i, r.status))
            conns.append(c)
        took = time.monotonic() - t0
        got = owners(g, [c.sock for c in conns])
        assert got[running] == 30, got
        assert took < 1.5 * TIME_SCALE, "30 connections took %.2f s" % took
        assert metric(g, "esgate_connections_taken_back_total") >= 1
    finally:
        os.kill(stopped, signal.SIGCONT)
        for c in conns:
            c.close()


def test_ttou_under_load_loses_no_connection(ctx):
    """Three workers, 24 keep-alive clients opened at once (a burst: some
    are handed over) and a few that open a connection per request; TTOU
    retires one worker: it stops being a target, serves what was already
    passed to it, its clients reconnect (to be spread over the other two)
    and every request is answered."""
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))
    g.signal(signal.SIGTTIN)
    g.wait_workers(3)
    g.wait_log(r"worker 3\[\d+\]: generation 1 serving")
    with Load(g.port, threads=24) as load, Load(g.port, threads=4, headers=lambda: {"Connection": "close"}) as short:
        load.wait_ok(600)
        short.wait_ok(100)
        g.signal(signal.SIGTTOU)
        g.wait_log(r"\[info\] master\[%d\]: worker 3 \(pid \d+\) exited$" % g.pid, timeout=15)
        load.wait_ok(600)
        short.wait_ok(100)
    failures = load.failures + short.failures
    assert not failures, "%d failed request(s) across TTOU, first: %s" % (len(failures), failures[:3])
    assert metric(g, "esgate_connections_accepted_total") >= 24
    assert_none_lost(g, some=False)


def test_a_killed_worker_holds_up_no_new_connection(ctx):
    """A worker killed under load (16 keep-alive clients opened at once, 4
    opening a connection per request): only what it was serving fails
    (reset, never a hang), its clients reconnect and are answered, also
    while its slot is refilled (what was queued to it is read by its
    replacement)."""
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))
    victim = g.workers()[0]
    with Load(g.port, threads=16) as load, Load(g.port, threads=4, headers=lambda: {"Connection": "close"}) as short:
        load.wait_ok(400)
        short.wait_ok(100)
        os.kill(victim, signal.SIGKILL)
        g.wait_workers(2, timeout=15, exclude=[victim])
        load.wait_ok(400)
        short.wait_ok(100)
    failures = load.failures + short.failures
    hung = [f for f in failures if "timed out" in f[1]]
    assert not hung, "requests hung after the kill: %s" % hung[:3]
    # at most one failure per client that was on the killed worker
    assert len(failures) <= 20, "%d failures: %s" % (len(failures), failures[:3])


def _worker_pid(g, wid, generation=1):
    """The pid of worker WID of GENERATION, from its "serving" line."""
    m = g.wait_log(r"\[info\] worker %d\[(\d+)\]: generation %d serving" % (wid, generation))
    return int(m[-1].group(1))


def _pending(pid, sig):
    """True if SIG waits to be delivered to PID (stopped, say)."""
    st = proc_status(pid)
    return bool((int(st.get("ShdPnd", "0"), 16) | int(st.get("SigPnd", "0"), 16)) & (1 << (sig - 1)))


def _established(port):
    """[(client port, inode)] of the accepting ends of the established TCP
    connections to 127.0.0.1:PORT (inode 0: still in the listener's
    backlog), from the kernel's sock_diag (netlink), which leaves out
    what /proc/net/tcp lists too: every TIME_WAIT socket on the machine
    (7000 rows, 37 ms a read under load, a fifth of the sender's 200 ms)."""
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
    try:
        # inet_diag_req_v2: family, protocol, ext, pad, states (TCP_ESTABLISHED); an empty inet_diag_sockid
        req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 1 << 1) + bytes(48)
        # nlmsghdr: SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP
        nl.sendto(struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0) + req, (0, 0))
        out = []
        while True:
            data = nl.recv(1 << 16)
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == 3:  # NLMSG_DONE
                    return out
                if kind == 2:  # NLMSG_ERROR
                    raise OSError("sock_diag: %d" % struct.unpack_from("=i", data, off + 16)[0])
                sport, dport = struct.unpack_from("!HH", data, off + 16 + 4)
                inode = struct.unpack_from("=I", data, off + 16 + 4 + 48 + 16)[0]
                if sport == port:
                    out.append((dport, inode))
                off += (length + 3) & ~3
    finally:
        nl.close()


def _queued(g, workers):
    """The client ports of the connections to G accepted and held by none
    of WORKERS: those are in a hand-off queue (a descriptor in flight
    belongs to no process; one still in the listener's backlog has no
    inode yet)."""
    rows = _established(g.port)
    held = set()  # read after the rows: an accepted socket is held, or handed over since
    for pid in workers:
        held |= socket_inodes(pid)
    return {cport for cport, inode in rows if inode != 0 and inode not in held}


def _accepted(g):
    """How many connections to G are accepted."""
    return sum(1 for _, inode in _established(g.port) if inode != 0)


def _settle(g, held=0):
    """Waits until the workers hold HELD connections, and then for the
    churn rule to let go: a worker that has just seen connections close
    keeps what it accepts for up to 100 ms (a time rule, nothing to poll)."""
    wait_for(lambda: sum(per_worker(g).values()) == held, 10, "the workers to see the connections closed")
    time.sleep(0.15)


def _queue_to_a_draining_worker(g, leaving, sender, tell, own=()):
    """Stops worker 2 (pid LEAVING), opens 16 connections (SENDER, the other
    worker of its generation, hands it some: it holds nothing), stops
    SENDER too as soon as one is queued to LEAVING (200 ms after a
    hand-off the sender takes back what a stopped peer left unread: a
    test starved that long by a loaded machine lost that race every
    time), has TELL() make the master send LEAVING QUIT, and lets it run
    again with both its queue and QUIT waiting; SENDER runs again once
    LEAVING has drained.  Returns the sockets and the client ports of
    those that were queued to it; None (the sockets closed) if the run
    shows nothing: none was queued before the sender took it back, or
    the worker read its queue (or accepted) before its QUIT (libev runs
    the signal first when both wait, as a rule; otherwise it serves them
    as connections accepted before its drain).  OWN: connections worker 2
    already holds (so that it keeps running while it drains)."""
    workers = [leaving, sender]
    taken = handoff_counts(g)[2]
    os.kill(leaving, signal.SIGSTOP)
    stopped = [leaving]
    try:
        socks = [socket.create_connection(("127.0.0.1", g.port)) for _ in range(16)]
        # (or all accepted: then the sender kept them all, or took them back already)
        wait_for(lambda: _queued(g, workers) or _accepted(g) == 16 + len(own), 5,
                 "a connection queued to pid %d, or all 16 accepted" % leaving, interval=0.001)
        os.kill(sender, signal.SIGSTOP)
        stopped.append(sender)
        wait_for(lambda: proc_status(sender).get("State", "").startswith("T"), 5, "pid %d stopped" % sender,
                 interval=0.001)
        queued = _queued(g, workers)  # both stopped: what is in LEAVING's queue stays there
        tell()
        wait_for(lambda: _pending(leaving, signal.SIGQUIT), 5, "the master's QUIT waiting for pid %d" % leaving,
                 interval=0.002)
        os.kill(leaving, signal.SIGCONT)
        stopped.remove(leaving)
        m = g.wait_log(r"\[info\] worker 2\[%d\]: draining (\d+) connection" % leaving, timeout=5 * TIME_SCALE)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    # its queue is empty by now (read or passed on before that line): no
    # take-back can come after this scrape
    now_taken = handoff_counts(g)[2]
    if queued and m[0].group(1) == str(len(own)) and now_taken == taken:
        return socks, queued
    print("a try showed nothing: %d queued to pid %d, it drained %s connection(s) (%d its own), %d taken back" % (
        len(queued), leaving, m[0].group(1), len(own), now_taken - taken))
    for s in list(socks) + list(own):
        s.close()
    _settle(g)
    return None


def _answered_keep_alive(socks, which):
    """Sends a request on each socket of SOCKS; the ones whose client port
    is in WHICH must be answered 200 and kept open, the others 200.
    Returns what went wrong."""
    bad = []
    for s in socks:
        port = s.getsockname()[1]
        s.settimeout(5 * TIME_SCALE)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = read_response(s.makefile("rb"), require_length=True)
            if status != 200 or (port in which and headers.get("connection", "").lower() == "close"):
                bad.append((port, status, headers.get("connection")))
        except (OSError, TestFailure) as e:
            bad.append((port, str(e)))
    return bad


def _queue_to_worker_2_told_ttou(g, staying, own=lambda leaving: []):
    """_queue_to_a_draining_worker with worker 2 drained by TTOU (the
    highest slot) and worker 1 (STAYING) sending, up to 8 tries; after a
    try that showed nothing TTIN refills slot 2.  OWN(leaving) makes
    what worker 2 holds of its own for a try.  (leaving's pid, (socks,
    queued), what OWN made)."""
    for attempt in range(8):
        leaving = _worker_pid(g, 2)
        mine = own(leaving)
        run = _queue_to_a_draining_worker(g, leaving, staying, lambda: g.signal(signal.SIGTTOU), own=mine)
        if run is not None:
            return leaving, run, mine
        g.signal(signal.SIGTTIN)
        g.wait_log(r"\[info\] worker 2\[\d+\]: generation 1 serving", count=attempt + 2)
    raise TestFailure("8 runs showed nothing (see _queue_to_a_draining_worker)")


def test_what_was_queued_to_a_draining_worker_is_served_by_a_live_one(ctx):
    """A worker told to drain (TTOU) with connections queued to it that it
    has not read yet (stopped while the other worker handed them over, and
    given QUIT before it runs again) serves none of them: it passes them
    on to the live worker, exits at once (it holds nothing else, and
    graceful_timeout is a minute), and each of them is answered keep-alive
    by the worker that stays.  Before the fix the draining worker read its
    queue in the turn of its loop that began the drain, and exited with
    them: all 6-7 queued connections closed unanswered."""
    long = "%ds" % int(60 * TIME_SCALE)
    d, g = ctx.start(workers=2, keepalive_timeout=long, graceful_timeout=long)
    staying = _worker_pid(g, 1)
    leaving, (socks, queued), _ = _queue_to_worker_2_told_ttou(g, staying)
    g.wait_log(r"\[info\] master\[%d\]: worker 2 \(pid %d\) exited$" % (g.pid, leaving), timeout=5 * TIME_SCALE)
    bad = _answered_keep_alive(socks, {s.getsockname()[1] for s in socks})
    assert not bad, "%d of 16 connections (%d were queued to the drained worker) not answered keep-alive: %s" % (
        len(bad), len(queued), bad)
    got = {pid: n for pid, n in owners(g, socks).items() if n}
    assert got == {staying: 16}, got
    assert_none_lost(g)  # those queued to worker 2 counted as handed off twice, received twice
    for s in socks:
        s.close()


def _a_connection_held_by(g, pid):
    """A connection that worker PID holds (the others tried are closed)."""
    tried = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", g.port))
            if wait_for(lambda: connection_owner(g.workers(), g.port, s.getsockname()[1]), 5,
                        "a worker to hold it") == pid:
                return s
            tried.append(s)
        raise TestFailure("100 connections, none held by pid %d" % pid)
    finally:
        for t in tried:
            t.close()


def test_a_draining_worker_that_still_serves_passes_its_queue_on(ctx):
    """As above, with worker 2 holding a connection of its own (a request
    begun on it), so that it runs on while it drains: what was queued to it goes on to worker 1 all
    the same, answered keep-alive; its own connection is answered, and
    the worker exits once that is closed.  Before the fix it served the
    queued ones while draining: from its GOAWAY on, each answer said
    Connection: close."""
    long = "%ds" % int(60 * TIME_SCALE)
    d, g = ctx.start(workers=2, keepalive_timeout=long, graceful_timeout=long)
    staying = _worker_pid(g, 1)

    def held_by(leaving):
        mine = _a_connection_held_by(g, leaving)
        # a request head on its way: a draining worker closes an idle
        # keep-alive connection (a second after its last answer or its
        # accept, worker/worker.c), not one with a request begun
        mine.sendall(b"GET / HTTP/1.1\r\n")
        _settle(g, 1)
        return [mine]

    leaving, (socks, queued), (mine,) = _queue_to_worker_2_told_ttou(g, staying, held_by)
    # past its GOAWAY delay (0.25 s): what it serves from now on is told
    # Connection: close
    g.wait_log(r"\[info\] worker 2\[%d\]: draining 1 connection" % leaving)
    time.sleep(0.3)
    bad = _answered_keep_alive(socks, {s.getsockname()[1] for s in socks})
    assert not bad, "%d of 16 connections (%d were queued to the draining worker) not answered keep-alive: %s" % (
        len(bad), len(queued), bad)
    got = {pid: n for pid, n in owners(g, socks).items() if n}
    assert got == {staying: 16}, got
    mine.settimeout(5 * TIME_SCALE)
    mine.sendall(b"Host: x\r\n\r\n")
    status, headers, _ = read_response(mine.makefile("rb"), require_length=True)
    assert status == 200, (status, headers)
    mine.close()
    g.wait_log(r"\[info\] master\[%d\]: worker 2 \(pid %d\) exited$" % (g.pid, leaving), timeout=5 * TIME_SCALE)
    assert_none_lost(g)
    for s in socks:
        s.close()


def test_what_was_queued_to_an_old_generation_is_served_by_the_new_one(ctx):
    """The same across a reload (HUP): the whole old generation drains, so
    what was queued to one of its workers goes on to a worker of the new
    generation (the same listening sockets, so the same listener numbers),
    which answers it keep-alive; the old workers answer what they held.
    Before the fix the old worker read its queue in the turn of its loop
    that began the drain and exited with it."""
    long = "%ds" % int(60 * TIME_SCALE)
    d, g = ctx.start(workers=2, keepalive_timeout=long, graceful_timeout=long)
    for generation in range(1, 9):
        leaving = _worker_pid(g, 2, generation)
        run = _queue_to_a_draining_worker(g, leaving, _worker_pid(g, 1, generation), lambda: g.signal(signal.SIGHUP))
        if run is not None:
            break
    else:
        raise TestFailure("8 runs showed nothing (see _queue_to_a_draining_worker)")
    socks, queued = run
    g.wait_log(r"\[info\] master\[%d\]: worker 2 \(pid %d\) exited$" % (g.pid, leaving), timeout=5 * TIME_SCALE)
    bad = _answered_keep_alive(socks, queued)
    assert not bad, "%d of 16 connections (%d were queued to the drained worker) not answered as they should: %s" % (
        len(bad), len(queued), bad)
    new = {_worker_pid(g, 1, generation + 1), _worker_pid(g, 2, generation + 1)}
    got = {pid: n for pid, n in owners(g, [s for s in socks if s.getsockname()[1] in queued]).items() if n}
    assert set(got) <= new and sum(got.values()) == len(queued), (got, new)
    assert_none_lost(g)
    for s in socks:
        s.close()


def _unix_inodes(path=None):
    """{inode: state} of the Unix sockets bound to PATH (all if None), from /proc/net/unix."""
    out = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            cols = line.split()
            if path is None or (len(cols) >= 8 and cols[7] == path):
                out[cols[6]] = cols[5]
    return out


def _socket_inodes(pid):
    got = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", link)
        if m:
            got.append(m.group(1))
    return got


def test_a_burst_over_a_unix_socket_listener_is_shared(ctx):
    """A Unix-socket listener's connections are handed over as TCP ones are
    (the client's address is the empty one of an unnamed socket), and each
    is served where it lands."""
    path = os.path.join(ctx.tmpdir, "esgate.sock")
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE),
                               listen="127.0.0.1:0, \"unix:%s\"" % path))
    socks = []
    for _ in range(16):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    pids = g.workers()

    def split():
        ours = {i for i, st in _unix_inodes(path).items() if st == "03"}  # connected: accepted ends
        per = {pid: len(ours & set(_socket_inodes(pid))) for pid in pids}
        return per if sum(per.values()) == 16 else None

    per = wait_for(split, 10, "16 Unix connections held by the workers")
    for s in socks:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = s.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        s.close()
    assert min(per.values()) >= 5, "16 Unix connections split %s" % per


def test_a_new_binary_holds_only_its_own_queues(ctx):
    """USR2: the new master makes its own socket pairs; the old master's
    (SOCK_CLOEXEC) do not cross exec, so the new one holds as many Unix
    sockets as the old one did."""
    from test_upgrade import _start_upgrade

    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=2))
    unix = set(_unix_inodes())
    before = len([i for i in _socket_inodes(g.pid) if i in unix])
    assert before >= 2 * 2 * 2, before  # a pair per slot, at least one per worker of two generations
    new = _start_upgrade(ctx, g)
    wait_for(lambda: (lambda ws: ws if len(ws) == 2 else None)(harness_children(new)), 15,
             "2 workers under the new master %d" % new)
    unix = set(_unix_inodes())
    after = len([i for i in _socket_inodes(new) if i in unix])
    assert after == before, "new master: %d Unix sockets, the old one had %d" % (after, before)
