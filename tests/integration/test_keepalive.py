"""HTTP/1.1 keep-alive, concurrency, HEAD and pipelining through esgate."""

import http.client
import socket
import threading
import time

from harness import HTTP_TIMEOUT, TestFailure, get, read_response


def _direct(d):
    """esdemo's own answer to GET /: (body, headers)."""
    status, headers, body = d.get("/")
    assert status == 200, status
    assert body, "esdemo's GET / has an empty body"
    return body, headers


def _direct_body(d):
    return _direct(d)[0]


def test_1000_requests_reuse_one_connection(ctx):
    d, g = ctx.start()
    expected, direct_headers = _direct(d)
    assert direct_headers.get("x-elastic-product") == "Elasticsearch", direct_headers
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=HTTP_TIMEOUT)
    conn.connect()
    sock = conn.sock
    local = sock.getsockname()
    for i in range(1000):
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (i, resp.status, body)
        assert body == expected, (i, body)
        assert resp.getheader("content-type") == direct_headers["content-type"], (i, resp.getheader("content-type"))
        assert resp.getheader("x-elastic-product") == "Elasticsearch", (i, resp.getheaders())
        assert (resp.getheader("connection") or "").lower() != "close", (i, resp.getheaders())
        assert conn.sock is sock, "request %d: http.client reconnected (server closed the connection)" % i
    assert sock.getsockname() == local
    conn.close()


def test_10000_requests_over_64_connections(ctx):
    d, g = ctx.start()
    expected = _direct_body(d)
    nconns, total = 64, 10000
    errors = []
    done = [0]
    lock = threading.Lock()

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=HTTP_TIMEOUT)
        try:
            for _ in range(n):
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or body != expected:
                    raise TestFailure("status %d body %r" % (resp.status, body[:200]))
                with lock:
                    done[0] += 1
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(repr(e))
        finally:
            conn.close()

    counts = [total // nconns + (1 if i < total % nconns else 0) for i in range(nconns)]
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in counts]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients still running after 60 s"
    assert not errors, "%d client(s) failed, first: %s" % (len(errors), errors[0])
    assert done[0] == total, done[0]


def test_head(ctx):
    d, g = ctx.start()
    expected = _direct_body(d)
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=HTTP_TIMEOUT)
    conn.request("HEAD", "/")
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200, resp.status
    assert resp.getheader("content-length") == str(len(expected)), (resp.getheader("content-length"), len(expected))
    assert body == b"", body
    # The connection is still usable: nothing stray was sent after the head.
    sock = conn.sock
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == expected
    assert conn.sock is sock
    conn.close()


def test_pipelining(ctx):
    d, g = ctx.start()
    expected = _direct_body(d)
    s = socket.create_connection(("127.0.0.1", g.port), timeout=HTTP_TIMEOUT)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        r1, r2, r3 = (read_response(f, require_length=True) for _ in range(3))
    finally:
        s.close()
    assert r1[0] == 200 and r1[2] == b'{"status":"ok"}', r1
    assert r2[0] == 200 and r2[2] == expected, r2
    assert r3[0] == 404 and b"not_found" in r3[2], r3


def test_new_connection_after_an_idle_spell_is_served(ctx):
    # h2o's clock only moves inside its own loop run; esgate calls into h2o
    # from libev callbacks, so a stale clock once made a connection that
    # arrived after more than keepalive_timeout of silence time out at once.
    # The idle spell itself is what is tested, hence the sleep.
    d, g = ctx.start(workers=1, keepalive_timeout="1s")
    assert get(g.port, "/")[0] == 200
    time.sleep(1.5)
    for _ in range(3):
        status, _, body = get(g.port, "/")
        assert status == 200, (status, body)
