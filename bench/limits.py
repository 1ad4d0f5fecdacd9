"""bench/limits.py - what a client can make one worker hold, for
RELIABILITY.md's table (issue 13); the attacks of tests/integration/
test_limits.py, measured the same way against any build, so that a build
without limits: (an older esgate) can be measured too.

    ESGATE_BUILD=build /usr/bin/python3 bench/limits.py hpack CONNS REFS
    ESGATE_BUILD=build /usr/bin/python3 bench/limits.py cont CONNS KB
    [RR_PATH=/] ESGATE_BUILD=build /usr/bin/python3 bench/limits.py reset

hpack: CONNS h2c connections, each one header block of REFS one-byte
references to a 4,000-byte entry (HEADERS + CONTINUATIONs, never ended);
cont: CONNS connections, each a header block with one KB-kilobyte literal,
END_HEADERS never sent; reset: 10,000 HEADERS+RST_STREAM pairs on one
connection (GET RR_PATH, default /healthz).  Prints the worker's VmRSS
before and after, and the GOAWAY seen; for reset, the worker's CPU."""
import os, sys, time, socket, struct, select, threading
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "integration"))
sys.dont_write_bytecode = True
import harness
from harness import make_config
from test_hostile import H2Conn, h2_frame, h2_request_block, HEADERS, RST_STREAM, END_STREAM, END_HEADERS, CANCEL, _raise_nofile
from test_limits import _rss_kib, _cpu_s, _hpack_bomb, _block_frames, _send
import tempfile

what = sys.argv[1]
tmp = tempfile.mkdtemp()
d = harness.Esdemo(tmp)
g = harness.Esgate(tmp, make_config(d.port, workers=1, keepalive_timeout="60s"))
g.wait_ready(1)
w = g.workers()[0]
time.sleep(0.5)
base = _rss_kib(w)
try:
    if what == "hpack":
        n = int(sys.argv[2]); refs = int(sys.argv[3])
        conns = []
        for i in range(n):
            h2 = H2Conn(g.port)
            conns.append(h2)
            frames = _block_frames(1, _hpack_bomb(refs))
            _send(h2, b"".join(frames))
        time.sleep(2)
        print("hpack %d conn x %d refs: RSS %d -> %d KiB (+%d), goaway %s" % (n, refs, base, _rss_kib(w), _rss_kib(w) - base, [c.goaway for c in conns][:1]))
        for c in conns: c.close()
        time.sleep(3)
        print("  after close + 3 s: %d KiB" % _rss_kib(w))
    elif what == "cont":
        n = int(sys.argv[2]); kb = int(sys.argv[3])
        _raise_nofile(n + 200)
        conns = []
        for i in range(n):
            h2 = H2Conn(g.port)
            conns.append(h2)
            def hint(v, prefix=7):
                m = (1 << prefix) - 1
                if v < m:
                    return bytes([v])
                out = [m]; v -= m
                while v >= 128:
                    out.append((v & 127) | 128); v >>= 7
                out.append(v)
                return bytes(out)
            block = h2_request_block() + b"\x40\x03x-a" + hint(kb * 1024) + b"v" * (kb * 1024)
            frames = _block_frames(1, block)
            _send(h2, b"".join(frames[:-1]))  # never END_HEADERS
        time.sleep(2)
        alive = sum(1 for c in conns if not c.closed)
        print("unfinished blocks %d conn x %d KB: RSS %d -> %d KiB (+%d); open %d" % (n, kb, base, _rss_kib(w), _rss_kib(w) - base, alive))
        for c in conns: c.close()
    elif what == "reset":
        h2 = H2Conn(g.port)
        cpu0 = _cpu_s(w)
        t0 = time.monotonic()
        batch = b""
        try:
            for i in range(10000):
                sid = 1 + 2 * i
                batch += (h2_frame(HEADERS, END_STREAM | END_HEADERS, sid, h2_request_block(path=os.environ.get("RR_PATH", "/healthz").encode()))
                          + h2_frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
                if len(batch) > 65536:
                    h2.send(batch); batch = b""
            h2.send(batch)
            h2.ping(b"rr-done!", timeout=30)
        except Exception as e:
            print("  ", type(e).__name__)
        time.sleep(0.5)
        print("rapid reset 10000: CPU %.3f s, goaway %r, wall %.2f s" % (_cpu_s(w) - cpu0, h2.goaway, time.monotonic() - t0))
        h2.close()
finally:
    g.stop(); d.stop()
