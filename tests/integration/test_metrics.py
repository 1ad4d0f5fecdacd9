"""/metrics and /_esgate/status: counters shared by every worker that
survive a worker's death and a reload, the Prometheus text format (checked
strictly on every scrape), a listener of their own, and turning them off."""

import http.client
import json
import os
import re
import signal
import threading

import promparse
from harness import (TIME_SCALE, TestFailure, connection_owner, get, make_config, pid_alive, run_cli,
                     spread_connections, wait_for)

ROOT_2XX = {"route": "/", "code": "2xx"}


# ---- the parser itself ----------------------------------------------------------

GOOD = (
    "# HELP a_total Things, with a \\\\ and a\\nnewline.\n"
    "# TYPE a_total counter\n"
    'a_total{route="/x\\"y\\\\z\\n",code="2xx"} 3\n'
    'a_total{route="/",code="2xx",} 1e3\n'
    "# TYPE g gauge\n"
    "g -1.5\n"
    "# TYPE i gauge\n"
    "i NaN\n"
    "# TYPE h histogram\n"
    'h_bucket{le="0.1"} 1\n'
    'h_bucket{le="1"} 3\n'
    'h_bucket{le="+Inf"} 4\n'
    "h_sum 2.5\n"
    "h_count 4\n"
    "# TYPE s summary\n"
    's{quantile="0.5"} 1\n'
    "s_sum 5\n"
    "s_count 2\n"
    "# TYPE u untyped\n"
    "u +Inf 1700000000000\n"
)

BAD = {
    "no TYPE": "x 1\n",
    "TYPE after sample": "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# TYPE x gauge\n",
    "TYPE twice": "# TYPE x gauge\n# TYPE x gauge\nx 1\n",
    "TYPE after its samples": "x 1\n# TYPE x gauge\n",
    "family comes back": "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# HELP x late\n",
    "unknown type": "# TYPE x countr\nx 1\n",
    "HELP twice": "# HELP x a\n# HELP x b\n# TYPE x gauge\nx 1\n",
    "family split": "# TYPE x gauge\nx{a=\"1\"} 1\n# TYPE y gauge\ny 1\nx{a=\"2\"} 1\n",
    "duplicate series": "# TYPE x gauge\nx{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 2\n",
    "bad name": "# TYPE 1x gauge\n1x 1\n",
    "bad name in sample": "# TYPE x gauge\nx-y 1\n",
    "bad escape": "# TYPE x gauge\nx{a=\"\\t\"} 1\n",
    "unterminated label": "# TYPE x gauge\nx{a=\"1} 1\n",
    "unquoted label": "# TYPE x gauge\nx{a=1} 1\n",
    "duplicate label": "# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n",
    "bad value": "# TYPE x gauge\nx 1.2.3\n",
    "inf spelled wrong": "# TYPE x gauge\nx inf\n",
    "no value": "# TYPE x gauge\nx\n",
    "two spaces": "# TYPE x gauge\nx  1\n",
    "trailing junk": "# TYPE x gauge\nx 1 2 3\n",
    "no final newline": "# TYPE x gauge\nx 1",
    "crlf": "# TYPE x gauge\r\nx 1\r\n",
    "negative counter": "# TYPE x_total counter\nx_total -1\n",
    "histogram not cumulative": "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\n"
                                "h_sum 1\nh_count 2\n",
    "histogram without +Inf": "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_sum 1\nh_count 3\n",
    "histogram le not increasing": "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
                                   "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
    "histogram count != +Inf": "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
    "histogram without _count": "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n",
    "histogram bucket without le": "# TYPE h histogram\nh_bucket 2\nh_sum 1\nh_count 2\n",
    "histogram bare sample": "# TYPE h histogram\nh 2\n",
    "bad TYPE line": "# TYPE x\nx 1\n",
}


def test_promparse_accepts_good_and_rejects_bad():
    fams = promparse.parse(GOOD)
    assert list(fams) == ["a_total", "g", "i", "h", "s", "u"], list(fams)
    assert fams["a_total"].help == "Things, with a \\ and a\nnewline."
    assert promparse.value(fams, "a_total", route='/x"y\\z\n', code="2xx") == 3
    assert promparse.value(fams, "a_total", route="/", code="2xx") == 1000
    assert promparse.value(fams, "h_count") == 4
    assert promparse.value(fams, "u") == float("inf")
    assert [t for t in fams] and fams["h"].type == "histogram"
    for what, text in BAD.items():
        try:
            promparse.parse(text)
        except promparse.ParseError:
            continue
        raise TestFailure("promparse accepted %s: %r" % (what, text))


