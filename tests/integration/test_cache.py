"""The per-worker micro-cache and request coalescing (worker/cache.c): off by
default; within cache_ttl a key reaches esdemo at most once per worker;
errors, POSTs and answers over cache.max_entry_size are never stored;
concurrent identical GETs share one upstream request, also when a client
leaves; the byte budget holds; a reload changes the TTL; a rate limit still
applies to hits; the metrics count exactly.  Counts that must be exact use
one keep-alive connection (one worker); counts over several connections
are bounded by the number of workers."""

import http.client
import json
import socket
import threading
import time

import promparse
from harness import ASAN, HTTP_TIMEOUT, RssSampler, TestFailure, get, make_config, request, wait_for

# Under ASan/UBSan the quarantine keeps freed blocks: RSS bounds are for the
# plain build, with a loose one under the sanitizers.

ROUTES = """\
cluster_info: {cache_ttl: %(ttl)s}
cache: {max_size: %(max_size)s, max_entry_size: %(max_entry)s}
routes:
  - path: /doc/{index}/{id}
    methods: [GET, HEAD]
    upstream: {method: GET, path: "/{index}/_doc/{id}"}
    indices: [books]
    cache_ttl: %(ttl)s
  - path: /search/{index}
    methods: [GET, POST]
    upstream: {method: GET, path: "/{index}/_search"}
    indices: [books]
    params: [size, from]
    cache_ttl: %(ttl)s
  - path: /big
    methods: [GET]
    upstream: {method: GET, path: /_esdemo/big}
    params: [bytes]
    cache_ttl: %(ttl)s
"""


def _start(ctx, ttl="60s", workers=2, max_size="1mb", max_entry="256kb", extra="", esdemo_args=()):
    d = ctx.esdemo(*esdemo_args)
    text = ROUTES % {"ttl": ttl, "max_size": max_size, "max_entry": max_entry}
    g = ctx.esgate(make_config(d.port, workers=workers, extra=extra + text), workers=workers)
    return d, g


class Conn:
    """One keep-alive connection: every request on it reaches the same worker."""

    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)

    def req(self, path="/", method="GET", body=None, headers=None):
        self.c.request(method, path, body=body, headers=headers or {})
        r = self.c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def close(self):
        self.c.close()


def _metrics(g):
    status, _, body = get(g.port, "/metrics")
    assert status == 200
    return promparse.parse(body.decode())


def _cache_count(fams, route, result):
    try:
        return promparse.value(fams, "esgate_cache_requests_total", route=route, result=result)
    except (KeyError, LookupError, AssertionError):
        return 0


def _parallel(port, n, path="/", headers=None):
    """N requests on N connections at once: [(status, headers, body)]."""
    out = [None] * n
    start = threading.Barrier(n)

    def one(i):
        start.wait()
        try:
            out[i] = request(port, "GET", path, headers=headers)
        except Exception as e:  # reported below
            out[i] = e

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    for r in out:
        if not isinstance(r, tuple):
            raise TestFailure("a parallel request failed: %r" % (r,))
    return out


def test_off_by_default(ctx):
    d, g = ctx.start(extra="routes:\n  - {path: \"/doc/{index}/{id}\", methods: [GET], indices: [books],"
                           " upstream: {method: GET, path: \"/{index}/_doc/{id}\"}}\n")
    c = Conn(g.port)
    n0 = d.requests()
    for path in ["/"] * 5 + ["/doc/books/1"] * 5:
        status, h, _ = c.req(path)
        assert status == 200 and "x-cache" not in h and "age" not in h, (status, h)
    c.close()
    assert d.requests() == n0 + 10
    assert "esgate_cache_requests_total{" not in get(g.port, "/metrics")[2].decode()


def test_hits_within_ttl_then_fetched_again(ctx):
    d, g = _start(ctx, ttl="1s")
    n0 = d.requests()
    results = _parallel(g.port, 1, "/") + [request(g.port, "GET", "/") for _ in range(11)]
    bodies = {r[2] for r in results}
    assert len(bodies) == 1 and all(r[0] == 200 for r in results), [r[:2] for r in results]
    fetched = d.requests() - n0
    assert 1 <= fetched <= 2, "%d upstream requests for 12 GETs within the TTL (2 workers)" % fetched
    kinds = [r[1].get("x-cache") for r in results]
    assert kinds.count("MISS") == fetched and kinds.count("HIT") == 12 - fetched, kinds
    for r in results:
        assert r[1]["content-type"].startswith("application/json") and r[1]["x-elastic-product"] == "Elasticsearch"
        if r[1]["x-cache"] == "HIT":
            assert r[1]["age"] in ("0", "1"), r[1]
        else:
            assert "age" not in r[1], r[1]
    # Past the TTL the same key goes upstream again.
    c = Conn(g.port)
    wait_for(lambda: c.req("/")[1]["x-cache"] == "MISS", 5, "a MISS once the 1s TTL is over")
    c.close()
    assert d.requests() > n0 + fetched


