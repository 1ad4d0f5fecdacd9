"""access_log: one line per request, JSON or nginx-style combined, with the
request id the client sent (or the one esgate made up); rotation with mv
and USR1 under load loses and duplicates no line."""

import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time

import promparse
from harness import (TIME_SCALE, Load, TestFailure, fd_links, get, make_config, request, send_and_read_all,
                     spread_connections, wait_for)

HEX32 = re.compile(r"[0-9a-f]{32}\Z")
JSON_FIELDS = {"time", "client", "method", "path", "protocol", "status", "bytes", "request_id", "worker",
               "upstream", "upstream_time", "request_time", "user_agent"}
COMBINED = re.compile(
    r'(?P<client>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>HTTP/\d(?:\.\d)?)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<ua>[^"]*)" rid=(?P<rid>\S+) worker=(?P<worker>\d+) '
    r'upstream=(?P<upstream>\S+) upstream_time=(?P<upstream_time>\d+\.\d{3}|-) '
    r'request_time=(?P<request_time>\d+\.\d{3})\Z')


def _start(ctx, fmt, workers=2):
    """esdemo + esgate logging requests to TMPDIR/access.log in FMT."""
    # Workers run as nobody (as root) and reopen the file themselves after
    # a rotation: the directory must be searchable for them.
    os.chmod(ctx.tmpdir, 0o755)
    path = os.path.join(ctx.tmpdir, "access.log")
    d = ctx.esdemo()
    # 10 s keep-alive: _send_with_ids holds connections idle while it
    # spreads them over the workers, which takes a while on a busy machine
    g = ctx.esgate(make_config(d.port, workers=workers, keepalive_timeout="10s",
                               extra="access_log: {file: %s, format: %s}\n" % (path, fmt)), workers=workers)
    return d, g, path