# ---- helpers ---------------------------------------------------------------------------

def scrape(port):
    """GET /metrics on PORT: 200, the 0.0.4 content type, and a text that
    parses strictly; returns the families."""
    status, headers, body = get(port, "/metrics")
    if status != 200:
        raise TestFailure("/metrics answered %d: %r" % (status, body[:300]))
    ctype = headers.get("content-type", "")
    if not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
        raise TestFailure("/metrics content-type %r" % ctype)
    try:
        return promparse.parse(body)
    except promparse.ParseError as e:
        raise TestFailure("/metrics is not valid text format: %s\n%s" % (e, body.decode("utf-8", "replace")))


def val(fams, name, **labels):
    try:
        return promparse.value(fams, name, **labels)
    except KeyError as e:
        raise TestFailure("%s; have %s" % (e, promparse.samples(fams, name)))


def wait_value(port, name, want, timeout=10, **labels):
    """Scrapes until NAME{LABELS} == WANT (a worker counts a request when it
    disposes of it, a moment after the client has its answer); fails at once
    if it goes past WANT.  Returns the last families."""
    last = [None]

    def check():
        fams = scrape(port)
        v = val(fams, name, **labels)
        last[0] = v
        if v > want:
            raise TestFailure("%s%s is %r, more than the %r requests made" % (name, labels, v, want))
        return fams if v == want else None

    try:
        return wait_for(check, timeout, "%s%s == %r" % (name, labels, want))
    except TestFailure as e:
        raise TestFailure("%s (last value %r)" % (e, last[0]))


