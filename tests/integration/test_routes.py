"""Configured routes: the happy paths relay esdemo's answers; hostile paths,
methods, indices, query parameters and bodies are refused with esgate's JSON
errors and never reach the upstream.  Requests are sent over raw sockets, so
the path bytes are exactly the ones written here."""

import json
import subprocess
import urllib.parse

from harness import json_error, make_config, raw_request

ROUTES = """\
routes:
  - path: /search/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books, "logs-*"]
    params: [q, size, from]
    # q= is a Lucene query_string: off by default, allowed here on purpose
    # max_bytes: the route's max_body is what test_body_at_max_body... checks
    policy: {queries: [match, match_phrase, multi_match, term, terms, range, bool, exists, prefix, ids, match_all,
                       simple_query_string, query_string], max_bytes: 1mb}
  - path: /doc/{index}/{id}
    methods: [GET, HEAD]
    upstream: {method: GET, path: "/{index}/_doc/{id}"}
    indices: [books, movies]
"""

MAX_BODY = 1024 * 1024  # the default

# (method, raw target, status, error type): every one is refused by esgate itself.
HOSTILE = [
    ("GET", "/search/..%2F_cluster%2Fsettings", 400, "invalid_request"),
    ("GET", "/search/books%2F..%2F_cluster", 400, "invalid_request"),
    ("GET", "/search/_all", 400, "invalid_request"),
    ("GET", "/search/a,b", 400, "invalid_request"),
    ("GET", "/search/books,movies", 400, "invalid_request"),
    ("GET", "/search/*", 400, "invalid_request"),
    ("GET", "/search/logs-%2A", 400, "invalid_request"),
    ("GET", "/search/%2e%2e", 400, "invalid_request"),
    ("GET", "/search/%2E", 400, "invalid_request"),
    ("GET", "/search/..", 400, "invalid_request"),
    ("GET", "/search/./books", 400, "invalid_request"),
    ("GET", "/search/%252e%252e", 400, "invalid_request"),
    ("GET", "/search/Books", 400, "invalid_request"),
    ("GET", "/search/books%00", 400, "invalid_request"),
    ("GET", "/search/books%zz", 400, "invalid_request"),
    ("GET", "/search/books%2", 400, "invalid_request"),
    ("GET", "/search/%C0%AE%C0%AE", 400, "invalid_request"),
    ("GET", "/search/books%0Ax", 400, "invalid_request"),
    ("GET", "/search/" + "a" * 300, 400, "invalid_request"),
    ("GET", "/search/-books", 400, "invalid_request"),
    ("GET", "/search/+books", 400, "invalid_request"),
    ("GET", "/search/books:x", 400, "invalid_request"),
    ("GET", "/search/remote:books", 400, "invalid_request"),
    ("GET", "/search/remote%3Abooks", 400, "invalid_request"),
    ("GET", "/search/%3Clogs-%7Bnow%7D%3E", 400, "invalid_request"),
    ("GET", "/search/books%20x", 400, "invalid_request"),
    ("GET", "/search/books%5C", 400, "invalid_request"),
    ("GET", "/search/books/../_cluster", 400, "invalid_request"),
    ("GET", "/search/books/..%2F..%2F_cluster", 404, "not_found"),
    ("GET", "/doc/books/..", 400, "invalid_request"),
    ("GET", "/doc/books/.", 400, "invalid_request"),
    ("GET", "/doc/books/%2e%2E", 400, "invalid_request"),
    ("GET", "/doc/books/a%00b", 400, "invalid_request"),
    ("GET", "/doc/books/" + "a" * 513, 400, "invalid_request"),
    ("GET", "/doc/_all/1", 400, "invalid_request"),
    ("GET", "/_cluster/settings", 404, "not_found"),
    ("GET", "/books/_search", 404, "not_found"),
    ("GET", "/books/_doc/1", 404, "not_found"),
    ("GET", "/_nodes/_all/http", 404, "not_found"),
    ("GET", "/search", 404, "not_found"),
    ("GET", "/search/", 404, "not_found"),
    ("GET", "/search//books", 404, "not_found"),
    ("GET", "/search/books/", 404, "not_found"),
    ("GET", "/search/books/_search", 404, "not_found"),
    ("GET", "/doc/books", 404, "not_found"),
    ("GET", "/SEARCH/books", 404, "not_found"),
    ("GET", "/search/secret", 403, "index_not_allowed"),
    ("GET", "/search/.security", 403, "index_not_allowed"),
    ("GET", "/search/movies", 403, "index_not_allowed"),
    ("GET", "/search/log", 403, "index_not_allowed"),
    ("GET", "/doc/secret/1", 403, "index_not_allowed"),
    ("GET", "/doc/logs-x/1", 403, "index_not_allowed"),
    ("DELETE", "/search/books", 405, "method_not_allowed"),
    ("PUT", "/search/books", 405, "method_not_allowed"),
    ("PATCH", "/search/books", 405, "method_not_allowed"),
    ("OPTIONS", "/search/books", 405, "method_not_allowed"),
    ("POST", "/doc/books/1", 405, "method_not_allowed"),
    ("DELETE", "/doc/books/1", 405, "method_not_allowed"),
    ("GET", "/search/books?pretty=true", 400, "illegal_argument"),
    ("GET", "/search/books?q=%00", 400, "illegal_argument"),
    ("GET", "/search/books?q=%zz", 400, "illegal_argument"),
    ("GET", "/search/books?q=a&filter_path=x", 400, "illegal_argument"),
    ("GET", "/search/books?Q=a", 400, "illegal_argument"),
    ("GET", "/doc/books/1?routing=x", 400, "illegal_argument"),
    ("GET", "/search/books?q%00=a", 400, "illegal_argument"),
    ("GET", "/search/books?q=" + "a" * 5000, 400, "illegal_argument"),
    ("GET", "/search/books%3Fq=x", 400, "invalid_request"),
    ("GET", "/search/books%23x", 400, "invalid_request"),
    ("GET", "/search/logs-x%2F..%2F..%2F_cluster", 400, "invalid_request"),
    ("GET", "/search/books%7Cmovies", 400, "invalid_request"),
    ("GET", "/search/books%22", 400, "invalid_request"),
    ("GET", "/search/_search", 400, "invalid_request"),
    ("GET", "/%73earch/books", 404, "not_found"),
    ("GET", "/search/books;x", 403, "index_not_allowed"),
    ("GET", "/search/" + "a" * 5000, 400, "invalid_request"),
]


