"""The search firewall (lib/dsl.h): hostile search bodies, query strings and
_msearch lines are refused with 400 query_not_allowed naming the offending
key, on POST and on GET-with-a-body (clients send both) and through the
"source=" query-string form, and none of them reaches esdemo.  Legitimate
searches pass, re-serialised, and get esdemo's own answer.  Upstream error
documents are cut down to type and reason unless errors: {detail: true}."""

import json
import urllib.parse

from harness import json_error, make_config, raw_request

SEARCH_PARAMS = ("[q, size, from, scroll, error_trace, source, source_content_type, _source, _source_includes, "
                 "explain, expand_wildcards, terminate_after, stored_fields]")

ROUTES = """\
routes:
  # the default policy
  - path: /search/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books, movies]
    params: %(params)s
  # more query types allowed, so the checks inside them are reached
  - path: /wide/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    params: %(params)s
    policy:
      queries: [match, match_all, term, terms, bool, function_score, more_like_this, geo_shape, percolate,
                nested, constant_score]
      aggs: [terms, date_histogram, filter, filters]
  - path: /fields/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    params: %(params)s
    policy: {source_fields: [title, year]}
  - path: /count/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_count"}
    indices: [books]
  - path: /msearch/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_msearch"}
    indices: [books]
  - path: /msearch
    methods: [POST]
    upstream: {method: POST, path: "/_msearch"}
  - path: /detail/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    errors: {detail: true}
  # issue 12: a policy widened to the types whose bodies nest queries
  - path: /widest/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    params: %(params)s
    policy: {queries: %(wq)s, aggs: %(wa)s}
  - path: /msearch-widest/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_msearch"}
    indices: [books]
    policy: {queries: %(wq)s, aggs: %(wa)s}
  # issue 12: author is the hidden field
  - path: /hidden/{index}
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    params: [size, from, sort, source, source_content_type, _source, _source_includes, _source_excludes, df, q]
    policy: {source_fields: [title, year, comments.text], queries: %(wq)s, aggs: %(wa)s}
  - path: /msearch-hidden/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_msearch"}
    indices: [books]
    policy: {source_fields: [title, year, comments.text], queries: %(wq)s, aggs: %(wa)s}
  - path: /msearch-limited/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_msearch"}
    indices: [books]
    rate_limit: {rate: 1/m, burst: 5}
""" % {"params": SEARCH_PARAMS,
       "wq": "[match, match_all, term, terms, bool, range, exists, nested, has_child, has_parent, pinned, span_multi, "
             "span_term, span_near, prefix, function_score]",
       "wa": "[terms, top_hits, significant_text, adjacency_matrix, filter, filters, histogram, date_histogram, range, "
             "max, top_metrics]"}

JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def _start(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra=ROUTES))
    return d, g


def _compact(doc):
    return json.dumps(doc, separators=(",", ":"))


def _q(doc):
    return urllib.parse.quote(_compact(doc) if not isinstance(doc, str) else doc, safe="")


S = {"script": {"source": "Math.random() > 0.5"}}          # a script query
LOOKUP = {"index": "users", "id": "1", "path": "followers"}  # a terms lookup

