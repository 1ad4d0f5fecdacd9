"""limits: what a hostile client can make a worker hold (issue 13).

Each test is an attack from the issue, scaled to run in seconds on two
shared CPUs (the scale is in each test's docstring), with what it must
cost now: request heads over max_header_size answered 431 and closed
while a normal client is served; HPACK references that decode to more
than max_header_size refused before anything is decoded; an HTTP/2 header
block kept open by trickled CONTINUATION frames cut at header_timeout; a
rapid-reset flood ended with GOAWAY ENHANCE_YOUR_CALM for little CPU;
connections per address counted across workers, and per worker.  RSS is
read from /proc (plain builds only: under ASan or valgrind the allocator
is theirs)."""

import http.client
import os
import select
import socket
import struct
import time

import harness
import promparse
from harness import ASAN, WRAP, TestFailure, json_error, wait_for
from test_hostile import (CANCEL, END_HEADERS, END_STREAM, HEADERS, RST_STREAM, H2Conn, Prober, _p99,
                          _raise_nofile, h2_frame, h2_request_block)

# run.py runs these alone: they load the machine and measure time and memory
SERIAL = True

CONTINUATION = 9
ENHANCE_YOUR_CALM = 11
MEASURE = not ASAN and not WRAP


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise TestFailure("no VmRSS for %d" % pid)


def _cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    rest = st[st.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / float(os.sysconf("SC_CLK_TCK"))


def _refused(port, limit):
    """esgate_limits_refused_total{limit=LIMIT}, summed over the workers."""
    status, _, body = harness.get(port, "/metrics")
    assert status == 200, status
    return promparse.value(promparse.parse(body.decode()), "esgate_limits_refused_total", limit=limit)


def _connect_from(port, source="127.0.0.1", timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _get_from(port, source, path="/healthz", timeout=5):
    s = _connect_from(port, source, timeout)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        f = s.makefile("rb")
        try:
            return harness.read_response(f)
        finally:
            f.close()
    finally:
        s.close()


# ---- HTTP/1.1 request heads ------------------------------------------------------

def test_head_over_max_header_size_is_431_json_and_closed(ctx):
    d, g = ctx.start(workers=1, keepalive_timeout="10s", extra="limits: {max_header_size: 8kb}\n")
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000)  # no end of head
        f = s.makefile("rb")
        status, headers, body = harness.read_response(f)
        json_error(status, headers, body, 431, "request_header_fields_too_large")
        assert headers.get("connection") == "close", headers
        assert f.read() == b""  # closed
        f.close()
    finally:
        s.close()
    # a head just under the limit is served; leading empty lines do not hide one over it
    status, _, _ = harness.raw_request(g.port, "GET", "/healthz", headers={"X-Pad": "a" * 7000})
    assert status == 200
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(b"\r\n\r\n" + b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000)
        f = s.makefile("rb")
        assert harness.read_response(f)[0] == 431
        f.close()
    finally:
        s.close()
    # the second request of a keep-alive connection is held to the same limit
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert harness.read_response(f)[0] == 200
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000)
        assert harness.read_response(f)[0] == 431
        f.close()
    finally:
        s.close()
    assert _refused(g.port, "max_header_size") == 3
    assert _refused(g.port, "h2_max_resets") == 0