def _start(ctx, routes=ROUTES, extra=""):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra=routes + extra))
    return d, g


def _direct(d, method, target, body=None, headers=None):
    status, headers, data = raw_request(d.port, method, target, body=body, headers=headers)
    return status, data


def test_search_route_relays_esdemo_search_hits(ctx):
    d, g = _start(ctx)
    status, headers, body = raw_request(g.port, "GET", "/search/books?q=title:dune&size=1")
    assert status == 200, (status, body)
    doc = json.loads(body)
    hits = doc["hits"]["hits"]
    assert len(hits) == 1 and hits[0]["_source"]["title"] == "Dune", doc
    assert headers.get("x-elastic-product") == "Elasticsearch", headers
    last = d.last()
    assert (last["method"], last["path"]) == ("POST", "/books/_search"), last
    assert urllib.parse.parse_qs(last["query"]) == {"q": ["title:dune"], "size": ["1"]}, last
    # Byte for byte what esdemo answers to the same upstream request.
    _, direct = _direct(d, "POST", "/books/_search?" + last["query"])
    assert body == direct, (body, direct)


def test_search_route_prefix_index_and_from(ctx):
    d, g = _start(ctx)
    status, _, body = raw_request(g.port, "GET", "/search/logs-2024.01?from=0&size=2")
    last = d.last()
    assert (last["method"], last["path"]) == ("POST", "/logs-2024.01/_search"), last
    assert urllib.parse.parse_qs(last["query"]) == {"from": ["0"], "size": ["2"]}, last
    direct_status, direct = _direct(d, "POST", "/logs-2024.01/_search?" + last["query"])
    # The cluster's error is cut down to its type and reason: no root causes,
    # resource ids or index uuids reach the client (errors: {detail: false}).
    assert status == direct_status == 404, (status, body)
    upstream_error = json.loads(direct)["error"]
    assert json.loads(body) == {"error": {"type": upstream_error["type"], "reason": upstream_error["reason"]},
                                "status": 404}, body


