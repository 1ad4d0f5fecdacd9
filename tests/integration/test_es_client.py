"""The official Python client (Debian's python3-elasticsearch, installed by
`make test-deps`; nothing is installed here) pointed at esgate, with a route
that mirrors Elasticsearch's own /{index}/_search: es.info(), es.search()
and the client's product check (GET / with X-Elastic-Product) work, and a
refused query surfaces as the client's RequestError."""

import warnings

from harness import TestFailure, make_config

ROUTES = """\
routes:
  - path: /{index}/_search
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    params: [size, from]
  - path: /{index}/_count
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_count"}
    indices: [books]
"""


def _client(port):
    try:
        import elasticsearch
    except ImportError:
        raise TestFailure("python3-elasticsearch is not installed (make test-deps installs it)")
    return elasticsearch, elasticsearch.Elasticsearch("http://127.0.0.1:%d" % port, request_timeout=10,
                                                      max_retries=0) if _major(elasticsearch) >= 8 else \
        elasticsearch.Elasticsearch("http://127.0.0.1:%d" % port, timeout=10, max_retries=0)


def _major(elasticsearch):
    return int(elasticsearch.__versionstr__.split(".")[0])


def _search(es, major, **kw):
    query = kw.pop("query")
    if major >= 8:
        return es.search(query=query, **kw)
    return es.search(body={"query": query}, **kw)


def _start(ctx, extra=""):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra=extra + ROUTES))
    return d, g


def test_info_and_search_through_esgate(ctx):
    d, g = _start(ctx)
    elasticsearch, es = _client(g.port)
    major = _major(elasticsearch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 7.x: the "security features are not enabled" notice
        info = es.info()
        assert info["tagline"] == "You Know, for Search" and info["version"]["number"], info
        assert info == d.get_json("/"), info
        n = d.requests()
        res = _search(es, major, index="books", query={"match": {"title": "dune"}})
        hits = res["hits"]["hits"]
        assert [h["_source"]["title"] for h in hits] == ["Dune"], res
        last = d.last()
        assert (last["method"], last["path"]) == ("POST", "/books/_search"), last
        assert last["body"] == '{"query":{"match":{"title":"dune"}}}', last
        assert d.requests() == n + 1, "the client made requests beyond the search: %r" % d.stats()["paths"]
        res = _search(es, major, index="books", query={"match_all": {}}, size=2, from_=1)
        assert len(res["hits"]["hits"]) == 2, res
        # the firewall's refusal is the client's 400 RequestError / BadRequestError
        bad = getattr(elasticsearch, "BadRequestError", None) or elasticsearch.RequestError
        n = d.requests()
        try:
            _search(es, major, index="books", query={"script": {"script": {"source": "1"}}})
        except bad as e:
            assert e.status_code == 400 if major < 8 else e.meta.status == 400, e
            assert e.error == "query_not_allowed", (e.error, e.info)
        else:
            raise TestFailure("a script query was not refused")
        # an index the route does not serve
        forbidden = getattr(elasticsearch, "AuthorizationException", None) or elasticsearch.ApiError
        try:
            _search(es, major, index="movies", query={"match_all": {}})
        except forbidden as e:
            assert e.error == "index_not_allowed", e.info
        else:
            raise TestFailure("a search of an index the route does not serve succeeded")
        assert d.requests() == n, "refused searches reached esdemo"


def test_client_product_check_needs_cluster_info(ctx):
    # The client asks GET / before its first call: with cluster_info off it
    # cannot check what it talks to, and gives up.
    d, g = _start(ctx, extra="cluster_info: false\n")
    n = d.requests()
    elasticsearch, es = _client(g.port)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _search(es, _major(elasticsearch), index="books", query={"match_all": {}})
        except (elasticsearch.TransportError, getattr(elasticsearch, "UnsupportedProductError", Exception)):
            pass
        else:
            raise TestFailure("the client searched without its product check")
    assert d.requests() == n, "the client reached esdemo: %r" % d.stats()["paths"]