# (route, body, words the reason must contain).  Each body is sent as a POST
# body and as a GET body; the default-policy ones also as ?source=.
HOSTILE_BODIES = [
    ("search", {"query": S}, ["script"]),
    ("search", {"query": {"bool": {"filter": [{"match": {"title": "x"}}, S]}}},
     ["script", "query.bool.filter[1].script"]),
    ("search", {"query": {"bool": {"filter": {"bool": {"must_not": [S]}}}}}, ["script"]),
    ("search", {"query": {"bool": {"should": S}}}, ["script"]),
    ("search", {"post_filter": S}, ["script"]),
    ("search", {"query": {"match": {"title": {"query": "dune", "script": "1"}}}}, ["script"]),
    ("search", {"sort": {"_script": {"type": "number", "script": {"source": "doc['year'].value"}}}}, ["_script"]),
    ("search", {"sort": [{"year": "desc"}, {"_script": {"type": "number", "script": "1"}}]}, ["_script"]),
    ("search", {"aggs": {"a": {"terms": {"script": {"source": "doc['x'].value"}}}}}, ["script", "aggs.a.terms"]),
    ("search", {"aggs": {"a": {"terms": {"field": "year"}, "aggs": {"b": {"avg": {"script": "1"}}}}}},
     ["script"]),
    ("search", {"aggs": {"a": {"terms": {"field": "year"}, "meta": {"script": "1"}}}}, ["script"]),
    ("search", {"aggs": {"a": {"filter": S}}}, ["script"]),
    ("search", {"aggs": {"a": {"date_histogram": {"field": "d", "calendar_interval": "day", "script": "1"}}}},
     ["script"]),
    ("search", {"aggs": {"a": {"scripted_metric": {"map_script": "state.x = 1"}}}}, ["scripted_metric"]),
    ("wide", {"aggs": {"a": {"scripted_metric": {"map_script": "state.x = 1"}}}}, ["scripted_metric"]),
    ("search", {"query": {"script_score": {"query": {"match_all": {}}, "script": {"source": "1"}}}},
     ["script_score"]),
    ("wide", {"query": {"script_score": {"query": {"match_all": {}}, "script": {"source": "1"}}}},
     ["script_score"]),
    ("wide", {"query": S}, ["script"]),
    ("search", {"query": {"function_score": {"query": {"match_all": {}},
                                             "functions": [{"script_score": {"script": "1"}}]}}},
     ["function_score"]),
    ("wide", {"query": {"function_score": {"query": {"match_all": {}},
                                           "functions": [{"script_score": {"script": "1"}}]}}},
     ["script_score"]),
    ("wide", {"query": {"function_score": {"query": {"match_all": {}}, "script_score": {"script": "1"}}}},
     ["script_score"]),
    ("wide", {"query": {"function_score": {"functions": [{"filter": S, "weight": 2}]}}}, ["script"]),
    ("search", {"runtime_mappings": {"x": {"type": "long", "script": "emit(1)"}}}, ["runtime_mappings"]),
    ("search", {"query": {"match_all": {}}, "script_fields": {"x": {"script": "1"}}}, ["script_fields"]),
    ("search", {"query": {"terms": {"user": LOOKUP}}}, ["terms lookup", "query.terms.user"]),
    ("search", {"query": {"bool": {"filter": [{"terms": {"user": LOOKUP}}]}}}, ["terms lookup"]),
    ("search", {"aggs": {"a": {"filters": {"filters": {"x": {"terms": {"user": LOOKUP}}}}}}}, ["terms lookup"]),
    ("wide", {"query": {"more_like_this": {"fields": ["title"], "like": [{"_index": "secret", "_id": "1"}]}}},
     ["_index", "more_like_this"]),
    ("wide", {"query": {"more_like_this": {"fields": ["title"], "like": ["text", {"_index": "secret", "_id": "1"}],
                                           "min_term_freq": 1}}}, ["_index"]),
    ("wide", {"query": {"more_like_this": {"fields": ["title"], "unlike": {"_index": "secret", "_id": "1"}}}},
     ["_index"]),
    ("search", {"query": {"more_like_this": {"like": "dune"}}}, ["more_like_this"]),
    ("wide", {"query": {"geo_shape": {"location": {"indexed_shape": {"index": "shapes", "id": "1",
                                                                     "path": "shape"}}}}}, ["indexed_shape"]),
    ("wide", {"query": {"percolate": {"field": "query", "index": "secret", "id": "1"}}}, ["index", "percolate"]),
    ("search", {"query": {"percolate": {"field": "query", "document": {}}}}, ["percolate"]),
    ("search", {"pit": {"id": "46ToAwMDaWR5BXV1aWQy", "keep_alive": "1m"}}, ["pit"]),
    ("search", {"size": 101}, ["size"]),
    ("search", {"size": -1}, ["size"]),
    ("search", {"size": "10"}, ["size"]),
    ("search", {"from": 10001}, ["from"]),
    ("search", {"from": 9950, "size": 100}, ["from + size"]),
    ("search", {"from": 9995}, ["from + size"]),  # size defaults to 10
    ("search", {"foo": 1}, ["foo"]),
    ("search", {"query": {"match_all": {}}, "rescore": {"query": {"rescore_query": {"match_all": {}}}}},
     ["rescore"]),
    ("search", {"suggest": {"s": {"text": "x", "term": {"field": "title"}}}}, ["suggest"]),
    ("search", {"profile": True}, ["profile"]),
    ("search", {"knn": {"field": "v", "query_vector": [1], "k": 1, "num_candidates": 1}}, ["knn"]),
    ("search", {"indices_boost": [{"secret": 2}]}, ["indices_boost"]),
    # each collapse inner_hits is a search per hit: 1 + 10 > max_searches
    ("search", {"collapse": {"field": "year", "inner_hits": {"name": "x", "size": 1}}}, ["max_searches"]),
    ("search", {"error_trace": True}, ["error_trace"]),
    ("search", {"explain": True}, ["explain"]),
    ("search", {"stored_fields": ["secret"]}, ["stored_fields"]),
    ("search", {"aggs": {"a": {"terms": {"field": "a"}, "aggs": {"b": {"terms": {"field": "b"}, "aggs": {
        "c": {"terms": {"field": "c"}, "aggs": {"d": {"terms": {"field": "d"}}}}}}}}}},
     ["aggregation depth 4", "aggs.a.aggs.b.aggs.c.aggs"]),
    ("search", {"aggs": {"a": {"top_hits": {"size": 1}}}}, ["top_hits"]),
    ("search", {"aggs": {"a": {"significant_terms": {"field": "title"}}}}, ["significant_terms"]),
    ("search", {"aggs": {"a": {"terms": {"field": "year", "size": 1001}}}}, ["size"]),
    ("search", {"aggs": {"a": {"terms": {"field": "year", "shard_size": 100000}}}}, ["shard_size"]),
    ("search", {"aggs": {"a": {"terms": {"field": "year"}}}, "aggregations": {"b": {"terms": {"field": "x"}}}},
     ["aggregations"]),
    ("search", {"id": "my-template", "params": {"q": "dune"}}, ["id"]),
    ("search", {"source": {"query": {"match": {"title": "{{q}}"}}}, "params": {"q": "dune"}}, ["source"]),
    ("search", {"query": {"query_string": {"query": "title:*"}}}, ["query_string"]),
    ("search", {"query": {"wrapper": {"query": "eyJtYXRjaF9hbGwiOnt9fQ=="}}}, ["wrapper"]),
    ("search", {"query": {"has_child": {"type": "c", "query": {"match_all": {}}}}}, ["has_child"]),
    ("wide", {"query": {"nested": {"path": "p", "query": S}}}, ["script"]),
    ("wide", {"query": {"constant_score": {"filter": {"terms": {"user": LOOKUP}}}}}, ["terms lookup"]),
    ("search", {"highlight": {"fields": {"title": {"highlight_query": S}}}}, ["script"]),
    ("search", {"sort": [{"title": {"nested": {"path": "x", "filter": {"terms": {"u": LOOKUP}}}}}]},
     ["terms lookup"]),
    ("search", {"_source": {"includes": ["title"], "script": "1"}}, ["script"]),
    ("search", {"query": {"match_all": {}, "term": {"x": 1}}}, ["exactly one key"]),
    ("fields", {"_source": ["title", "secret"]}, ["secret"]),
    ("fields", {"_source": {"includes": ["secret"]}}, ["secret"]),
    ("fields", {"_source": "*"}, ["*"]),
    ("fields", {"_source": "sec*"}, ["sec*"]),
    ("fields", {"fields": ["secret"]}, ["secret"]),
    ("fields", {"fields": [{"field": "secret", "format": "x"}]}, ["secret"]),
    ("fields", {"highlight": {"fields": {"secret": {}}}}, ["secret"]),
    ("count", {"query": S}, ["script"]),
    ("count", {"query": {"match_all": {}}, "size": 1}, ["size"]),
    ("count", {"aggs": {"a": {"terms": {"field": "year"}}}}, ["aggs"]),
]