def send(g, n, path="/", per_worker=3, status=200):
    """N GETs of PATH over keep-alive connections, PER_WORKER of them
    accepted by each worker of G (so that every worker serves some); every
    answer must have STATUS."""
    conns = [c for cs in spread_connections(g.port, g.workers(), per_worker).values() for c in cs]
    errors = []
    per = [n // len(conns) + (1 if i < n % len(conns) else 0) for i in range(len(conns))]

    def run(conn, k):
        try:
            for _ in range(k):
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != status:
                    errors.append(resp.status)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            conn.close()

    ts = [threading.Thread(target=run, args=(c, k)) for c, k in zip(conns, per)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, "%d request(s) failed: %s" % (len(errors), errors[:5])


def requests_sum(fams):
    return sum(v for _, v in promparse.samples(fams, "esgate_requests_total"))


def wait_consistent(port, timeout=10):
    """At a quiet moment the histogram's _count is the sum of requests_total
    over all routes and codes (both are counted for every request)."""
    def check():
        fams = scrape(port)
        total, count = requests_sum(fams), val(fams, "esgate_request_duration_seconds_count")
        return fams if total == count else None

    return wait_for(check, timeout, "histogram _count == sum of esgate_requests_total")


def status_doc(port):
    status, headers, body = get(port, "/_esgate/status")
    assert status == 200, (status, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    return json.loads(body)


def listen_ports(g, n):
    """The ports of the first N 'listening on' lines of the master, in order."""
    ms = g.wait_log(r"\[info\] master\[%d\]: listening on 127\.0\.0\.1:(\d+)$" % g.pid, n)
    return [int(m.group(1)) for m in ms[:n]]


# ---- tests ---------------------------------------------------------------------------------

def test_requests_counted_exactly_across_kill_and_reloads(ctx):
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))  # send() keeps connections idle while it spreads them (a loaded machine: tens of seconds)
    url = d.url
    fams = scrape(g.port)
    assert val(fams, "esgate_requests_total", **ROOT_2XX) == 0
    assert val(fams, "esgate_reloads_total", result="ok") == 0
    assert val(fams, "esgate_reloads_total", result="failed") == 0
    assert val(fams, "esgate_generation") == 1

    n = 300
    send(g, n)
    wait_value(g.port, "esgate_requests_total", n, **ROOT_2XX)
    # Both workers served: the single number is their sum.
    served = {w["pid"]: w["requests"] for w in status_doc(g.port)["workers"]}
    assert len(served) == 2 and all(v > 0 for v in served.values()), "one worker served everything: %s" % served
    fams = wait_consistent(g.port)
    assert val(fams, "esgate_upstream_requests_total", node=url) >= n
    assert val(fams, "esgate_requests_total", route="/metrics", code="2xx") >= 1

    # kill -9 a worker: the counters are in shared memory, not in it.
    old = g.workers()
    victim = old[0]
    os.kill(victim, signal.SIGKILL)
    g.wait_log(r"\[error\] master\[%d\]: worker \d+ \(pid %d\) killed by signal 9" % (g.pid, victim))
    ws = g.wait_workers(2, exclude=[victim])
    new = (set(ws) - set(old)).pop()
    g.wait_log(r"\[info\] worker \d+\[%d\]: generation 1 serving" % new)
    fams = scrape(g.port)
    assert val(fams, "esgate_requests_total", **ROOT_2XX) == n, "count changed by the kill"
    assert val(fams, "esgate_worker_restarts_total", reason="crash") >= 1
    m = 100
    send(g, m)
    wait_value(g.port, "esgate_requests_total", n + m, **ROOT_2XX)

    # A reload keeps them too.
    before = g.workers()
    g.signal(signal.SIGHUP)
    g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
    g.wait_workers(2, timeout=15, exclude=before)
    wait_for(lambda: not any(pid_alive(p) for p in before), 15, "old workers to exit")
    fams = scrape(g.port)
    assert val(fams, "esgate_requests_total", **ROOT_2XX) == n + m, "count changed by the reload"
    assert val(fams, "esgate_reloads_total", result="ok") == 1
    assert val(fams, "esgate_reloads_total", result="failed") == 0
    assert val(fams, "esgate_generation") == 2
    k = 50
    send(g, k)
    wait_value(g.port, "esgate_requests_total", n + m + k, **ROOT_2XX)

    # A broken file: counted as failed, nothing else changes.
    g.write_config(make_config(d.port, workers=0))
    g.signal(signal.SIGHUP)
    g.wait_log(r"reload failed: still running generation 2 with the previous configuration$")
    fams = scrape(g.port)
    assert val(fams, "esgate_reloads_total", result="ok") == 1
    assert val(fams, "esgate_reloads_total", result="failed") == 1
    assert val(fams, "esgate_generation") == 2
    assert val(fams, "esgate_requests_total", **ROOT_2XX) == n + m + k
    wait_for(lambda: val(scrape(g.port), "esgate_workers") == 2, 10, "esgate_workers == 2")
    fams = wait_consistent(g.port)
    assert val(fams, "esgate_upstream_requests_total", node=url) >= n + m + k
    assert val(fams, "esgate_upstream_node_up", node=url) == 1
    assert val(fams, "esgate_requests_in_flight") >= 1  # the scrape itself
    for code in ("1xx", "3xx", "4xx", "5xx"):
        assert val(fams, "esgate_requests_total", route="/", code=code) == 0, code


def conns_to(g, pid, n, timeout=20):
    """N idle keep-alive connections accepted by worker PID (others are
    closed): whichever worker accepts first takes a connection, and a new
    one on a loaded machine may take none of the first hundreds."""
    got = []

    def one_more():
        conn = http.client.HTTPConnection("127.0.0.1", g.port, timeout=30 * TIME_SCALE)
        conn.connect()
        cport = conn.sock.getsockname()[1]
        owner = wait_for(lambda: connection_owner(g.workers(), g.port, cport), 5, "a worker to accept")
        if owner == pid:
            got.append(conn)
        else:
            conn.close()
        return len(got) >= n

    wait_for(one_more, timeout, "%d connections accepted by worker %d" % (n, pid))
    return got


def send_to(g, pid, k=10):
    """K GETs of / on one keep-alive connection that worker PID accepted."""
    (conn,) = conns_to(g, pid, 1)
    for _ in range(k):
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
    conn.close()
    return k


def test_counts_and_gauges_across_ttin_ttou_and_a_kill_mid_request(ctx):
    """Each worker counts in the shard of its scoreboard slot and a scrape
    sums them (doc/DESIGN.md, Metrics): a worker TTOU retires keeps its
    counts, the next one on its slot (TTIN) continues them, and a worker
    killed with requests in flight and connections open leaves no gauge
    behind."""
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE),
                     request_timeout="%ds" % int(20 * TIME_SCALE))
    seen = []

    def total(want):
        fams = wait_value(g.port, "esgate_requests_total", want, **ROOT_2XX)
        seen.append(want)
        return fams

    first = g.workers()
    n = sum(send_to(g, pid) for pid in first)
    total(n)
    g.signal(signal.SIGTTIN)
    three = g.wait_workers(3)
    third = (set(three) - set(first)).pop()
    g.wait_log(r"\[info\] worker 3\[%d\]: generation 1 serving" % third)
    n += sum(send_to(g, pid) for pid in three)
    total(n)
    g.signal(signal.SIGTTOU)
    g.wait_log(r"\[info\] master\[%d\]: worker 3 \(pid %d\) exited$" % (g.pid, third))
    wait_for(lambda: not pid_alive(third), 10, "worker 3 to exit")
    total(n)  # its counts stay
    g.signal(signal.SIGTTIN)
    again = (set(g.wait_workers(3, exclude=[third])) - set(first)).pop()
    g.wait_log(r"\[info\] worker 3\[%d\]: generation 1 serving" % again)
    n += send_to(g, again, 7)
    fams = total(n)
    served = {w["pid"]: w["requests"] for w in status_doc(g.port)["workers"]}
    # (its requests include the scrapes it happened to serve)
    assert served.get(again, 0) >= 7, "the new worker 3 served %s, not 7: %s" % (served.get(again), served)
    assert val(fams, "esgate_request_duration_seconds_count") >= n

    # Requests in flight on a worker that is killed: the gauges lose them.
    wait_for(lambda: val(scrape(g.port), "esgate_connections_open") == 1, 10, "only the scrape's connection open")
    d.control(latency_ms=int(5000 * TIME_SCALE))  # answered after the kill: never
    victim = first[0]
    conns = conns_to(g, victim, 3)
    for c in conns:
        c.request("GET", "/")
    wait_for(lambda: val(scrape(g.port), "esgate_requests_in_flight") >= 4, 10, "3 requests in flight")
    assert val(scrape(g.port), "esgate_connections_open") >= 1 + 3
    os.kill(victim, signal.SIGKILL)
    g.wait_log(r"\[error\] master\[%d\]: worker \d+ \(pid %d\) killed by signal 9" % (g.pid, victim))
    d.control(latency_ms=0)
    for c in conns:
        c.close()
    replacement = (set(g.wait_workers(3, exclude=[victim])) - set(three) - {again}).pop()
    g.wait_log(r"\[info\] worker \d+\[%d\]: generation 1 serving" % replacement)
    wait_for(lambda: val(scrape(g.port), "esgate_requests_in_flight") == 1, 10, "only the scrape in flight")
    wait_for(lambda: val(scrape(g.port), "esgate_connections_open") == 1, 10, "only the scrape's connection open")
    assert val(scrape(g.port), "esgate_requests_total", **ROOT_2XX) == n, "the kill changed a count"
    n += send_to(g, replacement)
    total(n)
    assert seen == sorted(seen), seen


