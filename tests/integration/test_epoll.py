"""A worker's epoll registrations of client sockets (worker/h2oepoll.c):
keep-alive requests over HTTP/1.1 (clear-text and TLS) and HTTP/2 cost no
epoll_ctl in the steady state (counted with strace on the worker, a count,
not a timing), and the lazy registrations stay correct when pipelined
bytes arrive while h2o is not reading, when sockets close mid-answer (polled for reading, for
writing, or both) and over HTTP/2.  The teardown's log scan makes the
AddressSanitizer and valgrind runs of this file check memory too."""

import os
import re
import signal
import socket
import subprocess
import time

from harness import HTTP_TIMEOUT, TestFailure, fd_links, get, make_config, read_response, tcp_rows, wait_for

ROUTES = """\
routes:
  - path: /big
    methods: [GET]
    upstream: {method: GET, path: /_esdemo/big}
    params: [bytes]
"""


def _start(ctx, **kw):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=1, request_timeout="30s", keepalive_timeout="30s", extra=ROUTES,
                               **kw), workers=1)
    (w,) = g.workers()
    return d, g, w


def _tracer(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^TracerPid:\s*(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


def _strace(ctx, pid, action, args):
    """Runs ACTION() while `strace -f ARGS -o FILE` is attached to every
    thread of PID; returns (FILE's lines, ACTION's result)."""
    out = os.path.join(ctx.tmpdir, "strace-%d-%f.txt" % (pid, time.monotonic()))
    cmd = ["strace", "-f", "-o", out] + list(args)
    for tid in sorted(os.listdir("/proc/%d/task" % pid)):
        cmd += ["-p", tid]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _tracer(pid) == p.pid or p.poll() is not None, 10, "strace attached to %d" % pid)
        if p.poll() is not None:
            raise TestFailure("strace exited %s: %s" % (p.returncode, p.stderr.read().decode()))
        result = action()
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        p.wait(30)
        p.stderr.close()
    with open(out) as f:
        return f.read().splitlines(), result


def strace_count(ctx, pid, action, syscalls="epoll_ctl"):
    """`strace -f -c -e trace=SYSCALLS -p PID` around ACTION(): ({syscall: calls}, ACTION's result)."""
    lines, result = _strace(ctx, pid, action, ["-c", "-e", "trace=" + syscalls])
    counts = {}
    for line in lines:
        cols = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(cols) >= 5 and cols[-1] != "total" and re.match(r"^[\d.]+$", cols[0]):
            counts[cols[-1]] = int(cols[3])
    return counts, result


def epoll_ctl_by_epfd(ctx, pid, action):
    """The epoll_ctl calls PID makes during ACTION(), per epoll fd: ({epfd: calls}, ACTION's result)."""
    lines, result = _strace(ctx, pid, action, ["-qq", "-e", "trace=epoll_ctl"])
    counts = {}
    for line in lines:
        m = re.search(r"epoll_ctl\((\d+),", line)
        if m:
            counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
    return counts, result


def _connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT)


def _get_on(s, f, path="/"):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    return read_response(f, require_length=True)


def _epoll_sets(pid):
    """{epfd: [(tfd, events, data)]} of PID's epoll fds, from /proc/PID/fdinfo."""
    sets = {}
    for fd, target in fd_links(pid).items():
        if target != "anon_inode:[eventpoll]":
            continue
        try:
            with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
                text = f.read()
        except FileNotFoundError:
            continue
        sets[fd] = [(int(t), int(e, 16), int(d, 16)) for t, e, d in
                    re.findall(r"^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)", text, re.M)]
    return sets


def h2o_epfd(pid):
    """h2o's epoll fd in worker PID: the one libev's epoll set watches."""
    sets = _epoll_sets(pid)
    for regs in sets.values():
        for tfd, _, _ in regs:
            if tfd in sets:
                return tfd
    raise TestFailure("no epoll fd inside another in %d: %r" % (pid, sets))


def h2o_socket_registrations(pid):
    """{fd: (events, data)} of the sockets in h2o's epoll set."""
    links = fd_links(pid)
    return {t: (e, d) for t, e, d in _epoll_sets(pid).get(h2o_epfd(pid), [])
            if links.get(t, "").startswith("socket:")}