# Raw bodies whose problem is the bytes themselves.
HOSTILE_RAW = [
    ("search", b'{"query":{"match_all":{}},"query":{"script":{"script":"1"}}}', ["duplicate", "query"]),
    ("search", b'{"size":1,"size":1000}', ["duplicate", "size"]),
    ("search", b'{"query": ', ["invalid JSON"]),
    ("search", b'[{"query":{"match_all":{}}}]', ["JSON object"]),
]

# Query strings on GET without a body: (route, query string, words).
HOSTILE_QUERIES = [
    ("search", "scroll=1m", ["scroll"]),
    ("search", "error_trace=true", ["error_trace"]),
    ("search", "error_trace", ["error_trace"]),
    ("search", "size=101", ["size"]),
    ("search", "size=-1", ["size"]),
    ("search", "size=1e3", ["size"]),
    ("search", "from=10001", ["from"]),
    ("search", "terminate_after=x", ["terminate_after"]),
    ("search", "q=title:dune", ["q is not allowed", "query_string"]),
    ("search", "explain=true", ["explain"]),
    ("search", "expand_wildcards=all", ["expand_wildcards"]),
    ("search", "expand_wildcards=open,hidden", ["expand_wildcards"]),
    ("search", "stored_fields=secret", ["stored_fields"]),
    ("search", "source=%s&source_content_type=text/plain" % _q({}), ["source_content_type"]),
    ("search", "source=%s&source_content_type=application/json" % _q({"query": S}), ["script"]),
    ("search", "source_content_type=application/json&source=%s" % _q({"query": {"bool": {"filter": [S]}}}),
     ["script", "query.bool.filter[0].script"]),
    ("search", "source=%s" % _q({"runtime_mappings": {"x": {"type": "long", "script": "emit(1)"}}}),
     ["runtime_mappings"]),
    ("search", "source=%s" % _q({"aggs": {"a": {"scripted_metric": {"map_script": "1"}}}}), ["scripted_metric"]),
    ("search", "source=%s" % _q({"query": {"terms": {"user": LOOKUP}}}), ["terms lookup"]),
    ("search", "source=%s" % _q({"pit": {"id": "x"}}), ["pit"]),
    ("search", "source=%s" % _q({"size": 1000}), ["size"]),
    ("search", "source=%s" % _q({"id": "tmpl", "params": {}}), ["id"]),
    ("search", "source=%s" % _q("not json"), ["invalid JSON"]),
    # size inside the source and from in the query string: each checked alone
    ("search", "from=10001&source=%s" % _q({"size": 1}), ["from"]),
    ("fields", "_source=secret", ["secret"]),
    ("fields", "_source=title,secret", ["secret"]),
    ("fields", "_source_includes=secret", ["secret"]),
    ("fields", "_source=true", ["_source"]),
    ("fields", "source=%s" % _q({"_source": ["secret"]}), ["secret"]),
]

# _msearch bodies: (route path, NDJSON bytes, words).
HOSTILE_MSEARCH = [
    ("/msearch/books", b'{"index":"movies"}\n{"query":{"match_all":{}}}\n', ["index", "line 1"]),
    ("/msearch/books", b'{"index":"books,movies"}\n{}\n', ["index"]),
    ("/msearch/books", b'{"index":["books"]}\n{}\n', ["index"]),
    ("/msearch/books", b'{"index":"books*"}\n{}\n', ["index"]),
    ("/msearch/books", b'{}\n{}\n{"index":".security"}\n{}\n', ["index", "line 3"]),
    ("/msearch", b'{"index":"books"}\n{}\n', ["index"]),
    ("/msearch/books", b'{}\n{"query":{"script":{"script":"1"}}}\n', ["script", "line 2"]),
    ("/msearch/books", b'{"index":"books"}\n{"size":1000}\n', ["size", "line 2"]),
    ("/msearch/books", b'{"expand_wildcards":"all"}\n{}\n', ["expand_wildcards"]),
    ("/msearch/books", b'{"foo":1}\n{}\n', ["foo"]),
    ("/msearch/books", b'{}\n{"runtime_mappings":{}}\n', ["runtime_mappings"]),
    ("/msearch/books", b'{}\n', ["no search body"]),
    ("/msearch/books", b'{}\n{}\n{}\n', ["no search body"]),
    ("/msearch/books", b'{"index":"books","index":"movies"}\n{}\n', ["duplicate", "index"]),
]


def _refused(problems, what, resp, words):
    status, headers, body = resp
    try:
        doc = json_error(status, headers, body, 400, "query_not_allowed")
    except AssertionError as e:
        problems.append("%s: %s" % (what, e))
        return
    reason = doc["error"]["reason"]
    missing = [w for w in words if w not in reason]
    if missing:
        problems.append("%s: reason %r does not name %r" % (what, reason, missing))


