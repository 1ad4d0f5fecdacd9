"""Mutual TLS (issue 15): a listener with tls.client_ca asks for client
certificates; required: none or another CA's is refused at the handshake,
a good one is served and its subject is the connection's principal in the
access log; optional: no certificate is served anonymously; a route whose
auth accepts client_cert takes the subject as "cert:SUBJECT"; nothing of the
certificate goes upstream."""

import json
import os
import subprocess

from harness import TIME_SCALE, free_port, make_config, wait_for
from test_tls import make_ca, make_cert, tls_listener

SUBJECT = "CN=client,O=Example"

ROUTES = """\
routes:
  - path: /{index}/_search
    methods: [GET, POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
    auth: {required: true, schemes: [client_cert]}
auth:
  grants:
    - principals: ["cert:%s"]
      routes: ["/{index}/_search"]
""" % SUBJECT


def _certs(d):
    ca = make_ca(d)
    server = make_cert(d, "server", ["localhost"])
    client_ca = make_ca(d, "clientca")
    client = make_cert(d, "client", [], ca="clientca", cn="client", client=True)
    make_ca(d, "evilca")
    evil = make_cert(d, "evil", [], ca="evilca", cn="client", client=True)
    return ca, server, client_ca, client, evil


def _start(ctx, verify):
    d = ctx.tmpdir
    ca, server, client_ca, client, evil = _certs(d)
    port = free_port()
    demo = ctx.esdemo()
    log = os.path.join(d, "access.log")
    more = ', client_ca: "%s", client_verify: %s' % (client_ca, verify)
    g = ctx.esgate(make_config(demo.port, listen="127.0.0.1:0, " + tls_listener(port, server[0], server[1], more),
                               extra='access_log: {file: "%s", format: json}\n' % log + ROUTES))
    return demo, g, port, ca, client, evil, log


_ids = iter(range(1, 1000))


def _curl(port, ca, path="/healthz", cert=None, args=()):
    """(status, body), or (None, curl's error); each request carries an
    X-Request-Id "mtls-N", N counting from 1 in this process."""
    cmd = ["curl", "-sS", "--max-time", str(10 * TIME_SCALE), "--cacert", ca, "--resolve", "localhost:%d:127.0.0.1" % port,
           "-H", "X-Request-Id: mtls-%d" % next(_ids), "-o", "-", "-w", "\n%{http_code} %{http_version}"] + list(args)
    if cert is not None:
        cmd += ["--cert", cert[0], "--key", cert[1]]
    p = subprocess.run(cmd + ["https://localhost:%d%s" % (port, path)], capture_output=True, text=True, timeout=30 * TIME_SCALE)
    if p.returncode != 0:
        return None, p.stderr
    body, _, tail = p.stdout.rpartition("\n")
    code, version = tail.split()
    return int(code), body


def _log_lines(log):
    try:
        with open(log) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _log_principals(log, n):
    """(path, principal) of the first N access log lines of this test's
    requests (request ids mtls-*), in the order they were sent."""
    def mine():
        ls = [e for e in _log_lines(log) if e.get("request_id", "").startswith("mtls-")]
        return ls if len(ls) >= n else None
    lines = wait_for(mine, 10, "%d access log lines" % n)
    lines.sort(key=lambda e: int(e["request_id"][5:]))
    return [(e["path"], e.get("principal")) for e in lines[:n]]


def test_required_refuses_no_certificate_and_another_ca(ctx):
    demo, g, port, ca, client, evil, log = _start(ctx, "required")
    code, err = _curl(port, ca)
    assert code is None, "served without a client certificate: %s" % err
    code, err = _curl(port, ca, cert=evil)
    assert code is None, "served with another CA's certificate: %s" % err
    code, body = _curl(port, ca, cert=client)
    assert code == 200, (code, body)
    code, body = _curl(port, ca, "/books/_search", cert=client, args=["--http2", "-d", "{}", "-H",
                                                                      "Content-Type: application/json"])
    assert code == 200, (code, body)
    assert _log_principals(log, 2) == [("/healthz", "cert:" + SUBJECT), ("/books/_search", "cert:" + SUBJECT)]
    # nothing of the certificate upstream: only what esgate always sends
    up = demo.last()
    flat = json.dumps(up).lower()
    assert "begin certificate" not in flat and "x-ssl" not in flat and "x-client-cert" not in flat, up
    assert not any(k.startswith("ssl") or "cert" in k for k in up["headers"]), up["headers"]


def test_optional_serves_anonymous_and_the_route_auth_takes_the_subject(ctx):
    demo, g, port, ca, client, evil, log = _start(ctx, "optional")
    code, body = _curl(port, ca)
    assert code == 200, (code, body)
    # a certificate that does not verify is refused even when optional
    code, err = _curl(port, ca, cert=evil)
    assert code is None, "served with another CA's certificate: %s" % err
    # the route's auth: client_cert is its only scheme
    code, body = _curl(port, ca, "/books/_search", args=["-d", "{}", "-H", "Content-Type: application/json"])
    assert code == 401, (code, body)
    code, body = _curl(port, ca, "/books/_search", cert=client, args=["-d", "{}", "-H",
                                                                      "Content-Type: application/json"])
    assert code == 200, (code, body)
    got = _log_principals(log, 3)
    assert got[0] == ("/healthz", None), got
    assert got[1][0] == "/books/_search" and got[1][1] in (None, "-"), got
    assert got[2] == ("/books/_search", "cert:" + SUBJECT), got
