"""CORS: a route with cors answers preflights itself (204, never forwarded),
refuses other origins' preflights with 403, and marks answers to allowed
origins with Access-Control-Allow-Origin and Vary: Origin.  A route without
cors sends no CORS headers, and OPTIONS there is just a wrong method."""

import json

from harness import json_error, make_config, raw_request

ROUTES = """\
routes:
  - path: /search/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    params: [size]
    cors: {allow_origins: ["https://app.example", "http://localhost:3000"], allow_headers: [content-type, x-request-id],
           max_age: 10m}
  - path: /doc/{index}/{id}
    methods: [GET, HEAD]
    upstream: {method: GET, path: "/{index}/_doc/{id}"}
    indices: [books]
  - path: /any/{index}
    methods: [GET]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    cors: {allow_origins: "*"}
"""

ORIGIN = "https://app.example"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
                "access-control-max-age", "access-control-allow-credentials")


def _start(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra=ROUTES))
    return d, g


def _preflight(port, path, origin, method="POST", headers="content-type"):
    h = {"Access-Control-Request-Method": method}
    if origin is not None:
        h["Origin"] = origin
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return raw_request(port, "OPTIONS", path, headers=h)


def test_preflight_is_answered_and_never_forwarded(ctx):
    d, g = _start(ctx)
    n = d.requests()
    status, headers, body = _preflight(g.port, "/search/books", ORIGIN)
    assert status == 204 and body == b"", (status, headers, body)
    assert headers.get("access-control-allow-origin") == ORIGIN, headers
    assert headers.get("access-control-allow-methods") == "GET, POST", headers
    assert headers.get("access-control-allow-headers") == "content-type, x-request-id", headers
    assert headers.get("access-control-max-age") == "600", headers
    assert headers.get("vary") == "Origin", headers
    assert "access-control-allow-credentials" not in headers, headers
    # the second origin, and a preflight with a query string
    status, headers, _ = _preflight(g.port, "/search/books?size=1", "http://localhost:3000", "GET", None)
    assert status == 204 and headers.get("access-control-allow-origin") == "http://localhost:3000", headers
    # "*": any origin, answered "*" and without Vary
    status, headers, _ = _preflight(g.port, "/any/books", "https://elsewhere.example", "GET", None)
    assert status == 204 and headers.get("access-control-allow-origin") == "*", headers
    assert headers.get("access-control-allow-methods") == "GET", headers
    assert "vary" not in headers and "access-control-max-age" not in headers, headers
    assert d.requests() == n, "a preflight reached esdemo: %r" % d.stats()["paths"]


def test_disallowed_origin_preflight_is_403(ctx):
    d, g = _start(ctx)
    n = d.requests()
    for origin in ("https://evil.example", "https://app.example.evil.example", "http://app.example",
                   "https://app.example:443", "https://APP.example", "https://app.example/", "null", "", None):
        status, headers, body = _preflight(g.port, "/search/books", origin)
        json_error(status, headers, body, 403, "cors_origin_not_allowed")
        assert "access-control-allow-origin" not in headers, (origin, headers)
    # an index the route does not serve is still not forwarded
    status, _, _ = _preflight(g.port, "/search/secret", ORIGIN)
    assert status == 204, status  # answered before the index is looked at
    assert d.requests() == n, "a refused preflight reached esdemo"


def test_allowed_origin_gets_allow_origin_and_vary(ctx):
    d, g = _start(ctx)
    status, headers, body = raw_request(g.port, "GET", "/search/books?size=1", headers={"Origin": ORIGIN})
    assert status == 200, (status, body)
    assert headers.get("access-control-allow-origin") == ORIGIN, headers
    assert headers.get("vary") == "Origin", headers
    assert json.loads(body)["hits"]["hits"], body
    # the answer itself is esdemo's
    assert body == raw_request(d.port, "POST", "/books/_search?size=1")[2]
    # the Origin header is not sent upstream
    assert "origin" not in d.last()["headers"], d.last()
    # a POST with a body, and an error answer, carry them too
    status, headers, _ = raw_request(g.port, "POST", "/search/books", body=b'{"query":{"script":{"script":"1"}}}',
                                     headers={"Origin": ORIGIN, "Content-Type": "application/json"})
    assert status == 400 and headers.get("access-control-allow-origin") == ORIGIN, (status, headers)
    # another origin's request is answered, without CORS headers (the browser blocks it)
    status, headers, _ = raw_request(g.port, "GET", "/search/books", headers={"Origin": "https://evil.example"})
    assert status == 200, status
    assert not any(h in headers for h in CORS_HEADERS), headers
    # no Origin: no CORS headers
    status, headers, _ = raw_request(g.port, "GET", "/search/books")
    assert status == 200 and not any(h in headers for h in CORS_HEADERS), headers
    status, headers, _ = raw_request(g.port, "GET", "/any/books", headers={"Origin": "https://x.example"})
    assert status == 200 and headers.get("access-control-allow-origin") == "*" and "vary" not in headers, headers


def test_no_cors_config_no_cors_headers(ctx):
    d, g = _start(ctx)
    n = d.requests()
    status, headers, body = raw_request(g.port, "GET", "/doc/books/1", headers={"Origin": ORIGIN})
    assert status == 200, (status, body)
    assert not any(h in headers for h in CORS_HEADERS) and "vary" not in headers, headers
    # OPTIONS on a route without cors: a method the route does not take
    status, headers, body = _preflight(g.port, "/doc/books/1", ORIGIN, "GET")
    json_error(status, headers, body, 405, "method_not_allowed")
    assert headers.get("allow") == "GET, HEAD", headers
    assert not any(h in headers for h in CORS_HEADERS), headers
    # and on a path no route has
    status, headers, body = _preflight(g.port, "/nowhere", ORIGIN)
    json_error(status, headers, body, 404, "not_found")
    assert d.requests() == n + 1
