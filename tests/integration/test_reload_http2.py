"""Twenty HUPs in a row under continuous HTTP/1.1 keep-alive and HTTP/2
load: not one request fails.  HTTP/2 clients get GOAWAY from the draining
workers and carry on over a new connection (curl does, with many
transfers per connection)."""

import signal
import subprocess
import threading

from harness import Load, wait_for


def _h2_client(port, body_len, stop, results):
    """curl fetching 100 URLs per HTTP/2 connection (h2c upgrade: curl 7.88
    does not reuse a prior-knowledge connection), over and over."""
    url = "http://127.0.0.1:%d/" % port
    while not stop.is_set():
        cmd = ["curl", "-s", "--http2", "--max-time", "20",
               "-w", "%{http_code} %{size_download} %{http_version}\n"]
        for _ in range(100):
            cmd += [url, "-o", "/dev/null"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        lines = out.stdout.split("\n")[:-1]
        results.append((out.returncode, lines))


def test_twenty_hups_under_http1_and_http2_load_lose_nothing(ctx):
    d, g = ctx.start(workers=2)
    status, _, body = d.get("/")
    assert status == 200
    stop = threading.Event()
    h2_results = []
    h2 = [threading.Thread(target=_h2_client, args=(g.port, len(body), stop, h2_results), daemon=True)
          for _ in range(2)]
    with Load(g.port, threads=6, expect_body=body) as load:
        for t in h2:
            t.start()
        load.wait_ok(200)
        for gen in range(2, 22):
            g.signal(signal.SIGHUP)
            g.wait_log(r"\[info\] master\[%d\]: generation %d serving; draining \d+ old worker\(s\)$" % (g.pid, gen),
                       timeout=15)
            load.wait_ok(20, timeout=10)
            # and at least one HTTP/2 run of 100 transfers spans each reload
            runs = len(h2_results)
            wait_for(lambda: len(h2_results) >= runs + 2, 20, "HTTP/2 client runs after reload %d" % gen)
        stop.set()
        for t in h2:
            t.join(40)
    assert not load.failures, "%d HTTP/1.1 request(s) failed across 20 reloads, first: %s" % (
        len(load.failures), load.failures[:3])
    transfers = [line for rc, lines in h2_results for line in lines]
    bad = [line for line in transfers if line != "200 %d 2" % len(body)]
    assert transfers, "no HTTP/2 transfer completed"
    assert not bad, "%d of %d HTTP/2 transfers failed, first: %s" % (len(bad), len(transfers), bad[:3])
    assert all(rc == 0 for rc, _ in h2_results), [rc for rc, _ in h2_results]
    assert len(transfers) >= 200, len(transfers)
    # the last generations' old workers drain for at least the GOAWAY delay
    # (250 ms, worker.c) after their HUP: the two new ones, and no other,
    # remain once they are done
    g.wait_workers(2, timeout=10)
