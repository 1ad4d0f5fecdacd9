"""upstream.pipeline_depth: the native client pipelines idempotent requests
to a node (worker/h1client.c).  The requests of one loop turn for a node
go on one connection, up to the depth, in one write; the answers are
matched to them in order.  What must hold: each answer reaches its own
request (chunked and sized answers, bodies, mixed in one line); nothing
is pipelined by default or for a request that may not be sent twice; a
node that answers "Connection: close", or drops the connection, loses no
request behind the first; a request that leaves the line (its client
cancels it, or it times out) costs no other request its answer.

PipeUpstream, below, reads what arrives and records which requests came
in one recv() (a "segment"): the proof that they were pipelined, since
esgate writes a line in one call.  Requests come through HTTP/2, all of
them in one write, so the worker reads them in one turn."""

import json
import threading
import time

import harness
from harness import make_config, raw_request, wait_for
from test_upstream_client import RawUpstream, _cleanup, _ok, _raw
from test_hostile import DATA, END_HEADERS, END_STREAM, HEADERS, RST_STREAM, CANCEL, H2Conn, h2_frame, h2_request_block

ROUTES = """\
routes:
  - path: /raw/{id}
    methods: [GET]
    upstream: {method: GET, path: "/raw/{id}"}
  - path: /search/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
  - path: /write/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_doc"}
    indices: [books]
"""


class PipeUpstream(RawUpstream):
    """A node on 127.0.0.1:PORT that takes pipelined requests.  Each recv()'s
    complete requests form a segment (recorded as (connection, [paths]));
    ANSWER(req) gives each request's steps in order: bytes are written,
    "close" closes the connection, an Event is waited for (at most 30 s)."""

    def __init__(self, answer):
        self.segments = []
        super().__init__(answer)

    @staticmethod
    def _parse(buf):
        """The complete requests at the start of BUF, and what is left."""
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return out, buf
            lines = buf[:end].decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for h in lines[1:]:
                k, v = h.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            if len(buf) < end + 4 + n:
                return out, buf
            out.append({"method": method, "path": path, "headers": headers, "body": buf[end + 4:end + 4 + n]})
            buf = buf[end + 4 + n:]

    def _serve(self, c, n):
        buf = b""
        nth = 0
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                reqs, buf = self._parse(buf + data)
                if not reqs:
                    continue
                for req in reqs:
                    nth += 1
                    req["conn"], req["nth"] = n, nth
                with self.lock:
                    self.segments.append((n, [r["path"] for r in reqs]))
                    self.requests.extend(reqs)
                for req in reqs:
                    for step in self.answer(req):
                        if step == "close":
                            return
                        if isinstance(step, threading.Event):
                            step.wait(30)
                            continue
                        c.sendall(step)
        except OSError:
            return
        finally:
            c.close()

    def paths(self):
        """The paths of the requests that arrived, answered or not."""
        with self.lock:
            return [r["path"] for r in self.requests]


def _chunked(body):
    half = len(body) // 2
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Elastic-Product: Elasticsearch\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
                half, body[:half], len(body) - half, body[half:]))


def _echo(req):
    """The answer names its request: {"path": ..., "body": ...}."""
    return json.dumps({"path": req["path"], "body": req["body"].decode()}).encode()


def _start(ctx, answer, depth=None, request_timeout="3s", more=None):
    u = _raw(ctx, answer, PipeUpstream)
    up = {"max_connections_per_node": "8", "max_retries": "1"}
    if depth is not None:
        up["pipeline_depth"] = str(depth)
    up.update(more or {})
    g = ctx.esgate(make_config(u.port, workers=1, request_timeout=request_timeout, extra=ROUTES, upstream=up),
                   workers=1)
    return u, g


def _gets(h2, first_sid, paths):
    """One write: a GET stream for each of PATHS, from stream FIRST_SID on."""
    h2.send(b"".join(h2_frame(HEADERS, END_STREAM | END_HEADERS, first_sid + 2 * i, h2_request_block(path=p))
                     for i, p in enumerate(paths)))
    return [first_sid + 2 * i for i in range(len(paths))]


def _line(ctx, answer, n, **kw):
    """An esgate with pipeline_depth 4 before a PipeUpstream(ANSWER), and N
    GETs (/raw/0...) sent to it in one write over HTTP/2."""
    u, g = _start(ctx, answer, depth=4, **kw)
    h2 = H2Conn(g.port)
    paths = [b"/raw/%d" % i for i in range(n)]
    return u, g, h2, paths, _gets(h2, 1, paths)


def _still_served(g):
    """The worker goes on: a request on a fresh line gets its own answer."""
    status, _, body = raw_request(g.port, "GET", "/raw/9")
    assert status == 200 and json.loads(body)["path"] == "/raw/9", (status, body)


def _answers(h2, sids, timeout=10):
    h2.wait(lambda: all(s in h2.ended or s in h2.rst for s in sids), timeout * harness.TIME_SCALE, "the answers")
    return {s: (h2.status.get(s), h2.data.get(s, b"")) for s in sids}