def test_errors_and_missing_documents_are_not_cached(ctx):
    d, g = _start(ctx)
    c = Conn(g.port)
    d.control(status=503)
    n0 = d.requests()
    for _ in range(3):
        status, h, body = c.req("/doc/books/1")
        assert status == 503 and h["x-cache"] == "MISS", (status, h, body)
        assert json.loads(body)["error"]["type"] == "esdemo_forced_status_exception"  # cut down as without a cache
    # esgate's retries may multiply the upstream count; every GET went upstream
    assert d.requests() >= n0 + 3
    d.control(status=0)
    n0 = d.requests()
    for _ in range(3):
        status, h, body = c.req("/doc/books/nope")
        assert status == 404 and json.loads(body)["found"] is False and h["x-cache"] == "MISS", (status, body)
    assert d.requests() == n0 + 3, "a 404 must not be cached"
    status, h, _ = c.req("/doc/books/1")
    assert status == 200 and h["x-cache"] == "MISS"
    status, h, _ = c.req("/doc/books/1")
    assert status == 200 and h["x-cache"] == "HIT", "the 200 after the errors is cached"
    c.close()


def test_post_search_and_head_bypass(ctx):
    d, g = _start(ctx)
    c = Conn(g.port)
    n0 = d.requests()
    for _ in range(3):
        status, h, _ = c.req("/search/books", "POST", b'{"query":{"match_all":{}}}',
                             {"content-type": "application/json"})
        assert status == 200 and h["x-cache"] == "BYPASS", (status, h)
    assert d.requests() == n0 + 3, "POST searches are never cached"
    for _ in range(2):
        status, h, _ = c.req("/doc/books/1", "HEAD")
        assert status == 200 and h["x-cache"] == "BYPASS"
    assert d.requests() == n0 + 5
    for _ in range(3):
        status, h, _ = c.req("/search/books?size=1")
        assert status == 200
    assert d.requests() == n0 + 6, "a GET search without a body is"
    c.close()


def test_keys_queries_and_gzip(ctx):
    d, g = _start(ctx)
    d.control(gzip=1)
    c = Conn(g.port)
    n0 = d.requests()
    answers = {}
    for _ in range(3):
        for q in ("size=1", "size=2", "size=1&from=1"):
            answers.setdefault(q, set()).add(c.req("/search/books?" + q)[2])
    assert d.requests() == n0 + 3, "three queries, three entries"
    assert all(len(v) == 1 for v in answers.values()) and len({next(iter(v)) for v in answers.values()}) == 3
    n0 = d.requests()
    plain = [c.req("/") for _ in range(2)]
    gz = [c.req("/", headers={"accept-encoding": "gzip"}) for _ in range(2)]
    assert d.requests() == n0 + 2, "gzip and plain are separate entries"
    assert [r[1].get("x-cache") for r in plain + gz] == ["MISS", "HIT", "MISS", "HIT"]
    assert all("content-encoding" not in r[1] for r in plain) and plain[0][2] == plain[1][2]
    assert all(r[1].get("content-encoding") == "gzip" for r in gz) and gz[0][2] == gz[1][2]
    assert gz[0][2][:2] == b"\x1f\x8b"
    c.close()


def test_coalescing_concurrent_gets(ctx):
    d, g = _start(ctx, ttl="60s")
    d.control(latency_ms=300)
    n0 = d.requests()
    results = _parallel(g.port, 20, "/")
    fetched = d.requests() - n0
    assert 1 <= fetched <= 2, "%d upstream requests for 20 concurrent GETs (2 workers)" % fetched
    assert all(r[0] == 200 for r in results) and len({r[2] for r in results}) == 1
    kinds = [r[1]["x-cache"] for r in results]
    assert kinds.count("MISS") == fetched and set(kinds) <= {"MISS", "COALESCED", "HIT"}, kinds
    # Coalescing alone (cache_ttl 0): shared while in flight, nothing kept.
    d2 = ctx.esdemo()
    d2.control(latency_ms=300)
    g2 = ctx.esgate(make_config(d2.port, workers=1, extra="cluster_info: {coalesce: true}\n"), workers=1)
    n0 = d2.requests()
    results = _parallel(g2.port, 10, "/")
    assert d2.requests() == n0 + 1 and all(r[0] == 200 for r in results)
    assert sorted(r[1]["x-cache"] for r in results) == ["COALESCED"] * 9 + ["MISS"]
    status, h, _ = get(g2.port, "/")
    assert status == 200 and h["x-cache"] == "MISS" and d2.requests() == n0 + 2


