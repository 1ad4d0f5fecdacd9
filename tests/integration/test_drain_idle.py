"""A draining worker closes its idle HTTP/1.1 keep-alive connections.

When a worker drains (HUP reload, TTOU, max_requests, QUIT) it stops
accepting, and 250 ms later (WORKER_GOAWAY_DELAY, worker/worker.c) asks
h2o to shut down: GOAWAY to HTTP/2, "Connection: close" on every HTTP/1.1
answer from then on.  An HTTP/1.1 connection that is idle between
requests got neither: it stayed open until its client sent another
request or its keep-alive timeout fired, and the old worker lingered (up
to graceful_timeout) after every reload because a client held one.
nginx (ngx_close_idle_connections) and HAProxy close such connections at
once on a graceful stop; so does esgate since the drain's GOAWAY step
(worker/guard.h's guard_close_idle): libh2o's own HTTP/1.1 code closes
them (a TLS one with its close_notify), while a connection with a request
in flight gets its whole answer, with "Connection: close".

On main 9bd619f (before this) the idle connections here got no EOF
within 5 s (graceful_timeout and keepalive_timeout are 60 s; all four
tests failed) and the old worker stayed; and the request in flight at the
drain's GOAWAY step was answered "Connection: keep-alive" (libh2o 2.2.5
decides keep-alive when it parses a request), its connection left open.

Only connections quiet for a second are closed (worker/worker.c's
WORKER_IDLE_CLOSE_MS): the idle ones here had their last answer just
before the signal, so they end about a second after it."""

import os
import re
import signal
import socket
import ssl
import threading
import time

from harness import (TIME_SCALE, TestFailure, connection_owner, free_port, get, make_config, pid_alive, read_response,
                     wait_for)
from test_tls import FinishedHeld, make_ca, make_cert, tls_listener

# An idle connection must see its end this soon after the drain starts
# (the drain's GOAWAY step is 250 ms in); on main it waited for 60 s.
EOF_WITHIN = 5 * TIME_SCALE


class _Client:
    """One HTTP/1.1 keep-alive connection, plain or TLS (SCTX)."""

    def __init__(self, port, sctx=None):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.cport = raw.getsockname()[1]
        # a TLS end without close_notify raises SSLEOFError: the close must be clean
        self.sock = (sctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
                     if sctx is not None else raw)
        self.f = self.sock.makefile("rb")

    def get(self, path="/"):
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
        return read_response(self.f, require_length=True)

    def wait_eof(self, timeout):
        """Seconds until the server closed this (idle) connection; fails if
        it sent anything, or did not close within TIMEOUT."""
        start = time.monotonic()
        self.sock.settimeout(timeout)
        try:
            data = self.f.read(1)
        except (socket.timeout, TimeoutError):
            raise TestFailure("idle connection from port %d still open after %.1f s" % (self.cport, timeout))
        if data != b"":
            raise TestFailure("idle connection from port %d got %r instead of its end" % (self.cport, data))
        return time.monotonic() - start

    def close(self):
        self.f.close()
        self.sock.close()


def _start(ctx, workers, esdemo_args=(), extra=""):
    d = ctx.tmpdir
    make_ca(d)
    cert, key = make_cert(d, "a", ["localhost"])
    sctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    demo = ctx.esdemo(*esdemo_args)
    tls_port = free_port()
    g = ctx.esgate(make_config(demo.port, workers=workers, graceful_timeout="60s", keepalive_timeout="60s",
                               request_timeout="%ds" % (10 * TIME_SCALE), extra=extra,
                               listen="127.0.0.1:0, " + tls_listener(tls_port, cert, key)), workers=workers)
    return demo, g, tls_port, sctx


def _idle_on(g, port, pid, sctx=None, tries=200):
    """An idle keep-alive connection (one request answered on it) held by
    worker PID."""
    for _ in range(tries):
        c = _Client(port, sctx)
        status, headers, _ = c.get("/healthz")
        assert status == 200 and headers.get("connection", "") != "close", (status, headers)
        if connection_owner(g.workers(), port, c.cport) == pid:
            return c
        c.close()
    raise TestFailure("no connection of %d reached worker %d" % (tries, pid))


