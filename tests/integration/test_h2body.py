"""limits.h2_body_buffer: the request-body bytes one HTTP/2 connection's
streams may make a worker hold.

libh2o 2.2.5 buffers a stream's whole body before the handler runs and
re-opens the flow-control windows as DATA arrives, so without this a client
can open many streams, send most of a body on each, and never finish:
~2 x max_body per stream, 100 streams per connection.  The guard
(worker/guard.c) counts DATA payload per stream from its first DATA until
h2o closes the stream (h2o keeps a complete body until its answer is sent)
and ends a connection over the budget with GOAWAY ENHANCE_YOUR_CALM.  Worker memory is read from /proc (VmHWM, the peak;
plain builds only: under ASan or valgrind the allocator is theirs)."""

import struct

import harness
import promparse
from harness import WRAP, TestFailure
from test_hostile import (DATA, END_HEADERS, END_STREAM, HEADERS, PING, SETTINGS, WINDOW_UPDATE, H2Conn, h2_frame,
                          h2_request_block)
from test_limits import ENHANCE_YOUR_CALM, MEASURE, _refused, _send

# run.py runs these alone: they measure memory
SERIAL = True

ROUTES = ('routes:\n  - {path: "/search/{index}", methods: [POST], indices: [books],'
          ' upstream: {method: POST, path: "/{index}/_search"}, policy: {max_bytes: 1mb}}\n')


def _vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise TestFailure("no %s for %d" % (field, pid))


def _post_block(path=b"/search/books"):
    return h2_request_block(method=b"POST", path=path)


def _body_frames(sid, size, end):
    """A SIZE-byte JSON body ({} and spaces) as DATA on stream SID in
    16,000-byte frames; END_STREAM on the last if END."""
    body = b"{" + b" " * (size - 2) + b"}"
    out = []
    for k in range(0, size, 16000):
        last = k + 16000 >= size
        out.append(h2_frame(DATA, END_STREAM if end and last else 0, sid, body[k:k + 16000]))
    return b"".join(out)


def _send_posts_until_refused(h2, n, size, end):
    """Up to N POST streams of SIZE body bytes each (END_STREAM if END) on H2,
    until the server ends the connection; then a PING, and waits for its
    ACK (all of it handled) or the end, and after a GOAWAY for the close
    (h2o frees its streams' bodies then).  How many streams were sent."""
    sent = 0
    try:
        for i in range(n):
            sid = 1 + 2 * i
            h2.send(h2_frame(HEADERS, END_HEADERS, sid, _post_block()) + _body_frames(sid, size, end))
            sent += 1
            if h2.goaway is not None or h2.closed:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    _send(h2, h2_frame(PING, 0, 0, b"sent all"))
    h2.wait(lambda: b"sent all" in h2.ping_acks or h2.goaway is not None or h2.closed,
            30 * harness.TIME_SCALE, "the PING's ACK or the end")
    if h2.goaway is not None:
        h2.wait(lambda: h2.closed, 10 * harness.TIME_SCALE, "the close after the GOAWAY")
    return sent


