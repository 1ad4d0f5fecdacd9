"""Client authentication on the request path (issue 16): the auth stage
takes `Authorization: ApiKey base64(id:key)` and `Bearer <JWT>` on routes
with an `auth` rule, from the official Python client (`api_key=(id, key)`;
7.x has no `bearer_auth=`, so its `headers=` carries the Bearer value, as
its documentation says; the client option `bearer` itself is covered by
the official JavaScript client in test_es_js_client.py) and from curl.  Refusals are 401 with
WWW-Authenticate naming the route's schemes, or 403 forbidden, and every
refusal is shown not to reach esdemo (its request count, its last
request).  The client's credentials never go upstream; the principal
prefixes X-Opaque-Id and is the access log's remote user; failed
authentications are limited per client address across workers, and a
grant's rate limit per principal across workers.

Tokens are made here with python3-jwt and python3-cryptography (signed
with keys generated for the test); the hostile ones (alg none, HS256 with
the RSA public key as the secret, a tampered signature) by hand."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import time
import warnings

from harness import TestFailure, connection_owner, json_error, make_config, read_response, request, wait_for

try:
    import jwt as pyjwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError:  # pragma: no cover
    pyjwt = None

KEYS = {"app": "app-key-0123456789-abcdefghijklmnopqrstuvwxyz", "reader": "reader-key-abcdefghijklmnopqrstuvw-0123",
        "gone": "gone-key-zyxwvutsrqponmlkjihgfedcba-98765"}
EXPIRED_KEY = ("old", "old-key-0123456789abcdefghijklmnopqrstuvwxy")
ISSUER = "https://idp.test/"
AUDIENCE = "esgate"


def _sha(key):
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _int_b64u(n):
    return _b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Keys:
    """An RSA and an EC key pair, their JWKS, tokens."""

    def __init__(self):
        if pyjwt is None:
            raise TestFailure("python3-jwt and python3-cryptography are needed (make test-deps installs them)")
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        rn = self.rsa.public_key().public_numbers()
        en = self.ec.public_key().public_numbers()
        self.jwks = {"keys": [
            {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": _int_b64u(rn.n), "e": _int_b64u(rn.e)},
            {"kty": "EC", "kid": "ec1", "use": "sig", "crv": "P-256", "x": _b64u(en.x.to_bytes(32, "big")),
             "y": _b64u(en.y.to_bytes(32, "big"))},
        ]}
        self.rsa_public_pem = self.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo)

    def claims(self, sub="alice", **over):
        now = int(time.time())
        c = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, alg="RS256", **over):
        if alg == "RS256":
            return pyjwt.encode(self.claims(**over), self.rsa, algorithm="RS256", headers={"kid": "rsa1"})
        return pyjwt.encode(self.claims(**over), self.ec, algorithm="ES256", headers={"kid": "ec1"})

    def hostile(self, kind):
        claims = _b64u(json.dumps(self.claims()).encode())
        if kind == "alg_none":
            head = _b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa1"}).encode())
            return head + "." + claims + "."
        if kind == "hs256_with_rsa_public_key":
            head = _b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}).encode())
            sig = hmac.new(self.rsa_public_pem, (head + "." + claims).encode(), hashlib.sha256).digest()
            return head + "." + claims + "." + _b64u(sig)
        if kind == "tampered":
            good = self.token()
            head, _, sig = good.split(".")
            forged = _b64u(json.dumps(self.claims(sub="mallory")).encode())
            return head + "." + forged + "." + sig
        if kind == "bad_signature":
            good = self.token()
            head, body, sig = good.split(".")
            raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
            raw[10] ^= 1
            return head + "." + body + "." + _b64u(bytes(raw))
        raise ValueError(kind)


def _apikey(kid, key):
    return "ApiKey " + base64.b64encode(("%s:%s" % (kid, key)).encode()).decode()


ROUTES = """\
routes:
  - path: /{index}/_search
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books, movies]
    params: [size]
    auth: {}
  - path: /{index}/_count
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_count"}
    indices: [books, movies]
    auth: {schemes: [api_key]}
  - path: /open/{index}
    methods: [GET]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
  - path: /public/{index}
    methods: [GET]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books, movies]
    auth: {required: false}