def test_many_unfinished_400kb_heads(ctx):
    """The issue's attack, full size: 3,000 connections from one address,
    all open at once, each then sending a 400 KB request head without its
    end, on 2 workers.  Each worker stays under 150 MiB, every connection
    is answered 431 or closed, and a client on another connection (from
    127.0.0.2) meanwhile gets its answers with p99 under 100 ms."""
    n, size = 3000, 400 * 1024
    d, g = ctx.start(workers=2, keepalive_timeout="30s")
    workers = g.workers()
    assert _raise_nofile(n + 200) >= n + 100
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (size - 40)
    peak = {w: _rss_kib(w) for w in workers}
    socks, sent, outcome = [], [], []
    lat = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
            s.setblocking(False)
            socks.append(s)
            sent.append(0)
            outcome.append(None)
        poller = select.poll()
        for i, s in enumerate(socks):
            poller.register(s, select.POLLOUT | select.POLLIN)
        index = {s.fileno(): i for i, s in enumerate(socks)}
        left = n
        deadline = time.monotonic() + 40 * harness.TIME_SCALE
        next_probe = 0
        while left and time.monotonic() < deadline:
            for fd, ev in poller.poll(100):
                i = index[fd]
                s = socks[i]
                if ev & (select.POLLIN | select.POLLERR | select.POLLHUP):
                    try:
                        data = s.recv(65536)
                    except (ConnectionResetError, BlockingIOError):
                        data = b""
                    outcome[i] = 431 if data.startswith(b"HTTP/1.1 431 ") else "closed"
                elif sent[i] < len(head):
                    try:
                        sent[i] += s.send(head[sent[i]:sent[i] + 65536])
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        outcome[i] = "closed"
                    if sent[i] >= len(head) and outcome[i] is None:
                        poller.modify(s, select.POLLIN)
                        continue
                else:
                    continue
                if outcome[i] is not None:
                    poller.unregister(s)
                    left -= 1
            now = time.monotonic()
            if now >= next_probe:
                for w in workers:
                    peak[w] = max(peak[w], _rss_kib(w))
                t0 = time.monotonic()
                status = _get_from(g.port, "127.0.0.2")[0]
                lat.append(time.monotonic() - t0)
                assert status == 200, status
                next_probe = time.monotonic() + 0.02
        # and a second more of the probe after the attack
        t_end = time.monotonic()
        while time.monotonic() - t_end < 1.0:
            t0 = time.monotonic()
            assert _get_from(g.port, "127.0.0.2")[0] == 200
            lat.append(time.monotonic() - t0)
            time.sleep(0.02)
        assert left == 0, "%d connection(s) neither answered 431 nor closed (sent all %d bytes: %d)" % (
            left, len(head), sum(1 for i in range(n) if outcome[i] is None and sent[i] >= len(head)))
    finally:
        for s in socks:
            s.close()
    got431 = sum(1 for o in outcome if o == 431)
    print("  %d x %d KB heads: %d answered 431, %d closed; worker RSS peak %s MiB; probe p99 %.1f ms over %d" % (
        n, size // 1024, got431, n - got431, [p // 1024 for p in peak.values()], _p99(lat) * 1000, len(lat)))
    assert len(lat) >= 10, lat
    if MEASURE:  # under ASan or valgrind, time and memory are theirs
        assert _p99(lat) < 0.1 * harness.TIME_SCALE, "probe p99 %.0f ms" % (_p99(lat) * 1000)
        assert all(p < 150 * 1024 for p in peak.values()), "worker RSS peaked at %s KiB" % peak
        # memory settles back (the idle trim, a second after the last client left)
        base = 20 * 1024
        wait_for(lambda: all(_rss_kib(w) < base for w in workers), 10,
                 "worker RSS back under %d KiB (now %s)" % (base, [_rss_kib(w) for w in workers]))
    assert g.workers() == workers


def test_head_timeout(ctx):
    """A request head must be complete header_timeout after it began,
    whatever trickles in; an idle keep-alive connection is keepalive_timeout's."""
    d, g = ctx.start(workers=1, keepalive_timeout="10s", extra="limits: {header_timeout: 1s}\n")
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    t0 = time.monotonic()
    cut = None
    try:
        for b in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                s.send(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                cut = time.monotonic() - t0
                break
            r, _, _ = select.select([s], [], [], 0.1)
            if r:
                try:
                    if not s.recv(100):
                        cut = time.monotonic() - t0
                        break
                except ConnectionResetError:
                    cut = time.monotonic() - t0
                    break
    finally:
        s.close()
    assert cut is not None and 0.8 <= cut <= 2.5 * harness.TIME_SCALE, "slow head cut after %s s (header_timeout 1s)" % cut
    # idle after an answer: not a head yet, still open after 1.5 s
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert harness.read_response(f)[0] == 200
        time.sleep(1.5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert harness.read_response(f)[0] == 200
        f.close()
    finally:
        s.close()


# ---- HTTP/2 ---------------------------------------------------------------------------

def _hpack_bomb(refs, value=4000):
    """A header block: "x-a: <VALUE bytes>" into the dynamic table, then
    REFS one-byte references to it (index 62)."""
    lit = b"\x40\x03x-a" + b"\x7f" + bytes([0xa1, 0x1e]) + b"v" * value  # 4000 = 127 + 3873
    assert value == 4000
    return h2_request_block() + lit + b"\xbe" * refs


def _block_frames(sid, block):
    """BLOCK as a HEADERS frame (no END_STREAM) and its CONTINUATIONs."""
    frames = []
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    for k, c in enumerate(chunks):
        flags = (END_HEADERS if k == len(chunks) - 1 else 0)
        frames.append(h2_frame(HEADERS if k == 0 else CONTINUATION, flags, sid, c))
    return frames


def _send(h2, data):
    try:
        h2.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def test_hpack_amplification_refused(ctx):
    """The issue's stream, at half its size: a header block of 200,000
    one-byte references to a 4,000-byte entry (800 MB decoded; issue:
    410,000), never ended, on each of 4 connections.  Refused with GOAWAY
    ENHANCE_YOUR_CALM at max_header_size (decoded bytes counted, 32 KiB by
    default, which SETTINGS_MAX_HEADER_LIST_SIZE announces); the worker
    grows by less than 1 MiB per connection and settles."""
    d, g = ctx.start(workers=1, keepalive_timeout="10s")
    worker = g.workers()[0]
    base = _rss_kib(worker)
    conns = []
    try:
        for i in range(4):
            h2 = H2Conn(g.port)
            conns.append(h2)
            frames = _block_frames(1, _hpack_bomb(200000))
            # the first frame alone already decodes to 40 MB: refused there
            # (waiting for it keeps the rest from resetting the connection
            # before the GOAWAY is read)
            _send(h2, frames[0])
            h2.wait(lambda: h2.goaway is not None or h2.closed, 5 * harness.TIME_SCALE, "GOAWAY")
            # (under valgrind the close has been seen to overtake the GOAWAY:
            # the refusal is then checked by its count below)
            assert (h2.goaway is not None and h2.goaway[1] == ENHANCE_YOUR_CALM) or (WRAP and h2.closed), h2.goaway
            _send(h2, b"".join(frames[1:]))
            assert 1 not in h2.status, "the stream was answered: %r" % h2.status
        grown = _rss_kib(worker) - base
    finally:
        for h2 in conns:
            h2.close()
    print("  4 connections x 200,000 references: worker RSS +%d KiB" % grown)
    assert _refused(g.port, "h2_max_header_list") == 4
    if MEASURE:
        assert grown < 4 * 1024, "the worker grew by %d KiB for 4 connections" % grown
    # the setting is announced, and a normal request still works
    h2 = H2Conn(g.port)
    try:
        assert h2.get(1)[0] == 200
    finally:
        h2.close()


def _server_settings(port, timeout=5):
    """Every SETTINGS parameter the server sends in its first second: {id: value}."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got, buf = {}, b""
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            data = s.recv(65536)
            if not data:
                break
            buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            ftype, flags, payload = buf[3], buf[4], buf[9:9 + length]
            buf = buf[9 + length:]
            if ftype == 4 and not flags & 1:
                for i in range(0, len(payload) - 5, 6):
                    got[int.from_bytes(payload[i:i + 2], "big")] = int.from_bytes(payload[i + 2:i + 6], "big")
    finally:
        s.close()
    return got


def test_h2_settings_announce_the_limits(ctx):
    d, g = ctx.start(workers=1, keepalive_timeout="10s", extra="limits: {max_header_size: 16kb, h2_max_streams: 8}\n")
    got = _server_settings(g.port)
    assert got.get(6) == 16384, "SETTINGS_MAX_HEADER_LIST_SIZE: %r" % got
    assert got.get(3) == 8, "SETTINGS_MAX_CONCURRENT_STREAMS (ours, after h2o's 100): %r" % got


def test_h2_max_streams(ctx):
    """Once the client has acknowledged h2_max_streams (2 here), a third
    open stream ends the connection with GOAWAY."""
    d, g = ctx.start(workers=1, keepalive_timeout="10s", extra="limits: {h2_max_streams: 2}\n")
    h2 = H2Conn(g.port)
    try:
        h2.wait(lambda: h2.counts.get(4, 0) - h2.settings_acks >= 2, 5, "both SETTINGS frames")
        h2.send(h2_frame(4, 1, 0))  # ACK the second (H2Conn ACKed the first)
        h2.ping(b"acked!!!")
        # two streams that stay open (no END_STREAM: a body is awaited)
        for sid in (1, 3):
            h2.send(h2_frame(HEADERS, END_HEADERS, sid, h2_request_block(method=b"POST", path=b"/healthz")))
        h2.ping(b"two open")
        assert h2.goaway is None, h2.goaway
        _send(h2, h2_frame(HEADERS, END_HEADERS, 5, h2_request_block(method=b"POST", path=b"/healthz")))
        h2.wait(lambda: h2.goaway is not None or h2.closed, 5, "GOAWAY")
        assert h2.goaway is not None and h2.goaway[1] == 1, "GOAWAY %r, want PROTOCOL_ERROR" % (h2.goaway,)
    finally:
        h2.close()
    assert _refused(g.port, "h2_max_streams") == 1


def test_h2_header_block_trickled_is_cut_at_header_timeout(ctx):
    """HEADERS without END_HEADERS, then a one-byte CONTINUATION every
    200 ms: cut (GOAWAY, closed) at header_timeout (1 s here), although the
    connection is never idle (each frame pushed h2o's idle timeout back)."""
    d, g = ctx.start(workers=1, keepalive_timeout="10s", extra="limits: {header_timeout: 1s}\n")
    h2 = H2Conn(g.port)
    t0 = time.monotonic()
    try:
        h2.send(h2_frame(HEADERS, 0, 1, h2_request_block()))
        for k in range(25):  # 5 s at most
            try:
                h2.send(h2_frame(CONTINUATION, 0, 1, b"\x82"))
            except (BrokenPipeError, ConnectionResetError):
                break
            if h2.closed:
                break
            time.sleep(0.2)
        h2.wait(lambda: h2.closed, 2, "the connection closed")
        cut = time.monotonic() - t0
    finally:
        h2.close()
    assert 0.8 <= cut < 2.5 * harness.TIME_SCALE, "cut after %.1f s (header_timeout 1s; goaway %r)" % (cut, h2.goaway)
    assert h2.goaway is not None and h2.goaway[1] == ENHANCE_YOUR_CALM, "closed with GOAWAY %r" % (h2.goaway,)


def test_h2_rapid_reset_10000(ctx):
    """10,000 HEADERS+RST_STREAM pairs on one connection: GOAWAY
    ENHANCE_YOUR_CALM, under 0.2 s of the worker's CPU, and a client on
    another connection is served meanwhile."""
    d, g = ctx.start(workers=1, keepalive_timeout="10s")
    worker = g.workers()[0]
    h2 = H2Conn(g.port)
    with Prober(g.port, "/healthz") as probe:
        wait_for(lambda: probe.count() >= 5, 5, "the prober's first answers")
        cpu0 = _cpu_s(worker)
        batch = b""
        try:
            for i in range(10000):
                sid = 1 + 2 * i
                batch += (h2_frame(HEADERS, END_STREAM | END_HEADERS, sid, h2_request_block(path=b"/healthz"))
                          + h2_frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
                if len(batch) > 65536:
                    h2.send(batch)
                    batch = b""
            h2.send(batch)
        except (BrokenPipeError, ConnectionResetError):
            pass
        h2.wait(lambda: h2.goaway is not None or h2.closed, 5, "GOAWAY")
        t0 = time.monotonic()
        wait_for(lambda: time.monotonic() - t0 >= 1.0, 3, "a second of probing")
        cpu = _cpu_s(worker) - cpu0
    h2.close()
    print("  10,000 HEADERS+RST_STREAM: GOAWAY %r, worker CPU %.3f s (the prober's included)" % (h2.goaway, cpu))
    assert _refused(g.port, "h2_max_resets") == 1
    assert h2.goaway is not None and h2.goaway[1] == ENHANCE_YOUR_CALM, h2.goaway
    probe.check(20, p99_max=0.1, what="a client beside the flood")
    if MEASURE:
        assert cpu < 0.2, "the flood cost the worker %.3f s of CPU" % cpu


# ---- connections -----------------------------------------------------------------------

def test_connections_per_address_across_workers(ctx):
    d, g = ctx.start(workers=2, keepalive_timeout="10s", extra="limits: {max_connections_per_address: 4}\n")
    workers = g.workers()
    held = {}
    for attempt in range(20):
        # four keep-alive connections from 127.0.0.1, each answered once
        # (so counted), until they are not all on the same worker
        conns = []
        for _ in range(4):
            c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=5)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            conns.append(c)
        table = harness.tcp_table()
        owners = [harness.connection_owner(workers, g.port, c.sock.getsockname()[1], table) for c in conns]
        if len(set(owners)) == 2:
            held = {w: [c for c, o in zip(conns, owners) if o == w] for w in workers}
            break
        for c in conns:
            c.close()
        wait_for(lambda: _get_from(g.port, "127.0.0.1")[0] == 200, 5, "the count back under the limit")
    assert held, "20 tries put 4 connections on one worker each time"
    try:
        status, headers, body = _get_from(g.port, "127.0.0.1")
        json_error(status, headers, body, 503, "too_many_connections")
        assert headers.get("connection") == "close"
        # another address is not affected
        assert _get_from(g.port, "127.0.0.2")[0] == 200
        # one closes: room for one more
        next(iter(held.values()))[0].close()
        wait_for(lambda: _get_from(g.port, "127.0.0.1")[0] == 200, 5, "a connection once one closed")
    finally:
        for cs in held.values():
            for c in cs:
                c.close()
    assert g.count(r"refused 1 connection\(s\) over max_connections_per_address") >= 1, g.log_text()
    # the closes above reach the workers in their own time (valgrind's is
    # slow): /metrics from 127.0.0.1 once the address is under its limit
    wait_for(lambda: _get_from(g.port, "127.0.0.1")[0] == 200, 5 * harness.TIME_SCALE, "the held connections' closes")
    assert _refused(g.port, "max_connections_per_address") >= 1


def test_max_connections_per_worker(ctx):
    """Past limits.max_connections a worker stops accepting (the kernel
    queues the rest, as HAProxy's maxconn does) until one closes."""
    d, g = ctx.start(workers=1, keepalive_timeout="10s", extra="limits: {max_connections: 3}\n")
    idle = [socket.create_connection(("127.0.0.1", g.port), timeout=5) for _ in range(3)]
    try:
        s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r, _, _ = select.select([s], [], [], 1.0)
        assert not r, "answered while max_connections were open"
        idle.pop().close()
        f = s.makefile("rb")
        assert harness.read_response(f)[0] == 200
        f.close()
        s.close()
    finally:
        for c in idle:
            c.close()
    g.wait_log(r"max_connections \(3\) open: not accepting until one closes")


# ---- over TLS -------------------------------------------------------------------------

def test_limits_over_tls(ctx):
    """A TLS connection is guarded once its handshake is over: a request
    head over max_header_size gets its 431 (through TLS) and is closed; an
    HTTP/2 rapid reset over TLS ends in GOAWAY ENHANCE_YOUR_CALM."""
    import ssl
    from test_tls import start_tls
    d, g, port, ca = start_tls(ctx, extra="limits: {max_header_size: 8kb}\n", workers=1, sni=False)
    cctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = cctx.wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000)
        f = s.makefile("rb")
        status, headers, body = harness.read_response(f)
        json_error(status, headers, body, 431, "request_header_fields_too_large")
        f.close()
    finally:
        s.close()
    # a normal request over the same listener is served
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = cctx.wrap_socket(raw, server_hostname="localhost")
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert harness.read_response(f)[0] == 200
        # and the second request of the connection is held to the limit too
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000)
        assert harness.read_response(f)[0] == 431
        f.close()
    finally:
        s.close()
    # HTTP/2 over TLS (ALPN h2): 1,000 HEADERS+RST_STREAM pairs
    cctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = cctx.wrap_socket(raw, server_hostname="localhost")
    assert s.selected_alpn_protocol() == "h2"
    goaway = None
    closed = False
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0))
        batch = b""
        for i in range(1000):
            sid = 1 + 2 * i
            batch += (h2_frame(HEADERS, END_STREAM | END_HEADERS, sid, h2_request_block(path=b"/healthz"))
                      + h2_frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
        try:
            s.sendall(batch)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        buf = b""
        deadline = time.monotonic() + 5 * harness.TIME_SCALE
        while goaway is None and time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                closed = True
                break
            except socket.timeout:
                break
            if not data:
                closed = True
                break
            buf += data
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                n = int.from_bytes(buf[:3], "big")
                if buf[3] == 7:
                    goaway = int.from_bytes(buf[13:17], "big")
                buf = buf[9 + n:]
    finally:
        s.close()
    # (under valgrind the close has been seen to overtake the GOAWAY, as in
    # the clear-text test: the refusal counter below proves the refusal)
    assert goaway == ENHANCE_YOUR_CALM or (WRAP and closed), "GOAWAY %r" % goaway
    assert _refused(g.port, "max_header_size") == 2
    assert _refused(g.port, "h2_max_resets") == 1