def test_keepalive_requests_cost_no_epoll_ctl(ctx):
    d, g, w = _start(ctx)
    nconns, n = 4, 200
    conns = [_connect(g.port) for _ in range(nconns)]
    files = [s.makefile("rb") for s in conns]
    try:
        # Warm up: every connection registered, the upstream pool filled.
        for _ in range(2):
            for s, f in zip(conns, files):
                assert _get_on(s, f)[0] == 200

        def load():
            for i in range(n):
                status, _, body = _get_on(conns[i % nconns], files[i % nconns])
                if status != 200:
                    raise TestFailure("request %d: %d %r" % (i, status, body[:200]))
            return n

        counts, done = strace_count(ctx, w, load)
        regs = h2o_socket_registrations(w)
    finally:
        for s in conns:
            s.close()
    calls = counts.get("epoll_ctl", 0)
    print("epoll_ctl: %d calls over %d keep-alive requests on %d connections" % (calls, done, nconns))
    # libh2o 2.2.5 alone: 2 per request (DEL after the request, ADD after the answer).
    assert calls <= 2, "%d epoll_ctl over %d keep-alive requests (want none)" % (calls, done)
    # The idle connections are registered for reading, under their fd
    # number (worker/h2oepoll.c gives h2o its own pointer back).
    assert len(regs) == nconns and all(ev & 1 and data == fd for fd, (ev, data) in regs.items()), regs


def test_http2_requests_cost_no_epoll_ctl(ctx):
    d, g, w = _start(ctx)
    n = 500

    def load():
        r = subprocess.run(["h2load", "-n", str(n), "-c", "1", "-m", "10", "http://127.0.0.1:%d/" % g.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60 * 5)
        out = r.stdout.decode()
        m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
        if r.returncode != 0 or not m or int(m.group(1)) != n:
            raise TestFailure("h2load: %s" % out)
        return n

    ep = h2o_epfd(w)
    counts, _ = epoll_ctl_by_epfd(ctx, w, load)
    calls = counts.get(ep, 0)
    print("epoll_ctl: %d calls on h2o's epoll fd over %d HTTP/2 requests on one new connection (%r by epfd; "
          "the others are libev's, for the upstream connections)" % (calls, n, counts))
    # The new connection's ADD, and a MOD pair each time a write had to
    # wait for the socket (a few, more on a slow build): never one a request.
    assert calls <= n // 50, "%d epoll_ctl on h2o's epoll fd over %d HTTP/2 requests on one connection" % (
        calls, n)


def test_pipelined_bytes_while_answering(ctx):
    # The second request arrives while h2o has stopped reading (the first is
    # at the upstream): the registration h2o dropped is still in the kernel,
    # reports it, is narrowed, and h2o reads it once it reads again.
    d, g, w = _start(ctx)
    expected = d.get("/")[2]
    d.control(latency_ms=200)
    s = _connect(g.port)
    f = s.makefile("rb")
    try:
        for round_ in range(3):
            before = d.requests()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: d.requests() > before, 10, "the first request at the upstream")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r1, r2, r3 = (read_response(f, require_length=True) for _ in range(3))
            assert r1[0] == 200 and r1[2] == expected, (round_, r1)
            assert r2[0] == 200 and r2[2] == b'{"status":"ok"}', (round_, r2)
            assert r3[0] == 200 and r3[2] == expected, (round_, r3)
        # Only half a request arrives while the answer is pending; the rest later.
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTT")
        r1 = read_response(f, require_length=True)
        s.sendall(b"P/1.1\r\nHost: x\r\n\r\n")
        r2 = read_response(f, require_length=True)
        assert r1[0] == 200 and r2[0] == 200 and r2[2] == b'{"status":"ok"}', (r1, r2)
    finally:
        s.close()
    d.control(latency_ms=0)
    assert g.workers() == [w]