def _lines(path):
    """The complete lines of PATH (a line still being written is not one)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode("utf-8").split("\n")[:-1]


def _json_lines(path):
    out = []
    for line in _lines(path):
        try:
            doc = json.loads(line)
        except ValueError:
            raise TestFailure("access log line is not JSON: %r" % line)
        if not isinstance(doc, dict):
            raise TestFailure("access log line is not an object: %r" % line)
        out.append(doc)
    return out


def _check_json_line(doc, upstream_url):
    missing = JSON_FIELDS - set(doc)
    assert not missing, "fields %s missing from %r" % (sorted(missing), doc)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)\Z", doc["time"]), doc
    assert doc["client"] == "127.0.0.1", doc
    assert doc["method"] == "GET" and doc["path"] == "/" and doc["protocol"] == "HTTP/1.1", doc
    assert doc["status"] == 200 and isinstance(doc["bytes"], int) and doc["bytes"] > 0, doc
    assert isinstance(doc["worker"], int) and doc["worker"] >= 1, doc
    assert doc["upstream"] == upstream_url, doc
    for k in ("upstream_time", "request_time"):
        assert isinstance(doc[k], (int, float)) and 0 <= doc[k] < 10, doc
    assert doc["request_time"] >= doc["upstream_time"], doc


def _send_with_ids(g, ids, per_worker=3, ua="esgate-test/1.0"):
    """GET / once per id in IDS (as X-Request-Id) over keep-alive
    connections, PER_WORKER of them accepted by each worker of G; all must
    be 200 and echo the id."""
    conns = [c for cs in spread_connections(g.port, g.workers(), per_worker).values() for c in cs]
    errors = []
    chunks = [ids[i::len(conns)] for i in range(len(conns))]

    def run(conn, chunk):
        try:
            for rid in chunk:
                conn.request("GET", "/", headers={"X-Request-Id": rid, "User-Agent": ua})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200 or resp.getheader("x-request-id") != rid:
                    errors.append((rid, resp.status, resp.getheader("x-request-id")))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            conn.close()

    ts = [threading.Thread(target=run, args=(c, k)) for c, k in zip(conns, chunks)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, "%d request(s) failed: %s" % (len(errors), errors[:5])


def _wait_sentinel(g, path, parse):
    """Sends one /healthz with a known id and waits for its line: every line
    of a request answered before it has been written by then (or is late)."""
    rid = "sentinel-%d" % time.monotonic_ns()
    status, headers, _ = request(g.port, "GET", "/healthz", headers={"X-Request-Id": rid})
    assert status == 200 and headers.get("x-request-id") == rid, (status, headers)
    wait_for(lambda: any(parse(line) == rid for line in _lines(path)), 10, "the access log line of %s" % rid)
    time.sleep(0.2)  # nothing to poll for: the absence of stray lines


def test_json_one_line_per_request_with_its_id(ctx):
    d, g, path = _start(ctx, "json")
    _, _, body = d.get("/")
    n = 200
    ids = ["it-%d-%s" % (i, "x" * (i % 7)) for i in range(n)]
    _send_with_ids(g, ids)
    roots = lambda: [doc for doc in _json_lines(path) if doc.get("path") == "/"]  # noqa: E731
    wait_for(lambda: len(roots()) >= n, 10, "%d access log lines for GET /; have %d" % (n, len(roots())))
    _wait_sentinel(g, path, lambda line: json.loads(line).get("request_id"))
    docs = roots()
    assert len(docs) == n, "%d lines for %d requests" % (len(docs), n)
    got = [doc["request_id"] for doc in docs]
    assert len(set(got)) == n and set(got) == set(ids), sorted(set(got) ^ set(ids))[:10]
    for doc in docs:
        _check_json_line(doc, d.url)
        assert doc["user_agent"] == "esgate-test/1.0", doc
        assert doc["bytes"] == len(body), (doc, len(body))
    assert {doc["worker"] for doc in docs} == {1, 2}, "one worker served everything"
    # Not proxied: no upstream, and its own status and path.
    hz = [doc for doc in _json_lines(path) if doc.get("path") == "/healthz"]
    assert hz and all(doc["upstream"] is None and doc["status"] == 200 for doc in hz), hz[:3]
    status, _, _ = request(g.port, "GET", "/nope?q=1", headers={"X-Request-Id": "missing-1"})
    assert status == 404
    doc = wait_for(lambda: [x for x in _json_lines(path) if x.get("request_id") == "missing-1"], 10,
                   "the 404's line")[0]
    assert doc["status"] == 404 and doc["path"] == "/nope?q=1" and doc["upstream"] is None, doc


def test_invalid_request_id_is_replaced_everywhere(ctx):
    d, g, path = _start(ctx, "json")
    status, headers, _ = request(g.port, "GET", "/", headers={"X-Request-Id": "a b"})
    assert status == 200
    rid = headers.get("x-request-id", "")
    assert HEX32.match(rid), "generated id %r is not 32 hex digits" % rid
    assert d.last()["headers"].get("x-opaque-id") == rid, d.last()["headers"]
    docs = wait_for(lambda: [x for x in _json_lines(path) if x.get("path") == "/"], 10, "the line of GET /")
    assert len(docs) == 1 and docs[0]["request_id"] == rid, (rid, docs)
    assert "a b" not in open(path).read()


def test_combined_format(ctx):
    d, g, path = _start(ctx, "combined")
    _, _, body = d.get("/")
    ids = ["comb-%d" % i for i in range(20)]
    _send_with_ids(g, ids, per_worker=1, ua='ua "quoted" x')
    status, _, _ = request(g.port, "GET", "/nope", headers={"X-Request-Id": "comb-404", "Referer": "http://r/"})
    assert status == 404
    want = set(ids) | {"comb-404"}

    def parsed():
        out = {}
        for line in _lines(path):
            m = COMBINED.match(line)
            if not m:
                raise TestFailure("not a combined line: %r" % line)
            out.setdefault(m.group("rid"), []).append(m)
        return out

    wait_for(lambda: want <= set(parsed()), 10, "combined lines for %d ids" % len(want))
    by_id = parsed()
    for rid in ids:
        assert len(by_id[rid]) == 1, (rid, [m.group(0) for m in by_id[rid]])
        m = by_id[rid][0]
        assert m.group("client") == "127.0.0.1", m.group(0)
        assert (m.group("method"), m.group("path"), m.group("protocol")) == ("GET", "/", "HTTP/1.1"), m.group(0)
        assert m.group("status") == "200" and int(m.group("bytes")) == len(body), (m.group(0), len(body))
        assert m.group("referer") == "-", m.group(0)
        assert m.group("ua") == "ua \\x22quoted\\x22 x", m.group(0)  # quotes escaped, as nginx does
        assert m.group("upstream") == d.url and m.group("upstream_time") != "-", m.group(0)
        assert int(m.group("worker")) in (1, 2), m.group(0)
        assert time.strptime(m.group("time"), "%d/%b/%Y:%H:%M:%S %z")
    m = by_id["comb-404"][0]
    assert m.group("status") == "404" and m.group("path") == "/nope", m.group(0)
    assert m.group("referer") == "http://r/" and m.group("ua") == "-", m.group(0)
    assert m.group("upstream") == "-" and m.group("upstream_time") == "-", m.group(0)


def test_rotation_under_load_loses_and_duplicates_nothing(ctx):
    d, g, path = _start(ctx, "json")
    rotated = path + ".1"
    counter = itertools.count()
    sent = []
    lock = threading.Lock()

    def headers():
        rid = "rot-%d" % next(counter)
        with lock:
            sent.append(rid)
        return {"X-Request-Id": rid}

    with Load(g.port, threads=6, headers=headers) as load:
        load.wait_ok(300)
        os.rename(path, rotated)
        g.signal(signal.SIGUSR1)
        g.wait_log(r"\[info\] master\[%d\]: USR1: log file reopened$" % g.pid)
        # Every worker has reopened: it holds the new file, not the old one.
        workers = g.workers()
        assert len(workers) == 2, workers

        def reopened():
            links = {p: set(fd_links(p).values()) for p in workers}
            return all(path in ls and rotated not in ls for ls in links.values())

        wait_for(reopened, 10, "workers %s to hold %s and not %s" % (workers, path, rotated))
        wait_for(lambda: len(_lines(path)) > 0, 10, "new lines in the new %s" % path)
        load.wait_ok(300)
    assert not load.failures, "%d failed request(s), first: %s" % (len(load.failures), load.failures[:3])
    with lock:
        sent_ids = list(sent)
    assert len(sent_ids) == load.ok(), (len(sent_ids), load.ok())

    def logged():
        return [doc["request_id"] for p in (rotated, path) for doc in _json_lines(p) if doc.get("path") == "/"]

    wait_for(lambda: len(logged()) >= len(sent_ids), 10,
             "%d lines over both files; have %d" % (len(sent_ids), len(logged())))
    _wait_sentinel(g, path, lambda line: json.loads(line).get("request_id"))
    ids = logged()
    dups = sorted({x for x in ids if ids.count(x) > 1}) if len(set(ids)) != len(ids) else []
    assert not dups, "request ids logged twice: %s" % dups[:10]
    missing = sorted(set(sent_ids) - set(ids))
    assert not missing, "%d request(s) not logged, e.g. %s" % (len(missing), missing[:10])
    extra = sorted(set(ids) - set(sent_ids))
    assert not extra, "logged ids never sent: %s" % extra[:10]
    assert len(ids) == len(sent_ids) == load.ok()
    old_n = sum(1 for doc in _json_lines(rotated) if doc.get("path") == "/")
    new_n = sum(1 for doc in _json_lines(path) if doc.get("path") == "/")
    # 300 answered before the rename (a line or two may be written just
    # after the reopen), 300 more after every worker had reopened.
    assert old_n >= 250 and new_n >= 300, (old_n, new_n)
    # Still serving and logging afterwards.
    assert get(g.port, "/")[0] == 200


def test_client_that_leaves_before_its_answer_is_logged_as_499(ctx):
    # nginx's "client closed request": the line must not claim a 200 that
    # was never delivered, and must still name the client.  Over HTTP/2 the
    # reset is seen at once (HTTP/1.1: test_client_gone).
    d, g, path = _start(ctx, "json", workers=1)
    d.control(latency_ms=1000)
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--max-time", "0.3", "-H",
                          "X-Request-Id: gone-early", "http://127.0.0.1:%d/" % g.port], capture_output=True)
    assert out.returncode == 28, out  # curl's "operation timed out": it hung up
    docs = wait_for(lambda: [doc for doc in _json_lines(path) if doc["request_id"] == "gone-early"] or None, 5,
                    "the access log line of the abandoned request")
    assert docs[0]["status"] == 499, docs[0]
    assert docs[0]["client"] == "127.0.0.1", docs[0]
    d.control(latency_ms=0)
    status, headers, _ = get(g.port, "/")
    assert status == 200
    line = wait_for(lambda: [doc for doc in _json_lines(path) if doc["request_id"] == headers["x-request-id"]]
                    or None, 5, "the next request's line")[0]
    assert line["status"] == 200 and line["upstream_time"] is not None
    status, headers, _ = get(g.port, "/healthz")
    line = wait_for(lambda: [doc for doc in _json_lines(path) if doc["request_id"] == headers["x-request-id"]]
                    or None, 5, "the healthz line")[0]
    assert line["upstream"] is None and line["upstream_time"] is None, line


REFUSED = re.compile(
    r'(?P<client>\S+) - - \[[^]]+\] "-" (?P<status>\d{3}) (?P<bytes>\d+) "-" "-" rid=- worker=(?P<worker>\d+) '
    r'upstream=- upstream_time=- request_time=0\.000\Z')


def _refused_heads(port):
    """A head libh2o cannot parse (400) and one over max_header_size (431),
    each on its own connection, each answered and closed; the answers."""
    return [send_and_read_all(port, data) for data in (
        b"GET /x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 4096 + b"\r\n\r\n")]


def test_refused_heads_are_logged_and_counted(ctx):
    """A request head esgate refuses before any request exists (one libh2o
    cannot parse: 400; one over limits.max_header_size: 431) is still an
    answer the operator sees: one access log line with "-" for the request
    it could not read, and esgate_requests_total{route="unmatched"}, as
    every other refusal."""
    os.chmod(ctx.tmpdir, 0o755)
    for fmt in ("combined", "json"):
        path = os.path.join(ctx.tmpdir, "access-%s.log" % fmt)
        d = ctx.esdemo()
        g = ctx.esgate(make_config(d.port, workers=1, keepalive_timeout="10s",
                                   extra="access_log: {file: %s, format: %s}\nlimits: {max_header_size: 1kb}\n"
                                   % (path, fmt)), workers=1)
        answers = _refused_heads(g.port)
        assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 400 Bad Request",
                                                           b"HTTP/1.1 431 Request Header Fields Too Large"], answers
        if fmt == "combined":
            _wait_sentinel(g, path, lambda line: COMBINED.match(line).group("rid") if COMBINED.match(line) else None)
            refused = [line for line in _lines(path) if not COMBINED.match(line)]
            got = [REFUSED.match(line) for line in refused]
            assert len(got) == 2 and all(got), refused
            assert [(m.group("client"), m.group("status"), int(m.group("bytes"))) for m in got] == \
                [("127.0.0.1", "400", len(answers[0])), ("127.0.0.1", "431", len(answers[1]))], refused
        else:
            _wait_sentinel(g, path, lambda line: json.loads(line)["request_id"])
            docs = [doc for doc in _json_lines(path) if doc["method"] is None]
            assert len(docs) == 2, _lines(path)
            for doc, status, answer in zip(docs, (400, 431), answers):
                assert JSON_FIELDS <= set(doc), doc
                assert (doc["client"], doc["status"], doc["bytes"]) == ("127.0.0.1", status, len(answer)), doc
                assert doc["path"] is None and doc["protocol"] is None, doc
                assert doc["request_id"] is None and doc["upstream"] is None, doc
        status, _, body = get(g.port, "/metrics")
        fams = promparse.parse(body.decode())
        assert promparse.value(fams, "esgate_requests_total", route="unmatched", code="4xx") == 2, fmt
        assert d.requests() == 0
        g.stop()


def test_connection_over_max_connections_per_address_is_logged_and_counted(ctx):
    """A connection refused at its accept (its address already has
    max_connections_per_address open) was answered 503 and closed with no
    trace but a summary in the error log; it is an answer the operator must
    see as any other: a line with "-" for the request it never read, and
    esgate_requests_total{route="unmatched",code="5xx"}."""
    os.chmod(ctx.tmpdir, 0o755)
    path = os.path.join(ctx.tmpdir, "access.log")
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=1, keepalive_timeout="10s",
                               extra="access_log: {file: %s, format: combined}\n"
                                     "limits: {max_connections_per_address: 1}\n" % path), workers=1)
    held = http.client.HTTPConnection("127.0.0.1", g.port, timeout=5)
    held.request("GET", "/healthz")
    r = held.getresponse()
    r.read()
    assert r.status == 200
    answer = send_and_read_all(g.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b"too_many_connections" in answer, answer
    held.close()
    wait_for(lambda: request(g.port, "GET", "/healthz")[0] == 200, 5 * TIME_SCALE, "the address under its limit")
    _wait_sentinel(g, path, lambda line: COMBINED.match(line).group("rid") if COMBINED.match(line) else None)
    refused = [REFUSED.match(line) for line in _lines(path) if not COMBINED.match(line)]
    assert [(m.group("client"), m.group("status"), int(m.group("bytes"))) for m in refused if m] == \
        [("127.0.0.1", "503", len(answer))], _lines(path)
    assert all(refused), _lines(path)
    status, _, body = get(g.port, "/metrics")
    fams = promparse.parse(body.decode())
    assert promparse.value(fams, "esgate_requests_total", route="unmatched", code="5xx") == 1
    assert d.requests() == 0
