"""Document- and field-level security on the request path (issue 16): two
tenants on one index ("shared", esdemo --tenants), each a JWT whose
"tenant" claim fills the grant's filter.  Each sees only its own documents
through search, count, _msearch, aggregations and get-by-id (a filtered
search on the id: 404 outside the filter).  Constructs that read outside
the filter are refused, and more than 30 hostile bodies are sent: each is
either refused without reaching esdemo, or reaches it with the filter on
every sub-search (asserted on what esdemo received, not on what esgate
says).  Field rules: a hidden field is never returned and cannot be named
in a query, sort, aggregation, highlight or fields list.  A grant's
indices narrow the route's with prefix*.

The route's firewall policy is wide on purpose (global, significant_terms,
children, has_child, more_like_this, percolate...), so that what refuses
them here is the document filter, not the firewall."""

import http.client
import json
import os
import time

from harness import json_error, make_config, request

from test_client_auth import ISSUER, AUDIENCE, Keys

FILTER = {"term": {"tenant": "acme"}}

POLICY = ("{queries: [match, match_phrase, multi_match, term, terms, range, bool, exists, prefix, ids, match_all, "
          "simple_query_string, query_string, constant_score, dis_max, function_score, boosting, nested, has_child, "
          "has_parent, parent_id, more_like_this, percolate, geo_shape, knn, pinned], "
          "aggs: [terms, global, significant_terms, significant_text, children, parent, multi_terms, top_hits, "
          "filter, filters, avg, max, nested, sampler, rare_terms], max_agg_depth: 3}")

ROUTES = """\
routes:
  - path: /{index}/_search
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [shared, books]
    params: [size, q, sort, _source, _source_includes, stored_fields, docvalue_fields, suggest_field, suggest_text]
    policy: %(policy)s
    auth: {}
  - path: /{index}/_count
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_count"}
    indices: [shared, books]
    params: [q]
    policy: %(policy)s
    auth: {}
  - path: /{index}/_msearch
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_msearch"}
    indices: [shared, books]
    policy: %(policy)s
    auth: {}
  - path: /{index}/_doc/{id}
    methods: [GET, HEAD]
    upstream: {method: GET, path: "/{index}/_doc/{id}"}
    indices: [shared, books]
    params: [routing]
    auth: {}
  - path: /{index}/_source/{id}
    methods: [GET]
    upstream: {method: GET, path: "/{index}/_source/{id}"}
    indices: [shared, books]
    auth: {}
""" % {"policy": POLICY}

AUTH = """\
auth:
  jwt:
    jwks_file: jwks.json
    issuer: "%s"
    audience: [%s]
  grants:
    - principals: ["jwt:fay"]
      indices: ["shar*"]
      dls: {term: {tenant: "{{claims.tenant}}"}}
      fields: {hide: [salary]}
    - principals: ["jwt:alice", "jwt:gus", "jwt:nobody"]
      indices: ["shar*"]
      dls: {term: {tenant: "{{claims.tenant}}"}}
""" % (ISSUER, AUDIENCE)


def _start(ctx):
    keys = Keys()
    d = ctx.esdemo("--tenants")
    with open(os.path.join(ctx.tmpdir, "jwks.json"), "w") as f:
        json.dump(keys.jwks, f)
    g = ctx.esgate(make_config(d.port, extra=AUTH + ROUTES))
    tokens = {"acme": keys.token(sub="alice", tenant="acme"), "globex": keys.token(sub="gus", tenant="globex"),
              "fay": keys.token(sub="fay", tenant="acme"), "none": keys.token(sub="nobody")}
    return d, g, tokens


def _send(g, token, method, path, body=None, ndjson=False):
    h = {"Authorization": "Bearer " + token}
    if body is not None:
        h["Content-Type"] = "application/x-ndjson" if ndjson else "application/json"
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
    st, hd, data = request(g.port, method, path, body=body, headers=h)
    return st, hd, data


def _ids(data):
    return sorted(h["_id"] for h in json.loads(data)["hits"]["hits"])


def _has_filter(search, filt=FILTER):
    """1 if the search body esdemo got ANDs FILT into its query (and into each knn's filter)."""
    q = search.get("query")
    if not (isinstance(q, dict) and list(q) == ["bool"] and filt in (q["bool"].get("filter") or [])):
        return False
    extra = set(q["bool"]) - {"must", "filter"}
    if extra:
        return False
    knn = search.get("knn")
    for k in (knn if isinstance(knn, list) else [knn] if knn else []):
        f = k.get("filter")
        if not (f == filt or (isinstance(f, list) and filt in f)):
            return False
    return True