def test_sockets_closed_mid_answer(ctx):
    d, g, w = _start(ctx)
    expected = d.get("/")[2]
    big = 4 * 1024 * 1024
    # Pipelined big answers, closed after part of the first: h2o is polling
    # for writing (the client reads nothing) and holds more requests.
    for i in range(6):
        s = _connect(g.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n" % big * 3 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < 1000 * (i + 1):
            chunk = s.recv(4096)
            if not chunk:
                raise TestFailure("closed after %d bytes" % got)
            got += len(chunk)
        s.close()
    # Closed while the answer is at the upstream (h2o not reading), with
    # pipelined bytes unread, and with nothing sent at all.
    d.control(latency_ms=100)
    for i in range(6):
        s = _connect(g.port)
        before = d.requests()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: d.requests() > before, 10, "the request at the upstream")
        if i % 2:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
        _connect(g.port).close()
    d.control(latency_ms=0)
    # HTTP/2 streams cut off mid-answer by a slow client's timeout.
    for _ in range(3):
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-m", "0.5", "--limit-rate", "200k", "-o",
                            os.devnull, "http://127.0.0.1:%d/big?bytes=%d" % (g.port, big)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        assert r.returncode == 28, (r.returncode, r.stdout)
    # Then the same worker serves on new connections and old fd numbers.
    for _ in range(20):
        status, _, body = get(g.port, "/")
        assert status == 200 and body == expected, (status, body)
    assert g.workers() == [w], "the worker changed: %s, was %d" % (g.workers(), w)
    # No registration outlives its socket: every client connection is gone.
    wait_for(lambda: h2o_socket_registrations(w) == {}, 10, "no socket in h2o's epoll set")



def test_tls_keepalive_requests_cost_no_epoll_ctl(ctx):
    # TLS is a layer above the same socket and the same read start/stop
    # calls: the registrations are kept the same way.
    import ssl

    from test_tls import start_tls

    d, g, port, ca = start_tls(ctx, workers=1, sni=False)
    (w,) = g.workers()
    sctx = ssl.create_default_context(cafile=ca)  # no ALPN: HTTP/1.1
    nconns, n = 2, 100
    conns = [sctx.wrap_socket(_connect(port), server_hostname="localhost") for _ in range(nconns)]
    files = [s.makefile("rb") for s in conns]
    try:
        for s, f in zip(conns, files):
            assert _get_on(s, f)[0] == 200

        def load():
            for i in range(n):
                status, _, body = _get_on(conns[i % nconns], files[i % nconns])
                if status != 200:
                    raise TestFailure("request %d: %d %r" % (i, status, body[:200]))
            return n

        counts, done = strace_count(ctx, w, load)
    finally:
        for s in conns:
            s.close()
    calls = counts.get("epoll_ctl", 0)
    print("epoll_ctl: %d calls over %d keep-alive requests over TLS on %d connections" % (calls, done, nconns))
    assert calls <= 2, "%d epoll_ctl over %d keep-alive requests over TLS (want none)" % (calls, done)


def test_new_connections_cost_no_fcntl_nor_setsockopt(ctx):
    # libh2o sets O_NONBLOCK with fcntl (twice) on every socket handed to
    # it; accept4 made it non-blocking already (worker/h2oepoll.c skips
    # them).  TCP_NODELAY is set once on the listener, whose accepted
    # sockets inherit it (worker.c checks the first one).
    d, g, w = _start(ctx)
    n = 50

    def load():
        for i in range(n):
            s = _connect(g.port)
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status = read_response(s.makefile("rb"), require_length=True)[0]
            finally:
                s.close()
            if status != 200:
                raise TestFailure("request %d: %d" % (i, status))
        return n

    counts, _ = strace_count(ctx, w, load, syscalls="fcntl,accept4,setsockopt")
    print("fcntl: %d, setsockopt: %d calls over %d connections (accept4: %d)" % (
        counts.get("fcntl", 0), counts.get("setsockopt", 0), n, counts.get("accept4", 0)))
    assert counts.get("accept4", 0) >= n, counts
    assert counts.get("fcntl", 0) <= 2, "%d fcntl over %d new connections (want none)" % (counts.get("fcntl", 0), n)
    # (the upstream client sets options on its own new connections: a few)
    assert counts.get("setsockopt", 0) <= n // 10, "%d setsockopt over %d new connections (want none)" % (
        counts.get("setsockopt", 0), n)


# ---- Connection: close: a request there at accept is read without the kernel ----

def _queued_bytes(port):
    """{client port: bytes in the receive queue} of the server side of
    PORT's connections (/proc/net/tcp and tcp6): established, or
    half-closed by the client (CLOSE_WAIT)."""
    out = {}
    for cols in tcp_rows():
        local, remote, state, queues = cols[1], cols[2], cols[3], cols[4]
        if state in ("01", "08") and int(local.rsplit(":", 1)[1], 16) == port:
            out[int(remote.rsplit(":", 1)[1], 16)] = int(queues.split(":")[1], 16)
    return out