def _refused_everywhere(problems, g, route, doc, words, source=True):
    """DOC sent to /ROUTE/books as a POST body, a GET body and (with SOURCE)
    a source= parameter, each refused with WORDS.  Returns the requests."""
    body = _compact(doc).encode()
    for method in ("POST", "GET"):
        _refused(problems, "%s /%s/books %s" % (method, route, body[:120]),
                 raw_request(g.port, method, "/%s/books" % route, headers=JSON, body=body), words)
    if source:
        _refused(problems, "GET /%s/books?source=%s" % (route, body[:120]),
                 raw_request(g.port, "GET", "/%s/books?source=%s&source_content_type=application/json"
                             % (route, _q(doc))), words)
    return 3 if source else 2


def test_hostile_bodies_are_refused_on_post_get_and_source(ctx):
    d, g = _start(ctx)
    before = d.stats()
    problems = []
    n = 0
    for route, doc, words in HOSTILE_BODIES:
        n += _refused_everywhere(problems, g, route, doc, words, source=route != "count")
    for route, body, words in HOSTILE_RAW:
        for method in ("POST", "GET"):
            _refused(problems, "%s /%s/books %r" % (method, route, body[:120]),
                     raw_request(g.port, method, "/%s/books" % route, headers=JSON, body=body), words)
            n += 1
    after = d.stats()
    assert len(HOSTILE_BODIES) >= 40 and n >= 120, n
    assert not problems, "%d of %d hostile bodies not refused as specified:\n%s" % (
        len(problems), n, "\n".join(problems))
    assert after["requests"] == before["requests"], "hostile bodies reached esdemo: %r -> %r" % (
        before["paths"], after["paths"])


def test_hostile_query_strings_are_refused(ctx):
    d, g = _start(ctx)
    before = d.requests()
    problems = []
    for route, query, words in HOSTILE_QUERIES:
        _refused(problems, "GET /%s/books?%s" % (route, query[:120]),
                 raw_request(g.port, "GET", "/%s/books?%s" % (route, query)), words)
        # the same with a harmless body: the query string is still checked
        _refused(problems, "POST /%s/books?%s" % (route, query[:120]),
                 raw_request(g.port, "POST", "/%s/books?%s" % (route, query), headers=JSON,
                             body=b'{"query":{"match_all":{}}}'), words)
    assert not problems, "%d hostile query strings not refused as specified:\n%s" % (len(problems),
                                                                                     "\n".join(problems))
    assert d.requests() == before, "hostile query strings reached esdemo: %r" % d.stats()["paths"]


def test_source_parameter_wins_over_a_body_and_is_checked(ctx):
    # Both a source= and a body: the source is what gets checked and sent;
    # a harmless body cannot carry a hostile source past the firewall.
    d, g = _start(ctx)
    n = d.requests()
    problems = []
    _refused(problems, "source= with a body",
             raw_request(g.port, "GET", "/search/books?source=%s" % _q({"query": S}), headers=JSON,
                         body=b'{"query":{"match_all":{}}}'), ["script"])
    assert not problems, problems
    assert d.requests() == n
    status, _, _ = raw_request(g.port, "GET", "/search/books?source=%s" % _q({"query": {"match_all": {}}}),
                               headers=JSON, body=b'{"query":{"script":{"script":"1"}}}')
    last = d.last()
    assert last["body"] == '{"query":{"match_all":{}}}', last
    assert "source" not in urllib.parse.parse_qs(last["query"]), last


def test_hostile_msearch_is_refused(ctx):
    d, g = _start(ctx)
    before = d.requests()
    problems = []
    for path, body, words in HOSTILE_MSEARCH:
        _refused(problems, "POST %s %r" % (path, body[:120]),
                 raw_request(g.port, "POST", path, headers=NDJSON, body=body), words)
    assert not problems, "%d hostile msearch bodies not refused:\n%s" % (len(problems), "\n".join(problems))
    assert d.requests() == before, "hostile msearch bodies reached esdemo: %r" % d.stats()["paths"]


def test_template_and_other_unrouted_apis_are_404(ctx):
    d, g = _start(ctx)
    before = d.requests()
    body = b'{"id":"my-template","params":{"q":"dune"}}'
    for method in ("GET", "POST"):
        for path in ("/_search/template", "/_msearch/template", "/_render/template", "/_render/template/x",
                     "/books/_search/template", "/books/_msearch/template", "/_search", "/_msearch",
                     "/books/_search", "/books/_count", "/_search/scroll", "/_pit", "/books/_pit",
                     "/search/books/template", "/search/books/_search/template", "/_scripts/x"):
            json_error(*raw_request(g.port, method, path, headers=JSON, body=body), 404, "not_found")
    assert d.requests() == before, "template requests reached esdemo: %r" % d.stats()["paths"]


def _same_as_direct(d, g, path, body, method="POST", want_status=200, want_upstream=None, query=""):
    """Sends BODY (a dict) to esgate at PATH, and checks what reached esdemo
    (the compact re-serialisation) and that the answer is esdemo's own."""
    sent = _compact(body).encode()
    target = path + ("?" + query if query else "")
    status, headers, data = raw_request(g.port, method, target, headers=JSON, body=sent)
    last = d.last()
    expect = want_upstream if want_upstream is not None else _compact(body)
    assert last["method"] == "POST" and last["body"] == expect, (target, last, expect)
    direct_status, _, direct = raw_request(d.port, "POST", last["path"] + ("?" + last["query"] if last["query"]
                                                                          else ""),
                                           headers=JSON, body=last["body"].encode())
    assert status == direct_status == want_status, (target, status, direct_status, data)
    if status < 400:
        assert data == direct, (target, data, direct)
        assert headers.get("x-elastic-product") == "Elasticsearch", headers
    else:
        err = json.loads(direct)["error"]
        assert json.loads(data) == {"error": {"type": err["type"], "reason": err["reason"]}, "status": status}, (
            data, direct)
    return status, data, last