def _check_own(got, sids, paths, upstream_path=lambda p: p):
    for s, p in zip(sids, paths):
        status, data = got[s]
        assert status == 200, "stream %d (%s): %s %r" % (s, p, status, data[:200])
        assert json.loads(data)["path"] == upstream_path(p), "stream %d asked %s and got %r" % (s, p, data[:200])


def test_one_turn_is_one_line_and_each_answer_its_own(ctx):
    """12 GETs in one turn, depth 4: three connections, each written once
    with 4 requests; sized and chunked answers mixed, each stream gets its
    own.  Then searches with bodies, pipelined the same way."""
    try:
        u, g = _start(ctx, lambda r: [_chunked(_echo(r))] if r["path"].endswith(("1", "3", "5")) else _ok(_echo(r)),
                      depth=4)
        h2 = H2Conn(g.port)
        paths = [b"/raw/%d" % i for i in range(12)]
        sids = _gets(h2, 1, paths)
        _check_own(_answers(h2, sids), sids, [p.decode() for p in paths])
        sizes = sorted(len(s[1]) for s in u.segments)
        assert sizes == [4, 4, 4], "segments %s" % u.segments
        # POST searches (idempotent): bodies of different sizes, in one turn
        bodies = [json.dumps({"query": {"match": {"title": "x" * (i * 700 + 1)}}}).encode() for i in range(6)]
        frames = b""
        sids = []
        for i, b in enumerate(bodies):
            sid = 101 + 2 * i
            sids.append(sid)
            frames += h2_frame(HEADERS, END_HEADERS, sid, h2_request_block(method=b"POST", path=b"/search/books"))
            frames += h2_frame(DATA, END_STREAM, sid, b)
        before = len(u.segments)
        h2.send(frames)
        got = _answers(h2, sids)
        for sid, b in zip(sids, bodies):
            status, data = got[sid]
            assert status == 200, (sid, status, data[:200])
            echoed = json.loads(data)
            assert echoed["path"] == "/books/_search", echoed["path"]
            assert json.loads(echoed["body"]) == json.loads(b), "stream %d got another's body" % sid
        assert max(len(s[1]) for s in u.segments[before:]) > 1, "no search pipelined: %s" % u.segments[before:]
        h2.close()
    finally:
        _cleanup(ctx)


def test_nothing_is_pipelined_by_default(ctx):
    """Without pipeline_depth: one request a connection at a time."""
    try:
        u, g = _start(ctx, lambda r: _ok(_echo(r)))
        h2 = H2Conn(g.port)
        paths = [b"/raw/%d" % i for i in range(12)]
        sids = _gets(h2, 1, paths)
        _check_own(_answers(h2, sids), sids, [p.decode() for p in paths])
        assert all(len(s[1]) == 1 for s in u.segments), "segments %s" % u.segments
        h2.close()
    finally:
        _cleanup(ctx)


def test_writes_are_not_pipelined(ctx):
    """A POST to _doc may not be sent twice, so it never waits behind another."""
    try:
        u, g = _start(ctx, lambda r: _ok(_echo(r)), depth=8)
        h2 = H2Conn(g.port)
        frames = b""
        sids = []
        for i in range(6):
            sid = 1 + 2 * i
            sids.append(sid)
            frames += h2_frame(HEADERS, END_HEADERS, sid, h2_request_block(method=b"POST", path=b"/write/books"))
            frames += h2_frame(DATA, END_STREAM, sid, b'{"n": %d}' % i)
        h2.send(frames)
        got = _answers(h2, sids)
        assert all(got[s][0] == 200 for s in sids), got
        assert all(len(s[1]) == 1 for s in u.segments), "segments %s" % u.segments
        h2.close()
    finally:
        _cleanup(ctx)


def test_close_on_the_first_answer_loses_none_behind(ctx):
    """The node answers the first request of every connection with
    "Connection: close" and closes: it served none behind (RFC 9112 9.6).
    They go again, each gets its own answer, and the node, which keeps no
    connection alive, gets one request a connection from then on."""
    try:
        u, g = _start(ctx, lambda r: _ok(_echo(r), b"Connection: close\r\n") + ["close"], depth=4)
        h2 = H2Conn(g.port)
        paths = [b"/raw/%d" % i for i in range(8)]
        sids = _gets(h2, 1, paths)
        _check_own(_answers(h2, sids), sids, [p.decode() for p in paths])
        assert max(len(s[1]) for s in u.segments) > 1, "nothing was pipelined: %s" % u.segments
        before = len(u.segments)
        sids = _gets(h2, 101, paths)
        _check_own(_answers(h2, sids), sids, [p.decode() for p in paths])
        assert all(len(s[1]) == 1 for s in u.segments[before:]), "segments %s" % u.segments[before:]
        assert g.count(r"\[warn\] .*upstream node 127\.0\.0\.1:%d closed a new connection after the first answer "
                       r"of its line: one request a connection to it for 30s \(node_backoff_max\)" % u.port) == 1, \
            harness.tail(g.log_text())
        h2.close()
    finally:
        _cleanup(ctx)


