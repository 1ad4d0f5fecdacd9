"""A worker gives memory back after a burst: what a thousand clients made it
allocate is resident while they are there, and handed back to the kernel
once they have gone (a second after the last one left), instead of staying
as the high-water mark of every burst the worker ever saw.

Plain builds only: under ASan or valgrind the allocator is theirs, not
glibc's, and RSS says nothing about esgate (the module defines no test)."""

import socket

import promparse
from harness import ASAN, WRAP, get, make_config, wait_for

# run.py runs these alone: they load the machine or measure time and memory
SERIAL = True


CLIENTS = 600
PAD = 60 * 1024  # one header this long: h2o's input buffer grows to hold it


def _anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/%d/status" % pid)


def _read_answer(s):
    """Reads one HTTP/1.1 answer with a Content-Length; returns its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "connection closed before an answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for ln in lines[1:]:
        name, _, value = ln.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed mid-answer"
        body += chunk
    return int(lines[0].split()[1])  # noqa


def _in_flight(port):
    return promparse.value(promparse.parse(get(port, "/metrics")[2].decode()), "esgate_requests_in_flight")


def _burst(ctx):
    """CLIENTS connections each send GET / with a PAD-byte header to an
    upstream that answers after 1 s (esgate queues beyond
    max_connections_per_node, so the last are answered after about 10 s): all are in flight at once (h2o's input
    buffers, request pools, upstream requests), then answered and closed."""
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=1, keepalive_timeout="30s", request_timeout="20s",
                               extra="limits: {max_header_size: 128kb}\n"), workers=1)
    worker = g.workers()[0]
    assert get(g.port, "/")[0] == 200
    base = _anon_kib(worker)
    d.control(latency_ms=1000)
    req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: %s\r\n\r\n" % ("a" * PAD)).encode()
    socks = []
    try:
        for _ in range(CLIENTS):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=20)
            socks.append(s)
            s.sendall(req)
        wait_for(lambda: _in_flight(g.port) >= CLIENTS, 10, "%d requests in flight" % CLIENTS)
        peak = _anon_kib(worker)
        grown = peak - base
        # The burst must really have cost memory, or this proves nothing.
        assert grown >= 16 * 1024, "the burst grew the worker by only %d KiB (from %d)" % (grown, base)
        statuses = [_read_answer(s) for s in socks]
        assert statuses == [200] * CLIENTS, sorted(set(statuses))
    finally:
        for s in socks:
            s.close()
    d.control(latency_ms=0)
    limit = base + grown // 4
    wait_for(lambda: _anon_kib(worker) <= limit, 6,
             "worker RssAnon back to %d KiB or less (base %d, peak %d, now %d)" % (
                 limit, base, peak, _anon_kib(worker)))
    assert g.workers() == [worker]
    assert get(g.port, "/")[0] == 200


if not ASAN and not WRAP:
    def test_memory_given_back_after_a_burst(ctx):
        _burst(ctx)