def test_h2_unfinished_bodies_cut_at_the_budget(ctx):
    """3 connections, each opening 80 POST streams and sending 1,000,000
    bytes of body on each (under the default max_body, 1mb), none ended:
    240 MB the worker would buffer.  Each connection is ended with GOAWAY
    ENHANCE_YOUR_CALM once over h2_body_buffer (default 32mb), then closed
    (before the next one starts), and the worker's peak RSS grows by less
    than 2 x 32 MiB + 24 MiB (h2o's buffers round up to powers of two).
    Connections held at once each hold their own 32 MiB: the bound is per
    connection (RELIABILITY.md)."""
    d, g = ctx.start(workers=1, keepalive_timeout="20s", extra=ROUTES)
    worker = g.workers()[0]
    base = _vm_kib(worker, "VmHWM")
    conns = []
    try:
        for c in range(3):
            h2 = H2Conn(g.port)
            conns.append(h2)
            # closed before the next one starts: each connection's bodies are measured on their own
            _send_posts_until_refused(h2, 80, 1000000, False)
        peak = _vm_kib(worker, "VmHWM") - base
        goaways = [h2.goaway for h2 in conns]
    finally:
        for h2 in conns:
            h2.close()
    print("  3 connections x 80 streams x 1,000,000 unfinished bytes: worker peak RSS +%d KiB, GOAWAY %r"
          % (peak, goaways))
    for h2 in conns:
        assert (h2.goaway is not None and h2.goaway[1] == ENHANCE_YOUR_CALM) or (WRAP and h2.closed), \
            "connection not ended: GOAWAY %r, closed %r" % (h2.goaway, h2.closed)
    assert _refused(g.port, "h2_body_buffer") == 3
    if MEASURE:
        assert peak < (2 * 32 + 24) * 1024, "the worker's peak grew by %d KiB" % peak
    assert "h2_body_buffer" in g.log_text(), "no log line"
    # a normal request still works
    h2 = H2Conn(g.port)
    try:
        assert h2.get(1, path=b"/healthz")[0] == 200
    finally:
        h2.close()


def test_h2_concurrent_uploads_under_the_budget_are_answered(ctx):
    """20 POST streams on one connection, each with a 900,000-byte body
    (under max_body 1mb), their DATA interleaved so that all 20 are
    unfinished at once (18 MB buffered, under the default 32mb): all 20
    answered, nothing refused."""
    d, g = ctx.start(workers=1, keepalive_timeout="20s", extra=ROUTES)
    h2 = H2Conn(g.port)
    sids = [1 + 2 * i for i in range(20)]
    try:
        frames = {sid: [] for sid in sids}
        for sid in sids:
            h2.send(h2_frame(HEADERS, END_HEADERS, sid, _post_block()))
            body = _body_frames(sid, 900000, True)
            frames[sid] = [body[k:k + 16009] for k in range(0, len(body), 16009)]
        for k in range(max(len(f) for f in frames.values())):
            h2.send(b"".join(f[k] for f in frames.values() if k < len(f)))
        h2.wait(lambda: all(s in h2.ended or s in h2.rst for s in sids), 30 * harness.TIME_SCALE, "20 answers")
        statuses = [h2.status.get(s) for s in sids]
        assert h2.goaway is None, h2.goaway
        assert not h2.rst, h2.rst
    finally:
        h2.close()
    print("  20 streams x 900,000 bytes interleaved: statuses %r" % sorted(set(statuses)))
    assert all(s == 200 for s in statuses), statuses
    assert _refused(g.port, "h2_body_buffer") == 0


