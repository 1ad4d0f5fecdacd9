"""Process isolation: the master has no event loop and no upstream socket;
each worker has its own loop and its own upstream connections."""

import http.client
import threading

from harness import (HTTP_TIMEOUT, TestFailure, eventpoll_fds, socket_inodes, tcp_table, upstream_sockets,
                     wait_for)


def _load(port, total=2000, nconns=32):
    errors = []

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        try:
            for _ in range(n):
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise TestFailure("status %d" % resp.status)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(total // nconns,), daemon=True) for _ in range(nconns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]


def _warm_up(d, g):
    """Sends load until both workers hold upstream connections; returns the worker pids."""
    workers = g.workers()
    assert len(workers) == 2, workers
    for _ in range(5):
        _load(g.port)
        table = tcp_table()
        if all(upstream_sockets(w, d.port, table) for w in workers):
            return workers
    raise TestFailure("after 5 rounds of load, upstream sockets per worker: %s" %
                      {w: upstream_sockets(w, d.port) for w in workers})


def test_master_has_no_upstream_socket_and_no_event_loop(ctx):
    d, g = ctx.start()
    _warm_up(d, g)
    table = tcp_table()
    ups = upstream_sockets(g.pid, d.port, table)
    assert not ups, "master holds upstream sockets: %s" % ups
    assert not eventpoll_fds(g.pid), "master has an epoll fd: %s" % eventpoll_fds(g.pid)
    # Its only TCP sockets are the listeners.
    for ino in socket_inodes(g.pid):
        e = table.get(ino)
        if e is not None:
            assert e[2] == "0A", "master socket %s is not listening (state %s)" % (e, e[2])


def test_each_worker_has_its_own_loop_and_upstream_sockets(ctx):
    d, g = ctx.start()
    w1, w2 = _warm_up(d, g)
    e1, e2 = eventpoll_fds(w1), eventpoll_fds(w2)
    assert e1 and e2, "eventpoll fds: %d -> %s, %d -> %s" % (w1, e1, w2, e2)
    table = tcp_table()
    u1, u2 = upstream_sockets(w1, d.port, table), upstream_sockets(w2, d.port, table)
    assert u1 and u2, (u1, u2)
    assert not (set(u1) & set(u2)), "shared upstream socket inodes: %s" % (set(u1) & set(u2))
    assert not (set(u1.values()) & set(u2.values())), "same local ports: %s" % (set(u1.values()) & set(u2.values()))


def test_esdemo_peers_are_worker_sockets(ctx):
    d, g = ctx.start()
    w1, w2 = _warm_up(d, g)

    def consistent():
        table = tcp_table()
        before = {w: set(upstream_sockets(w, d.port, table).values()) for w in (w1, w2)}
        peers, _ = d.connections()
        table = tcp_table()
        after = {w: set(upstream_sockets(w, d.port, table).values()) for w in (w1, w2)}
        owners = {}
        for p in peers:
            owners[p] = [w for w in (w1, w2) if p in before[w] or p in after[w]]
        if peers and all(len(o) == 1 for o in owners.values()):
            return peers, owners, after
        consistent.last = (peers, owners, before, after)
        return None

    consistent.last = None
    try:
        peers, owners, after = wait_for(consistent, 5, "esdemo peers each owned by one worker", interval=0.2)
    except TestFailure:
        raise TestFailure("esdemo peer ports vs worker upstream ports: %s" % (consistent.last,))
    # Both workers appear among esdemo's peers.
    assert {o[0] for o in owners.values()} == {w1, w2}, owners
    # And the workers hold no upstream connection esdemo does not know
    # (polled: a connection may be closing while we look).

    def no_unknown():
        peers_now, _ = d.connections()
        held = set().union(*(upstream_sockets(w, d.port).values() for w in (w1, w2)))
        no_unknown.last = (held - peers_now, peers_now)
        return not (held - peers_now)

    no_unknown.last = None
    try:
        wait_for(no_unknown, 3, "worker upstream ports all known to esdemo", interval=0.2)
    except TestFailure:
        raise TestFailure("worker upstream ports unknown to esdemo: %s (esdemo peers %s)" % no_unknown.last)