def test_node_that_closed_is_pipelined_to_again_after_node_backoff_max(ctx):
    """The node closes every new connection after its first answer, then
    (restarted, say) keeps connections alive.  It gets one request a
    connection for node_backoff_max after the close, and lines again after
    that: what went wrong for a while does not cost the worker its
    pipelining for good."""
    window = 2.0 * harness.TIME_SCALE
    closing = threading.Event()
    closing.set()

    def answer(r):
        if closing.is_set():
            return _ok(_echo(r), b"Connection: close\r\n") + ["close"]
        return _ok(_echo(r))
    try:
        u, g = _start(ctx, answer, depth=4, more={"node_backoff": "100ms", "node_backoff_max": "%dms" % (window * 1000)})
        h2 = H2Conn(g.port)
        paths = [b"/raw/%d" % i for i in range(8)]
        sid = [1]

        def turn():
            """8 GETs in one write; their segments at the node."""
            before = len(u.segments)
            sids = _gets(h2, sid[0], paths)
            sid[0] += 2 * len(paths)
            _check_own(_answers(h2, sids), sids, [p.decode() for p in paths])
            return u.segments[before:]

        t0 = time.monotonic()
        assert max(len(s[1]) for s in turn()) > 1, "nothing was pipelined: %s" % u.segments
        closing.clear()
        segs = turn()
        if time.monotonic() - t0 < window:  # surely within the window (the close came after t0)
            assert all(len(s[1]) == 1 for s in segs), "pipelined within node_backoff_max: %s" % segs
        wait_for(lambda: max(len(s[1]) for s in turn()) > 1, 10 * window, "a line again")
        assert time.monotonic() - t0 >= window, "pipelined again %.2fs after the close" % (time.monotonic() - t0)
        _still_served(g)
        h2.close()
    finally:
        _cleanup(ctx)


def test_dropped_connection_sends_the_rest_again_once(ctx):
    """The node's first connection answers its first request and drops
    (no "close" said: the ones behind may or may not have run).  They are
    idempotent and go again, once, and all are answered."""
    def answer(r):
        if r["conn"] == 1 and r["nth"] == 1:
            return _ok(_echo(r)) + ["close"]
        return _ok(_echo(r))
    try:
        u, g, h2, paths, sids = _line(ctx, answer, 4)
        _check_own(_answers(h2, sids), sids, [p.decode() for p in paths])
        assert u.segments[0] == (1, [p.decode() for p in paths]), u.segments
        seen = u.paths()
        for p in paths[1:]:
            assert seen.count(p.decode()) == 2, "%s sent %d times: %s" % (p, seen.count(p.decode()), seen)
        h2.close()
    finally:
        _cleanup(ctx)


def test_cancelled_request_in_the_line_costs_the_others_nothing(ctx):
    """Four requests in one line, the node holding the first answer; the
    client cancels the second.  The node still answers it, in its place:
    esgate takes the first answer, closes the connection (it can no longer
    tell whose answers follow) and sends the third and fourth again.
    Each of the three gets its own answer."""
    hold = threading.Event()

    def answer(r):
        if r["conn"] == 1 and r["nth"] == 1:
            return [hold] + _ok(_echo(r))
        return _ok(_echo(r))
    try:
        u, g, h2, paths, sids = _line(ctx, answer, 4)
        wait_for(lambda: len(u.segments) == 1, 10 * harness.TIME_SCALE, "the line at the node")
        assert u.segments[0] == (1, [p.decode() for p in paths]), u.segments
        h2.send(h2_frame(RST_STREAM, 0, sids[1], CANCEL.to_bytes(4, "big")))
        h2.ping(b"rst done")
        hold.set()
        got = _answers(h2, [sids[0], sids[2], sids[3]])
        _check_own(got, [sids[0], sids[2], sids[3]], [paths[0].decode(), paths[2].decode(), paths[3].decode()])
        seen = u.paths()
        assert seen.count("/raw/1") == 1 and seen.count("/raw/2") == 2 and seen.count("/raw/3") == 2, seen
        _still_served(g)
        h2.close()
    finally:
        hold.set()
        _cleanup(ctx)


def test_timeout_in_the_line_is_504_for_each(ctx):
    """The node never answers the first request of its first connection:
    the requests behind it time out too, each with its own 504, and the
    node is used again afterwards."""
    never = threading.Event()

    def answer(r):
        if r["conn"] == 1:
            return [never]
        return _ok(_echo(r))
    try:
        u, g, h2, paths, sids = _line(ctx, answer, 4, request_timeout="%dms" % (800 * harness.TIME_SCALE),
                                      more={"max_retries": "0"})
        got = _answers(h2, sids, timeout=10)
        assert all(got[s][0] == 504 for s in sids), got
        for s in sids:
            err = json.loads(got[s][1])
            assert err["error"]["type"] == "upstream_timeout", err
        assert u.segments[0] == (1, [p.decode() for p in paths]), u.segments
        _still_served(g)
        h2.close()
    finally:
        never.set()
        _cleanup(ctx)