def test_h2_ended_bodies_whose_answers_are_not_read_cut_at_the_budget(ctx):
    """A client that sets its stream windows to 0 (SETTINGS_INITIAL_WINDOW_SIZE
    0: the answers' DATA can never be sent) and sends 95 complete POSTs of
    1,000,000 bytes on one connection: each stream stays open with its whole
    body, which h2o keeps until the stream closes.  The guard counts a body
    until h2o closes its stream, not until END_STREAM: GOAWAY
    ENHANCE_YOUR_CALM once over h2_body_buffer (32mb), then the close, and
    the worker's peak RSS grows by less than 2 x 32 MiB + 24 MiB.  (Before:
    every stream answered a head, no GOAWAY, +91 MiB held; RELIABILITY.md.)"""
    d, g = ctx.start(workers=1, keepalive_timeout="20s", extra=ROUTES)
    worker = g.workers()[0]
    base = _vm_kib(worker, "VmHWM")
    h2 = H2Conn(g.port)
    try:
        h2.send(h2_frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
        h2.wait(lambda: h2.settings_acks >= 1, 5 * harness.TIME_SCALE, "the ACK of our SETTINGS")
        sent = _send_posts_until_refused(h2, 95, 1000000, True)
        peak = _vm_kib(worker, "VmHWM") - base
        heads = len(h2.status)
    finally:
        h2.close()
    print("  %d complete 1,000,000-byte POSTs, answers unread: %d answer heads, worker peak RSS +%d KiB, GOAWAY %r"
          % (sent, heads, peak, h2.goaway))
    assert (h2.goaway is not None and h2.goaway[1] == ENHANCE_YOUR_CALM) or (WRAP and h2.closed), \
        "connection not ended: GOAWAY %r, closed %r, %d answer heads" % (h2.goaway, h2.closed, heads)
    assert _refused(g.port, "h2_body_buffer") == 1
    if MEASURE:
        assert peak < (2 * 32 + 24) * 1024, "the worker's peak grew by %d KiB" % peak


def test_h2_bodies_are_released_when_their_streams_close(ctx):
    """h2_body_buffer 4mb: 12 POSTs of 1,000,000 bytes one after the other on
    one connection, each answered before the next (12 MB in all, 1 MB held at
    a time): all 200, no GOAWAY: a body stops counting when h2o closes its
    stream."""
    d, g = ctx.start(workers=1, keepalive_timeout="20s", extra=ROUTES + "limits: {h2_body_buffer: 4mb}\n")
    h2 = H2Conn(g.port)
    statuses = []
    try:
        for i in range(12):
            sid = 1 + 2 * i
            h2.send(h2_frame(HEADERS, END_HEADERS, sid, _post_block()) + _body_frames(sid, 1000000, True))
            h2.wait(lambda: sid in h2.ended or sid in h2.rst or h2.goaway is not None or h2.closed,
                    10 * harness.TIME_SCALE, "the answer on stream %d" % sid)
            statuses.append(h2.status.get(sid))
            if h2.goaway is not None or h2.closed:
                break
        goaway = h2.goaway
    finally:
        h2.close()
    print("  12 sequential 1,000,000-byte POSTs under h2_body_buffer 4mb: statuses %r, GOAWAY %r" % (statuses, goaway))
    assert goaway is None, goaway
    assert statuses == [200] * 12, statuses
    assert _refused(g.port, "h2_body_buffer") == 0



def _curl_upload(args, size, tmpdir):
    """curl ARGS with a SIZE-byte JSON body: (exit code, status, body, stderr)."""
    import os
    import subprocess
    path = os.path.join(tmpdir, "body-%d.json" % size)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(b"{" + b" " * (size - 2) + b"}")
    out = os.path.join(tmpdir, "answer.txt")
    r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", "-H", "Content-Type: application/json",
                        "--data-binary", "@" + path] + args, capture_output=True, text=True, timeout=60)
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
    else:
        body = b""
    return r.returncode, r.stdout, body, r.stderr.strip()


def test_h2_body_past_h2o_cap_is_413_json_with_curl(ctx):
    """A body past h2o's per-stream cap (2 x max_body: 1mb here) over
    HTTP/2: 413 with esgate's JSON error, which curl reads and exits 0 on.
    h2o alone resets the stream with REFUSED_STREAM, which means "not
    processed, send it again": curl 7.88 sent it 5 times, then failed with
    no status (exit 56, on main 72e3856).  Clear text (prior knowledge) and
    TLS (ALPN h2), 3 MB and 50 MB, each twice; then a GET on a new
    connection answers 200."""
    from test_tls import start_tls
    d, g, tport, ca = start_tls(ctx, extra=ROUTES, workers=1, sni=False)
    urls = [["--http2-prior-knowledge", "http://127.0.0.1:%d/search/books" % g.port],
            ["--http2", "--cacert", ca, "https://localhost:%d/search/books" % tport]]
    seen = []
    for args in urls:
        for size in (3000000, 50000000, 3000000, 50000000):
            rc, status, body, err = _curl_upload(args, size, ctx.tmpdir)
            seen.append((args[0], size, rc, status))
            assert (rc, status) == (0, "413"), (args, size, rc, status, err)
            assert b'"request_too_large"' in body and b'"status":413' in body, body
    print("  curl uploads past h2o's cap: %r" % sorted(set(seen)))
    assert d.requests() == 0, "a refused body reached the upstream"
    assert harness.get(g.port, "/")[0] == 200