def _while_stopped(pid, port, clients, action):
    """Stops worker PID, runs ACTION() (which connects and sends), waits
    until the server side of each of the CLIENTS sockets holds bytes (so
    they are there when the worker accepts), and lets the worker go on."""
    os.kill(pid, signal.SIGSTOP)
    try:
        result = action()
        wait_for(lambda: all(_queued_bytes(port).get(s.getsockname()[1], 0) > 0 for s in clients), 10,
                 "the requests in the server's receive queues")
    finally:
        os.kill(pid, signal.SIGCONT)
    return result


def test_close_requests_there_at_accept_cost_no_h2o_poll(ctx):
    # A new connection's first read registration is answered without the
    # kernel (worker/h2oepoll.c: h2oepoll_fresh): h2o reads at once, and a
    # socket whose whole request came with it is never registered.  With
    # the requests queued before the worker accepts them, a Connection:
    # close request costs no epoll_ctl and no epoll_wait on h2o's epoll fd,
    # and one read.  (On main before: an epoll_ctl ADD and about 4
    # epoll_wait on h2o's fd per request.)
    d, g, w = _start(ctx)
    expected = d.get("/")[2]
    assert get(g.port, "/")[0] == 200  # the upstream connection made
    ep = h2o_epfd(w)
    n = 20
    conns = []

    def connect_all():
        for _ in range(n):
            s = _connect(g.port)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            conns.append(s)

    def load():
        _while_stopped(w, g.port, conns, connect_all)
        for i, s in enumerate(conns):
            status, _, body = read_response(s.makefile("rb"))
            if status != 200 or body != expected:
                raise TestFailure("request %d: %d %r" % (i, status, body[:200]))
            if s.recv(1) != b"":
                raise TestFailure("request %d: the connection is still open after Connection: close" % i)
        return n

    try:
        lines, _ = _strace(ctx, w, load, ["-qq", "-e", "trace=epoll_wait,epoll_ctl,read,accept4"])
    finally:
        for s in conns:
            s.close()
    accepted, accepts, reads, h2o_waits, h2o_ctls, waits = set(), 0, 0, 0, 0, 0
    for line in lines:
        m = re.search(r"(\w+)\((\d+),.*\)\s+=\s+(-?\d+)", line)
        if not m:
            continue
        call, fd, ret = m.group(1), int(m.group(2)), int(m.group(3))
        if call == "accept4" and ret >= 0:
            accepted.add(ret)
            accepts += 1
        elif call == "read" and fd in accepted:
            reads += 1
        elif call == "epoll_wait":
            waits += 1
            h2o_waits += fd == ep
        elif call == "epoll_ctl" and fd == ep:
            h2o_ctls += 1
    print("%d close requests queued before accept: %d accept4, %d reads of them, epoll_wait %d (on h2o's fd %d), "
          "epoll_ctl on h2o's fd %d" % (n, accepts, reads, waits, h2o_waits, h2o_ctls))
    assert accepts == n and reads == n, (accepts, reads)
    assert h2o_ctls == 0, "%d epoll_ctl on h2o's epoll fd over %d close requests (want none)" % (h2o_ctls, n)
    assert h2o_waits == 0, "%d epoll_wait on h2o's epoll fd over %d close requests (want none)" % (h2o_waits, n)
    # libev's: one for each accept and one for each upstream answer at most
    assert waits <= 2 * n + 2, "%d epoll_wait over %d close requests" % (waits, n)