def test_unmatched_path_counts_under_unmatched_4xx(ctx):
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))  # send() keeps connections idle while it spreads them (a loaded machine: tens of seconds)
    fams = scrape(g.port)
    assert val(fams, "esgate_requests_total", route="unmatched", code="4xx") == 0
    send(g, 7, path="/no/such/path", per_worker=1, status=404)
    fams = wait_value(g.port, "esgate_requests_total", 7, route="unmatched", code="4xx")
    assert val(fams, "esgate_requests_total", **ROOT_2XX) == 0
    assert val(fams, "esgate_requests_total", route="unmatched", code="2xx") == 0
    wait_consistent(g.port)


def test_workers_gauge_and_histogram(ctx):
    # send() keeps connections idle while it spreads them (a loaded machine:
    # tens of seconds): neither the keep-alive nor the head timeout (an idle
    # connection that sent nothing is a head not begun) may cut them first
    d, g = ctx.start(workers=3, keepalive_timeout="%ds" % int(60 * TIME_SCALE),
                     extra="limits: {header_timeout: %ds}\n" % int(60 * TIME_SCALE))
    send(g, 30)
    fams = wait_value(g.port, "esgate_requests_total", 30, **ROOT_2XX)
    assert val(fams, "esgate_workers") == 3
    buckets = promparse.samples(fams, "esgate_request_duration_seconds_bucket")
    assert len(buckets) >= 2 and buckets[-1][0]["le"] == "+Inf", buckets
    assert val(fams, "esgate_request_duration_seconds_sum") > 0
    assert val(fams, "esgate_request_duration_seconds_count") >= 30
    assert all(re.match(r"esgate_", name) for name in fams), list(fams)
    for name, typ in (("esgate_requests_total", "counter"), ("esgate_request_duration_seconds", "histogram"),
                      ("esgate_workers", "gauge"), ("esgate_worker_restarts_total", "counter"),
                      ("esgate_reloads_total", "counter"), ("esgate_upstream_requests_total", "counter")):
        assert fams[name].type == typ and fams[name].help, (name, fams[name].type, fams[name].help)