def test_h2_body_past_h2o_cap_on_a_connection_that_goes_on(ctx):
    """Raw HTTP/2: stream 1 sends 2,100,000 bytes of body (past h2o's 2 MB
    cap with max_body 1mb), stream 3 is a GET on the same connection.
    Stream 1 is answered 413 (JSON, END_STREAM) with a WINDOW_UPDATE that
    lets the client finish sending, and no RST_STREAM at all (REFUSED_STREAM
    would tell the client to send it again; STREAM_CLOSED for the rest of
    the body, an error); the rest of the body is dropped and stream 3 is
    answered 200."""
    d, g = ctx.start(workers=1, keepalive_timeout="20s", extra=ROUTES)
    h2 = H2Conn(g.port)
    try:
        h2.send(h2_frame(HEADERS, END_HEADERS, 1, _post_block()) + _body_frames(1, 2100000, True))
        h2.wait(lambda: 1 in h2.ended or 1 in h2.rst or h2.closed, 10 * harness.TIME_SCALE, "the answer on stream 1")
        status3, _ = h2.get(3, path=b"/healthz")
        h2.ping(b"all done")
        status1, body1, rst = h2.status.get(1), h2.data.get(1, b""), dict(h2.rst)
        updates = h2.counts.get(WINDOW_UPDATE, 0)
    finally:
        h2.close()
    print("  stream 1 (2,100,000 bytes): %r %r; RST_STREAM %r; stream 3: %r" % (status1, body1, rst, status3))
    assert status1 == 413 and b'"request_too_large"' in body1, (status1, body1, rst)
    assert rst == {}, rst
    assert updates >= 1
    assert status3 == 200
    assert d.requests() == 0
    # no handler saw stream 1: the guard reports its 413 (as HTTP/1's is counted)
    status, _, body = harness.get(g.port, "/metrics")
    assert promparse.value(promparse.parse(body.decode()), "esgate_requests_total", route="unmatched",
                           code="4xx") == 1, "the 413 not counted as unmatched"


def test_h2_body_buffer_small_budget_cuts_early(ctx):
    """h2_body_buffer: 4mb with max_body 1mb: four streams of 1,000,000
    unfinished bytes pass, a fifth's crosses the budget."""
    d, g = ctx.start(workers=1, keepalive_timeout="20s", extra=ROUTES + "limits: {h2_body_buffer: 4mb}\n")
    h2 = H2Conn(g.port)
    try:
        for i in range(4):
            sid = 1 + 2 * i
            h2.send(h2_frame(HEADERS, END_HEADERS, sid, _post_block()) + _body_frames(sid, 1000000, False))
        h2.ping(b"four ok!")
        assert h2.goaway is None, h2.goaway
        _send(h2, h2_frame(HEADERS, END_HEADERS, 9, _post_block()) + _body_frames(9, 400000, False))
        h2.wait(lambda: h2.goaway is not None or h2.closed, 5 * harness.TIME_SCALE, "GOAWAY")
        assert (h2.goaway is not None and h2.goaway[1] == ENHANCE_YOUR_CALM) or (WRAP and h2.closed), h2.goaway
    finally:
        h2.close()
    assert _refused(g.port, "h2_body_buffer") == 1



def _goaway_codes(recv, secs):
    """Every GOAWAY's error code read through RECV (bytes; b"" at the end)
    until ENHANCE_YOUR_CALM, the end, an error or SECS."""
    import socket
    import ssl
    import time
    codes, buf = [], b""
    deadline = time.monotonic() + secs
    while ENHANCE_YOUR_CALM not in codes and time.monotonic() < deadline:
        try:
            data = recv()
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            break
        if not data:
            break
        buf += data
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            if buf[3] == 7:  # GOAWAY
                codes.append(int.from_bytes(buf[13:17], "big"))
            buf = buf[9 + n:]
    return codes


