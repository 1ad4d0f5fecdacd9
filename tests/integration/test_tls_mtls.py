"""Mutual TLS (issue 15): a listener with tls.client_ca asks for client
certificates; required: none or another CA's is refused at the handshake,
a good one is served and its subject is the connection's principal in the
access log; optional: no certificate is served anonymously; a route whose
auth accepts client_cert takes the subject as "cert:SUBJECT"; nothing of the
certificate goes upstream."""

import json
import os
import subprocess

from harness import free_port, make_config, wait_for
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


def _curl(port, ca, path="/healthz", cert=None, args=()):
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", ca, "--resolve", "localhost:%d:127.0.0.1" % port,
           "-o", "-", "-w", "\n%{http_code} %{http_version}"] + list(args)
    if cert is not None:
        cmd += ["--cert", cert[0], "--key", cert[1]]
    p = subprocess.run(cmd + ["https://localhost:%d%s" % (port, path)], capture_output=True, text=True, timeout=20)
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


def _log_principals(log, skip, n):
    """(path, principal) of the N access log lines after the first SKIP."""
    lines = wait_for(lambda: (lambda ls: ls if len(ls) >= skip + n else None)(_log_lines(log)), 10,
                     "%d access log lines" % (skip + n))
    return [(e["path"], e.get("principal")) for e in lines[skip:skip + n]]


def test_required_refuses_no_certificate_and_another_ca(ctx):
    demo, g, port, ca, client, evil, log = _start(ctx, "required")
    skip = len(_log_lines(log))  # the readiness checks
    code, err = _curl(port, ca)
    assert code is None, "served without a client certificate: %s" % err
    code, err = _curl(port, ca, cert=evil)
    assert code is None, "served with another CA's certificate: %s" % err
    code, body = _curl(port, ca, cert=client)
    assert code == 200, (code, body)
    code, body = _curl(port, ca, "/books/_search", cert=client, args=["--http2", "-d", "{}", "-H",
                                                                      "Content-Type: application/json"])
    assert code == 200, (code, body)
    assert _log_principals(log, skip, 2) == [("/healthz", "cert:" + SUBJECT), ("/books/_search", "cert:" + SUBJECT)]
    # nothing of the certificate upstream: only what esgate always sends
    up = demo.last()
    flat = json.dumps(up).lower()
    assert "begin certificate" not in flat and "x-ssl" not in flat and "x-client-cert" not in flat, up
    assert not any(k.startswith("ssl") or "cert" in k for k in up["headers"]), up["headers"]


def test_optional_serves_anonymous_and_the_route_auth_takes_the_subject(ctx):
    demo, g, port, ca, client, evil, log = _start(ctx, "optional")
    skip = len(_log_lines(log))
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
    got = _log_principals(log, skip, 3)
    assert got[0] == ("/healthz", None), got
    assert got[1][0] == "/books/_search" and got[1][1] in (None, "-"), got
    assert got[2] == ("/books/_search", "cert:" + SUBJECT), got