def test_legitimate_searches_pass_unchanged(ctx):
    d, g = _start(ctx)
    status, data, last = _same_as_direct(d, g, "/search/books", {"query": {"match": {"title": "dune"}}})
    assert [h["_source"]["title"] for h in json.loads(data)["hits"]["hits"]] == ["Dune"], data
    assert last["path"] == "/books/_search", last
    # GET with a body, as many clients send it: forwarded as a POST
    _same_as_direct(d, g, "/search/books", {"query": {"match": {"title": "dune"}}, "size": 5}, method="GET")
    _same_as_direct(d, g, "/search/movies", {"query": {"term": {"title": "Dune"}}})
    _same_as_direct(d, g, "/search/books", {"query": {"match_all": {}}, "size": 2, "from": 1})
    # the caps themselves pass
    _same_as_direct(d, g, "/search/books", {"query": {"match_all": {}}, "size": 100})
    _same_as_direct(d, g, "/search/books", {"query": {"match_all": {}}, "size": 100, "from": 9900})
    _same_as_direct(d, g, "/search/books", {"query": {"match_all": {}}, "from": 9990})
    _same_as_direct(d, g, "/search/books", {"query": {"match": {"title": "dune"}},
                                            "aggs": {"years": {"terms": {"field": "year", "size": 1000}}}})
    _same_as_direct(d, g, "/search/books", {"query": {"match_all": {}}, "aggs": {
        "per_year": {"date_histogram": {"field": "published", "calendar_interval": "year"},
                     "aggs": {"authors": {"terms": {"field": "author"},
                                          "aggs": {"n": {"cardinality": {"field": "title"}}}}}}}})
    _same_as_direct(d, g, "/search/books", {"query": {"match": {"title": "dune"}},
                                            "highlight": {"fields": {"title": {}}}, "track_total_hits": True,
                                            "sort": [{"year": "desc"}], "_source": ["title"]})
    # bool is not something esdemo models: its own 400, after the firewall let it through
    status, data, last = _same_as_direct(d, g, "/search/books", {"query": {"bool": {
        "must": [{"match": {"title": "dune"}}], "filter": [{"term": {"year": 1965}}, {"range": {"year": {"gte": 1}}}],
        "must_not": {"exists": {"field": "x"}}, "should": [{"terms": {"author": ["a", "b"]}}],
        "minimum_should_match": 0}}}, want_status=400)
    assert json.loads(data)["error"]["type"] == "parsing_exception", data
    # query-string pagination within the caps
    status, headers, data = raw_request(g.port, "GET", "/search/books?size=1&from=1")
    last = d.last()
    assert status == 200 and urllib.parse.parse_qs(last["query"]) == {"size": ["1"], "from": ["1"]}, (status, last)
    assert data == raw_request(d.port, "POST", "/books/_search?" + last["query"])[2]


def test_source_parameter_becomes_the_checked_body(ctx):
    d, g = _start(ctx)
    doc = {"query": {"match": {"title": "dune"}}, "size": 1}
    raw = '{ "query" : { "match" : { "title" : "dune" } }, "size" : 1 }'
    status, _, data = raw_request(g.port, "GET", "/search/books?size=1&source=%s&source_content_type=%s"
                                  % (urllib.parse.quote(raw, safe=""), urllib.parse.quote("application/json")))
    last = d.last()
    assert status == 200, (status, data)
    assert (last["method"], last["path"], last["body"]) == ("POST", "/books/_search", _compact(doc)), last
    assert urllib.parse.parse_qs(last["query"]) == {"size": ["1"]}, last
    assert last["headers"].get("content-type", "").startswith("application/json"), last
    assert data == raw_request(d.port, "POST", "/books/_search?size=1", headers=JSON, body=_compact(doc).encode())[2]


def test_source_fields_narrow_what_is_returned(ctx):
    d, g = _start(ctx)
    _same_as_direct(d, g, "/fields/books", {"query": {"match": {"title": "dune"}}},
                    want_upstream='{"query":{"match":{"title":"dune"}},"_source":["title","year"]}')
    _same_as_direct(d, g, "/fields/books", {"query": {"match_all": {}}, "_source": True},
                    want_upstream='{"query":{"match_all":{}},"_source":["title","year"]}')
    _same_as_direct(d, g, "/fields/books", {"_source": {"excludes": ["year"]}},
                    want_upstream='{"_source":{"excludes":["year"],"includes":["title","year"]}}')
    _same_as_direct(d, g, "/fields/books", {"_source": ["title"], "highlight": {"fields": {"year": {}}}})
    status, _, _ = raw_request(g.port, "GET", "/fields/books?_source=title")
    assert status == 200 and urllib.parse.parse_qs(d.last()["query"]) == {"_source": ["title"]}, d.last()


def test_count_and_msearch_routes_pass_checked_bodies(ctx):
    d, g = _start(ctx)
    # esdemo has no _count or _msearch: its 404 comes back cut down, after
    # the firewall let the checked body through.
    _same_as_direct(d, g, "/count/books", {"query": {"match": {"title": "dune"}}}, want_status=404)
    assert d.last()["path"] == "/books/_count"
    body = (b'{"index":"books"}\r\n{"query":{"match":{"title":"dune"}},"size":1}\n\n'
            b'{}\n{ "query" : {"match_all":{}}, "aggs": {"y": {"terms": {"field": "year"}}} }')
    status, _, data = raw_request(g.port, "POST", "/msearch/books", headers=NDJSON, body=body)
    last = d.last()
    assert (last["method"], last["path"]) == ("POST", "/books/_msearch"), last
    assert last["body"] == ('{"index":"books"}\n{"query":{"match":{"title":"dune"}},"size":1}\n'
                            '{}\n{"query":{"match_all":{}},"aggs":{"y":{"terms":{"field":"year"}}}}\n'), last
    direct_status, _, direct = raw_request(d.port, "POST", "/books/_msearch", headers=NDJSON,
                                           body=last["body"].encode())
    assert status == direct_status, (status, direct_status)
    status, _, _ = raw_request(g.port, "POST", "/msearch", headers=NDJSON, body=b'{}\n{"size":1}\n')
    assert (d.last()["path"], d.last()["body"]) == ("/_msearch", '{}\n{"size":1}\n'), d.last()