def test_h2_body_buffer_over_tls(ctx):
    """The same over TLS (ALPN h2), where the guard takes the connection
    over at the end of the handshake: h2_body_buffer 4mb, five streams of
    1,000,000 unfinished bytes: GOAWAY ENHANCE_YOUR_CALM."""
    import socket
    import ssl
    from test_tls import start_tls
    d, g, port, ca = start_tls(ctx, extra=ROUTES + "limits: {h2_body_buffer: 4mb}\n", workers=1, sni=False)
    cctx = ssl.create_default_context(cafile=ca)
    cctx.set_alpn_protocols(["h2"])
    s = cctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")
    assert s.selected_alpn_protocol() == "h2"
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0))
        try:
            for i in range(5):
                sid = 1 + 2 * i
                s.sendall(h2_frame(HEADERS, END_HEADERS, sid, _post_block()) + _body_frames(sid, 1000000, False))
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        codes = _goaway_codes(lambda: s.recv(65536), 5 * harness.TIME_SCALE)  # every GOAWAY's error code
    finally:
        s.close()
    # (under valgrind h2o's own idle GOAWAY, NO_ERROR after keepalive_timeout's
    # 2 s, can come first: h2o then drops the DATA and nothing is refused)
    if WRAP and ENHANCE_YOUR_CALM not in codes:
        assert codes, "no GOAWAY"
        return
    assert ENHANCE_YOUR_CALM in codes, "GOAWAY codes %r" % codes
    assert _refused(g.port, "h2_body_buffer") == 1


def _tls_h2_first_batch_then_bodies(port, ca, get_first):
    """A TLS 1.3 client whose preface, SETTINGS and the HEADERS of six POST
    streams (3..13; after a GET with END_STREAM on stream 1 if GET_FIRST)
    go in the same segment as its Finished, then 1,000,000 unfinished body
    bytes on each POST: every GOAWAY error code it gets, until the end."""
    import ssl
    from test_tls import FinishedHeld
    cctx = ssl.create_default_context(cafile=ca)
    cctx.set_alpn_protocols(["h2"])
    c = FinishedHeld(port, cctx, timeout=5)
    try:
        assert c.obj.selected_alpn_protocol() == "h2"
        first = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0)
        if get_first:
            first += h2_frame(HEADERS, END_HEADERS | END_STREAM, 1, h2_request_block(method=b"GET", path=b"/nope"))
        sids = [3 + 2 * i for i in range(6)]
        for sid in sids:
            first += h2_frame(HEADERS, END_HEADERS, sid, _post_block())
        c.send(first)  # with the client's Finished: one send
        try:
            for sid in sids:
                c.send(_body_frames(sid, 1000000, False))
        except (BrokenPipeError, ConnectionResetError):
            pass
        c.raw.settimeout(0.5)
        return _goaway_codes(c.recv, 4 * harness.TIME_SCALE)
    finally:
        c.close()


def test_h2_body_buffer_over_tls_after_a_request_in_the_first_batch(ctx):
    """Over TLS libh2o parses what came with the handshake's last bytes in
    one go: a GET with END_STREAM first runs its handler at once, and the
    guard takes the connection over in the middle of that batch, before
    h2o has opened the POST streams behind it.  Their bodies are counted
    all the same (before the fix the guard took streams above the one it
    had seen for streams h2o had dropped and counted none of their DATA:
    for 6 x 1,000,000 bytes with h2_body_buffer 4mb only h2o's own idle
    GOAWAYs, code 0, on main b6ffbd0).  The same batch without the GET is
    the control."""
    from test_tls import start_tls
    d, g, port, ca = start_tls(ctx, extra=ROUTES + "limits: {h2_body_buffer: 4mb}\n", workers=1, sni=False)
    control = _tls_h2_first_batch_then_bodies(port, ca, False)
    assert ENHANCE_YOUR_CALM in control, control
    codes = _tls_h2_first_batch_then_bodies(port, ca, True)
    assert ENHANCE_YOUR_CALM in codes, "6 x 1,000,000 unfinished bytes behind a GET, budget 4mb: GOAWAYs %r" % codes
    assert _refused(g.port, "h2_body_buffer") == 2
