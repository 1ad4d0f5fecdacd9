"""Per-client rate limits (lib/ratelimit.h): one token bucket per client
address and route, shared by every worker; a limited request is answered
429 too_many_requests with Retry-After and never reaches esdemo.
X-Forwarded-For is believed only from trusted_proxies.  Every request goes
on a new connection, and the tests choose which worker accepts it, so the
buckets are seen to be shared.  A second client address is 127.0.0.2: the
client socket is bound to it before connecting (loopback accepts any
127/8 source)."""

import json
import socket
import time

from harness import HTTP_TIMEOUT, TestFailure, connection_owner, json_error, make_config, read_response

ROUTES = """\
routes:
  - path: /search/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    rate_limit: {rate: %(rate)s, burst: %(burst)d}
  - path: /doc/{index}/{id}
    methods: [GET]
    upstream: {method: GET, path: "/{index}/_doc/{id}"}
    indices: [books]
"""


def _start(ctx, rate="1/m", burst=10, extra=""):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra=extra + ROUTES % {"rate": rate, "burst": burst}))
    return d, g


def _connect(port, source="127.0.0.1", pids=None, want=None, tries=200):
    """A new connection from SOURCE; with WANT, one that worker WANT (of
    PIDS) accepted (others are closed unused).  Returns (socket, owner pid)."""
    for _ in range(tries):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(HTTP_TIMEOUT)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        if pids is None:
            return s, None
        cport = s.getsockname()[1]
        owner = None
        deadline = time.monotonic() + 5
        while owner is None and time.monotonic() < deadline:
            owner = connection_owner(pids, port, cport)
            if owner is None:
                time.sleep(0.01)
        if owner is None:
            s.close()
            raise TestFailure("no worker accepted the connection from port %d" % cport)
        if want is None or owner == want:
            return s, owner
        s.close()
    raise TestFailure("%d connections did not reach worker %d" % (tries, want))


def _get(port, path="/search/books", source="127.0.0.1", headers=(), pids=None, want=None):
    """GET PATH on a new connection from SOURCE, HEADERS a list of (name,
    value) (names may repeat).  Returns (status, headers, body, worker pid)."""
    s, owner = _connect(port, source, pids, want)
    try:
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Connection: close"]
        lines += ["%s: %s" % hv for hv in headers]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        f = s.makefile("rb")
        try:
            status, h, body = read_response(f)
        finally:
            f.close()
        return status, h, body, owner
    finally:
        s.close()


def _limited(resp):
    status, headers, body, _ = resp
    json_error(status, headers, body, 429, "too_many_requests")
    after = headers.get("retry-after", "")
    assert after.isdigit() and int(after) >= 1, headers
    return int(after)


def test_limit_is_shared_by_workers_and_per_address(ctx):
    d, g = _start(ctx, "1/m", 10)
    pids = g.workers()
    assert len(pids) == 2, pids
    n0 = d.requests()
    results = [_get(g.port, pids=pids, want=pids[i % 2]) for i in range(14)]
    statuses = [r[0] for r in results]
    assert statuses == [200] * 10 + [429] * 4, statuses
    assert {r[3] for r in results[:10]} == set(pids) and {r[3] for r in results[10:]} == set(pids)
    for r in results[10:]:
        after = _limited(r)
        assert after <= 60, after  # one token a minute
    assert d.requests() == n0 + 10, "limited requests reached esdemo (%d, want %d)" % (d.requests(), n0 + 10)
    # A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    n1 = d.requests()
    for xff in ("1.2.3.4", "5.6.7.8, 9.9.9.9", "127.0.0.2"):
        _limited(_get(g.port, headers=[("X-Forwarded-For", xff)], pids=pids, want=pids[0]))
    assert d.requests() == n1
    # Another address has a bucket of its own, on either worker.
    results = [_get(g.port, source="127.0.0.2", pids=pids, want=pids[i % 2]) for i in range(12)]
    assert [r[0] for r in results] == [200] * 10 + [429] * 2, [r[0] for r in results]
    assert d.requests() == n1 + 10
    # A route without a limit is not limited for the limited client.
    for _ in range(3):
        status, _, body, _ = _get(g.port, "/doc/books/1")
        assert status == 200, (status, body)
    assert d.requests() == n1 + 13
    # esgate's own paths are not limited either.
    assert _get(g.port, "/healthz")[0] == 200


def test_refill_at_the_configured_rate(ctx):
    d, g = _start(ctx, "5/s", 2)
    statuses = [_get(g.port)[0] for _ in range(3)]
    assert statuses == [200, 200, 429], statuses
    n = d.requests()
    after = _limited(_get(g.port))
    assert after == 1, after  # a token every 200 ms, rounded up to whole seconds
    assert d.requests() == n
    time.sleep(0.5)  # 2.5 tokens' worth, capped at the burst of 2
    statuses = [_get(g.port)[0] for _ in range(3)]
    assert statuses[0] == 200 and statuses.count(429) >= 1, statuses


def test_trusted_proxy_forwarded_for_decides_the_client(ctx):
    d, g = _start(ctx, "1/m", 3, extra="trusted_proxies: [127.0.0.1/32]\n")
    pids = g.workers()
    n0 = d.requests()

    def via_proxy(xff, i=0):
        return _get(g.port, headers=[("X-Forwarded-For", xff)], pids=pids, want=pids[i % 2])

    assert [via_proxy("1.2.3.4", i)[0] for i in range(4)] == [200, 200, 200, 429]
    _limited(via_proxy("1.2.3.4"))
    # another forwarded client: its own bucket
    assert [via_proxy("5.6.7.8", i)[0] for i in range(4)] == [200, 200, 200, 429]
    # read right to left: the first untrusted entry is the client
    _limited(via_proxy("203.0.113.9, 1.2.3.4"))
    _limited(via_proxy("1.2.3.4, 127.0.0.1"))
    assert via_proxy("1.2.3.4, 198.51.100.7")[0] == 200
    # a proxy that adds its own header line: every line counts, joined, so the
    # client's own (first, spoofed) line cannot stand alone
    _limited(_get(g.port, headers=[("X-Forwarded-For", "198.51.100.99"), ("X-Forwarded-For", "1.2.3.4")],
                  pids=pids, want=pids[0]))
    # the proxy itself, with no header, is a client of its own
    assert _get(g.port)[0] == 200
    # an untrusted peer's header is ignored: 127.0.0.2 is its own client
    assert [_get(g.port, source="127.0.0.2", headers=[("X-Forwarded-For", "9.9.9.9")])[0]
            for _ in range(4)] == [200, 200, 200, 429]
    assert via_proxy("9.9.9.9")[0] == 200, "127.0.0.2's requests were counted for 9.9.9.9"
    assert d.requests() == n0 + 3 + 3 + 1 + 1 + 3 + 1, d.requests() - n0


def test_429_body_is_esgate_json(ctx):
    d, g = _start(ctx, "1/m", 1)
    assert _get(g.port)[0] == 200
    status, headers, body, _ = _get(g.port)
    doc = json_error(status, headers, body, 429, "too_many_requests")
    assert doc == {"error": {"type": "too_many_requests", "reason": doc["error"]["reason"]}, "status": 429}, doc
    assert "x-request-id" in headers, headers
    assert json.loads(body)["status"] == 429