def test_upstream_errors_are_cut_down_unless_detail(ctx):
    d, g = _start(ctx)
    d.control(status=500)
    body = b'{"query":{"match":{"title":"dune"}}}'
    status, _, direct = raw_request(d.port, "POST", "/books/_search", headers=JSON, body=body)
    full = json.loads(direct)
    assert status == 500 and full["error"]["root_cause"], direct
    n = d.requests()
    status, headers, data = raw_request(g.port, "POST", "/search/books", headers=JSON, body=body)
    assert d.requests() == n + 1
    assert status == 500, (status, data)
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert json.loads(data) == {"error": {"type": "esdemo_forced_status_exception",
                                          "reason": "esdemo forced status 500"}, "status": 500}, data
    assert b"root_cause" not in data
    # errors: {detail: true}: the cluster's document as it came
    status, headers, data = raw_request(g.port, "POST", "/detail/books", headers=JSON, body=body)
    assert status == 500 and data == direct, (status, data, direct)
    assert b"root_cause" in data
    d.control(status=0)
    # a missing index: cut down too, the detail route passes it whole
    status, _, data = raw_request(g.port, "POST", "/search/movies", headers=JSON, body=body)
    assert status == 200, (status, data)
    status, _, direct = raw_request(d.port, "POST", "/nosuch/_search", headers=JSON, body=body)
    assert status == 404 and b"index_uuid" in direct, direct


def test_empty_or_bare_source_never_lets_the_raw_body_through(ctx):
    # An empty source= (or a bare ?source) once made the check see "no
    # body", and the proxy then sent the client's own bytes upstream.
    d, g = _start(ctx)
    before = d.requests()
    problems = []
    hostile = _compact({"query": S, "size": 10000}).encode()
    for query in ("source=", "source", "source=&source_content_type=application/json",
                  "source&source_content_type=application/json", "source=%20", "source=%0A"):
        for method in ("POST", "GET"):
            _refused(problems, "%s /search/books?%s with a hostile body" % (method, query),
                     raw_request(g.port, method, "/search/books?" + query, headers=JSON, body=hostile),
                     ["source"])
        _refused(problems, "GET /search/books?%s without a body" % query,
                 raw_request(g.port, "GET", "/search/books?" + query), ["source"])
    assert not problems, "\n".join(problems)
    assert d.requests() == before, "the raw body reached esdemo: %r" % d.stats()["paths"]


def test_nested_sort_with_a_filter_is_checked_and_answered(ctx):
    # Elasticsearch's own documented nested sort: it once put the worker in
    # an endless loop (dsl_sort reused the outer iterator).
    d, g = _start(ctx)
    ok = {"sort": [{"offers.price": {"mode": "min", "nested": {
        "path": "offers", "filter": {"term": {"offers.color": "blue"}}}}}]}
    status, _, data = raw_request(g.port, "POST", "/search/books", headers=JSON, body=_compact(ok).encode(),
                                  timeout=5)
    assert status == 200, (status, data)
    assert d.last()["body"] == _compact(ok), d.last()
    problems = []
    _refused(problems, "nested sort filter with a terms lookup",
             raw_request(g.port, "POST", "/search/books", headers=JSON, timeout=5, body=_compact(
                 {"sort": [{"offers.price": {"nested": {"path": "offers", "filter": {
                     "terms": {"u": LOOKUP}}}}}]}).encode()), ["terms lookup"])
    assert not problems, problems
    # the worker that took it still answers everything else at once
    for _ in range(4):
        assert raw_request(g.port, "GET", "/healthz", timeout=2)[0] == 200


