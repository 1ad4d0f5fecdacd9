"""The upstream node pool: round-robin, nodes marked dead (with exponential
backoff) on connection errors, timeouts and 5xx, retries on the other nodes,
and nodes used again once they are back."""

import json
import os
import re
import signal
import time

from harness import Load, free_port, get, json_error, make_config, request, wait_for

BACKOFF = {"node_backoff": "200ms", "node_backoff_max": "1s"}


def _url(d):
    return "http://127.0.0.1:%d" % d.port


def _cluster(ctx, n=3, request_timeout="1s", **upstream):
    ds = [ctx.esdemo("--name", "n%d" % i) for i in range(n)]
    up = dict(BACKOFF)
    up.update(upstream)
    g = ctx.esgate(make_config(nodes=[_url(d) for d in ds], request_timeout=request_timeout,
                               connect_timeout="200ms", upstream=up))
    return ds, g


def _counts(ds):
    return [d.requests() for d in ds]


def _wait_all_used(ds, load, n=20, timeout=3):
    """Waits until every node in DS served N more requests through the load."""
    start = _counts(ds)
    wait_for(lambda: all(c >= s + n for c, s in zip(_counts(ds), start)), timeout,
             "each of %d nodes to serve %d requests (%s)" % (len(ds), n, start))


def _dead_re(d, ms=r"\d+"):
    return r"\[warn\] worker \d+\[\d+\]: upstream node %s marked dead for %s ms \(" % (re.escape(_url(d)), ms)


def _back_re(d):
    return r"\[info\] worker \d+\[\d+\]: upstream node %s is back$" % re.escape(_url(d))


def _check_no_failures(load):
    assert not load.failures, "%d client request(s) failed, first: %s" % (len(load.failures), load.failures[0])


def test_round_robin_spreads_requests_over_all_nodes(ctx):
    ds, g = _cluster(ctx)
    names = set()
    for _ in range(12):
        status, _, body = get(g.port, "/")
        assert status == 200, (status, body)
        names.add(json.loads(body)["name"])
    assert names == {"n0", "n1", "n2"}, names


def test_killed_node_fails_no_request_and_is_used_again_once_back(ctx):
    ds, g = _cluster(ctx)
    victim, others = ds[1], [ds[0], ds[2]]
    port = victim.port
    with Load(g.port, threads=8) as load:
        _wait_all_used(ds, load)
        victim.proc.kill()
        victim.proc.wait(5)
        g.wait_log(_dead_re(victim), timeout=3)
        # While it is dead the others carry the load ...
        _wait_all_used(others, load, n=200)
        # ... until the backoff has doubled up to node_backoff_max (probes kept failing).
        g.wait_log(_dead_re(victim, "1000"), timeout=4)
        assert g.count(_back_re(victim)) == 0, g.log_text()
        # Back on the same port: after the backoff it is used again.
        back = ctx.esdemo("--port", str(port), "--name", "n1")
        assert back.port == port
        g.wait_log(_back_re(victim), timeout=3)
        wait_for(lambda: back.requests() >= 50, 4, "the restarted node to serve 50 requests")
        _wait_all_used(others, load)
    _check_no_failures(load)
    assert load.ok() > 500, load.ok()


def test_stopped_node_is_skipped_and_used_again_after_cont(ctx):
    # A SIGSTOPped node still accepts connections (the kernel does), but never
    # answers: each request to it times out, and is retried elsewhere.
    ds, g = _cluster(ctx, request_timeout="500ms", retry_on_timeout="true")
    victim, others = ds[1], [ds[0], ds[2]]
    with Load(g.port, threads=8) as load:
        _wait_all_used(ds, load)
        before_victim = victim.requests()
        before_others = _counts(others)
        os.kill(victim.proc.pid, signal.SIGSTOP)
        try:
            g.wait_log(_dead_re(victim) + r"timeout;", timeout=3)
            # Stopped long enough for several backoff periods: probes keep timing out.
            g.wait_log(_dead_re(victim, "1000"), timeout=5)
            _wait_all_used(others, load, n=300)
            assert g.count(_back_re(victim)) == 0, g.log_text()
        finally:
            os.kill(victim.proc.pid, signal.SIGCONT)
        # What it got while stopped (in flight at SIGSTOP, plus a probe per
        # backoff) is next to nothing beside the others' share.
        grew_victim = victim.requests() - before_victim
        grew_others = sum(_counts(others)) - sum(before_others)
        assert grew_victim * 10 < grew_others, "the stopped node got %d requests, the others %d" % (
            grew_victim, grew_others)
        after_cont = victim.requests()
        g.wait_log(_back_re(victim), timeout=4)
        wait_for(lambda: victim.requests() >= after_cont + 50, 4, "the continued node to serve 50 requests")
    _check_no_failures(load)