def _send_and_leave(port, path="/"):
    s = socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    return s


def test_clients_leaving_do_not_cancel_the_shared_request(ctx):
    d, g = _start(ctx, workers=1)
    d.control(latency_ms=500)
    n0 = d.requests()
    leader = _send_and_leave(g.port)
    wait_for(lambda: d.requests() == n0 + 1, 5, "the leader's request upstream")
    follower_gone = _send_and_leave(g.port)
    out = []
    t = threading.Thread(target=lambda: out.extend(_parallel(g.port, 5, "/")))
    t.start()
    time.sleep(0.1)  # let the five join the request in flight before the two leave
    leader.close()
    follower_gone.close()
    t.join(30)
    assert len(out) == 5 and all(r[0] == 200 for r in out), [r[:2] for r in out]
    assert d.requests() == n0 + 1, "one upstream request for seven clients"
    # It was stored even though its first client had gone.
    status, h, _ = get(g.port, "/")
    assert status == 200 and h["x-cache"] == "HIT" and d.requests() == n0 + 1


def test_over_the_entry_limit_is_not_cached(ctx):
    d, g = _start(ctx, max_entry="8kb", workers=1)
    d.control(latency_ms=200)
    n0 = d.requests()
    results = _parallel(g.port, 4, "/big?bytes=20000")
    assert all(r[0] == 200 and len(r[2]) == 20000 and r[2].endswith(b'"}') for r in results), \
        [(r[0], len(r[2])) for r in results]
    assert all(r[1]["x-cache"] in ("MISS", "COALESCED") for r in results)
    first = d.requests() - n0
    assert first >= 4, "every client got its own upstream request (%d)" % first
    d.control(latency_ms=0)
    c = Conn(g.port)
    for _ in range(3):
        status, h, body = c.req("/big?bytes=20000")
        assert status == 200 and len(body) == 20000 and h["x-cache"] == "MISS"
    assert d.requests() == n0 + first + 3, "a key known too big goes straight upstream"
    for _ in range(3):
        status, h, body = c.req("/big?bytes=4000")
        assert status == 200 and len(body) == 4000
    assert d.requests() == n0 + first + 4, "under the limit it is cached"
    c.close()


def test_memory_cap_evicts(ctx):
    d, g = _start(ctx, max_size="64kb", max_entry="16kb", workers=1)
    pid = g.workers()[0]
    c = Conn(g.port)
    for i in range(20):  # warm up the worker's pools and buffers
        c.req("/big?bytes=%d" % (3000 + i))
    with RssSampler([pid]) as rss:
        before = rss.max
        for i in range(400):
            status, _, body = c.req("/big?bytes=%d" % (4000 + i))
            assert status == 200 and len(body) == 4000 + i
    fams = _metrics(g)
    evicted = promparse.value(fams, "esgate_cache_evictions_total")
    stored = promparse.value(fams, "esgate_cache_stores_total")
    assert stored == 420 and evicted >= 400 - 64 * 1024 // 4000, (stored, evicted)
    grew = rss.max - before
    assert grew < (65536 if ASAN else 2048), "worker RSS grew by %d kB under a 64 kB cache" % grew
    assert ASAN or rss.max <= 10 * 1024, "worker RSS %d kB" % rss.max
    status, h, _ = c.req("/big?bytes=4399")
    assert status == 200 and h["x-cache"] == "HIT", "the newest entry is kept"
    status, h, _ = c.req("/big?bytes=4000")
    assert status == 200 and h["x-cache"] == "MISS", "the oldest went"
    c.close()


def test_reload_changes_the_ttl(ctx):
    d = ctx.esdemo()
    text = ROUTES % {"ttl": "60s", "max_size": "1mb", "max_entry": "256kb"}
    g = ctx.esgate(make_config(d.port, extra=text))
    c = Conn(g.port)
    n0 = d.requests()
    assert [c.req("/")[1]["x-cache"] for _ in range(3)] == ["MISS", "HIT", "HIT"]
    c.close()
    assert d.requests() == n0 + 1
    g.write_config(make_config(d.port, extra=text.replace("cluster_info: {cache_ttl: 60s}\n", "")))
    g.signal(1)  # SIGHUP
    g.wait_log(r"generation 2 serving; draining", timeout=15)
    g.wait_workers(2, timeout=15)
    n0 = d.requests()
    for _ in range(3):
        status, h, _ = get(g.port, "/")
        assert status == 200 and "x-cache" not in h, h
    assert d.requests() == n0 + 3, "after the reload GET / is not cached"


