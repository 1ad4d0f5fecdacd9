"""TLS session resumption across workers and reloads (issue 15): ticket keys
made by the master in shared memory.  20 connections, held open together so
that they spread over the workers, each resuming with the same ticket, all
resume (TLS 1.3 and TLS 1.2); after a HUP, a ticket from the old generation
still resumes on the new one; with a short ticket_rotation, a ticket made
with the previous key still resumes."""

import signal
import socket
import ssl

from harness import free_port, make_config, wait_for
from test_tls import make_ca, make_cert, tls_listener

N = 20


def _start(ctx, extra="", log_level="info"):
    d = ctx.tmpdir
    ca = make_ca(d)
    a = make_cert(d, "a", ["localhost"])
    port = free_port()
    demo = ctx.esdemo()
    log = "%s/access.log" % d
    g = ctx.esgate(make_config(demo.port, listen="127.0.0.1:0, " + tls_listener(port, a[0], a[1]),
                               extra='access_log: {file: "%s", format: json}\n' % log + extra, log_level=log_level))
    return g, port, ca, log


def _context(ca, version):
    c = ssl.create_default_context(cafile=ca)
    c.minimum_version = c.maximum_version = version
    return c


def _request(s, rid):
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: %s\r\n\r\n" % rid.encode())
    data = b""
    while b'{"status":"ok"}' not in data:
        chunk = s.recv(4096)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data


def _ticket(port, sctx):
    """A session (with its ticket) from one full handshake."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with sctx.wrap_socket(raw, server_hostname="localhost") as s:
            _request(s, "ticket-0")  # TLS 1.3 tickets come after the handshake
            assert not s.session_reused
            sess = s.session
    assert sess is not None and sess.has_ticket, sess
    return sess


def _workers_of(log, prefix, n):
    import json

    def read():
        try:
            with open(log) as f:
                es = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return None
        es = [e for e in es if e.get("request_id", "").startswith(prefix)]
        return es if len(es) >= n else None
    return {e["worker"] for e in wait_for(read, 10, "%d access log lines %s*" % (n, prefix))}


def _resume_all(port, sctx, sess, log, tag):
    """N connections open together, each resuming SESS: how many resumed,
    and the workers that answered them."""
    socks, reused = [], 0
    try:
        for i in range(N):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            s = sctx.wrap_socket(raw, server_hostname="localhost", session=sess)
            socks.append(s)
            _request(s, "%s-%d" % (tag, i))
            reused += s.session_reused
    finally:
        for s in socks:
            s.close()
    return reused, _workers_of(log, tag + "-", N)


def test_twenty_resumptions_on_different_workers_and_after_a_hup(ctx):
    g, port, ca, log = _start(ctx)
    for version, name in ((ssl.TLSVersion.TLSv1_3, "tls13"), (ssl.TLSVersion.TLSv1_2, "tls12")):
        sctx = _context(ca, version)
        sess = _ticket(port, sctx)
        reused, workers = _resume_all(port, sctx, sess, log, name + "-gen1")
        assert reused == N, "%s: %d of %d connections resumed" % (name, reused, N)
        assert len(workers) == 2, "%s: all %d connections went to worker(s) %s" % (name, N, workers)
        # a new generation of workers, new SSL_CTXs: the ticket still resumes
        gen = 2 if name == "tls13" else 3
        g.signal(signal.SIGHUP)
        g.wait_log(r"\[info\] master\[%d\]: generation %d serving; draining \d+ old worker\(s\)$" % (g.pid, gen),
                   timeout=15)
        reused, workers = _resume_all(port, sctx, sess, log, name + "-gen%d" % gen)
        assert reused == N, "%s after a HUP: %d of %d connections resumed" % (name, reused, N)
        assert len(workers) == 2, workers


def test_a_ticket_of_the_previous_key_resumes_after_a_rotation(ctx):
    g, port, ca, log = _start(ctx, extra="tls: {ticket_rotation: 1s}\n", log_level="debug")
    sctx = _context(ca, ssl.TLSVersion.TLSv1_3)
    made = g.count(r"session ticket key \d+ made")
    sess = _ticket(port, sctx)
    g.wait_log(r"session ticket key \d+ made", count=made + 1, timeout=10)
    reused, _ = _resume_all(port, sctx, sess, log, "rotated")
    assert reused == N, "%d of %d connections resumed with the previous key's ticket" % (reused, N)


def test_each_tls13_resumption_gets_a_new_ticket(ctx):
    """A TLS 1.3 client uses a ticket once (RFC 8446 C.4) and keeps the
    session of its last connection: each resumption must bring a new
    ticket, or the next connection has none and makes a full handshake
    (esgate did so until the ticket callback asked OpenSSL to renew:
    a reconnecting client resumed every other time)."""
    g, port, ca, log = _start(ctx)
    sctx = _context(ca, ssl.TLSVersion.TLSv1_3)
    sess = _ticket(port, sctx)
    for i in range(8):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with sctx.wrap_socket(raw, server_hostname="localhost", session=sess) as s:
                _request(s, "chain-%d" % i)  # the new ticket comes after the handshake
                assert s.session_reused, "connection %d of the chain made a full handshake" % i
                new = s.session
        assert new is not None and new.has_ticket, i
        assert new.id != sess.id, "connection %d resumed but got no new ticket" % i
        sess = new


def test_tls13_tickets_go_with_the_first_answer(ctx):
    """TLS 1.3 tickets (after a full handshake, then after each resumption)
    are written with the connection's first answer, not alone right after
    the handshake (lib/tlsticket.h, tlsticket_defer): the first bytes the
    server sends after the client's Finished and request hold the answer.
    Before, OpenSSL's tickets went out at once, a write of their own, and
    the answer (a request to esdemo, an upstream round trip later) in
    another."""
    g, port, ca, log = _start(ctx)
    sctx = _context(ca, ssl.TLSVersion.TLSv1_3)
    sess = None
    for i in range(6):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = sctx.wrap_bio(inc, out, server_hostname="localhost", session=sess)
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(out.read())
                    data = raw.recv(65536)
                    assert data, "closed in the handshake"
                    inc.write(data)
            assert obj.session_reused == (sess is not None), "connection %d: resumed %s" % (i, obj.session_reused)
            obj.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: first-%d\r\n\r\n" % i)
            raw.sendall(out.read())  # the client's Finished and the request
            first = raw.recv(65536)  # the server's first write after them
            inc.write(first)
            got = b""
            try:
                while True:
                    chunk = obj.read(65536)
                    if not chunk:
                        break
                    got += chunk
            except ssl.SSLWantReadError:
                pass
            assert got.startswith(b"HTTP/1.1 200"), \
                "connection %d: the server's first write after the handshake (%d bytes) held no answer: %r" % (
                    i, len(first), got[:80])
            new = obj.session
            assert new is not None and new.has_ticket and (sess is None or new.id != sess.id), \
                "connection %d got no new ticket with its answer" % i
            sess = new