def test_connections_there_at_accept_in_every_shape(ctx):
    # What the first read without the kernel must not break, each queued
    # before the worker accepts (its first read sees it all) and one that
    # has not sent yet: pipelined requests, a half-closed client, a client
    # that sends nothing at first and then its request a byte at a time,
    # HTTP/2 with prior knowledge, and TLS.
    import ssl
    import threading

    from test_tls import start_tls

    d, g, tls_port, ca = start_tls(ctx, workers=1, sni=False)
    (w,) = g.workers()
    expected = d.get("/")[2]
    assert get(g.port, "/")[0] == 200
    results = {}

    def tls_client():
        try:
            sctx = ssl.create_default_context(cafile=ca)
            with sctx.wrap_socket(_connect(tls_port), server_hostname="localhost") as t:
                t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                results["tls"] = read_response(t.makefile("rb"))
        except Exception as e:  # noqa: BLE001 (reported below)
            results["tls"] = e

    def h2_client():
        r = subprocess.run(["h2load", "-n", "20", "-c", "1", "-m", "10", "http://127.0.0.1:%d/" % g.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        results["h2"] = r.stdout.decode()

    queued, slow = [], None  # pipelined, half: connected while the worker is stopped
    threads = [threading.Thread(target=tls_client), threading.Thread(target=h2_client)]
    try:
        def queue():
            # connected now, accepted after: the 2 s keepalive_timeout runs from the accept
            queued.extend([_connect(g.port), _connect(g.port)])
            pipelined, half = queued
            pipelined.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
                              b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            half.shutdown(socket.SHUT_WR)
            for t in threads:
                t.start()
            # the TLS and HTTP/2 clients' first bytes (ClientHello, preface) queued too
            wait_for(lambda: sum(1 for v in _queued_bytes(tls_port).values() if v > 0) >= 1 and
                     sum(1 for v in _queued_bytes(g.port).values() if v > 0) >= 3, 10,
                     "the TLS and HTTP/2 clients' first bytes queued")

        _while_stopped(w, g.port, queued, queue)
        pipelined, half = queued
        # the slow one (connected now: keepalive_timeout is 2 s from the
        # accept): accepted with nothing to read, then a byte at a time
        req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        slow = _connect(g.port)
        time.sleep(0.05)
        for i in range(len(req)):
            slow.sendall(req[i:i + 1])
            time.sleep(0.002)
        f = pipelined.makefile("rb")
        r = [read_response(f) for _ in range(3)]
        assert [x[0] for x in r] == [200, 200, 200] and r[1][2] == expected and r[2][2] == expected, r
        assert pipelined.recv(1) == b"", "pipelined: still open after its Connection: close request"
        f = half.makefile("rb")
        r = read_response(f, require_length=True)
        assert r[0] == 200 and r[2] == expected, r
        half.settimeout(HTTP_TIMEOUT)
        assert half.recv(1) == b"", "half-closed: not closed after its answer"
        r = read_response(slow.makefile("rb"))
        assert r[0] == 200 and r[2] == expected, r
        # and over TLS: accepted before its ClientHello came
        raw = _connect(tls_port)
        time.sleep(0.05)
        with ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost") as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            r = read_response(t.makefile("rb"))
        assert r[0] == 200 and r[2] == expected, r
        for t in threads:
            t.join(60)
        assert not isinstance(results.get("tls"), Exception), results.get("tls")
        assert results["tls"][0] == 200 and results["tls"][2] == expected, results["tls"]
        m = re.search(r"(\d+) succeeded", results["h2"])
        assert m and int(m.group(1)) == 20 and "h2c" in results["h2"], results["h2"]
    finally:
        for s in queued + [slow]:
            if s is not None:
                s.close()
    assert g.workers() == [w]
    wait_for(lambda: h2o_socket_registrations(w) == {}, 10, "no socket in h2o's epoll set")


def test_request_in_time_is_read_before_its_timeout(ctx):
    # h2o's runs for its own work answer their epoll_wait without the
    # kernel, except when one of its timeouts is due (worker/bridge.c
    # bridge_timeout_due): a keep-alive request that came before
    # keepalive_timeout, on a worker that could not run then (stopped
    # here; on a busy machine, not scheduled), is read and answered when
    # the worker runs again, not cut by the timeout with its bytes unread
    # (a reset).  Failed on the first version of the change.
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=1, keepalive_timeout="1s"), workers=1)
    (w,) = g.workers()
    for round_ in range(3):
        s = _connect(g.port)
        f = s.makefile("rb")
        try:
            assert _get_on(s, f)[0] == 200
            t_answer = time.monotonic()
            os.kill(w, signal.SIGSTOP)
            try:
                time.sleep(max(0.0, t_answer + 0.5 - time.monotonic()))
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # in time: 0.5 s of 1
                time.sleep(max(0.0, t_answer + 1.6 - time.monotonic()))
            finally:
                os.kill(w, signal.SIGCONT)
            status, _, body = read_response(f, require_length=True)
            assert status == 200, (round_, status, body[:200])
        finally:
            s.close()
    assert g.workers() == [w]