def test_status_json(ctx):
    d, g = ctx.start(workers=2, keepalive_timeout="%ds" % int(60 * TIME_SCALE))  # send() keeps connections idle while it spreads them (a loaded machine: tens of seconds)
    wait_for(lambda: all(w["state"] == "ready" for w in status_doc(g.port)["workers"]), 10,
             "every worker ready in /_esgate/status")
    doc = status_doc(g.port)
    rc, out, _ = run_cli(["-v"])
    version = re.search(r"^esgate (\S+)", out, re.M).group(1)
    assert doc["version"] == version, (doc["version"], version)
    assert doc["config"] == g.config_path, doc
    assert doc["generation"] == 1, doc
    assert isinstance(doc["uptime_seconds"], int) and 0 <= doc["uptime_seconds"] < 60, doc
    ws = doc["workers"]
    assert sorted(w["pid"] for w in ws) == sorted(g.workers()), (ws, g.workers())
    assert sorted(w["id"] for w in ws) == [1, 2], ws
    for w in ws:
        assert set(w) >= {"pid", "id", "generation", "age_seconds", "requests", "state"}, w
        assert w["generation"] == 1 and w["state"] == "ready", w
        assert isinstance(w["age_seconds"], (int, float)) and 0 <= w["age_seconds"] < 60, w
        assert isinstance(w["requests"], int) and w["requests"] >= 0, w
    # After a reload: the new generation's workers only, once the old ones are gone.
    old = g.workers()
    g.signal(signal.SIGHUP)
    g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
    wait_for(lambda: not any(pid_alive(p) for p in old), 15, "old workers to exit")
    doc = status_doc(g.port)
    assert doc["generation"] == 2, doc
    assert sorted(w["pid"] for w in doc["workers"]) == sorted(g.workers()), (doc, g.workers())
    assert all(w["generation"] == 2 and w["state"] == "ready" for w in doc["workers"]), doc


def test_metrics_on_a_listener_of_their_own(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra="metrics: {listen: 127.0.0.1:0}\n"))
    main, mport = listen_ports(g, 2)
    assert main == g.port and mport != main, (main, mport)
    fams = scrape(mport)
    assert "esgate_requests_total" in fams
    assert status_doc(mport)["generation"] == 1
    status, _, body = get(mport, "/")
    assert status == 404, (status, body)
    status, _, body = get(mport, "/healthz")
    assert status == 404, (status, body)
    # Not on the public listener any more.
    for path in ("/metrics", "/_esgate/status"):
        status, _, body = get(g.port, path)
        assert status == 404, (path, status, body)
    assert get(g.port, "/")[0] == 200
    wait_value(mport, "esgate_requests_total", 1, **ROOT_2XX)
    # The four 404s above (two on each listener) were unmatched requests.
    wait_value(mport, "esgate_requests_total", 4, route="unmatched", code="4xx")


def test_metrics_disabled(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra="metrics: {enabled: false}\n"))
    for path in ("/metrics", "/_esgate/status"):
        status, _, body = get(g.port, path)
        assert status == 404, (path, status, body)
    assert get(g.port, "/")[0] == 200
    assert g.count(r"listening on") == 1, g.log_text()


def public_and_loopback(ctx, extra=""):
    """esgate listening on 127.0.0.1:0 (loopback) and *:0 (every address,
    a public listener): (esgate, the public listener's port)."""
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, listen="127.0.0.1:0, '*:0'", extra=extra))
    m = g.wait_log(r"\[info\] master\[%d\]: listening on 0\.0\.0\.0:(\d+)$" % g.pid)
    return g, int(m[0].group(1))


def test_metrics_not_on_a_public_listener_by_default(ctx):
    """/metrics, /_esgate/status and the status page are served on a loopback
    listener but not on one bound to every address (issue 13): the same
    connection from 127.0.0.1 gets them on one port and 404 on the other."""
    g, pub = public_and_loopback(ctx)
    for path in ("/metrics", "/_esgate/status", "/_esgate/"):
        status, _, body = get(pub, path)
        assert status == 404, (path, status, body)
        assert get(g.port, path)[0] == 200, path
    assert get(pub, "/healthz")[0] == 200
    assert get(pub, "/")[0] == 200


def test_metrics_public_true(ctx):
    g, pub = public_and_loopback(ctx, extra="metrics: {public: true}\n")
    for port in (pub, g.port):
        assert "esgate_requests_total" in scrape(port)
        assert status_doc(port)["generation"] == 1


def test_metrics_listener_and_public_true(ctx):
    """metrics.public with a metrics listener: on both, and on every public listener."""
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra="metrics: {listen: 127.0.0.1:0, public: true}\n"))
    main, mport = listen_ports(g, 2)
    for port in (main, mport):
        assert "esgate_requests_total" in scrape(port)