def test_backoff_doubles_up_to_node_backoff_max(ctx):
    nodes = ["http://127.0.0.1:%d" % free_port() for _ in range(2)]
    g = ctx.esgate(make_config(nodes=nodes, workers=1, connect_timeout="200ms", upstream=dict(BACKOFF)),
                   workers=1)
    pat = re.compile(r"upstream node (\S+) marked dead for (\d+) ms \(.*; (\d+) failure\(s\) in a row\)")
    # Each request tries every node (max_retries 3 over 2 nodes): the failures add up.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        json_error(*get(g.port, "/"), 502, "bad_gateway")
        if sum(1 for line in g.log_lines() if pat.search(line)) >= 12:
            break
    seen = {}
    for line in g.log_lines():
        m = pat.search(line)
        if m:
            seen.setdefault(m.group(1), []).append((int(m.group(3)), int(m.group(2))))
    assert set(seen) == set(nodes), seen
    for url, entries in seen.items():
        for n, (failures, delay) in enumerate(entries, 1):
            assert failures == n, (url, entries)
            assert delay == min(200 * 2 ** (n - 1), 1000), "failure %d of %s: dead for %d ms, want %d" % (
                n, url, delay, min(200 * 2 ** (n - 1), 1000))
    assert max(len(e) for e in seen.values()) >= 5, seen


def test_all_nodes_down_is_502_json_at_once(ctx):
    nodes = ["http://127.0.0.1:%d" % free_port() for _ in range(3)]
    g = ctx.esgate(make_config(nodes=nodes, connect_timeout="1s", upstream=dict(BACKOFF)))
    for i in range(5):  # the first time, and with every node already marked dead
        t0 = time.monotonic()
        status, headers, body = get(g.port, "/")
        elapsed = time.monotonic() - t0
        json_error(status, headers, body, 502, "bad_gateway")
        assert elapsed < 1.0, "502 after %.2fs (refused connections are instant)" % elapsed
    assert g.count(r"marked dead for \d+ ms") >= 3, g.log_text()
    assert get(g.port, "/healthz")[0] == 200


def test_slow_node_is_504_after_request_timeout(ctx):
    d = ctx.esdemo("--latency", "2000")
    g = ctx.esgate(make_config(d.port, request_timeout="500ms", upstream=dict(BACKOFF)))
    t0 = time.monotonic()
    status, headers, body = get(g.port, "/")
    elapsed = time.monotonic() - t0
    json_error(status, headers, body, 504, "upstream_timeout")
    assert 0.4 <= elapsed <= 1.5, "504 after %.2fs (request_timeout 500ms)" % elapsed


def test_timeout_is_not_retried_by_default(ctx):
    slow, fast = ctx.esdemo("--latency", "2000", "--name", "slow"), ctx.esdemo("--name", "fast")
    g = ctx.esgate(make_config(nodes=[_url(slow), _url(fast)], workers=1, request_timeout="500ms",
                               upstream=dict(BACKOFF)), workers=1)
    t0 = time.monotonic()
    status, headers, body = get(g.port, "/")  # round-robin starts with the first node
    elapsed = time.monotonic() - t0
    json_error(status, headers, body, 504, "upstream_timeout")
    assert elapsed < 1.5, elapsed
    assert fast.requests() == 0, "a timed-out request was retried without retry_on_timeout"