def test_doc_route_relays_a_document(ctx):
    d, g = _start(ctx)
    status, headers, body = raw_request(g.port, "GET", "/doc/books/1")
    assert status == 200, (status, body)
    _, direct = _direct(d, "GET", "/books/_doc/1")
    assert body == direct, (body, direct)
    assert json.loads(body)["found"] is True, body
    assert headers.get("x-elastic-product") == "Elasticsearch", headers
    last = d.last()
    assert (last["method"], last["path"], last["query"], last["body"]) == ("GET", "/books/_doc/1", "", None), last


def test_missing_doc_404_is_passed_through(ctx):
    d, g = _start(ctx)
    status, headers, body = raw_request(g.port, "GET", "/doc/movies/does-not-exist")
    direct_status, direct = _direct(d, "GET", "/movies/_doc/does-not-exist")
    assert direct_status == 404
    assert status == 404, (status, body)
    assert body == direct, (body, direct)
    assert json.loads(body)["found"] is False, body
    assert headers.get("x-elastic-product") == "Elasticsearch", headers


def test_head_doc_goes_upstream_as_head(ctx):
    d, g = _start(ctx)
    status, headers, body = raw_request(g.port, "HEAD", "/doc/books/1")
    assert status == 200 and body == b"", (status, body)
    last = d.last()
    assert (last["method"], last["path"]) == ("HEAD", "/books/_doc/1"), last


def test_encoded_slash_in_id_stays_data_upstream(ctx):
    d, g = _start(ctx)
    status, _, body = raw_request(g.port, "GET", "/doc/books/a%2Fb")
    last = d.last()
    assert last["path"] == "/books/_doc/a%2Fb", "upstream path %r (id a/b must be re-encoded)" % last["path"]
    assert status == 404, (status, body)
    # Other bytes are re-encoded canonically too.
    raw_request(g.port, "GET", "/doc/books/x%20y+z%3F%23")
    assert d.last()["path"] == "/books/_doc/x%20y%2Bz%3F%23", d.last()


def test_hostile_requests_are_refused_and_never_reach_the_upstream(ctx):
    d, g = _start(ctx)
    assert len(HOSTILE) >= 20
    before = d.stats()
    problems = []
    for method, target, want_status, want_type in HOSTILE:
        status, headers, body = raw_request(g.port, method, target)
        try:
            doc = json_error(status, headers, body, want_status, want_type)
        except AssertionError as e:
            problems.append("%s %s: %s" % (method, target[:80], e))
            continue
        if want_status == 405:
            allow = headers.get("allow", "")
            want_allow = "GET, HEAD" if target.startswith("/doc/") else "GET, POST"
            if allow != want_allow:
                problems.append("%s %s: Allow %r, want %r" % (method, target, allow, want_allow))
        if target.endswith("?pretty=true") and "pretty" not in doc["error"]["reason"]:
            problems.append("%s %s: the reason does not name the parameter: %r" % (method, target, doc))
    after = d.stats()
    assert not problems, "%d of %d hostile requests were not refused as specified:\n%s" % (
        len(problems), len(HOSTILE), "\n".join(problems))
    assert after["requests"] == before["requests"], "hostile requests reached esdemo: %r -> %r" % (
        before["paths"], after["paths"])


