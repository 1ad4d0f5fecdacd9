"""Big answers are streamed with back-pressure: a 50 MB upstream body arrives
byte-identical over HTTP/1.1 and HTTP/2 while no worker's memory grows
with it, even for a slow reader; gzip passes through untouched."""

import gzip
import hashlib
import http.client
import os
import socket
import subprocess
import time

from harness import ASAN, HTTP_TIMEOUT, RssSampler, TestFailure, make_config, request, wait_for

BIG = 50 * 1024 * 1024
ROUTES = """\
routes:
  - path: /big
    methods: [GET, HEAD]
    upstream: {method: GET, path: /_esdemo/big}
    params: [bytes]
"""

# Under ASan/UBSan shadow memory and quarantine inflate RSS; the bound is
# for the plain build (two 256 KiB buffers per worker are what streaming costs).
RSS_LIMIT_KB = (64 if ASAN else 32) * 1024


def _expected_sha256(n):
    """sha256 of esdemo's /_esdemo/big?bytes=N: {"data":"0123..."} of N bytes."""
    h = hashlib.sha256()
    h.update(b'{"data":"')
    pad = n - 11
    chunk = b"0123456789abcdef" * 65536  # 1 MiB, a whole number of patterns
    while pad > 0:
        take = min(pad, len(chunk))
        h.update(chunk[:take])
        pad -= take
    h.update(b'"}')
    return h.hexdigest()


def _start(ctx, workers=2):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=workers, request_timeout="60s", extra=ROUTES), workers=workers)
    return d, g


def _check_rss(sampler, what):
    assert sampler.samples >= 3, "only %d RSS samples" % sampler.samples
    assert sampler.max <= RSS_LIMIT_KB, "%s: a worker reached VmRSS %d kB (limit %d kB)" % (
        what, sampler.max, RSS_LIMIT_KB)


def test_expected_pattern_matches_esdemo(ctx):
    # The reference the other tests hash against, checked on a small body.
    d = ctx.esdemo()
    status, _, body = d.get("/_esdemo/big?bytes=100")
    assert status == 200 and len(body) == 100, (status, len(body))
    assert hashlib.sha256(body).hexdigest() == _expected_sha256(100), body


def test_50mb_answer_over_http1_is_identical_and_memory_stays_flat(ctx):
    d, g = _start(ctx)
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=HTTP_TIMEOUT)
    h = hashlib.sha256()
    total = 0
    with RssSampler(g.workers(), interval=0.01) as rss:
        conn.request("GET", "/big?bytes=%d" % BIG)
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        assert resp.getheader("content-length") in (None, str(BIG)), resp.getheaders()
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            total += len(chunk)
    conn.close()
    assert total == BIG, "got %d bytes of %d" % (total, BIG)
    assert h.hexdigest() == _expected_sha256(BIG), "the 50 MB body differs from esdemo's"
    assert d.last()["path"] == "/_esdemo/big" and d.last()["query"] == "bytes=%d" % BIG, d.last()
    _check_rss(rss, "HTTP/1.1 50 MB")


def test_50mb_answer_over_http2_is_identical_and_memory_stays_flat(ctx):
    d, g = _start(ctx)
    out = os.path.join(ctx.tmpdir, "big.out")
    with RssSampler(g.workers(), interval=0.01) as rss:
        p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "25", "-o", out,
                            "-w", "%{http_version} %{http_code} %{size_download}",
                            "http://127.0.0.1:%d/big?bytes=%d" % (g.port, BIG)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=28)
    assert p.returncode == 0, (p.returncode, p.stderr)
    version, code, size = p.stdout.decode().split()
    assert (version, code, int(size)) == ("2", "200", BIG), p.stdout
    h = hashlib.sha256()
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    os.unlink(out)
    assert h.hexdigest() == _expected_sha256(BIG), "the 50 MB body (HTTP/2) differs from esdemo's"
    _check_rss(rss, "HTTP/2 50 MB")