# Issue 12.  Each finding: (route, body, words the reason must contain).
# Each is sent as a POST body, a GET body, a source= parameter and as a line
# of an _msearch on a route with the same policy; none may reach esdemo.
ISSUE12_MSEARCH = {"search": "/msearch/books", "widest": "/msearch-widest/books", "hidden": "/msearch-hidden/books"}
ISSUE12_BODIES = [
    # 3. sort forms carry queries
    ("search", {"sort": [{"a.b.c": {"nested": {"path": "a", "nested": {"path": "a.b", "filter": {
        "terms": {"u": LOOKUP}}}}}}]}, ["terms lookup", "sort[0].a.b.c.nested.nested.filter"]),
    ("search", {"sort": [{"price": {"nested_path": "offers", "nested_filter": {"wildcard": {"offers.c": "*"}}}}]},
     ["wildcard", "nested_filter"]),
    ("search", {"sort": {"price": {"nested_filter": {"terms": {"u": LOOKUP}}}}}, ["terms lookup"]),
    ("search", {"sort": [{"_geo_distance": {"loc": [0, 0], "nested_filter": {"more_like_this": {
        "like": [{"_index": "secrets", "_id": "1"}]}}}}]}, ["more_like_this"]),
    ("search", {"sort": {"_geo_distance": {"loc": "drm3btev3e86", "nested": {"path": "n", "nested": {
        "path": "n.m", "filter": {"terms": {"u": LOOKUP}}}}}}}, ["terms lookup"]),
    ("search", {"sort": [{"price": {"foo": {"terms": {"u": LOOKUP}}}}]}, ["unknown key foo"]),
    # 3. with a widened policy: everything under these keys is a query
    ("widest", {"query": {"pinned": {"ids": ["1"], "organic": {"terms": {"u": LOOKUP}}}}},
     ["terms lookup", "pinned.organic"]),
    ("widest", {"query": {"pinned": {"ids": ["1"], "organic": {"wildcard": {"a": "*"}}}}}, ["wildcard"]),
    ("widest", {"query": {"span_multi": {"match": {"wildcard": {"title": "d*"}}}}}, ["wildcard", "span_multi.match"]),
    ("widest", {"query": {"nested": {"path": "c", "query": {"match_all": {}}, "inner_hits": {"size": 10000}}}},
     ["size", "inner_hits"]),
    ("widest", {"query": {"has_child": {"type": "c", "query": {"match_all": {}}, "inner_hits": {"sort": [
        {"x": {"nested": {"path": "x", "filter": {"terms": {"u": LOOKUP}}}}}]}}}}, ["terms lookup", "inner_hits"]),
    ("widest", {"query": {"has_parent": {"parent_type": "p", "query": {"match_all": {}},
                                         "inner_hits": {"script_fields": {"x": {"script": "1"}}}}}}, ["script"]),
    ("widest", {"aggs": {"t": {"top_hits": {"size": 10000}}}}, ["size", "top_hits"]),
    ("widest", {"aggs": {"s": {"significant_text": {"field": "title", "background_filter": {
        "terms": {"u": LOOKUP}}}}}}, ["terms lookup", "background_filter"]),
    ("widest", {"aggs": {"m": {"adjacency_matrix": {"filters": {"a": {"wildcard": {"x": "*"}}}}}}},
     ["wildcard", "adjacency_matrix"]),
    ("widest", {"query": {"match": {"title": {"query": "x", "foo": {"terms": {"u": LOOKUP}}}}}}, ["unknown key foo"]),
    ("widest", {"aggs": {"a": {"terms": {"field": "year", "foo": {"terms": {"u": LOOKUP}}}}}}, ["unknown key foo"]),
    # 4. costs
    ("widest", {"aggs": {"a": {"terms": {"field": "a", "size": 1000}, "aggs": {"b": {"terms": {
        "field": "b", "size": 1000}, "aggs": {"c": {"terms": {"field": "c", "size": 1000}}}}}}}},
     ["buckets", "max_buckets"]),
    ("widest", {"aggs": {"d": {"date_histogram": {"field": "t", "fixed_interval": "1ms", "extended_bounds": {
        "min": "1970-01-01", "max": "2100-01-01"}}}}}, ["buckets", "date_histogram"]),
    ("widest", {"aggs": {"h": {"histogram": {"field": "year", "interval": 1e-9, "extended_bounds": {
        "min": 0, "max": 1000}}}}}, ["buckets", "histogram"]),
    ("widest", {"aggs": {"a%d" % i: {"max": {"field": "year"}} for i in range(500)}}, ["max_aggs"]),
    ("widest", {"aggs": {"r": {"range": {"field": "year", "ranges": [{"to": 1}, {"from": 1}]},
                               "aggs": {"t": {"terms": {"field": "x", "size": 600}}}}}}, ["buckets"]),
    # 5. field rules: author is hidden
    ("hidden", {"sort": [{"author": "asc"}]}, ["author", "sort[0].author"]),
    ("hidden", {"sort": "author"}, ["author"]),
    ("hidden", {"aggs": {"a": {"terms": {"field": "author"}}}}, ["author", "aggs.a.terms.field"]),
    ("hidden", {"aggs": {"m": {"max": {"field": "author"}}}}, ["author"]),
    ("hidden", {"aggs": {"t": {"top_metrics": {"metrics": {"field": "author"}, "sort": {"year": "desc"}}}}},
     ["author", "top_metrics"]),
    ("hidden", {"aggs": {"t": {"top_hits": {"_source": {"includes": ["author"]}}}}}, ["author", "top_hits"]),
    ("hidden", {"query": {"term": {"author": "Frank Herbert"}}}, ["author"]),
    ("hidden", {"query": {"exists": {"field": "author"}}}, ["author"]),
    ("hidden", {"query": {"nested": {"path": "comments", "query": {"match_all": {}},
                                     "inner_hits": {"_source": ["author"]}}}},
     ["author", "inner_hits"]),
    ("hidden", {"highlight": {"fields": {"title": {"matched_fields": ["title", "author"]}}}}, ["author"]),
    ("hidden", {"docvalue_fields": ["author"]}, ["author"]),
    ("hidden", {"collapse": {"field": "author"}}, ["author"]),
]


def _msearch_line_body(doc):
    return b"{}\n" + _compact(doc).encode() + b"\n"


def test_issue12_findings_are_refused_as_bodies_sources_and_msearch_lines(ctx):
    d, g = _start(ctx)
    before = d.stats()
    problems = []
    n = 0
    for route, doc, words in ISSUE12_BODIES:
        body = _compact(doc).encode()
        # a source= must fit in a query string
        n += _refused_everywhere(problems, g, route, doc, words, source=len(body) < 3000)
        _refused(problems, "POST %s line 2: %s" % (ISSUE12_MSEARCH[route], body[:100]),
                 raw_request(g.port, "POST", ISSUE12_MSEARCH[route], headers=NDJSON, body=_msearch_line_body(doc)),
                 words + ["line 2"])
        n += 1
    after = d.stats()
    assert not problems, "%d of %d issue-12 bodies not refused as specified:\n%s" % (
        len(problems), n, "\n".join(problems))
    assert after["requests"] == before["requests"], "refused bodies reached esdemo: %r -> %r" % (
        before["paths"], after["paths"])