def test_retry_on_timeout_moves_a_slow_request_to_a_fast_node(ctx):
    slow, fast = ctx.esdemo("--latency", "2000", "--name", "slow"), ctx.esdemo("--name", "fast")
    g = ctx.esgate(make_config(nodes=[_url(slow), _url(fast)], workers=1, request_timeout="500ms",
                               upstream=dict(BACKOFF, retry_on_timeout="true")), workers=1)
    for i in range(6):
        t0 = time.monotonic()
        status, _, body = get(g.port, "/")
        elapsed = time.monotonic() - t0
        assert status == 200, (i, status, body)
        assert json.loads(body)["name"] == "fast", body
        assert elapsed < 1.5, (i, elapsed)
    assert slow.requests() >= 1, "the slow node was never tried"
    g.wait_log(r"upstream %s failed \(.*\); retry 1 on %s$" % (re.escape(_url(slow)), re.escape(_url(fast))),
               timeout=2)
    g.wait_log(_dead_re(slow) + r"timeout;", timeout=2)


def test_node_answering_503_is_retried_on_a_healthy_node(ctx):
    bad, good = ctx.esdemo("--name", "bad"), ctx.esdemo("--name", "good")
    g = ctx.esgate(make_config(nodes=[_url(bad), _url(good)], workers=1, upstream=dict(BACKOFF)), workers=1)
    bad.control(status=503)
    for i in range(10):
        status, headers, body = get(g.port, "/")
        assert status == 200, (i, status, body)
        assert json.loads(body)["name"] == "good", body
    assert bad.requests() >= 1, "the 503 node was never tried"
    g.wait_log(_dead_re(bad) + r"status 503;", timeout=2)
    # Healed: used again after its backoff.
    bad.control(status=0)
    n = bad.requests()
    wait_for(lambda: get(g.port, "/")[0] == 200 and bad.requests() > n, 5, "the healed node to be used again")
    g.wait_log(_back_re(bad), timeout=2)


def test_429_and_other_5xx_also_mark_a_node_dead(ctx):
    bad, good = ctx.esdemo("--name", "bad"), ctx.esdemo("--name", "good")
    g = ctx.esgate(make_config(nodes=[_url(bad), _url(good)], workers=1, upstream=dict(BACKOFF)), workers=1)
    for code in (429, 502, 504):
        bad.control(status=code)
        n = bad.requests()
        wait_for(lambda: get(g.port, "/")[0] == 200 and bad.requests() > n, 5,
                 "a request to the %d node" % code)
        g.wait_log(_dead_re(bad) + r"status %d;" % code, timeout=2)


SEARCH_ROUTES = """\
routes:
  - path: /search/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_search"}
    indices: [books]
  - path: /index/{index}
    methods: [POST]
    upstream: {method: POST, path: "/{index}/_doc"}
    indices: [books]
"""


def _bad_first(ctx, **upstream):
    bad, good = ctx.esdemo("--name", "bad"), ctx.esdemo("--name", "good")
    g = ctx.esgate(make_config(nodes=[_url(bad), _url(good)], workers=1, extra=SEARCH_ROUTES,
                               upstream=dict(BACKOFF, **upstream)), workers=1)
    bad.control(status=503)
    return bad, good, g


def test_search_post_is_retried_with_its_body(ctx):
    bad, good, g = _bad_first(ctx)
    body = b'{"query":{"match":{"title":"dune"}}}'  # compact: the firewall re-serialises bodies
    status, _, data = request(g.port, "POST", "/search/books", body=body, headers={"Content-Type": "application/json"})
    assert status == 200, (status, data)
    assert bad.requests() == 1, "the first attempt did not go to the first node"
    assert bad.last()["body"] == good.last()["body"] == body.decode(), (bad.last(), good.last())
    assert good.last()["path"] == "/books/_search", good.last()


def test_non_search_post_is_not_retried(ctx):
    bad, good, g = _bad_first(ctx)
    status, headers, data = request(g.port, "POST", "/index/books", body=b'{"title": "x"}',
                                    headers={"Content-Type": "application/json"})
    assert bad.requests() == 1, bad.stats()
    assert good.requests() == 0, "a POST to _doc (not idempotent) was retried: %r" % good.stats()
    json_error(status, headers, data, 503, "esdemo_forced_status_exception")


def test_max_retries_0_passes_the_first_answer_through(ctx):
    bad, good, g = _bad_first(ctx, max_retries="0")
    status, headers, data = get(g.port, "/")
    json_error(status, headers, data, 503, "esdemo_forced_status_exception")
    assert good.requests() == 0, good.stats()
