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


def test_answer_heads_decode_on_a_long_connection(ctx):
    """worker/h2ohpack.c encodes every answer head: 120 answers on one
    connection (past libh2o's 32-entry table), two kinds of answer taking
    turns, each decoded by nghttp2 to all its fields, every x-request-id
    new, and after the first answers the heads small (the repeated fields
    come from the dynamic table; x-request-id and date never enter it)."""
    d, g = ctx.start()
    base = "http://127.0.0.1:%d" % g.port
    uris = [base + ("/?n=%d" if i % 3 else "/nope?n=%d") % i for i in range(120)]  # nghttp fetches a URI once
    rc, out, err = _run(["nghttp", "-nv"] + uris, timeout=60)
    assert rc == 0, (rc, out[-500:], err)
    text = out.decode("utf-8", "replace")
    fields = {}
    for sid, name, value in re.findall(r"recv \(stream_id=(\d+)\) ([^:\s][^:]*|:status): (.*)", text):
        fields.setdefault(int(sid), []).append((name, value))
    lengths = [(int(sid), int(n)) for n, sid in re.findall(r"recv HEADERS frame <length=(\d+), flags=0x0[45], "
                                                            r"stream_id=(\d+)>", text)]
    assert len(fields) == 120 and len(lengths) == 120, (len(fields), len(lengths), text[-2000:])
    ids = set()
    for sid, fl in fields.items():
        names = [n for n, _ in fl]
        f = dict(fl)
        assert names[:3] == [":status", "server", "date"] and names[-1] == "content-length", fl
        assert f["server"] == "esgate", fl
        assert re.match(r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$", f["date"]), fl
        assert re.match(r"^[0-9a-f]{32}$", f["x-request-id"]), fl
        ids.add(f["x-request-id"])
        if f[":status"] == "200":
            assert f["x-elastic-product"] == "Elasticsearch" and f["content-type"].startswith("application/json"), fl
        else:
            assert f[":status"] == "404" and f["content-type"] == "application/json", fl
    assert len(ids) == 120, len(ids)
    # in the order encoded (answers come in any order): once each kind has
    # been sent, its repeated fields are indexed
    big = [(sid, n) for sid, n in lengths if n > 100]
    assert len(big) <= 2, (big, lengths)