def test_hup_closes_idle_keepalive_connections_and_finishes_the_request_in_flight(ctx):
    demo, g, tls_port, sctx = _start(ctx, 1)
    (old,) = g.workers()
    plain = _idle_on(g, g.port, old)
    tls = _idle_on(g, tls_port, old, sctx)

    # a request in flight across the drain: esdemo sits on it for 3 s
    demo.control(latency_ms=3000)
    busy = _Client(g.port)
    result = {}

    def slow():
        try:
            result["resp"] = busy.get("/")
            result["eof"] = busy.f.read(1)
        except Exception as e:  # noqa: BLE001
            result["error"] = e
        result["t"] = time.monotonic()

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    wait_for(lambda: demo.requests() >= 1, 5, "the slow request to reach esdemo")

    g.signal(signal.SIGHUP)
    g.wait_log(r"\[info\] worker 1\[%d\]: draining \d+ connection\(s\)$" % old, timeout=15)
    waited = [plain.wait_eof(EOF_WITHIN), tls.wait_eof(EOF_WITHIN)]
    eof_at = time.monotonic()
    closed = re.findall(r"\[info\] worker 1\[%d\]: closing (\d+) idle HTTP/1\.1 connection\(s\)$" % old,
                        g.log_text(), re.M)
    assert sum(int(n) for n in closed) >= 2, closed  # both idle ones (maybe in two sweeps), not the busy one

    t.join(15 * TIME_SCALE)
    assert "error" not in result, result.get("error")
    status, headers, body = result["resp"]
    assert status == 200 and body, (status, headers, body)
    assert headers.get("connection") == "close", headers
    assert result["eof"] == b"", result["eof"]
    assert result["t"] > eof_at, "the slow request was answered before the idle connections were closed"
    wait_for(lambda: not pid_alive(old), 10 * TIME_SCALE, "the old worker %d to exit" % old)
    print("idle plain EOF %.3f s, TLS %.3f s after the drain line was seen" % tuple(waited))
    for c in (plain, tls, busy):
        c.close()


def test_ttou_closes_idle_keepalive_connections(ctx):
    demo, g, tls_port, sctx = _start(ctx, 2)
    # TTOU drains the newest slot: worker 2
    m = g.wait_log(r"\[info\] master\[%d\]: worker 2 \(pid (\d+)\) started" % g.pid)
    second = int(m[0].group(1))
    plain = _idle_on(g, g.port, second)
    tls = _idle_on(g, tls_port, second, sctx)
    sent = time.monotonic()
    g.signal(signal.SIGTTOU)
    plain.wait_eof(EOF_WITHIN)
    tls.wait_eof(EOF_WITHIN)
    wait_for(lambda: not pid_alive(second), 10 * TIME_SCALE, "worker 2 (%d) to exit" % second)
    print("worker 2 gone %.3f s after TTOU" % (time.monotonic() - sent))
    assert len(g.wait_workers(1)) == 1
    for c in (plain, tls):
        c.close()


def test_quit_with_an_idle_connection_stops_well_before_graceful_timeout(ctx):
    demo, g, tls_port, sctx = _start(ctx, 1)
    (only,) = g.workers()
    plain = _idle_on(g, g.port, only)
    sent = time.monotonic()
    g.signal(signal.SIGQUIT)
    plain.wait_eof(EOF_WITHIN)
    rc = g.wait_exit(10 * TIME_SCALE)
    assert rc == 0, (rc, g.log_text()[-2000:])
    print("master gone %.3f s after QUIT" % (time.monotonic() - sent))
    plain.close()


def test_max_requests_retirement_closes_idle_keepalive_connections(ctx):
    demo, g, tls_port, sctx = _start(ctx, 1, extra="max_requests: 20\n")
    (only,) = g.workers()
    plain = _idle_on(g, g.port, only)
    tls = _idle_on(g, tls_port, only, sctx)
    for _ in range(40):  # fresh connections, until the worker retires
        assert get(g.port, "/healthz")[0] == 200
        if g.count(r"\[info\] worker 1\[%d\]: served \d+ requests \(max_requests\): retiring$" % only):
            break
    else:
        raise TestFailure("worker %d did not retire" % only)
    plain.wait_eof(EOF_WITHIN)
    tls.wait_eof(EOF_WITHIN)
    wait_for(lambda: not pid_alive(only), 10 * TIME_SCALE, "the retired worker %d to exit" % only)
    for c in (plain, tls):
        c.close()


def test_a_tls_connection_whose_first_request_came_with_its_finished_is_closed_idle(ctx):
    """A TLS 1.3 client may send its first request in the segment that
    carries its Finished: libh2o reads it inside the handshake's callback,
    and the answer is asynchronous (GET / goes upstream).  Idle after that
    answer, the connection is closed by the drain like any other (before
    the fix the guard still took it for a handshake under way and the old
    worker kept it: no EOF within 5 s of the HUP)."""
    demo, g, tls_port, sctx = _start(ctx, 1)
    c = FinishedHeld(tls_port, sctx)
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")  # with the client's Finished: one send
        buf = b""
        while b"\r\n\r\n" not in buf:
            got = c.recv()
            assert got, "closed before the answer: %r" % buf
            buf += got
        head, _, body = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
        while len(body) < length:
            got = c.recv()
            assert got, "closed in the answer's body"
            body += got
        g.signal(signal.SIGHUP)
        c.raw.settimeout(5 * TIME_SCALE)
        start = time.monotonic()
        try:
            rest = c.recv()
        except (socket.timeout, TimeoutError):
            raise TestFailure("idle TLS connection (first request with the Finished) still open %.1f s after the HUP"
                              % (time.monotonic() - start))
        assert rest == b"", rest
    finally:
        c.close()