def test_head_with_a_wrong_method_is_405(ctx):
    d, g = _start(ctx)
    before = d.requests()
    status, headers, body = raw_request(g.port, "HEAD", "/search/books")
    assert status == 405 and headers.get("allow") == "GET, POST", (status, headers)
    assert d.requests() == before


def test_query_allow_list(ctx):
    d, g = _start(ctx)
    status, _, body = raw_request(g.port, "GET", "/search/books?q=title:dune&size=1")
    assert status == 200, (status, body)
    n = d.requests()
    doc = json_error(*raw_request(g.port, "GET", "/search/books?q=dune&pretty=true"), 400, "illegal_argument")
    assert "pretty" in doc["error"]["reason"], doc
    json_error(*raw_request(g.port, "GET", "/search/books?q=%00"), 400, "illegal_argument")
    assert d.requests() == n, "a refused query reached esdemo"
    # Parameters are decoded and re-encoded: nothing can be smuggled in.
    status, _, body = raw_request(g.port, "GET", "/search/books?q=a%26pretty%3Dtrue")
    last = d.last()
    assert urllib.parse.parse_qs(last["query"]) == {"q": ["a&pretty=true"]}, last


def test_json_body_is_relayed_re_serialised(ctx):
    # A search body goes through the firewall: what reaches the cluster is
    # the checked document, re-serialised, never the client's bytes.
    d, g = _start(ctx)
    body = b'{ "query" : {"match": {"title":   "dune"}},\n  "size": 5 }'
    status, headers, data = raw_request(g.port, "POST", "/search/books", body=body,
                                        headers={"Content-Type": "application/json"})
    assert status == 200, (status, data)
    last = d.last()
    assert (last["method"], last["path"]) == ("POST", "/books/_search"), last
    assert json.loads(last["body"]) == json.loads(body), (last["body"], body)
    assert last["body"] == '{"query":{"match":{"title":"dune"}},"size":5}', last["body"]
    assert last["headers"].get("content-type", "").startswith("application/json"), last["headers"]
    assert [h["_source"]["title"] for h in json.loads(data)["hits"]["hits"]] == ["Dune"], data


def test_invalid_json_body_is_400_and_not_relayed(ctx):
    d, g = _start(ctx)
    n = d.requests()
    for bad in (b'{"query": ', b"not json", b'{"a":1}{"b":2}', b"\xff\xfe"):
        json_error(*raw_request(g.port, "POST", "/search/books", body=bad,
                                headers={"Content-Type": "application/json"}), 400, "query_not_allowed")
    assert d.requests() == n, "an invalid body reached esdemo"


def _json_of_size(n):
    """A compact search body of exactly N bytes (re-serialised, it stays N)."""
    head, tail = b'{"query":{"match":{"title":"', b'"}}}'
    return head + b"x" * (n - len(head) - len(tail)) + tail


def test_body_at_max_body_passes_and_one_byte_more_is_413(ctx):
    d, g = _start(ctx)
    body = _json_of_size(MAX_BODY)
    status, _, data = raw_request(g.port, "POST", "/search/books", body=body,
                                  headers={"Content-Type": "application/json"})
    assert status == 200, "a body of exactly max_body was answered %d: %r" % (status, data[:300])
    assert len(d.last()["body"]) == MAX_BODY, "a body of exactly max_body did not reach esdemo"
    n = d.requests()
    json_error(*raw_request(g.port, "POST", "/search/books", body=_json_of_size(MAX_BODY + 1),
                            headers={"Content-Type": "application/json"}), 413, "request_too_large")
    # Up to twice the largest max_body the answer is still esgate's JSON.
    json_error(*raw_request(g.port, "POST", "/search/books", body=_json_of_size(2 * MAX_BODY - 1),
                            headers={"Content-Type": "application/json"}), 413, "request_too_large")
    # Far over it, h2o refuses before esgate sees the body: only the status is specified.
    try:
        status, _, _ = raw_request(g.port, "POST", "/search/books", body=_json_of_size(5 * MAX_BODY),
                                   headers={"Content-Type": "application/json"})
        assert status == 413, status
    except (ConnectionResetError, BrokenPipeError):
        pass  # h2o may answer and close before the whole body is sent
    assert d.requests() == n, "an oversized body reached esdemo"