def test_slow_reader_gets_back_pressure_then_the_whole_body(ctx):
    d, g = _start(ctx)
    s = socket.create_connection(("127.0.0.1", g.port), timeout=HTTP_TIMEOUT)
    # A small receive buffer, so the slow start really holds esgate back.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    h = hashlib.sha256()
    total = 0
    try:
        s.sendall(b"GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % BIG)
        f = s.makefile("rb", buffering=0)
        head = b""
        while b"\r\n\r\n" not in head:
            b = f.read(1)
            if not b:
                raise TestFailure("connection closed in the head: %r" % head)
            head += b
        assert head.startswith(b"HTTP/1.1 200"), head
        with RssSampler(g.workers()) as rss:
            # 5 MB at about 6 MB/s: 64 KB every 10 ms.
            while total < 5 * 1024 * 1024:
                chunk = f.read(64 * 1024)
                if not chunk:
                    break
                h.update(chunk)
                total += len(chunk)
                time.sleep(0.01)
            slow_max = rss.max
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                total += len(chunk)
    finally:
        s.close()
    assert total == BIG, "got %d bytes of %d" % (total, BIG)
    assert h.hexdigest() == _expected_sha256(BIG), "the slowly read body differs from esdemo's"
    assert slow_max <= RSS_LIMIT_KB, "slow reader: a worker reached VmRSS %d kB" % slow_max
    _check_rss(rss, "slow reader")


def test_client_gone_mid_body_cancels_the_upstream_transfer(ctx):
    d, g = _start(ctx, workers=1)
    s = socket.create_connection(("127.0.0.1", g.port), timeout=HTTP_TIMEOUT)
    s.sendall(b"GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (150 * 1024 * 1024))
    got = 0
    while got < 1024 * 1024:
        got += len(s.recv(65536))
    s.close()
    # esgate drops the upstream connection (a half-read answer cannot be
    # reused: esdemo sees it close) and stays healthy.
    def upstream_idle():
        ports, _ = d.connections()
        return request(g.port, "GET", "/healthz")[0] == 200 and not ports

    wait_for(upstream_idle, 10, "the upstream transfer to be cancelled")
    status, _, body = request(g.port, "GET", "/big?bytes=1000")
    assert status == 200 and len(body) == 1000, (status, len(body))


def test_upstream_dying_mid_answer_cuts_the_client_answer_short(ctx):
    # Once the head is out, an upstream failure can only show as a broken
    # answer: fewer bytes than Content-Length, never a "complete" success.
    d, g = _start(ctx)
    total = 100 * 1024 * 1024
    s = socket.create_connection(("127.0.0.1", g.port), timeout=HTTP_TIMEOUT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        s.sendall(b"GET /big?bytes=%d HTTP/1.1\r\nHost: x\r\n\r\n" % total)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: %d" % total in head, head
        n = len(rest)
        d.proc.kill()
        d.proc.wait(5)
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                n += len(chunk)
        except ConnectionResetError:
            pass
    finally:
        s.close()
    assert n < total, "the answer looked complete although the upstream died"
    g.wait_log(r"\[warn\] worker \d+\[\d+\]: upstream http://127\.0\.0\.1:%d broke mid-answer" % d.port, timeout=3)
    assert request(g.port, "GET", "/healthz")[0] == 200


def test_gzip_passes_through_when_the_client_accepts_it(ctx):
    d, g = _start(ctx)
    status, _, plain = d.get("/")
    assert status == 200
    d.control(gzip=1)
    status, headers, body = request(g.port, "GET", "/", headers={"Accept-Encoding": "gzip"})
    assert status == 200, status
    assert headers.get("content-encoding") == "gzip", headers
    assert body[:2] == b"\x1f\x8b", body[:20]
    assert gzip.decompress(body) == plain, body[:100]
    assert d.last()["headers"].get("accept-encoding") == "gzip", d.last()["headers"]
    # gzip among other codings counts too.
    status, headers, body = request(g.port, "GET", "/", headers={"Accept-Encoding": "deflate, gzip;q=0.5"})
    assert status == 200 and headers.get("content-encoding") == "gzip", headers


def test_no_gzip_without_accept_encoding(ctx):
    d, g = _start(ctx)
    status, _, plain = d.get("/")
    d.control(gzip=1)
    status, headers, body = request(g.port, "GET", "/")
    assert status == 200, status
    assert "content-encoding" not in headers, headers
    assert body == plain, body[:100]
    assert "accept-encoding" not in d.last()["headers"], d.last()["headers"]
    status, headers, body = request(g.port, "GET", "/", headers={"Accept-Encoding": "identity"})
    assert status == 200 and "content-encoding" not in headers and body == plain, headers
