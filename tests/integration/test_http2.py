"""HTTP/2 cleartext: prior knowledge (h2load, nghttp, curl) and Upgrade: h2c (curl)."""

import re
import subprocess

from harness import TestFailure


def _run(args, timeout=60):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def _body(d):
    status, _, body = d.get("/")
    assert status == 200 and body
    return body


def test_h2load_10000_requests(ctx):
    d, g = ctx.start()
    body = _body(d)
    rc, out, err = _run(["h2load", "-n", "10000", "-c", "8", "-m", "16", "http://127.0.0.1:%d/" % g.port])
    text = out.decode("utf-8", "replace")
    assert rc == 0, (rc, text, err)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text)
    assert m, text
    total, started, done, ok, failed, errored, timeout = map(int, m.groups())
    assert (total, done, ok, failed, errored, timeout) == (10000, 10000, 10000, 0, 0, 0), m.group(0)
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    assert m and m.groups() == ("10000", "0", "0", "0"), text
    # h2load must really have spoken h2, not fallen back to HTTP/1.1.
    assert re.search(r"Application protocol: h2c", text), text
    m = re.search(r"traffic: .*\((\d+)\) data", text)
    if m:
        assert int(m.group(1)) == 10000 * len(body), (m.group(0), len(body))


def test_nghttp_10_streams_one_connection(ctx):
    d, g = ctx.start()
    body = _body(d)
    rc, out, err = _run(["nghttp", "-m", "10", "http://127.0.0.1:%d/" % g.port], timeout=30)
    assert rc == 0, (rc, out[:500], err)
    assert out == body * 10, (len(out), len(body), out[:300])


def _curl(args):
    rc, out, err = _run(["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_version} %{http_code}"]
                        + args, timeout=20)
    if rc != 0:
        raise TestFailure("curl %s: exit %d: %s" % (args, rc, err))
    data, _, tail = out.rpartition(b"\n")
    version, code = tail.decode().split()
    return version, int(code), data


def test_curl_h2c_upgrade(ctx):
    d, g = ctx.start()
    body = _body(d)
    version, code, data = _curl(["--http2", "http://127.0.0.1:%d/" % g.port])
    assert code == 200, code
    assert version == "2", "curl --http2 (Upgrade: h2c) ended with HTTP/%s" % version
    assert data == body, data[:300]


def test_curl_h2_prior_knowledge(ctx):
    d, g = ctx.start()
    body = _body(d)
    version, code, data = _curl(["--http2-prior-knowledge", "http://127.0.0.1:%d/" % g.port])
    assert code == 200, code
    assert version == "2", version
    assert data == body, data[:300]
    # Error answers over HTTP/2 are esgate's JSON too.
    version, code, data = _curl(["--http2-prior-knowledge", "http://127.0.0.1:%d/nope" % g.port])
    assert (version, code) == ("2", 404), (version, code, data)
    assert b'"not_found"' in data, data