def _assert_filtered(d, before, filt=FILTER):
    """esdemo got exactly one request since BEFORE, every (sub-)search of it filtered."""
    assert d.requests() == before + 1, (d.requests(), before)
    last = d.last()
    if last["path"].endswith("/_msearch"):
        lines = [json.loads(x) for x in last["body"].split("\n") if x.strip()]
        assert lines and len(lines) % 2 == 0, last
        for body in lines[1::2]:
            assert _has_filter(body, filt), "an _msearch sub-search without the filter: %r" % last["body"]
    else:
        assert _has_filter(json.loads(last["body"]), filt), "unfiltered upstream body: %r" % last["body"]
    return last


def test_each_tenant_sees_only_its_own_documents(ctx):
    d, g, tok = _start(ctx)
    for tenant, mine in (("acme", ["a1", "a2", "a3"]), ("globex", ["g1", "g2"])):
        filt = {"term": {"tenant": tenant}}
        n = d.requests()
        st, _, data = _send(g, tok[tenant], "POST", "/shared/_search", {"query": {"match_all": {}}})
        assert st == 200 and _ids(data) == mine, (tenant, st, data)
        _assert_filtered(d, n, filt)
        # no body at all: the filter is the whole query
        n = d.requests()
        st, _, data = _send(g, tok[tenant], "GET", "/shared/_search")
        assert st == 200 and _ids(data) == mine, data
        assert json.loads(d.last()["body"]) == {"query": {"bool": {"filter": [filt]}}}, d.last()
        # the client's own query is kept, AND-ed
        st, _, data = _send(g, tok[tenant], "POST", "/shared/_search", {"query": {"match": {"title": "roadmap"}}})
        assert _ids(data) == [mine[0]], data
        assert json.loads(d.last()["body"])["query"] == {
            "bool": {"must": [{"match": {"title": "roadmap"}}], "filter": [filt]}}, d.last()
        # count
        n = d.requests()
        st, _, data = _send(g, tok[tenant], "POST", "/shared/_count", {"query": {"match_all": {}}})
        assert st == 200 and json.loads(data)["count"] == len(mine), data
        _assert_filtered(d, n, filt)
        # _msearch: each sub-search filtered
        n = d.requests()
        body = "{}\n" + json.dumps({"query": {"match_all": {}}}) + "\n{\"index\": \"shared\"}\n{}\n"
        st, _, data = _send(g, tok[tenant], "POST", "/shared/_msearch", body, ndjson=True)
        assert st == 200, data
        for r in json.loads(data)["responses"]:
            assert sorted(h["_id"] for h in r["hits"]["hits"]) == mine, data
        _assert_filtered(d, n, filt)
        # aggregations count only the tenant's documents
        st, _, data = _send(g, tok[tenant], "POST", "/shared/_search",
                            {"size": 0, "aggs": {"k": {"terms": {"field": "tenant"}}}})
        assert json.loads(data)["aggregations"]["k"]["buckets"] == [{"key": tenant, "doc_count": len(mine)}], data
        # get-by-id: its own documents found, the other tenant's not, whatever the id
        for doc_id in ("a1", "a2", "g1", "g2", "zz"):
            n = d.requests()
            st, _, data = _send(g, tok[tenant], "GET", "/shared/_doc/" + doc_id)
            doc = json.loads(data)
            if doc_id in mine:
                assert st == 200 and doc["found"] and doc["_id"] == doc_id and doc["_source"]["tenant"] == tenant, \
                    data
            else:
                assert st == 404 and doc == {"_index": "shared", "_id": doc_id, "found": False}, (st, data)
            last = _assert_filtered(d, n, filt)
            assert last["path"] == "/shared/_search" and last["method"] == "POST", last
            assert {"ids": {"values": [doc_id]}} in json.loads(last["body"])["query"]["bool"]["filter"], last
        # HEAD (the clients' exists()): the same answer, without a body
        for doc_id, want in ((mine[0], 200), ("g1" if tenant == "acme" else "a1", 404)):
            st, _, data = _send(g, tok[tenant], "HEAD", "/shared/_doc/" + doc_id)
            assert st == want and data == b"", (doc_id, st, data)
        st, _, data = _send(g, tok[tenant], "GET", "/shared/_source/" + mine[0])
        assert st == 200 and json.loads(data)["tenant"] == tenant, data
        st, _, data = _send(g, tok[tenant], "GET", "/shared/_source/" + ("g1" if tenant == "acme" else "a1"))
        assert st == 404, data



