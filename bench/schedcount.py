#!/usr/bin/python3
"""bench/schedcount.py - how the cached GET / shares the CPUs with its load
generator, counted (issue 21: why esgate's p99 is above nginx's there):

  schedcount.py [-r ROUNDS] [-d SECONDS]

Starts esdemo, a 2-worker esgate with `cluster_info: {cache_ttl: 1s}` (as
bench/costs.py's cache load) and nginx with bench/bench.py's proxy_cache
server (1 s, lock on) in front of the same esdemo; then, taking turns,
`wrk -t2 -c64 --latency` against each, and reads per request:
  - the workers' voluntary and involuntary context switches
    (/proc/PID/status) and their time on a CPU and waiting on a run queue
    (/proc/PID/schedstat), and the same of wrk's threads;
  - for esgate, the requests each of the 64 connections got (ss -ti's
    data_segs_in, one segment a request): min, median and max per worker,
    i.e. whether one connection starves while others are served.
req/s and p99 are wrk's (timings; the rest are counts or kernel
accounting).  Stdlib only; needs wrk, nginx, ss.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench  # noqa: E402 (nginx_proxy)
import costs  # noqa: E402 (Stack, harness)

harness = costs.harness


def switches(pid):
    try:
        t = open("/proc/%d/status" % pid).read()
        s = open("/proc/%d/schedstat" % pid).read().split()
    except OSError:
        return (0, 0, 0, 0)
    return (int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", t, re.M).group(1)),
            int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", t, re.M).group(1)), int(s[0]), int(s[1]))


def delta(before, after):
    return [sum(after[k][i] - before[k][i] for k in after if k in before) for i in range(4)]


def conn_requests(port):
    out = subprocess.run(["ss", "-tinpH", "state", "established", "( sport = :%d )" % port],
                         stdout=subprocess.PIPE).stdout.decode()
    per = {}
    for blk in re.split(r"\n(?=\S)", out.strip()):
        m, d = re.search(r"pid=(\d+)", blk), re.search(r"data_segs_in:(\d+)", blk)
        if m and d:
            per.setdefault(int(m.group(1)), []).append(int(d.group(1)))
    return per


def run(name, port, pids, secs, fairness):
    wb = {p: switches(p) for p in pids}
    w = subprocess.Popen(["wrk", "-t2", "-c64", "-d%ds" % secs, "--latency", "http://127.0.0.1:%d/" % port],
                         stdout=subprocess.PIPE)
    time.sleep(0.3)
    tids = [int(t) for t in os.listdir("/proc/%d/task" % w.pid)]
    gb = {t: switches(t) for t in tids}
    t0 = time.monotonic()
    time.sleep(secs - 0.6)
    ga = {t: switches(t) for t in tids}
    window = time.monotonic() - t0
    per = conn_requests(port) if fairness else {}
    out = w.communicate()[0].decode()
    wa = {p: switches(p) for p in pids}
    n = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    vol, inv, cpu, wait = delta(wb, wa)
    gvol, ginv, gcpu, gwait = delta(gb, ga)
    gn = rps * window
    print("%-12s %7.0f req/s, p99 %-7s| workers per request: voluntary %.4f, involuntary %.4f, on a CPU %.2f us, "
          "waiting %.2f us | wrk: voluntary %.4f, involuntary %.4f, on a CPU %.2f us, waiting %.2f us" %
          (name, rps, p99, vol / n, inv / n, cpu / 1e3 / n, wait / 1e3 / n, gvol / gn, ginv / gn, gcpu / 1e3 / gn,
           gwait / 1e3 / gn))
    for pid, v in sorted(per.items()):
        v.sort()
        print("    worker %d: %d connections, requests each: min %d, median %d, max %d (max/min %.2f)" %
              (pid, len(v), v[0], v[len(v) // 2], v[-1], v[-1] / max(v[0], 1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", "--rounds", type=int, default=2)
    ap.add_argument("-d", "--seconds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="esgate-sched-")
    os.chmod(tmp, 0o777)
    s = costs.Stack("cache", workers=2)
    ng = None
    try:
        ports = [harness.free_port() for _ in range(3)]
        bench.nginx_proxy(tmp, ports[0], ports[1], s.d.port, ports[2])
        ng = subprocess.Popen(["nginx", "-p", tmp, "-c", os.path.join(tmp, "nginx.conf"), "-g", "daemon off;"],
                              stderr=subprocess.DEVNULL)
        bench.wait_http(ports[2], "/", time.time() + 10)
        kids = subprocess.run(["pgrep", "-P", str(ng.pid)], stdout=subprocess.PIPE).stdout.split()
        ngw = [int(p) for p in kids if "worker" in open("/proc/%d/cmdline" % int(p)).read()]
        for port in (ports[2], s.g.port):  # warm-up, not counted
            subprocess.run(["wrk", "-t2", "-c64", "-d1s", "http://127.0.0.1:%d/" % port], stdout=subprocess.DEVNULL)
        for r in range(args.rounds):
            order = [("esgate-cache", s.g.port, s.workers, True), ("nginx-cache", ports[2], ngw, False)]
            for t in (order if r % 2 == 0 else order[::-1]):
                run(t[0], t[1], t[2], args.seconds, t[3])
    finally:
        if ng is not None:
            ng.terminate()
            ng.wait()
        s.stop()


if __name__ == "__main__":
    main()