def test_issue12_msearch_counts_its_searches(ctx):
    d, g = _start(ctx)
    n = d.requests()
    ten = b"".join(b'{}\n{"query":{"match_all":{}}}\n' for _ in range(10))
    raw_request(g.port, "POST", "/msearch/books", headers=NDJSON, body=ten)
    assert d.requests() == n + 1 and d.last()["body"] == ten.decode(), d.last()
    problems = []
    _refused(problems, "11 searches", raw_request(g.port, "POST", "/msearch/books", headers=NDJSON,
                                                  body=ten + b'{}\n{}\n'), ["max_searches", "line 22"])
    # 174,760 searches in one megabyte once cost one token
    assert not problems, problems
    json_error(*raw_request(g.port, "POST", "/msearch/books", headers=NDJSON, body=b"{}\n{}\n" * 174760), 413,
               "request_too_large")
    assert d.requests() == n + 1, d.stats()["paths"]


def test_issue12_each_msearch_search_costs_a_token(ctx):
    # burst 5: a 3-search _msearch takes 3 tokens; the next one finds 2
    d, g = _start(ctx)
    n = d.requests()
    three = b'{}\n{"size":1}\n' * 3
    status, _, data = raw_request(g.port, "POST", "/msearch-limited/books", headers=NDJSON, body=three)
    assert status != 429 and d.requests() == n + 1, (status, data)
    status, headers, data = raw_request(g.port, "POST", "/msearch-limited/books", headers=NDJSON, body=three)
    json_error(status, headers, data, 429, "too_many_requests")
    assert d.requests() == n + 1, "a limited _msearch reached esdemo"
    # more searches than the whole burst can never pass: said so, not retried
    status, headers, data = raw_request(g.port, "POST", "/msearch-limited/books", headers=NDJSON,
                                        body=b'{}\n{}\n' * 6)
    doc = json_error(status, headers, data, 429, "too_many_requests")
    assert "burst" in doc["error"]["reason"], doc
    assert d.requests() == n + 1


def test_issue12_from_and_size_are_capped_together_wherever_they_come_from(ctx):
    d, g = _start(ctx)
    n = d.requests()
    problems = []
    for target, body in (("/search/books?size=50", {"from": 9990}),
                         ("/search/books?from=9990", {"size": 50}),
                         ("/search/books?from=9991", {}),
                         ("/search/books?size=50&source=%s" % _q({"from": 9990}), None),
                         ("/search/books?from=9990&source=%s" % _q({"size": 50}), None)):
        _refused(problems, "%s %s" % (target, body), raw_request(
            g.port, "POST", target, headers=JSON, body=None if body is None else _compact(body).encode()),
            ["from + size", "10000"])
    assert not problems, "\n".join(problems)
    assert d.requests() == n, d.stats()["paths"]
    # the URL wins over the body, as in Elasticsearch: 9990 + 10 is the cap
    status, _, data = raw_request(g.port, "POST", "/search/books?size=10", headers=JSON,
                                  body=b'{"from":9990,"size":100}')
    assert status == 200 and d.requests() == n + 1, (status, data)


def test_issue12_search_bodies_are_size_and_depth_capped(ctx):
    d, g = _start(ctx)
    n = d.requests()
    big = b'{"query":{"terms":{"title":[' + b",".join(b'"t%06d"' % i for i in range(100000)) + b']}}}'
    assert 1000000 < len(big) < 1048576
    status, headers, data = raw_request(g.port, "POST", "/search/books", headers=JSON, body=big)
    json_error(status, headers, data, 413, "request_too_large")
    deep = b'{"query":' + b'{"bool":{"must":' * 40 + b'{"match_all":{}}' + b"}}" * 40 + b"}"
    problems = []
    _refused(problems, "deep", raw_request(g.port, "POST", "/search/books", headers=JSON, body=deep),
             ["max_depth"])
    assert not problems, problems
    assert d.requests() == n, d.stats()["paths"]


def test_issue12_hidden_fields_do_not_leak_through_parameters_or_an_empty_body(ctx):
    d, g = _start(ctx)
    n = d.requests()
    problems = []
    for query, words in (("sort=author:asc", ["author"]), ("sort=title,author", ["author"]),
                         ("_source_excludes=year", ["_source_excludes"]), ("df=author", ["author"]),
                         ("q=author:Herbert", ["q"])):
        _refused(problems, query, raw_request(g.port, "GET", "/hidden/books?" + query), words)
    assert not problems, "\n".join(problems)
    assert d.requests() == n, d.stats()["paths"]
    # no body at all: the search still names only the allowed fields
    status, _, _ = raw_request(g.port, "GET", "/hidden/books")
    assert status == 200 and json.loads(d.last()["body"]) == {"_source": ["title", "year", "comments.text"]}, d.last()
    # allowed fields pass, sort and all
    _same_as_direct(d, g, "/hidden/books", {"query": {"term": {"year": 1965}}, "sort": [{"year": "desc"}, "_score"],
                                            "aggs": {"y": {"terms": {"field": "year"}}}},
                    want_upstream=_compact({"query": {"term": {"year": 1965}}, "sort": [{"year": "desc"}, "_score"],
                                            "aggs": {"y": {"terms": {"field": "year"}}},
                                            "_source": ["title", "year", "comments.text"]}))
    status, _, _ = raw_request(g.port, "GET", "/hidden/books?sort=year:desc&_source=title")
    assert status == 200 and urllib.parse.parse_qs(d.last()["query"]) == {"sort": ["year:desc"], "_source": ["title"]}
