"""Sniffing: esgate asks the cluster for its HTTP nodes (GET /_nodes/_all/http)
at start or every sniff_interval, adds the ones it did not know (master-only
nodes excepted) and sends them requests."""

import re

from harness import Load, make_config, wait_for


def _added_re(port):
    return r"\[info\] worker \d+\[\d+\]: sniffing: added node http://127\.0\.0\.1:%d$" % port


def test_sniff_on_start_adds_peers_and_uses_them(ctx):
    b = ctx.esdemo("--name", "b")
    a = ctx.esdemo("--name", "a", "--peers", "127.0.0.1:%d" % b.port)
    g = ctx.esgate(make_config(a.port, upstream={"sniff_on_start": "true"}))
    g.wait_log(_added_re(b.port), count=2, timeout=5)  # each worker sniffs for its own pool
    assert "/_nodes/_all/http" in a.stats()["paths"], a.stats()
    assert g.count(r"sniffing: added node http://127\.0\.0\.1:%d$" % a.port) == 0, "a configured node re-added"
    g.wait_log(r"sniffing: 2 node\(s\) in the pool, 1 new$", count=2, timeout=5)
    with Load(g.port, threads=4) as load:
        nb = b.requests()
        wait_for(lambda: b.requests() >= nb + 50, 5, "the sniffed node to serve 50 requests")
        na = a.requests()
        wait_for(lambda: a.requests() >= na + 50, 5, "the configured node to keep serving")
    assert not load.failures, load.failures[:3]


def test_master_only_node_is_not_added(ctx):
    b = ctx.esdemo("--name", "b")
    # The configured node is itself master-only (its _nodes answer says
    # roles ["master"]); it is named "localhost" so that adding its publish
    # address would show as a new node http://127.0.0.1:PORT.
    m = ctx.esdemo("--name", "m", "--master-only", "--peers", "127.0.0.1:%d" % b.port)
    g = ctx.esgate(make_config(nodes=["http://localhost:%d" % m.port], workers=1,
                               upstream={"sniff_on_start": "true"}), workers=1)
    g.wait_log(_added_re(b.port), timeout=5)
    g.wait_log(r"sniffing: 2 node\(s\) in the pool, 1 new$", timeout=5)
    assert g.count(r"sniffing: added node http://127\.0\.0\.1:%d$" % m.port) == 0, g.log_text()
    assert g.count(r"sniffing: added node") == 1, g.log_text()


def test_sniff_interval_picks_up_a_new_peer(ctx):
    a = ctx.esdemo("--name", "a")
    g = ctx.esgate(make_config(a.port, upstream={"sniff_interval": "1s"}))
    g.wait_log(r"sniffing: 1 node\(s\) in the pool, 0 new$", count=2, timeout=5)
    b = ctx.esdemo("--name", "b")
    a.control(peers="127.0.0.1:%d" % b.port)
    g.wait_log(_added_re(b.port), count=2, timeout=5)
    with Load(g.port, threads=4) as load:
        nb = b.requests()
        wait_for(lambda: b.requests() >= nb + 50, 5, "the new peer to serve 50 requests")
    assert not load.failures, load.failures[:3]


def test_sniffing_without_sniff_options_never_asks(ctx):
    b = ctx.esdemo("--name", "b")
    a = ctx.esdemo("--name", "a", "--peers", "127.0.0.1:%d" % b.port)
    g = ctx.esgate(make_config(a.port))
    with Load(g.port, threads=2) as load:
        load.wait_ok(200)
    assert not load.failures, load.failures[:3]
    assert b.requests() == 0, "requests went to a node nobody configured"
    assert not any(re.match(r"/_nodes", p) for p in a.stats()["paths"]), a.stats()