"""


def _auth_block(failed="{rate: 100/s, burst: 100}", grants_extra=""):
    return ("auth:\n"
            "  keys_file: keys.yaml\n"
            "  api_keys:\n"
            "    - {id: %s, hash: \"%s\", expires: 2020-01-01}\n"
            "  jwt:\n"
            "    jwks_file: jwks.json\n"
            "    issuer: \"%s\"\n"
            "    audience: [%s]\n"
            "  failed_limit: %s\n"
            "  grants:\n"
            "    - principals: [\"key:app\", \"key:old\", \"key:gone\", \"jwt:alice\", \"jwt:erin\"]\n"
            "      routes: [\"/{index}/_search\", \"/{index}/_count\"]\n"
            "    - principals: [\"key:reader\"]\n"
            "      routes: [\"/{index}/_search\"]\n"
            "      indices: [movies]\n"
            "    - principals: [anonymous, \"key:app\"]\n"
            "      routes: [\"/public/{index}\"]\n"
            "      indices: [books]\n"
            "%s") % (EXPIRED_KEY[0], _sha(EXPIRED_KEY[1]), ISSUER, AUDIENCE, failed, grants_extra)


def _write_keys(ctx, ids):
    with open(os.path.join(ctx.tmpdir, "keys.yaml"), "w") as f:
        f.write("api_keys:\n" + "".join("  - {id: %s, hash: \"%s\"}\n" % (i, _sha(KEYS[i])) for i in ids))


def _start(ctx, keys, failed="{rate: 100/s, burst: 100}", grants_extra="", routes=ROUTES, workers=2):
    d = ctx.esdemo()
    _write_keys(ctx, ["app", "reader", "gone"])
    with open(os.path.join(ctx.tmpdir, "jwks.json"), "w") as f:
        json.dump(keys.jwks, f)
    extra = "access_log: {file: \"%s\"}\n" % os.path.join(ctx.tmpdir, "access.log") + _auth_block(failed,
                                                                                                  grants_extra)
    # the config is written into ctx.tmpdir, where keys.yaml and jwks.json are
    g = ctx.esgate(make_config(d.port, workers=workers, log_level="debug", extra=extra + routes), workers=workers)
    return d, g


def _search(g, auth=None, index="books", body=b'{"query":{"match_all":{}}}', path=None, headers=None):
    """POST a search: (status, headers lower-cased, with every WWW-Authenticate value joined by " | ", body)."""
    h = {"Content-Type": "application/json"}
    if auth is not None:
        h["Authorization"] = auth
    h.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
    try:
        conn.request("POST", path or "/%s/_search" % index, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        out = {k.lower(): v for k, v in resp.getheaders()}
        if resp.msg.get_all("www-authenticate"):
            out["www-authenticate"] = " | ".join(resp.msg.get_all("www-authenticate"))
        return resp.status, out, data
    finally:
        conn.close()


def _refused(d, g, status, auth, etype, index="books", path=None, challenge=("ApiKey", "Bearer")):
    """A request refused with STATUS/ETYPE that esdemo never saw."""
    before = d.requests()
    st, h, body = _search(g, auth, index=index, path=path)
    doc = json_error(st, h, body, status, etype)
    if status == 401:
        www = h.get("www-authenticate", "")
        for c in challenge:
            assert c in www, (c, www)
    assert d.requests() == before, "a refused request reached esdemo: %r" % d.last()
    return doc


def test_api_key_and_jwt_accepted_credentials_never_forwarded(ctx):
    keys = Keys()
    d, g = _start(ctx, keys)
    for auth, principal in ((_apikey("app", KEYS["app"]), "key:app"), ("Bearer " + keys.token(), "jwt:alice"),
                            ("bearer " + keys.token("ES256", sub="erin"), "jwt:erin")):
        st, h, body = _search(g, auth)
        assert st == 200, (st, body)
        last = d.last()
        assert last["path"] == "/books/_search", last
        assert "authorization" not in last["headers"], "the client's credentials went upstream: %r" % last
        rid = h["x-request-id"]
        assert last["headers"]["x-opaque-id"] == principal + ";" + rid, last["headers"]
    # the same token again: from the worker's cache of verified tokens (one of the two workers
    # has seen it by the third time at the latest)
    tok = "Bearer " + keys.token(sub="alice")
    for _ in range(4):
        assert _search(g, tok)[0] == 200
    # the same key again: from the worker's cache of verified keys, the same principal
    for _ in range(4):
        st, h, body = _search(g, _apikey("app", KEYS["app"]))
        assert st == 200, (st, body)
        assert d.last()["headers"]["x-opaque-id"] == "key:app;" + h["x-request-id"], d.last()
    metrics = request(g.port, "GET", "/metrics")[2].decode()
    assert re.search(r'^esgate_auth_attempts_total\{scheme="api_key",result="ok"\} 5$', metrics, re.M), metrics
    assert re.search(r'^esgate_auth_attempts_total\{scheme="jwt",result="ok"\} 6$', metrics, re.M), metrics
    hits = int(re.search(r'^esgate_auth_jwt_cache_total\{result="hit"\} (\d+)$', metrics, re.M).group(1))
    assert hits >= 2, metrics
    # the access log names the principal (the combined format's remote user), never a secret
    log = wait_for(lambda: _read(ctx, "access.log") if _read(ctx, "access.log").count("\n") >= 11 else None, 5,
                   "the access log lines")
    assert re.search(r'^127\.0\.0\.1 - key:app \[', log, re.M), log
    assert re.search(r'^127\.0\.0\.1 - jwt:alice \[', log, re.M), log
    _no_secrets(g, keys, log)


def _read(ctx, name):
    try:
        with open(os.path.join(ctx.tmpdir, name)) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _no_secrets(g, keys, *more):
    text = g.log_text() + "".join(more)
    for k in KEYS.values():
        assert k not in text, "a key in the log"
        assert base64.b64encode(("app:" + k).encode()).decode() not in text
    tok = keys.token()
    assert tok.split(".")[2] not in text


def test_refusals_are_401_and_never_reach_the_upstream(ctx):
    keys = Keys()
    d, g = _start(ctx, keys)
    assert _search(g, _apikey("app", KEYS["app"]))[0] == 200
    # no credentials: both schemes the route takes are named
    doc = _refused(d, g, 401, None, "security_exception")
    assert doc["error"]["reason"] == "missing authentication credentials", doc
    # a wrong key and an unknown id get the same answer: nothing tells which ids exist
    a = _refused(d, g, 401, _apikey("app", KEYS["reader"]), "security_exception")
    b = _refused(d, g, 401, _apikey("nobody", KEYS["app"]), "security_exception")
    assert a == b, (a, b)
    _refused(d, g, 401, _apikey("old", EXPIRED_KEY[1]), "security_exception")
    _refused(d, g, 401, "Basic " + base64.b64encode(b"app:x").decode(), "security_exception")
    _refused(d, g, 401, "ApiKey !!!", "security_exception")
    for claims in ({"exp": int(time.time()) - 3600}, {"aud": "someone-else"}, {"iss": "https://evil.test/"},
                   {"nbf": int(time.time()) + 3600}, {"exp": None}):
        doc = _refused(d, g, 401, "Bearer " + keys.token(**claims), "security_exception")
    for kind in ("alg_none", "hs256_with_rsa_public_key", "tampered", "bad_signature"):
        _refused(d, g, 401, "Bearer " + keys.hostile(kind), "security_exception")
    st, h, _ = _search(g, "Bearer " + keys.hostile("tampered"))
    assert 'error="invalid_token"' in h["www-authenticate"], h
    # two Authorization headers: refused, whichever one a parser would pick
    before = d.requests()
    conn_status = _raw(g.port, "POST /books/_search HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                               "Authorization: Bearer x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                       % _apikey("app", KEYS["app"]))
    assert conn_status == 401 and d.requests() == before, conn_status
    # a route that takes API keys alone names only ApiKey, and refuses a good token
    _refused(d, g, 401, "Bearer " + keys.token(), "security_exception", path="/books/_count",
             challenge=("ApiKey",))
    st, h, _ = _search(g, None, path="/books/_count")
    assert "Bearer" not in h["www-authenticate"], h
    # a known principal without the grant: 403 naming what was refused
    doc = _refused(d, g, 403, _apikey("reader", KEYS["reader"]), "forbidden", index="books")
    assert doc["error"]["reason"] == "index books is not granted", doc
    assert _search(g, _apikey("reader", KEYS["reader"]), index="movies")[0] == 200
    doc = _refused(d, g, 403, _apikey("reader", KEYS["reader"]), "forbidden", path="/movies/_count")
    assert doc["error"]["reason"] == "route /{index}/_count is not granted", doc
    # the open route is open as before, credentials or not, and forwards none
    st, _, _ = request(g.port, "GET", "/open/books", headers={"Authorization": "ApiKey garbage"})
    assert st == 200 and "authorization" not in d.last()["headers"]
    metrics = request(g.port, "GET", "/metrics")[2].decode()
    for want in (r'esgate_auth_attempts_total\{scheme="api_key",result="bad_key"\} 2',
                 r'esgate_auth_attempts_total\{scheme="api_key",result="expired_key"\} 1',
                 r'esgate_auth_attempts_total\{scheme="jwt",result="bad_token"\} \d+',
                 r'esgate_auth_attempts_total\{scheme="none",result="missing"\} \d+',
                 r'esgate_auth_denied_total\{reason="index"\} 1', r'esgate_auth_denied_total\{reason="route"\} 1'):
        assert re.search("^" + want + "$", metrics, re.M), (want, metrics)
    _no_secrets(g, keys)


def test_anonymous_where_the_route_allows_it_and_never_as_a_fallback(ctx):
    keys = Keys()
    d, g = _start(ctx, keys)
    st, h, _ = request(g.port, "GET", "/public/books")
    assert st == 200 and d.last()["headers"]["x-opaque-id"] == "anonymous;" + h["x-request-id"], d.last()
    # the grant naming anonymous covers books only
    n = d.requests()
    st, h, body = request(g.port, "GET", "/public/movies")
    json_error(st, h, body, 403, "forbidden")
    # credentials that are there decide: wrong ones are a 401, not anonymous
    st, h, body = request(g.port, "GET", "/public/books", headers={"Authorization": _apikey("app", "wrong")})
    json_error(st, h, body, 401, "security_exception")
    st, h, body = request(g.port, "GET", "/public/books", headers={"Authorization": "Bearer " + keys.hostile("alg_none")})
    json_error(st, h, body, 401, "security_exception")
    assert d.requests() == n
    st, h, _ = request(g.port, "GET", "/public/books", headers={"Authorization": _apikey("app", KEYS["app"])})
    assert st == 200 and d.last()["headers"]["x-opaque-id"].startswith("key:app;"), d.last()
    # a principal no grant names on this route: 403, not anonymous
    st, h, body = request(g.port, "GET", "/public/books", headers={"Authorization": _apikey("reader", KEYS["reader"])})
    json_error(st, h, body, 403, "forbidden")
    assert d.requests() == n + 1


def _raw(port, text):
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(text.encode())
        f = s.makefile("rb")
        status, _, _ = read_response(f)
        return status
    finally:
        s.close()


def _es(port, **kw):
    import elasticsearch
    if int(elasticsearch.__versionstr__.split(".")[0]) >= 8:
        return elasticsearch, elasticsearch.Elasticsearch("http://127.0.0.1:%d" % port, request_timeout=10,
                                                          max_retries=0, **kw)
    if "bearer_auth" in kw:
        kw["headers"] = {"authorization": "Bearer " + kw.pop("bearer_auth")}
    return elasticsearch, elasticsearch.Elasticsearch("http://127.0.0.1:%d" % port, timeout=10, max_retries=0, **kw)


def _es_search(es, index):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return es.search(index=index, body={"query": {"match": {"title": "dune"}}})


def test_the_official_client_with_api_key_and_bearer(ctx):
    keys = Keys()
    d, g = _start(ctx, keys)
    elasticsearch, es = _es(g.port, api_key=("app", KEYS["app"]))
    res = _es_search(es, "books")
    assert [h["_source"]["title"] for h in res["hits"]["hits"]] == ["Dune"], res
    assert d.last()["headers"]["x-opaque-id"].startswith("key:app;"), d.last()
    _, es = _es(g.port, bearer_auth=keys.token())
    assert _es_search(es, "movies")["hits"]["total"]["value"] == 1
    assert d.last()["headers"]["x-opaque-id"].startswith("jwt:alice;")
    searched = d.stats()["paths"].get("/books/_search", 0)
    refused = [("api_key", ("app", "wrong")), ("api_key", ("old", EXPIRED_KEY[1])),
               ("bearer_auth", keys.token(exp=int(time.time()) - 120)), ("bearer_auth", keys.token(aud="other")),
               ("bearer_auth", keys.hostile("alg_none")), ("bearer_auth", keys.hostile("hs256_with_rsa_public_key")),
               ("bearer_auth", keys.hostile("tampered"))]
    for kw, val in refused:
        _, es = _es(g.port, **{kw: val})
        try:
            _es_search(es, "books")
        except elasticsearch.AuthenticationException as e:
            assert e.status_code == 401, e
        else:
            raise TestFailure("%s %r was accepted" % (kw, val))
    # the product check's GET / is the open cluster-info route; none of the searches went
    assert d.stats()["paths"].get("/books/_search", 0) == searched, d.stats()
    _, es = _es(g.port, api_key=("reader", KEYS["reader"]))
    try:
        _es_search(es, "books")
    except elasticsearch.AuthorizationException as e:
        assert e.status_code == 403, e
    else:
        raise TestFailure("reader searched books")
    assert _es_search(es, "movies")["hits"]["total"]["value"] == 1


def test_curl_with_each_scheme(ctx):
    keys = Keys()
    d, g = _start(ctx, keys)

    def curl(*args):
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
                            "Content-Type: application/json", "-d", '{"query":{"match_all":{}}}'] + list(args) +
                           ["http://127.0.0.1:%d/books/_search" % g.port], capture_output=True, text=True,
                           timeout=20)
        return int(p.stdout)

    assert curl("-H", "Authorization: " + _apikey("app", KEYS["app"])) == 200
    assert curl("-H", "Authorization: Bearer " + keys.token()) == 200
    assert curl("--oauth2-bearer", keys.token("ES256")) == 200
    before = d.requests()
    assert curl("-H", "Authorization: " + _apikey("app", "nope")) == 401
    assert curl("-H", "Authorization: Bearer " + keys.token(exp=int(time.time()) - 100)) == 401
    assert curl("-H", "Authorization: Bearer " + keys.token(aud="x")) == 401
    assert curl("--oauth2-bearer", keys.hostile("alg_none")) == 401
    assert curl("--oauth2-bearer", keys.hostile("hs256_with_rsa_public_key")) == 401
    assert curl("--oauth2-bearer", keys.hostile("tampered")) == 401
    assert curl("-u", "app:" + KEYS["app"]) == 401
    assert curl() == 401
    assert d.requests() == before


def test_key_removed_by_a_reload_is_refused(ctx):
    keys = Keys()
    d, g = _start(ctx, keys)
    gone = _apikey("gone", KEYS["gone"])
    assert _search(g, gone)[0] == 200
    _write_keys(ctx, ["app", "reader"])
    g.signal(signal.SIGHUP)
    g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
    g.wait_workers(2, exclude=())
    wait_for(lambda: _search(g, gone)[0] == 401, 10, "the removed key to be refused")
    for _ in range(6):  # by every new worker
        _refused(d, g, 401, gone, "security_exception")
    assert _search(g, _apikey("app", KEYS["app"]))[0] == 200


def _on_worker(port, pid, pids, text, source="127.0.0.1"):
    """Sends TEXT on a new connection from SOURCE that worker PID accepted: the status."""
    import socket
    for _ in range(600):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        cport = s.getsockname()[1]
        owner = wait_for(lambda: connection_owner(pids, port, cport), 20, "a worker to accept")
        if owner != pid:
            s.close()
            continue
        try:
            s.sendall(text.encode())
            status, headers, body = read_response(s.makefile("rb"))
            return status, headers, body
        finally:
            s.close()
    raise TestFailure("no connection reached worker %d" % pid)


def _post(auth):
    return ("POST /books/_search HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}" % auth)


def test_failed_authentications_are_limited_per_address_across_workers(ctx):
    keys = Keys()
    d, g = _start(ctx, keys, failed="{rate: 1/m, burst: 4}")
    pids = sorted(g.workers())
    good = _apikey("app", KEYS["app"])
    # the right key from 127.0.0.3 on both workers first: each has it in its
    # cache of verified keys, which must not let it past the limit below
    for pid in pids:
        assert _on_worker(g.port, pid, pids, _post(good), "127.0.0.3")[0] == 200
    before = d.requests()
    # four wrong guesses from 127.0.0.3, spread over both workers: 401 each
    for i in range(4):
        assert _on_worker(g.port, pids[i % 2], pids, _post(_apikey("app", "guess%d" % i)), "127.0.0.3")[0] == 401
    # the fifth guess, and even the right key, from that address: 429, credentials not looked at
    for auth, pid in ((_apikey("app", "guess5"), pids[0]), (good, pids[1]), (good, pids[0])):
        st, h, body = _on_worker(g.port, pid, pids, _post(auth), "127.0.0.3")
        json_error(st, h, body, 429, "too_many_requests")
        assert int(h["retry-after"]) >= 1, h
    assert d.requests() == before
    # another address is not affected; requests without credentials are never counted
    assert _on_worker(g.port, pids[1], pids, _post(good), "127.0.0.4")[0] == 200
    metrics = request(g.port, "GET", "/metrics")[2].decode()
    assert re.search(r'^esgate_auth_denied_total\{reason="failed_limit"\} 3$', metrics, re.M), metrics


def test_a_principals_rate_limit_holds_across_workers(ctx):
    keys = Keys()
    grants = ("    - principals: [\"key:limited\"]\n"
              "      routes: [\"/{index}/_search\"]\n"
              "      rate_limit: {rate: 1/m, burst: 3}\n")
    KEYS["limited"] = "limited-key-abcdefghijklmnopqrstuvwxyz-012345"
    try:
        d = ctx.esdemo()
        with open(os.path.join(ctx.tmpdir, "keys.yaml"), "w") as f:
            f.write("api_keys:\n" + "".join("  - {id: %s, hash: \"%s\"}\n" % (i, _sha(KEYS[i]))
                                            for i in ("app", "limited")))
        with open(os.path.join(ctx.tmpdir, "jwks.json"), "w") as f:
            json.dump(keys.jwks, f)
        # the limited grant comes first: the first grant naming the principal wins
        block = _auth_block().replace("  grants:\n", "  grants:\n" + grants)
        g = ctx.esgate(make_config(d.port, extra=block + ROUTES))
        pids = sorted(g.workers())
        lim = _apikey("limited", KEYS["limited"])
        before = d.requests()
        # three from two addresses and both workers: the bucket is the principal's
        for i, src in enumerate(("127.0.0.5", "127.0.0.6", "127.0.0.5")):
            assert _on_worker(g.port, pids[i % 2], pids, _post(lim), src)[0] == 200
        for pid, src in ((pids[0], "127.0.0.7"), (pids[1], "127.0.0.8")):
            st, h, body = _on_worker(g.port, pid, pids, _post(lim), src)
            assert st == 429, (st, body)
        assert d.requests() == before + 3
        # another principal is not limited
        assert _on_worker(g.port, pids[0], pids, _post(_apikey("app", KEYS["app"])), "127.0.0.7")[0] == 200
        metrics = request(g.port, "GET", "/metrics")[2].decode()
        assert re.search(r'^esgate_auth_denied_total\{reason="rate_limit"\} 2$', metrics, re.M), metrics
    finally:
        del KEYS["limited"]


def test_one_connection_remembers_only_the_exact_credential_and_the_limit_still_holds(ctx):
    """A keep-alive connection's memo of its last verified credential (lib/auth.h): only that
    exact value is taken from it (the same length one byte off is refused, and never reaches the
    upstream), switching credentials works both ways, and an address past the failed-attempts
    limit is refused even the right key on the connection that had it verified."""
    keys = Keys()
    d, g = _start(ctx, keys, failed="{rate: 1/m, burst: 3}", workers=1)
    good = _apikey("app", KEYS["app"])
    wrong = _apikey("app", KEYS["app"][:-1] + ("x" if KEYS["app"][-1] != "x" else "y"))
    assert len(wrong) == len(good) and wrong != good
    tok = "Bearer " + keys.token(sub="alice")
    bad_tok = tok[:-3] + ("A" if tok[-3] != "A" else "B") + tok[-2:]
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)

    def post(auth):
        conn.request("POST", "/books/_search", body=b"{}",
                     headers={"Content-Type": "application/json", "Authorization": auth})
        resp = conn.getresponse()
        resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}

    try:
        for auth, want, principal in ((good, 200, "key:app"), (good, 200, "key:app"), (wrong, 401, None),
                                      (good, 200, "key:app"), (tok, 200, "jwt:alice"), (tok, 200, "jwt:alice"),
                                      (bad_tok, 401, None), (tok, 200, "jwt:alice"), (good, 200, "key:app")):
            before = d.requests()
            st, h = post(auth)
            assert st == want, (auth == good, auth == tok, st, want)
            if principal is None:
                assert d.requests() == before, "a refused credential reached the upstream"
            else:
                assert d.last()["headers"]["x-opaque-id"] == principal + ";" + h["x-request-id"], d.last()
        # a third failure empties the bucket (burst 3): then even the remembered key is refused
        assert post(wrong)[0] == 401
        before = d.requests()
        st, h = post(good)
        assert st == 429, st
        assert d.requests() == before
    finally:
        conn.close()


def test_one_connection_grants_per_route_and_index(ctx):
    """The grant a connection's remembered principal had on a route is kept beside the memo: on one
    keep-alive connection, routes and indices alternate between granted and not, and another
    principal on the same connection gets its own grants."""
    keys = Keys()
    d, g = _start(ctx, keys, workers=1)
    reader, app = _apikey("reader", KEYS["reader"]), _apikey("app", KEYS["app"])
    conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)

    def req(method, path, auth):
        conn.request(method, path, body=b"{}" if method == "POST" else None,
                     headers={"Content-Type": "application/json", "Authorization": auth})
        resp = conn.getresponse()
        resp.read()
        return resp.status

    try:
        steps = [("POST", "/movies/_search", reader, 200), ("POST", "/books/_search", reader, 403),
                 ("POST", "/movies/_search", reader, 200), ("POST", "/movies/_count", reader, 403),
                 ("POST", "/movies/_search", reader, 200), ("GET", "/public/books", reader, 403),
                 ("POST", "/books/_count", app, 200), ("GET", "/public/books", app, 200),
                 ("GET", "/public/movies", app, 403), ("POST", "/books/_search", app, 200),
                 ("POST", "/books/_search", reader, 403), ("POST", "/movies/_search", reader, 200)]
        for method, path, auth, want in steps * 2:
            before = d.requests()
            st = req(method, path, auth)
            if want == 200:  # allowed: whatever the upstream answers (esdemo has no _count: 404)
                assert st not in (401, 403, 429) and d.requests() != before, (method, path, auth == reader, st)
            else:
                assert st == want, (method, path, auth == reader, st, want)
                assert d.requests() == before, "a refused request reached the upstream"
    finally:
        conn.close()


def test_http2_streams_share_the_connections_memo(ctx):
    """Over HTTP/2 the streams of one connection share its memo: h2load, 16 streams at once on each
    of 2 connections, the right key every time: all 200; a wrong key of the same length: all 401,
    none upstream."""
    keys = Keys()
    d, g = _start(ctx, keys, workers=1)
    good = _apikey("app", KEYS["app"])
    wrong = _apikey("app", KEYS["app"][:-1] + ("x" if KEYS["app"][-1] != "x" else "y"))
    for auth, want in ((good, "2xx"), (wrong, "4xx")):
        before = d.requests()
        p = subprocess.run(["h2load", "-n", "800", "-c", "2", "-m", "16", "-H", "Authorization: " + auth,
                            "http://127.0.0.1:%d/books/_search" % g.port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        out = p.stdout.decode()
        assert "h2c" in out or "h2" in out, out
        m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        assert m, out
        counts = dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups())))
        assert counts[want] == 800, out
        if want == "4xx":
            assert d.requests() == before, "a refused stream reached the upstream"
