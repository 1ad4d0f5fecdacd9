"""The official Elasticsearch JavaScript client (@elastic/elasticsearch 8.x,
tests/js/, installed by `make test-deps` with npm ci) against esgate's auth
stage (issue 16), with the client's own auth options: `auth: {apiKey: {id,
api_key}}`, the encoded `auth: {apiKey: "base64(id:key)"}` and `auth:
{bearer: token}` -- the bearer option the Python client 7.17 of Debian 12
lacks (test_client_auth.py sends its Bearer value through `headers=`).
Accepted credentials answer a search with esdemo's data (and its
X-Elastic-Product header, which the client checks); a wrong or expired key,
an expired token and a token for another audience are a 401 ResponseError
in the client, and esdemo's request count shows none of them reached it.

The routes, keys, grants and tokens are test_client_auth.py's (_start,
Keys); tests/js/auth_client.mjs runs the cases and prints one JSON line
each."""

import base64
import json
import os
import subprocess
import time

from harness import ROOT, TestFailure
from test_client_auth import EXPIRED_KEY, KEYS, Keys, _start

JS = os.path.join(ROOT, "tests", "js")


def _node(port, cases):
    if not os.path.isdir(os.path.join(JS, "node_modules", "@elastic", "elasticsearch")):
        raise TestFailure("tests/js/node_modules has no @elastic/elasticsearch (make test-deps runs npm ci there)")
    p = subprocess.run(["node", os.path.join(JS, "auth_client.mjs"), "http://127.0.0.1:%d" % port, json.dumps(cases)],
                       cwd=JS, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise TestFailure("node exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert [o["name"] for o in out] == [c["name"] for c in cases], (out, p.stderr)
    return out


def _case(name, auth, index="books", title="dune"):
    return {"name": name, "auth": auth, "index": index, "title": title}


def test_the_js_client_with_api_key_and_bearer(ctx):
    keys = Keys()
    d, g = _start(ctx, keys)
    encoded = base64.b64encode(("app:" + KEYS["app"]).encode()).decode()
    accepted = [
        (_case("api_key", {"apiKey": {"id": "app", "api_key": KEYS["app"]}}), ["Dune"], "key:app;"),
        (_case("api_key_encoded", {"apiKey": encoded}), ["Dune"], "key:app;"),
        (_case("bearer", {"bearer": keys.token()}, index="movies", title="alien"), ["Alien"], "jwt:alice;"),
    ]
    for case, titles, principal in accepted:
        before = d.requests()
        [res] = _node(g.port, [case])
        assert res.get("status") == 200 and res["titles"] == titles, res
        assert res["product"] == "Elasticsearch", res
        last = d.last()
        assert d.requests() == before + 1, (before, d.stats())
        assert last["path"] == "/%s/_search" % case["index"], last
        assert "authorization" not in last["headers"], "the client's credentials went upstream: %r" % last
        assert last["headers"]["x-opaque-id"].startswith(principal), last["headers"]
    now = int(time.time())
    refused = [
        _case("wrong_key", {"apiKey": {"id": "app", "api_key": KEYS["reader"]}}),
        _case("unknown_id", {"apiKey": {"id": "nobody", "api_key": KEYS["app"]}}),
        _case("expired_key", {"apiKey": {"id": EXPIRED_KEY[0], "api_key": EXPIRED_KEY[1]}}),
        _case("expired_jwt", {"bearer": keys.token(exp=now - 3600, iat=now - 7200)}),
        _case("wrong_audience", {"bearer": keys.token(aud="someone-else")}),
    ]
    before = d.requests()
    for res in _node(g.port, refused):
        assert res.get("error") == "ResponseError" and res["status"] == 401, res
        assert res["type"] == "security_exception", res
        assert "ApiKey" in res["www_authenticate"] and "Bearer" in res["www_authenticate"], res
    assert d.requests() == before, "a refused request reached esdemo: %r" % d.last()