def test_one_connection_changing_tenants_gets_each_ones_filter(ctx):
    """A keep-alive connection keeps its last credential's grant and the
    document filter rendered for it (worker/stage_auth.c): the same token
    again reuses it, a changed token is verified and rendered anew, across
    routes and back; each search reaching esdemo carries the filter of the
    token that asked, never the one before."""
    d, g, tok = _start(ctx)
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
    try:
        steps = [("acme", "/shared/_search"), ("acme", "/shared/_search"), ("globex", "/shared/_search"),
                 ("globex", "/shared/_count"), ("acme", "/shared/_count"), ("acme", "/shared/_search"),
                 ("fay", "/shared/_search"), ("globex", "/shared/_search"), ("globex", "/shared/_search"),
                 ("acme", "/shared/_doc/g1"), ("globex", "/shared/_doc/g1"), ("none", "/shared/_search"),
                 ("acme", "/shared/_search")]
        for who, path in steps:
            tenant = {"fay": "acme"}.get(who, who)
            n = d.requests()
            conn.request("POST" if not path.endswith("g1") else "GET", path,
                         body=None if path.endswith("g1") else json.dumps({"query": {"match_all": {}}}),
                         headers={"Authorization": "Bearer " + tok[who], "Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if who == "none":  # no tenant claim: refused, nothing upstream
                assert resp.status == 403 and d.requests() == n, (resp.status, data)
                continue
            if path.endswith("g1"):
                assert resp.status == (200 if tenant == "globex" else 404), (who, resp.status, data)
            else:
                assert resp.status == 200, (who, path, resp.status, data)
            _assert_filtered(d, n, {"term": {"tenant": tenant}})
    finally:
        conn.close()

def test_a_missing_claim_refuses_rather_than_drops_the_filter(ctx):
    d, g, tok = _start(ctx)
    n = d.requests()
    st, h, data = _send(g, tok["none"], "POST", "/shared/_search", {"query": {"match_all": {}}})
    json_error(st, h, data, 403, "forbidden")
    assert d.requests() == n


def test_grant_indices_narrow_the_route_with_a_prefix(ctx):
    d, g, tok = _start(ctx)
    n = d.requests()
    st, h, data = _send(g, tok["acme"], "POST", "/books/_search", {"query": {"match_all": {}}})
    doc = json_error(st, h, data, 403, "forbidden")
    assert doc["error"]["reason"] == "index books is not granted", doc
    st, h, data = _send(g, tok["acme"], "GET", "/books/_doc/1")
    json_error(st, h, data, 403, "forbidden")
    assert d.requests() == n


# Bodies that try to read outside the filter.  Each must be refused (never
# reaching esdemo) or reach it with the filter on every sub-search.
HOSTILE = [
    {"query": {"match_all": {}}},
    {"query": {"term": {"tenant": "globex"}}},
    {"query": {"bool": {"should": [{"term": {"tenant": "globex"}}]}}},
    {"query": {"bool": {"filter": [FILTER], "should": [{"term": {"tenant": "globex"}}], "minimum_should_match": 0}}},
    {"query": {"bool": {"must_not": [FILTER]}}},
    {"query": {"dis_max": {"queries": [{"term": {"tenant": "globex"}}]}}},
    {"query": {"constant_score": {"filter": {"term": {"tenant": "globex"}}}}},
    {"query": {"function_score": {"query": {"match_all": {}}}}},
    {"query": {"boosting": {"positive": {"match_all": {}}, "negative": FILTER, "negative_boost": 0.1}}},
    {"query": {"query_string": {"query": "tenant:globex"}}},
    {"query": {"simple_query_string": {"query": "globex"}}},
    {"query": {"match_all": {}}, "post_filter": {"term": {"tenant": "globex"}}},
    {"aggs": {"all": {"global": {}, "aggs": {"t": {"terms": {"field": "tenant"}}}}}},
    {"aggs": {"s": {"significant_terms": {"field": "tenant"}}}},
    {"aggs": {"s": {"significant_text": {"field": "title"}}}},
    {"aggs": {"t": {"terms": {"field": "tenant", "min_doc_count": 0}}}},
    {"aggs": {"t": {"multi_terms": {"terms": [{"field": "tenant"}, {"field": "kind"}], "min_doc_count": 0}}}},
    {"aggs": {"c": {"children": {"type": "answer"}}}},
    {"aggs": {"p": {"parent": {"type": "answer"}}}},
    {"aggs": {"f": {"filter": {"term": {"tenant": "globex"}}}}},
    {"query": {"has_child": {"type": "x", "query": {"match_all": {}}}}},
    {"query": {"has_parent": {"parent_type": "x", "query": {"match_all": {}}}}},
    {"query": {"parent_id": {"type": "x", "id": "g1"}}},
    {"query": {"terms": {"tenant": {"index": "shared", "id": "g1", "path": "tenant"}}}},
    {"query": {"more_like_this": {"fields": ["title"], "like": [{"_index": "shared", "_id": "g2"}]}}},
    {"query": {"percolate": {"field": "q", "index": "shared", "id": "g1"}}},
    {"query": {"geo_shape": {"loc": {"indexed_shape": {"index": "shared", "id": "g1", "path": "loc"}}}}},
    {"query": {"wrapper": {"query": "eyJtYXRjaF9hbGwiOnt9fQ=="}}},
    {"suggest": {"s": {"text": "globex", "term": {"field": "title"}}}},
    {"profile": True, "query": {"match_all": {}}},
    {"knn": {"field": "v", "query_vector": [1, 2], "k": 5, "num_candidates": 10}},
    {"query": {"knn": {"field": "v", "query_vector": [1, 2], "k": 5}}},
    {"collapse": {"field": "tenant", "inner_hits": {"name": "x"}}},
    {"retriever": {"standard": {"query": {"match_all": {}}}}},
    {"rank": {"rrf": {}}},
    {"sub_searches": [{"query": {"match_all": {}}}]},
    {"runtime_mappings": {"t": {"type": "keyword", "script": "emit('globex')"}}},
    {"script_fields": {"x": {"script": "params._source"}}},
    {"stats": ["x"]},
    {"ext": {}},
    {"indices_boost": [{"other": 2}]},
    {"pit": {"id": "abc"}},
    {"query": {"match_all": {}}, "rescore": {"query": {"rescore_query": {"term": {"tenant": "globex"}}}}},
    {"query": {"nested": {"path": "x", "query": {"match_all": {}}, "inner_hits": {}}}},
    {"aggs": {"t": {"top_hits": {"size": 3}}}},
    {"query": {"pinned": {"ids": ["g1"], "organic": {"match_all": {}}}}},
    {"highlight": {"fields": {"title": {"highlight_query": {"term": {"tenant": "globex"}}}}}},
]


def test_hostile_bodies_never_reach_the_upstream_unfiltered(ctx):
    d, g, tok = _start(ctx)
    assert len(HOSTILE) >= 30
    outcomes = {"refused": 0, "filtered": 0}
    for body in HOSTILE:
        for path in ("/shared/_search", "/shared/_count", "/shared/_msearch"):
            n = d.requests()
            if path.endswith("_msearch"):
                st, _, data = _send(g, tok["acme"], "POST", path, "{}\n%s\n{}\n%s\n" % (
                    json.dumps({"query": {"match_all": {}}}), json.dumps(body)), ndjson=True)
            else:
                st, _, data = _send(g, tok["acme"], "POST", path, body)
            if d.requests() != n:
                # it reached esdemo (which may not know every query kind and answer 400): filtered
                _assert_filtered(d, n)
                outcomes["filtered"] += 1
                if st == 200 and not path.endswith("_count"):
                    for hit in (json.loads(data).get("hits") or {}).get("hits", []):
                        assert hit["_source"]["tenant"] == "acme", (body, data)
            else:
                assert st in (400, 403, 413), (body, path, st, data)
                outcomes["refused"] += 1
    # the ones the filter itself must refuse, whatever the firewall allows
    for body in ({"aggs": {"all": {"global": {}}}}, {"aggs": {"s": {"significant_terms": {"field": "tenant"}}}},
                 {"aggs": {"t": {"terms": {"field": "tenant", "min_doc_count": 0}}}},
                 {"query": {"has_child": {"type": "x", "query": {"match_all": {}}}}},
                 {"query": {"more_like_this": {"fields": ["title"], "like": [{"_id": "g2"}]}}}):
        n = d.requests()
        st, h, data = _send(g, tok["acme"], "POST", "/shared/_search", body)
        json_error(st, h, data, 403, "forbidden")
        assert d.requests() == n
    # suggest, profile and a top-level knn: refused (the firewall refuses them before the filter would)
    for body in ({"suggest": {"s": {"text": "x", "term": {"field": "title"}}}}, {"profile": True},
                 {"knn": {"field": "v", "query_vector": [1, 2], "k": 5, "num_candidates": 10}}):
        n = d.requests()
        st, _, data = _send(g, tok["acme"], "POST", "/shared/_search", body)
        assert st in (400, 403) and d.requests() == n, (body, st, data)
    # parameters that would replace or escape the query
    for q in ("q=tenant:globex", "suggest_field=title&suggest_text=glob"):
        n = d.requests()
        st, _, data = _send(g, tok["acme"], "POST", "/shared/_search?" + q, {"query": {"match_all": {}}})
        assert st in (400, 403) and d.requests() == n, (q, st, data)
    assert outcomes["refused"] >= 20 and outcomes["filtered"] >= 10, outcomes
    metrics = request(g.port, "GET", "/metrics")[2].decode()
    assert 'esgate_auth_denied_total{reason="dls"} 0' not in metrics, metrics


def test_hidden_fields_are_neither_returned_nor_usable(ctx):
    d, g, tok = _start(ctx)
    st, _, data = _send(g, tok["fay"], "POST", "/shared/_search", {"query": {"match_all": {}}})
    assert st == 200 and _ids(data) == ["a1", "a2", "a3"], data
    for hit in json.loads(data)["hits"]["hits"]:
        assert "salary" not in hit["_source"] and hit["_source"]["tenant"] == "acme", hit
    sent = json.loads(d.last()["body"])
    assert "salary" in json.dumps(sent["_source"]), sent  # excluded by the rewritten _source
    st, _, data = _send(g, tok["fay"], "GET", "/shared/_doc/a1")
    assert st == 200 and "salary" not in json.loads(data)["_source"], data
    st, _, data = _send(g, tok["fay"], "GET", "/shared/_source/a2")
    assert st == 200 and "salary" not in json.loads(data), data
    naming = [
        {"query": {"range": {"salary": {"gte": 150}}}},
        {"query": {"term": {"salary": 200}}},
        {"query": {"exists": {"field": "salary"}}},
        {"query": {"bool": {"filter": [{"range": {"salary": {"gt": 0}}}]}}},
        {"query": {"multi_match": {"query": "1", "fields": ["title", "salary"]}}},
        {"query": {"query_string": {"query": "salary:100"}}},
        {"sort": [{"salary": "desc"}]},
        {"sort": ["salary"]},
        {"aggs": {"m": {"max": {"field": "salary"}}}},
        {"aggs": {"t": {"terms": {"field": "salary"}}}},
        {"aggs": {"f": {"filter": {"range": {"salary": {"gt": 1}}}}}},
        {"highlight": {"fields": {"salary": {}}}},
        {"fields": ["salary"]},
        {"docvalue_fields": ["salary"]},
        {"stored_fields": ["salary"]},
        {"_source": ["salary"]},
        {"_source": {"includes": ["*"]}},
        {"aggs": {"t": {"top_hits": {"_source": ["salary"]}}}},
    ]
    for body in naming:
        n = d.requests()
        st, h, data = _send(g, tok["fay"], "POST", "/shared/_search", body)
        assert st in (400, 403), (body, st, data)
        assert d.requests() == n, (body, d.last())
    for q in ("sort=salary:desc", "_source=salary", "_source_includes=salary", "stored_fields=salary",
              "docvalue_fields=salary", "q=salary:100"):
        n = d.requests()
        st, _, data = _send(g, tok["fay"], "POST", "/shared/_search?" + q, {"query": {"match_all": {}}})
        assert st in (400, 403) and d.requests() == n, (q, st, data)
    # naming only visible fields is fine
    st, _, data = _send(g, tok["fay"], "POST", "/shared/_search",
                        {"query": {"match": {"title": "budget"}}, "sort": [{"kind": "asc"}],
                         "aggs": {"k": {"terms": {"field": "kind"}}}})
    assert st == 200 and _ids(data) == ["a2"], data
    metrics = request(g.port, "GET", "/metrics")[2].decode()
    assert 'esgate_auth_denied_total{reason="fls"} 0' not in metrics, metrics
