"""An HTTP/1.1 client that hangs up while its request waits for the node:
the upstream request is cancelled (the node sees its connection closed)
and the access log says 499, as nginx does, instead of the search running
to its end for nobody.  libh2o 2.2.5 does not read an HTTP/1.1 connection
while a request on it is pending, so the guard (worker/guard.c) looks at
the socket's TCP state while the request is out; these tests hold the
node's answer for seconds and time how soon the node is told.

What must not be taken for a client gone: one that waits (keep-alive,
answered after the hold), and one that pipelined its next request behind
the pending one and waits."""

import json
import os
import select
import socket
import ssl
import subprocess
import threading
import time

import harness
from harness import TIME_SCALE, make_config, wait_for
from test_access_log import _json_lines
from test_tls import make_ca, make_cert, tls_listener
from test_upstream_client import ROUTES, _cleanup, _ok, _raw

HOLD = 2.0 * TIME_SCALE  # the node holds each answer this long
SOON = 1.2 * TIME_SCALE  # the node is told within this of the client's hang-up


class Node:
    """A RawUpstream that holds every answer HOLD seconds unless esgate
    closes the connection first; records (path, seconds held) of those
    closed early."""

    def __init__(self, ctx):
        self.cancelled = []
        self.lock = threading.Lock()
        self.u = _raw(ctx, lambda r: [self._hold(r)] + _ok(json.dumps({"path": r["path"]}).encode()))

    def _hold(self, req):
        def step(c):
            t0 = time.monotonic()
            ready, _, _ = select.select([c], [], [], HOLD)
            if ready and c.recv(1, socket.MSG_PEEK) == b"":
                with self.lock:
                    self.cancelled.append((req["path"], time.monotonic() - t0))
                return "close"
            return None
        return step

    def wait_cancelled(self, path, within):
        got = wait_for(lambda: [held for p, held in self.cancelled if p == path] or None, HOLD + 5,
                       "the node's connection for %s closed" % path)
        assert got[0] < within, "%s cancelled only after %.2fs" % (path, got[0])
        print("  %s: the node's connection closed %.2fs into its request" % (path, got[0]))


def _start(ctx, tls=False):
    os.chmod(ctx.tmpdir, 0o755)  # workers (nobody) open the access log
    log = os.path.join(ctx.tmpdir, "access.log")
    node = Node(ctx)
    listen = "127.0.0.1:0"
    ca = None
    if tls:
        ca = make_ca(ctx.tmpdir)
        cert, key = make_cert(ctx.tmpdir, "a", ["localhost"])
        tport = harness.free_port()
        listen += ", " + tls_listener(tport, cert, key)
    g = ctx.esgate(make_config(node.u.port, workers=1, keepalive_timeout="10s",
                               request_timeout="%dms" % (3 * HOLD * 1000),
                               extra=ROUTES + "access_log: {file: %s, format: json}\n" % log,
                               listen=listen), workers=1)
    g.tls_port = tport if tls else None
    url = "https://localhost:%d" % tport if tls else "http://127.0.0.1:%d" % g.port
    return node, g, url, ca, log


def _line(log, rid):
    return wait_for(lambda: [d for d in _json_lines(log) if d["request_id"] == rid] or None, HOLD + 5,
                    "the access log line of %s" % rid)[0]


def _leaves(node, g, path, rid, ca=None):
    """A client that sends PATH with request id RID over HTTP/1.1 (TLS if
    CA) and hangs up once the node has the request."""
    raw = socket.create_connection(("127.0.0.1", g.tls_port if ca else g.port), timeout=10 * TIME_SCALE)
    s = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost") if ca else raw
    s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: %s\r\n\r\n" % (path.encode(), rid.encode()))
    wait_for(lambda: any(r["path"] == path for r in node.u.requests), 10 * TIME_SCALE, "%s at the node" % path)
    s.close()


def _hang_up(ctx, tls):
    try:
        node, g, url, ca, log = _start(ctx, tls)
        _leaves(node, g, "/raw/gone", "gone-early", ca)
        node.wait_cancelled("/raw/gone", SOON)
        line = _line(log, "gone-early")
        assert line["status"] == 499, line
        # the worker goes on, with curl on a new connection
        out = subprocess.run(["curl", "-s", "--http1.1", "-o", "/dev/null", "-w", "%{http_code}"] +
                             (["--cacert", ca] if ca else []) + [url + "/healthz"], capture_output=True)
        assert out.stdout == b"200", out
    finally:
        _cleanup(ctx)


def test_client_that_hangs_up_cancels_the_upstream_request(ctx):
    _hang_up(ctx, tls=False)


def test_client_that_hangs_up_over_tls_cancels_the_upstream_request(ctx):
    _hang_up(ctx, tls=True)


def test_half_close_counts_as_gone(ctx):
    """A client that shuts its sending side after the request is treated
    as gone, as nginx does (its answer could still be read, but nginx and
    HAProxy's abortonclose take the FIN for a hang-up)."""
    try:
        node, g, url, ca, log = _start(ctx)
        s = socket.create_connection(("127.0.0.1", g.port))
        s.sendall(b"GET /raw/half HTTP/1.1\r\nHost: a\r\nX-Request-Id: half-closed\r\n\r\n")
        wait_for(lambda: any(r["path"] == "/raw/half" for r in node.u.requests), 10 * TIME_SCALE, "the request at the node")
        s.shutdown(socket.SHUT_WR)
        node.wait_cancelled("/raw/half", SOON)
        assert _line(log, "half-closed")["status"] == 499
        s.close()
    finally:
        _cleanup(ctx)


def test_client_that_pipelined_and_hangs_up_is_noticed_too(ctx):
    """Bytes of its next request wait unread behind the pending one; the
    client hangs up all the same: the kernel's state, not the bytes,
    tells."""
    try:
        node, g, url, ca, log = _start(ctx)
        s = socket.create_connection(("127.0.0.1", g.port))
        s.sendall(b"GET /raw/first HTTP/1.1\r\nHost: a\r\nX-Request-Id: first\r\n\r\n"
                  b"GET /raw/second HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_for(lambda: any(r["path"] == "/raw/first" for r in node.u.requests), 10 * TIME_SCALE,
                 "the request at the node")
        s.close()
        node.wait_cancelled("/raw/first", SOON)
        assert _line(log, "first")["status"] == 499
        assert not any(r["path"] == "/raw/second" for r in node.u.requests), node.u.requests
    finally:
        _cleanup(ctx)


def test_client_that_waits_or_pipelines_is_answered(ctx):
    """A client that keeps its connection open gets its answer after the
    hold; so does one that sent its next request behind the pending one
    (its bytes wait unread: that is not a hang-up)."""
    try:
        node, g, url, ca, log = _start(ctx)
        s = socket.create_connection(("127.0.0.1", g.port), timeout=HOLD + 10)
        s.sendall(b"GET /raw/a HTTP/1.1\r\nHost: a\r\n\r\nGET /raw/b HTTP/1.1\r\nHost: a\r\n\r\n")
        f = s.makefile("rb")
        for path in (b"/raw/a", b"/raw/b"):
            status, headers, body = harness.read_response(f, require_length=True)
            assert status == 200 and json.loads(body)["path"] == path.decode(), (status, body)
        assert node.cancelled == [], node.cancelled
        f.close()
        s.close()
    finally:
        _cleanup(ctx)