def test_a_long_loop_turn_does_not_time_out_a_connect_that_completed(ctx):
    """The upstream timers start from the loop turn's cached time, and libev
    runs expired timers before I/O callbacks: with a 1 ms connect_timeout, the
    milliseconds the firewall spends on a 1 MiB body expire the connect timer
    in the very poll that brings the connection up.  The connection wins."""
    d = ctx.esdemo()
    # (a long request_timeout: only the connect timer is under test, also under valgrind)
    g = ctx.esgate(make_config(d.port, workers=1, connect_timeout="1ms", request_timeout="60s", extra=ROUTES),
                   workers=1)
    # The first request: no pooled connection yet, so a connect.
    status, _, data = raw_request(g.port, "POST", "/search/books", body=_json_of_size(MAX_BODY),
                                  headers={"Content-Type": "application/json"})
    assert status == 200, "answered %d: %r" % (status, data[:300])
    assert len(d.last()["body"]) == MAX_BODY


def test_small_max_body_and_no_body_routes(ctx):
    routes = ROUTES + """\
  - path: /small/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    max_body: 100
  - path: /nobody/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    max_body: 0
"""
    d, g = _start(ctx, routes)
    ok = _json_of_size(100)
    status, _, _ = raw_request(g.port, "POST", "/small/books", body=ok, headers={"Content-Type": "application/json"})
    assert status == 200 and d.last()["body"] == ok.decode(), status
    n = d.requests()
    json_error(*raw_request(g.port, "POST", "/small/books", body=_json_of_size(101),
                            headers={"Content-Type": "application/json"}), 413, "request_too_large")
    json_error(*raw_request(g.port, "POST", "/nobody/books", body=b"{}",
                            headers={"Content-Type": "application/json"}), 413, "request_too_large")
    assert d.requests() == n
    status, _, _ = raw_request(g.port, "POST", "/nobody/books", body=b"")
    assert status == 200 and d.requests() == n + 1, status


def test_json_false_route_relays_any_body(ctx):
    routes = ROUTES + """\
  - path: /raw/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_raw"}
    indices: [books]
    json: false
"""
    d, g = _start(ctx, routes)
    raw_request(g.port, "POST", "/raw/books", body=b"not json at all")
    assert d.last()["body"] == "not json at all", d.last()


def test_cluster_info_false_turns_off_get_root(ctx):
    d, g = _start(ctx, extra="cluster_info: false\n")
    n = d.requests()
    json_error(*raw_request(g.port, "GET", "/"), 404, "not_found")
    status, _, _ = raw_request(g.port, "HEAD", "/")
    assert status == 404, status
    assert d.requests() == n, "GET / reached esdemo with cluster_info: false"
    # The routes still work.
    assert raw_request(g.port, "GET", "/doc/books/1")[0] == 200


def test_hostile_paths_over_http2_are_refused_too(ctx):
    d, g = _start(ctx)
    before = d.requests()
    for target, want in (("/search/..%2F_cluster%2Fsettings", 400), ("/search/books/../_cluster", 400),
                         ("/search/_all", 400), ("/search/%2e%2e", 400), ("/_cluster/settings", 404),
                         ("/search/secret", 403)):
        p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--path-as-is", "--max-time", "10", "-o", "-",
                            "-w", "\n%{http_version} %{http_code}", "http://127.0.0.1:%d%s" % (g.port, target)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=15)
        assert p.returncode == 0, (target, p.stderr)
        body, _, tail = p.stdout.rpartition(b"\n")
        assert tail.decode().split() == ["2", str(want)], (target, tail, body)
        assert json.loads(body)["status"] == want, (target, body)
    assert d.requests() == before, "a hostile HTTP/2 request reached esdemo: %r" % d.stats()["paths"]