def test_rate_limit_applies_to_hits(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra=(
        "routes:\n"
        "  - path: /doc/{index}/{id}\n"
        "    methods: [GET]\n"
        "    upstream: {method: GET, path: \"/{index}/_doc/{id}\"}\n"
        "    indices: [books]\n"
        "    cache_ttl: 60s\n"
        "    rate_limit: {rate: 1/m, burst: 3}\n")))
    c = Conn(g.port)
    n0 = d.requests()
    got = [c.req("/doc/books/1") for _ in range(5)]
    assert [r[0] for r in got] == [200, 200, 200, 429, 429], [r[0] for r in got]
    assert [r[1].get("x-cache") for r in got[:3]] == ["MISS", "HIT", "HIT"]
    assert "x-cache" not in got[3][1], "a limited request never reaches the cache"
    assert d.requests() == n0 + 1
    # and an index the route does not serve is refused before any lookup
    status, h, _ = c.req("/doc/other/1")
    assert status == 429 or (status == 403 and "x-cache" not in h)
    c.close()


def test_metrics_count_exactly(ctx):
    d, g = _start(ctx, workers=1)
    node = "http://127.0.0.1:%d" % d.port
    before = _metrics(g)
    up0 = promparse.value(before, "esgate_upstream_requests_total", node=node)
    c = Conn(g.port)
    for _ in range(7):
        assert c.req("/")[0] == 200
    assert c.req("/", "HEAD")[0] == 200
    for _ in range(4):
        assert c.req("/doc/books/2")[0] == 200
    c.close()
    fams = _metrics(g)
    assert _cache_count(fams, "/", "hit") == 6
    assert _cache_count(fams, "/", "miss") == 1
    assert _cache_count(fams, "/", "bypass") == 1
    assert _cache_count(fams, "/", "coalesced") == 0
    assert _cache_count(fams, "/doc/{index}/{id}", "hit") == 3
    assert _cache_count(fams, "/doc/{index}/{id}", "miss") == 1
    assert promparse.value(fams, "esgate_cache_stores_total") == 2
    assert promparse.value(fams, "esgate_upstream_requests_total", node=node) == up0 + 3  # 2 misses + HEAD
    assert promparse.value(fams, "esgate_requests_total", route="/", code="2xx") == 8


def _raw_answers(port, requests_bytes, n):
    """N answers read off one connection after sending REQUESTS_BYTES:
    [(head lines as bytes, body bytes)] (Content-Length framed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT)
    s.sendall(requests_bytes)
    buf, out = b"", []
    try:
        while len(out) < n:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise TestFailure("connection closed after %d answers: %r" % (len(out), buf))
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            length = [int(x.split(b":", 1)[1]) for x in lines if x.lower().startswith(b"content-length:")][0]
            while len(buf) < length:
                chunk = s.recv(65536)
                if not chunk:
                    raise TestFailure("connection closed in a body")
                buf += chunk
            out.append((lines, buf[:length]))
            buf = buf[length:]
    finally:
        s.close()
    return out


def test_a_hit_is_the_miss_with_age(ctx):
    """A hit's bytes are its miss's, field for field and in order, but for
    Date, the request id, X-Cache: HIT and Age added last (the hit is
    built from the stored entry, not through the proxy): plain and gzip,
    HTTP/1.1 keep-alive and HTTP/1.0 (one worker: every connection finds
    the entry)."""
    d, g = _start(ctx, workers=1)
    d.control(gzip=1)

    def norm(lines):
        return [b"date: -" if x.lower().startswith(b"date:") else
                b"x-request-id: -" if x.lower().startswith(b"x-request-id:") else x for x in lines]

    for extra in (b"", b"Accept-Encoding: gzip\r\n"):
        one = b"GET / HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"
        (miss, mbody), (hit, hbody) = _raw_answers(g.port, one + one, 2)
        miss, hit = norm(miss), norm(hit)
        assert b"x-cache: MISS" in miss and b"x-cache: HIT" in hit, (miss, hit)
        assert hit[-1] in (b"age: 0", b"age: 1"), hit
        want = [b"x-cache: HIT" if x == b"x-cache: MISS" else x for x in miss]
        assert hit[:-1] == want, (miss, hit)
        assert hbody == mbody and len(hbody) > 0
        assert (b"content-encoding: gzip" in hit) == (extra != b"")
        # HTTP/1.0: the same fields, the connection closed after it
        (old, obody), = _raw_answers(g.port, b"GET / HTTP/1.0\r\n" + extra + b"\r\n", 1)
        old = norm(old)
        assert old == [b"Connection: close" if x == b"Connection: keep-alive" else x for x in hit[:-1]] + [old[-1]], \
            (hit, old)
        assert obody == hbody
