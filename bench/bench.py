#!/usr/bin/python3
"""esgate benchmark helper (stdlib only), driven by bench/run.sh.

Subcommands:
  freeports N                      N distinct free TCP ports on 127.0.0.1
  listenport PID                   the first TCP port PID listens on (waits)
  fetch URL OUT                    save URL's body to OUT, print its Content-Type
  nginx-upstream PREFIX PORT BODY CTYPE   write PREFIX/nginx.conf: the ES stand-in
  nginx-proxy PREFIX PORT H2PORT UPPORT   write PREFIX/nginx.conf: the contender
  wait-ready PID PORT WORKERS      wait for /healthz and WORKERS children
  run ...                          the interleaved rounds, raw results as JSON
  vs ...                           two esgate binaries, A B / B A, and the ratios B/A
  idle ...                         RSS of esgate's workers with N idle connections
  syscalls ...                     system calls per request (strace -c -f), a short separate run
  growth ...                       the cost-growth table: esgate as connections, answers, routes, bodies grow
  haproxy-conf PREFIX PORT H2PORT UPPORT / nghttpx-args PREFIX PORT UPPORT /
  h2o-conf PREFIX PORT UPPORT / varnish-vcl PREFIX UPPORT
                                   the other peers' configurations (issue 21)
  auth-config DIR                  write DIR/auth.yaml (an API key, an HS256 JWT) and DIR/auth.env
  auth ...                         the cluster info without auth, with an API key, with a JWT
Run `bench.py run -h` for its options.
"""

import argparse
import http.client
import json
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---- /proc --------------------------------------------------------------------

def proc_stat(pid):
    """(ppid, utime+stime ticks) of PID, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _cache_helper(pid):
    """Children that are not workers: nginx's cache manager and loader
    (proxy_cache_path; the loader exits on its own a minute in), and the
    backtrace annotator h2o keeps beside its one serving process."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return cmd.startswith(b"nginx: cache ") or b"annotate-backtrace-symbols" in cmd


def children(ppid):
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[0] == ppid and not _cache_helper(int(name)):
                out.append(int(name))
    return sorted(out)


def workers_of(master):
    """The processes that serve: MASTER's children, or MASTER itself when it
    has none (HAProxy and h2o run their threads in one process)."""
    return children(master) or [master]


def cpu_ticks(pids):
    """Sum of utime+stime of PIDS, or None if one of them is gone."""
    total = 0
    for pid in pids:
        st = proc_stat(pid)
        if st is None:
            return None
        total += st[1]
    return total


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss(pids):
    """Per-process VmRSS, its parts (anonymous, file-backed, shared memory) and
    its peak so far (VmHWM) in KiB."""
    return [{"pid": p, "rss_kib": status_kib(p, "VmRSS"), "anon_kib": status_kib(p, "RssAnon"),
             "file_kib": status_kib(p, "RssFile"), "shmem_kib": status_kib(p, "RssShmem"),
             "hwm_kib": status_kib(p, "VmHWM")} for p in pids]


def system_busy_ticks():
    """Busy and total jiffies of the whole machine (all CPUs)."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]  # idle + iowait
    total = sum(vals[:8])    # guest time is already in user/nice
    return total - idle, total


def listen_ports(pid):
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and cols[9] in inodes:
                        ports.append(int(cols[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


# ---- HTTP ---------------------------------------------------------------------

def http_get(port, path, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def wait_http(port, path, deadline):
    while True:
        try:
            status, _, _ = http_get(port, path)
            if status == 200:
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit("no 200 from 127.0.0.1:%d%s" % (port, path))
        time.sleep(0.05)


# ---- configuration files ------------------------------------------------------

def nginx_common(prefix, workers_conns):
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    temps = "".join("    %s_temp_path %s/tmp/%s;\n" % (k, prefix, k)
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    return ("%s"
            "worker_processes 2;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log warn;\n"
            "events { worker_connections %d; }\n"
            "http {\n"
            "    access_log off;\n"
            "%s") % (user, prefix, prefix, workers_conns, temps)


def nginx_upstream(prefix, port, body_file, ctype):
    with open(body_file, "rb") as f:
        body = f.read().decode("utf-8")
    # Inside '...' nginx gives meaning to $, \ and ' only.
    if any(c in body for c in "$\\'") or "'" in ctype:
        raise SystemExit("body has characters nginx's return would need escaped")
    conf = nginx_common(prefix, 4096) + (
        "    # Both contenders reuse their upstream connections for the whole run.\n"
        "    keepalive_requests 1000000;\n"
        "    server {\n"
        "        listen 127.0.0.1:%d;\n"
        "        location / {\n"
        "            default_type \"%s\";\n"
        "            add_header X-Elastic-Product Elasticsearch always;\n"
        "            return 200 '%s';\n"
        "        }\n"
        "        # answers of other sizes for the cost-growth table (bench.py growth)\n"
        "        location /_bench/ {\n"
        "            alias %s/bench/;\n"
        "            default_type application/json;\n"
        "            add_header X-Elastic-Product Elasticsearch always;\n"
        "        }\n"
        "        # counts the requests the upstream served (the cached scenario)\n"
        "        location = /_stub_status { stub_status; }\n"
        "    }\n"
        "}\n") % (port, ctype, body, prefix)
    os.makedirs(os.path.join(prefix, "bench"), exist_ok=True)
    os.chmod(os.path.join(prefix, "bench"), 0o755)
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)


def nginx_proxy(prefix, port, h2port, upport, cache_port):
    conf = nginx_common(prefix, 1024) + (
        "    # the cached scenario: a 1 s micro-cache with the lock, shared by\n"
        "    # both workers (keys_zone in shared memory, files in the temp dir)\n"
        "    proxy_cache_path %s/cache levels=1 keys_zone=micro:1m max_size=10m;\n" % prefix +
        "    # nginx's default (1000) would close client connections, HTTP/2 ones\n"
        "    # too, every 1000 requests; esgate has no such limit.\n"
        "    keepalive_requests 1000000;\n"
        "    upstream upstream_pool {\n"
        "        server 127.0.0.1:%d;\n"
        "        keepalive 64;\n"
        "        keepalive_requests 1000000;\n"
        "    }\n"
        "    server {\n"
        "        listen 127.0.0.1:%d;\n"
        "        listen 127.0.0.1:%d http2;\n"
        "        location / {\n"
        "            proxy_pass http://upstream_pool;\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Connection \"\";\n"
        "        }\n"
        "    }\n"
        "    server {\n"
        "        listen 127.0.0.1:%d;\n"
        "        location / {\n"
        "            proxy_pass http://upstream_pool;\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Connection \"\";\n"
        "            proxy_cache micro;\n"
        "            proxy_cache_valid 200 1s;\n"
        "            proxy_cache_lock on;\n"
        "        }\n"
        "    }\n"
        "}\n") % (upport, port, h2port, cache_port)
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)


# ---- the other peers (issue 21): each from Debian's package, configured as
# its documentation recommends for a reverse proxy, 2 threads or workers ---------

def haproxy_conf(prefix, port, h2port, upport):
    """HAProxy 2.6: one process, nbthread 2, http-reuse always; HTTP/2
    cleartext on a second port (bind ... proto h2)."""
    conf = ("global\n"
            "    nbthread 2\n"
            "    maxconn 8000\n"
            "    pidfile %s/haproxy.pid\n"
            "defaults\n"
            "    mode http\n"
            "    option http-keep-alive\n"
            "    http-reuse always\n"
            "    timeout connect 5s\n"
            "    timeout client 30s\n"
            "    timeout server 30s\n"
            "    timeout http-keep-alive 10s\n"
            "frontend fe\n"
            "    bind 127.0.0.1:%d\n"
            "    bind 127.0.0.1:%d proto h2\n"
            "    default_backend upstream\n"
            "backend upstream\n"
            "    server es 127.0.0.1:%d\n") % (prefix, port, h2port, upport)
    with open(os.path.join(prefix, "haproxy.cfg"), "w") as f:
        f.write(conf)


def nghttpx_args(prefix, port, upport):
    """nghttpx (nghttp2-proxy): cleartext HTTP/1.1 and h2c on one port, 2
    worker threads, a backend pool as big as the others' (64)."""
    return ["nghttpx", "--conf=/dev/null", "--frontend=127.0.0.1,%d;no-tls" % port,
            "--backend=127.0.0.1,%d;;proto=http/1.1" % upport, "--workers=2",
            "--backend-connections-per-host=64", "--backend-keep-alive-timeout=30s", "--no-via",
            "--errorlog-file=%s/error.log" % prefix, "--pid-file=%s/nghttpx.pid" % prefix]


def h2o_conf(prefix, port, upport):
    """h2o 2.2.5 standalone (package h2o): num-threads 2, proxy.reverse.url;
    cleartext HTTP/1.1 and h2c on one port; no access log."""
    user = "user: nobody\n" if os.geteuid() == 0 else ""
    conf = ("%s"
            "num-threads: 2\n"
            "error-log: %s/error.log\n"
            "listen:\n"
            "  host: 127.0.0.1\n"
            "  port: %d\n"
            "hosts:\n"
            "  default:\n"
            "    paths:\n"
            "      /:\n"
            "        proxy.reverse.url: http://127.0.0.1:%d/\n"
            "        proxy.timeout.keepalive: 30000\n") % (user, prefix, port, upport)
    with open(os.path.join(prefix, "h2o.conf"), "w") as f:
        f.write(conf)


def varnish_vcl(prefix, upport):
    """Varnish 7.1: every answer cached 1 s (-t 1 on the command line), no
    grace, no keep: the micro-cache the other contenders have."""
    vcl = ("vcl 4.1;\n"
           "backend es { .host = \"127.0.0.1\"; .port = \"%d\"; }\n"
           "sub vcl_backend_response { set beresp.ttl = 1s; set beresp.grace = 0s; set beresp.keep = 0s; }\n"
           % upport)
    with open(os.path.join(prefix, "default.vcl"), "w") as f:
        f.write(vcl)


# ---- load generators ----------------------------------------------------------

def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        raise ValueError("bad duration %r" % text)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def run_cmd(argv):
    """Run ARGV; its output and its own CPU time (load generator cost) in seconds."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode("utf-8", "replace")
    proc.stdout.close()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv), proc.returncode, out))
    return out, ru.ru_utime + ru.ru_stime


def wrk(url, conns, secs, close=False, headers=()):
    argv = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % secs, "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    out, gen_cpu = run_cmd(argv)
    res = {"cmd": argv, "gen_cpu_s": gen_cpu}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    res["requests"] = int(m.group(1))
    res["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for pct in ("50", "99"):
        res["p%s_ms" % pct] = to_ms(re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M).group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    res["errors"] = res["non2xx"] + sum(res["socket_errors"].values())
    res["raw"] = out
    return res


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def h2load(url, secs, workdir):
    fd, logfile = tempfile.mkstemp(dir=workdir, suffix=".h2log")
    os.close(fd)
    argv = ["h2load", "-c16", "-m10", "-D", str(secs), "--log-file=" + logfile, url]
    try:
        out, gen_cpu = run_cmd(argv)
        times = []
        statuses = {}
        with open(logfile) as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 3:
                    statuses[cols[1]] = statuses.get(cols[1], 0) + 1
                    times.append(int(cols[2]) / 1000.0)
    finally:
        os.unlink(logfile)
    times.sort()
    res = {"cmd": argv[:5] + ["--log-file=FILE", url], "gen_cpu_s": gen_cpu}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", out)
    res["rps"] = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    total, started, done, ok, failed, errored, timeout = map(int, m.groups())
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    s2, s3, s4, s5 = map(int, m.groups())
    res["requests"] = done
    # As wrk counts them: answers other than 2xx/3xx, and requests that got
    # no answer.  h2load's "failed" is both (errored, and timeout within it,
    # are the ones without an answer).
    res["non2xx"] = s4 + s5
    res["socket_errors"] = {"errored": errored, "timeout": timeout}
    res["errors"] = failed
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out)
    res["time_for_request"] = dict(zip(("min", "max", "mean", "sd"), m.groups()))
    res["p50_ms"] = percentile(times, 50)
    res["p99_ms"] = percentile(times, 99)
    res["logged"] = len(times)
    res["raw"] = out
    return res


# ---- the rounds ---------------------------------------------------------------

LOADS = [
    ("h1-ka-c64", "HTTP/1.1 keep-alive, wrk -t2 -c64"),
    ("h1-ka-c256", "HTTP/1.1 keep-alive, wrk -t2 -c256"),
    ("h1-close-c64", "HTTP/1.1 Connection: close, wrk -t2 -c64"),
    ("h2-c16-m10", "HTTP/2 prior knowledge, h2load -c16 -m10"),
]


class Target:
    def __init__(self, name, master, port, h2port=None, path="/", headers=()):
        self.name = name
        self.master = master
        self.port = port
        self.h2port = h2port or port
        self.path = path
        self.workers = workers_of(master)
        self.headers = headers

    def url(self, h2=False):
        return "http://127.0.0.1:%d%s" % (self.h2port if h2 else self.port, self.path)


def upstream_served(port):
    """Requests the upstream nginx has served so far (stub_status), this query included."""
    _, _, body = http_get(port, "/_stub_status")
    return int(body.decode().split("\n")[2].split()[2])


def measure(target, upstream, load, secs, workdir):
    """One run of LOAD against TARGET: the generator's numbers plus CPU of
    TARGET's workers and of the upstream's, and of the whole machine."""
    notes = []
    workers = workers_of(target.master)
    if workers != target.workers:
        # A worker died (and was replaced) since the last run: a finding, noted.
        log("WARNING: %s's workers changed: %s -> %s" % (target.name, target.workers, workers))
        notes.append("workers replaced before this run: %s -> %s" % (target.workers, workers))
        target.workers = workers
    up_workers = upstream.workers if upstream is not target else []
    c0, u0, (b0, t0) = cpu_ticks(workers), cpu_ticks(up_workers), system_busy_ticks()
    cached = load == "h1-ka-c64-cache"
    if cached:
        s0, w0 = upstream_served(upstream.port), time.monotonic()
    if load in ("h1-ka-c64", "h1-ka-c64-cache"):
        res = wrk(target.url(), 64, secs, headers=target.headers)
    elif load == "h1-ka-c256":
        res = wrk(target.url(), 256, secs)
    elif load == "h1-close-c64":
        res = wrk(target.url(), 64, secs, close=True)
    elif load == "h2-c16-m10":
        res = h2load(target.url(h2=True), secs, workdir)
    else:
        raise ValueError(load)
    c1, u1, (b1, t1) = cpu_ticks(workers), cpu_ticks(up_workers), system_busy_ticks()
    if cached:
        # measured at the upstream: what reached it during the load (minus
        # the stub_status query itself), per second of the load
        s1, w1 = upstream_served(upstream.port), time.monotonic()
        res["upstream_requests"] = s1 - s0 - 1
        res["upstream_rps"] = (s1 - s0 - 1) / (w1 - w0)
        res["cache_workers"] = len(workers)
    if c1 is None or u1 is None:
        log("WARNING: a worker of %s or of the upstream died during %s" % (target.name, load))
        notes.append("a worker died during this run: no CPU figures")
    n = max(res["requests"], 1)
    res["target"] = target.name
    res["load"] = load
    res["notes"] = notes
    res["worker_cpu_s"] = (c1 - c0) / CLK_TCK if c1 is not None else None
    res["cpu_us_per_req"] = res["worker_cpu_s"] * 1e6 / n if c1 is not None else None
    up_s = (u1 - u0) / CLK_TCK if u1 is not None else None
    res["upstream_cpu_us_per_req"] = up_s * 1e6 / n if up_workers and up_s is not None else None
    busy_s = (b1 - b0) / CLK_TCK
    all_cpus_s = (t1 - t0) / CLK_TCK
    res["machine_busy_pct"] = 100.0 * busy_s / max(all_cpus_s, 1e-9)
    # CPU used by processes that are not part of this run (other people's),
    # as a share of all CPUs' time.
    if c1 is not None and up_s is not None:
        ours = res["worker_cpu_s"] + up_s + res["gen_cpu_s"]
        res["foreign_cpu_pct"] = max(0.0, 100.0 * (busy_s - ours) / max(all_cpus_s, 1e-9))
    else:
        res["foreign_cpu_pct"] = None
    if load == "h1-ka-c256":
        res["rss"] = rss(workers_of(target.master))
    log("%-13s %-12s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  err %d  cpu %s us/req  foreign %s%%" % (
        target.name, load, res["rps"], res["p50_ms"], res["p99_ms"], res["errors"],
        "%5.1f" % res["cpu_us_per_req"] if res["cpu_us_per_req"] is not None else "?",
        "%4.1f" % res["foreign_cpu_pct"] if res["foreign_cpu_pct"] is not None else "?"))
    return res


# Which loads each peer takes: the strongest peers of each row (issue 21).
PEER_LOADS = {
    "haproxy": ("h1-ka-c64", "h1-ka-c256", "h1-close-c64", "h2-c16-m10"),
    "nghttpx": ("h2-c16-m10",),
    "h2o": ("h2-c16-m10",),
    "varnish": ("h1-ka-c64-cache",),
}


def parse_peer(text):
    """NAME:MASTER:PORT[:H2PORT] -> Target."""
    parts = text.split(":")
    nums = [int(x) for x in parts[1:]]
    if parts[0] not in PEER_LOADS:
        raise SystemExit("unknown peer %r (have %s)" % (parts[0], ", ".join(sorted(PEER_LOADS))))
    return Target(parts[0], nums[0], nums[1], nums[2] if len(nums) > 2 else None)


def rotate(seq, r):
    """SEQ rotated by R places: who goes first changes every round."""
    r %= max(len(seq), 1)
    return list(seq[r:]) + list(seq[:r])


def parse_target(text):
    parts = [int(x) for x in text.split(":")]
    return parts


def cmd_run(args):
    e = parse_target(args.esgate)
    e1 = parse_target(args.esgate1)
    ng = parse_target(args.nginx)
    up = parse_target(args.upstream)
    upstream = Target("upstream", up[0], up[1])
    esgate = Target("esgate", e[0], e[1])
    esgate1 = Target("esgate-1w", e1[0], e1[1])
    nginx = Target("nginx", ng[0], ng[1], ng[2])
    ec = parse_target(args.esgate_cache)
    esgate_cache = Target("esgate-cache", ec[0], ec[1])
    nginx_cache = Target("nginx-cache", ng[0], ng[3])
    # rate_limit: {redis} set high on a route, against the same route
    # without a limit: one esgate, two routes to the upstream's GET /
    rl_targets = ()
    if args.esgate_rl:
        er = parse_target(args.esgate_rl)
        rl_targets = (Target("esgate-nolimit", er[0], er[1], path="/plain"),
                      Target("esgate-redis", er[0], er[1], path="/limited"))
    peers = [parse_peer(x) for x in args.peer or []]
    for t in [upstream, esgate, esgate1, nginx, esgate_cache, nginx_cache] + list(rl_targets) + peers:
        log("%s: master %d, workers %s, port %d" % (t.name, t.master, t.workers, t.port))
    secs, rounds = args.seconds, args.rounds
    raw = {"seconds": secs, "rounds": rounds, "runs": [], "loadavg_start": open("/proc/loadavg").read().strip(),
           "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    # Warm-up (not recorded): pools filled, pages touched, both protocols.
    # Skipped in short smoke runs.
    if secs >= 3:
        for t in (esgate, esgate1, nginx):
            wrk(t.url(), 64, 1)
            h2load(t.url(h2=True), 1, args.workdir)
        for t in (esgate_cache, nginx_cache) + rl_targets:
            wrk(t.url(), 64, 1)
        for t in peers:
            if any(not l.startswith("h2") for l in PEER_LOADS[t.name]):
                wrk(t.url(), 64, 1)
            if "h2-c16-m10" in PEER_LOADS[t.name]:
                h2load(t.url(h2=True), 1, args.workdir)
        wrk(upstream.url(), 64, 1)
    for r in range(rounds):
        log("round %d/%d" % (r + 1, rounds))
        res = measure(upstream, upstream, "h1-ka-c64", secs, args.workdir)
        res["round"] = r
        raw["runs"].append(res)
        time.sleep(args.pause)
        # esgate first in even rounds, nginx first in odd ones: interleaved,
        # and neither always runs right after the other's heaviest load.
        order = (esgate, nginx) if r % 2 == 0 else (nginx, esgate)
        for load, _ in LOADS:
            # the peers of this row join the two, each round in another order
            for t in rotate(list(order) + [p for p in peers if load in PEER_LOADS[p.name]], r):
                res = measure(t, upstream, load, secs, args.workdir)
                res["round"] = r
                raw["runs"].append(res)
                time.sleep(args.pause)
        res = measure(esgate1, upstream, "h1-ka-c64", secs, args.workdir)
        res["round"] = r
        raw["runs"].append(res)
        time.sleep(args.pause)
        # The cached scenario: each contender's 1 s micro-cache on GET /.
        for t in rotate([esgate_cache, nginx_cache] + [p for p in peers if "h1-ka-c64-cache" in PEER_LOADS[p.name]],
                        r):
            res = measure(t, upstream, "h1-ka-c64-cache", secs, args.workdir)
            res["round"] = r
            raw["runs"].append(res)
            time.sleep(args.pause)
        # The Redis-backed limit: the same route with and without it.
        for t in (rl_targets if r % 2 == 0 else rl_targets[::-1]):
            res = measure(t, upstream, "h1-ka-c64", secs, args.workdir)
            res["round"] = r
            if t.name == "esgate-redis":
                for k in ("round_trips", "errors", "fallback"):
                    res["redis_" + k] = metric(t.port, "esgate_ratelimit_redis_%s_total" % k)
                res["refused"] = res["non2xx"]
            raw["runs"].append(res)
            time.sleep(args.pause)
    raw["loadavg_end"] = open("/proc/loadavg").read().strip()
    for res in raw["runs"]:
        res.pop("raw", None)
    with open(args.out, "w") as f:
        json.dump(raw, f, indent=1)


# ---- two esgates -------------------------------------------------------------------

def ratio_summary(vals):
    vals = sorted(vals)
    return "%.3f (%.3f-%.3f)" % (statistics.median(vals), vals[0], vals[-1])


def cmd_vs(args):
    """A and B (two builds of esgate, same configuration) in interleaved
    rounds: A then B in even rounds, B then A in odd ones, so that neither
    always runs first; the ratios are B/A within each round."""
    a = parse_target(args.a)
    b = parse_target(args.b)
    up = parse_target(args.upstream)
    ta, tb = Target(args.a_name, a[0], a[1]), Target(args.b_name, b[0], b[1])
    upstream = Target("upstream", up[0], up[1])
    loads = args.loads.split(",")
    for t in (ta, tb, upstream):
        log("%s: master %d, workers %s, port %d" % (t.name, t.master, t.workers, t.port))
    if args.seconds >= 3:
        for t in (ta, tb):
            wrk(t.url(), 64, 1)
            h2load(t.url(h2=True), 1, args.workdir)
    runs = []
    for r in range(args.rounds):
        log("round %d/%d" % (r + 1, args.rounds))
        for load in loads:
            if args.together:
                # both at once, each with its own load generator: the
                # machine's noise falls on both alike
                out = {}
                ths = [threading.Thread(target=lambda t=t: out.__setitem__(t.name, measure(
                    t, upstream, load, args.seconds, args.workdir))) for t in (ta, tb)]
                for th in ths:
                    th.start()
                for th in ths:
                    th.join()
                got = [out[ta.name], out[tb.name]]
            else:
                got = []
                for t in ((ta, tb) if r % 2 == 0 else (tb, ta)):
                    got.append(measure(t, upstream, load, args.seconds, args.workdir))
                    time.sleep(args.pause)
            for res in got:
                res["round"] = r
                res.pop("raw", None)
                runs.append(res)
            if args.together:
                time.sleep(args.pause)
    out = ["| load | %s req/s | %s req/s | req/s %s/%s | %s CPU us/req | %s CPU us/req | CPU/req %s/%s |" % (
        ta.name, tb.name, tb.name, ta.name, ta.name, tb.name, tb.name, ta.name), "|---|---|---|---|---|---|---|"]
    for load in loads:
        rps, cpu, ra, rb, ca, cb = [], [], [], [], [], []
        for r in range(args.rounds):
            x = [e for e in runs if e["round"] == r and e["load"] == load and e["target"] == ta.name][0]
            y = [e for e in runs if e["round"] == r and e["load"] == load and e["target"] == tb.name][0]
            ra.append(x["rps"])
            rb.append(y["rps"])
            rps.append(y["rps"] / x["rps"])
            if x["cpu_us_per_req"] and y["cpu_us_per_req"]:
                ca.append(x["cpu_us_per_req"])
                cb.append(y["cpu_us_per_req"])
                cpu.append(y["cpu_us_per_req"] / x["cpu_us_per_req"])
        out.append("| %s | %.0f | %.0f | %s | %.2f | %.2f | %s |" % (
            load, statistics.median(ra), statistics.median(rb), ratio_summary(rps),
            statistics.median(ca) if ca else float("nan"), statistics.median(cb) if cb else float("nan"),
            ratio_summary(cpu) if cpu else "?"))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"a": ta.name, "b": tb.name, "rounds": args.rounds, "seconds": args.seconds,
                       "runs": runs, "summary": text}, f, indent=1)


# ---- client authentication ------------------------------------------------------

def _b64u(b):
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def auth_config(d):
    """DIR/auth.yaml: an API key and an HS256 JWT policy, three routes to
    the cluster info (none, api_key, jwt); DIR/auth.env: the two
    Authorization values.  HS256 because this script uses the standard
    library alone; the worker's cache of verified tokens skips the
    signature after a token's first request whatever its algorithm."""
    import base64
    import hashlib
    import hmac
    import secrets
    key = secrets.token_urlsafe(32)
    secret = secrets.token_urlsafe(48)
    head = _b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64u(json.dumps({"sub": "bench", "aud": "esgate-bench", "exp": int(time.time()) + 86400}).encode())
    sig = _b64u(hmac.new(secret.encode(), (head + "." + claims).encode(), hashlib.sha256).digest())
    with open(os.path.join(d, "auth.yaml"), "w") as f:
        f.write("auth:\n"
                "  api_keys:\n"
                "    - {id: bench, hash: \"sha256:%s\"}\n"
                "  jwt: {hs256_secret: \"%s\", audience: [esgate-bench]}\n"
                "  grants:\n"
                "    - principals: [\"key:bench\", \"jwt:bench\"]\n"
                "routes:\n"
                "  - {path: /info, methods: [GET], upstream: {method: GET, path: /}}\n"
                "  - {path: /info-key, methods: [GET], upstream: {method: GET, path: /}, auth: {schemes: [api_key]}}\n"
                "  - {path: /info-jwt, methods: [GET], upstream: {method: GET, path: /}, auth: {schemes: [jwt]}}\n"
                % (hashlib.sha256(key.encode()).hexdigest(), secret))
    with open(os.path.join(d, "auth.env"), "w") as f:
        f.write("APIKEY='ApiKey %s'\n" % base64.b64encode(("bench:" + key).encode()).decode())
        f.write("BEARER='Bearer %s.%s.%s'\n" % (head, claims, sig))


def cmd_auth(args):
    """The same route to the cluster info without auth, with an API key and
    with a JWT, on one esgate, in interleaved rounds (the order turns each
    round); ratios to the route without auth within each round."""
    m, port = parse_target(args.esgate)
    up = parse_target(args.upstream)
    upstream = Target("upstream", up[0], up[1])
    rows = [Target("no auth", m, port, path="/info"),
            Target("API key", m, port, path="/info-key", headers=("Authorization: " + args.apikey,)),
            Target("JWT", m, port, path="/info-jwt", headers=("Authorization: " + args.bearer,))]
    status, _, _ = http_get(port, "/info")
    if status != 200:
        raise SystemExit("/info answered %s" % status)
    if args.seconds >= 3:
        for t in rows:
            wrk(t.url(), 64, 1, headers=t.headers)
    runs = []
    for r in range(args.rounds):
        log("auth round %d/%d" % (r + 1, args.rounds))
        order = rows[r % 3:] + rows[:r % 3]
        for t in order:
            res = measure(t, upstream, "h1-ka-c64", args.seconds, args.workdir)
            if res["errors"]:
                raise SystemExit("%s: %d errors (non-2xx or socket): is the key or token refused?" % (
                    t.name, res["errors"]))
            res["round"] = r
            res.pop("raw", None)
            runs.append(res)
            time.sleep(args.pause)
    out = ["| route (GET cluster info, wrk -t2 -c64, keep-alive) | req/s | req/s / no auth | CPU us/req |",
           "|---|---|---|---|"]
    for t in rows:
        mine = [e for e in runs if e["target"] == t.name]
        ratios = []
        for r in range(args.rounds):
            base = [e for e in runs if e["round"] == r and e["target"] == "no auth"][0]
            ratios.append([e for e in mine if e["round"] == r][0]["rps"] / base["rps"])
        cpu = [e["cpu_us_per_req"] for e in mine if e["cpu_us_per_req"]]
        out.append("| %s | %.0f | %s | %s |" % (
            t.name, statistics.median([e["rps"] for e in mine]),
            "1" if t.name == "no auth" else ratio_summary(ratios),
            "%.2f" % statistics.median(cpu) if cpu else "?"))
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rounds": args.rounds, "seconds": args.seconds, "runs": runs, "summary": text}, f, indent=1)


# ---- idle connections -----------------------------------------------------------

def metric(port, name):
    _, _, body = http_get(port, "/metrics")
    m = re.search(r"^%s (\d+)" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


def open_idle(port, n, in_flight=256):
    """N connections to PORT, each having sent GET /healthz and read the whole
    answer, then left idle.  Returns the sockets."""
    req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sel = selectors.DefaultSelector()
    done, failed, pending, started = [], 0, 0, 0
    bufs = {}
    deadline = time.time() + 120
    while len(done) + failed < n:
        while pending < in_flight and started < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_WRITE, "connecting")
            pending += 1
            started += 1
        if time.time() > deadline:
            raise RuntimeError("idle connections: only %d of %d opened" % (len(done), n))
        for key, _ in sel.select(1.0):
            s = key.fileobj
            if key.data == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    sel.unregister(s)
                    s.close()
                    failed += 1
                    pending -= 1
                    continue
                s.send(req)
                bufs[s] = b""
                sel.modify(s, selectors.EVENT_READ, "reading")
            else:
                try:
                    chunk = s.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(s)
                    s.close()
                    bufs.pop(s, None)
                    failed += 1
                    pending -= 1
                    continue
                buf = bufs[s] + chunk
                bufs[s] = buf
                head, sep, body = buf.partition(b"\r\n\r\n")
                if sep:
                    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                    if m and len(body) >= int(m.group(1)):
                        sel.unregister(s)
                        del bufs[s]
                        done.append(s)
                        pending -= 1
    sel.close()
    return done, failed


def cmd_idle(args):
    workers = children(args.pid)
    # A few requests first, through the upstream too, so "before" is a worker
    # that has served, not one that has only started.
    for _ in range(50):
        http_get(args.port, "/")
    time.sleep(0.5)
    before = rss(workers)
    t0 = time.time()
    socks, failed = open_idle(args.port, args.n)
    open_s = time.time() - t0
    time.sleep(2.0)
    during = rss(workers)
    gauge = metric(args.port, "esgate_connections_open")
    # Still open?  A closed one would be readable (EOF).
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(0))
    sel.close()
    for s in socks:
        s.close()
    time.sleep(2.0)
    after = rss(workers)
    res = {"n": args.n, "opened": len(socks), "failed": failed, "open_seconds": open_s,
           "closed_by_server_while_idle": closed, "gauge_connections_open": gauge,
           "before": before, "during": during, "after_close": after,
           "nofile_limit": __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)[0]}
    log("idle: %d open (%d failed) in %.1fs, gauge %s; RSS KiB before %s, with %s, after close %s" % (
        len(socks), failed, open_s, gauge, [x["rss_kib"] for x in before], [x["rss_kib"] for x in during],
        [x["rss_kib"] for x in after]))
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)


# ---- system calls per request (a short, separate run under strace) -------------

def strace_attached(pids, tracer):
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                if not re.search(r"^TracerPid:\s*%d$" % tracer, f.read(), re.M):
                    return False
        except FileNotFoundError:
            return False
    return True


def cmd_syscalls(args):
    """strace -c -f on every thread of TARGET's workers during a short load:
    system calls per completed request, in total and by call.  Not during a
    timed run: strace slows the traced process several times over."""
    results = []
    for spec in args.target:
        name, rest = spec.split("=", 1)
        nums = [int(x) for x in rest.split(":")]
        t = Target(name, nums[0], nums[1], nums[2] if len(nums) > 2 else None)
        for load in args.loads.split(","):
            out = os.path.join(args.workdir, "strace-%s-%s.txt" % (name, load))
            cmd = ["strace", "-f", "-c", "-o", out]
            tids = []
            for w in t.workers:
                tids += [int(x) for x in os.listdir("/proc/%d/task" % w)]
            for tid in tids:
                cmd += ["-p", str(tid)]
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while not strace_attached(t.workers, proc.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            try:
                if load.startswith("h2"):
                    res = h2load(t.url(h2=True), args.seconds, args.workdir)
                else:
                    res = wrk(t.url(), 256 if "c256" in load else 64, args.seconds, close="close" in load)
            finally:
                proc.send_signal(2)
                proc.wait(30)
            calls, total = {}, 0
            with open(out) as f:
                for line in f:
                    cols = line.split()
                    if len(cols) >= 5 and re.match(r"^[\d.]+$", cols[0]):
                        if cols[-1] == "total":
                            total = int(cols[3])
                        else:
                            calls[cols[-1]] = int(cols[3])
            n = max(res["requests"], 1)
            row = {"target": name, "load": load, "requests": res["requests"], "syscalls_per_req": total / n,
                   "by_call": {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}}
            log("%-13s %-16s %6.2f system calls per request (%d requests)" % (name, load, total / n, n))
            results.append(row)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


# ---- the cost-growth table: esgate alone, one input growing at a time ---------

class Esgate:
    """An esgate started for one growth point; stop() ends it."""

    def __init__(self, binary, workdir, name, upport, workers=2, keepalive="10s", extra="", depth=""):
        self.conf = os.path.join(workdir, name + ".yaml")
        with open(self.conf, "w") as f:
            # limits.max_connections: the growth table holds 10,000 idle
            # connections on two workers, past the default 4,096 a worker
            f.write("listen: [127.0.0.1:0]\nworkers: %d\nkeepalive_timeout: %s\nlog: {level: warn}\n"
                    "limits: {max_connections: 32768}\n"
                    "upstream:\n  nodes: [http://127.0.0.1:%d]\n%s%s%s" % (
                        workers, keepalive, upport, "  pipeline_depth: %s\n" % depth if depth else "",
                        "user: nobody\n" if os.geteuid() == 0 else "", extra))
        self.log = open(os.path.join(workdir, name + ".log"), "wb")
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        self.port = None
        while self.port is None:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("esgate %s did not start: see %s" % (name, self.log.name))
            ports = listen_ports(self.proc.pid)
            self.port = ports[0] if ports else None
            time.sleep(0.05)
        wait_http(self.port, "/healthz", deadline)
        while len(children(self.proc.pid)) != workers:
            if time.time() > deadline:
                raise RuntimeError("esgate %s: workers did not start" % name)
            time.sleep(0.05)
        self.target = Target(name, self.proc.pid, self.port)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def grow_load(target, path, secs, workdir, conns=64, body=None):
    """h2load --h1 for SECS on PATH (POST of BODY's file if given): req/s,
    p99 and CPU µs/request of TARGET's workers."""
    workers = workers_of(target.master)
    fd, logfile = tempfile.mkstemp(dir=workdir, suffix=".h2log")
    os.close(fd)
    argv = ["h2load", "--h1", "-c%d" % conns, "-D", str(secs), "--log-file=" + logfile]
    if body is not None:
        argv += ["-d", body, "-H", "content-type: application/json"]
    argv.append("http://127.0.0.1:%d%s" % (target.port, path))
    c0 = cpu_ticks(workers)
    try:
        out, gen_cpu = run_cmd(argv)
        times = []
        with open(logfile) as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 3:
                    times.append(int(cols[2]) / 1000.0)
    finally:
        os.unlink(logfile)
    c1 = cpu_ticks(workers)
    times.sort()
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    done, ok = int(m.group(3)), int(m.group(4))
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    res = {"cmd": argv, "requests": done, "ok": ok, "non2xx": int(m.group(3)) + int(m.group(4)), "rps": rps,
           "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99),
           "cpu_us_per_req": (c1 - c0) / CLK_TCK * 1e6 / max(done, 1) if c1 is not None else None}
    log("growth %-30s %8.0f req/s  p99 %7.2f ms  cpu %s us/req  non-2xx %d" % (
        path if body is None else "POST %s (%d B)" % (path, os.path.getsize(body)), rps, res["p99_ms"],
        "%.1f" % res["cpu_us_per_req"] if res["cpu_us_per_req"] is not None else "?", res["non2xx"]))
    return res


def json_of_size(n, key="title"):
    """A search body of about N bytes: one match query whose text fills it."""
    head, tail = '{"query":{"match":{"%s":"' % key, '"}}}'
    return head + "x" * max(1, n - len(head) - len(tail)) + tail


def cmd_growth(args):
    """CPU µs/request and p99 of esgate (2 workers) as one input grows:
    connections (64, 256, 1,024; and 10,000 open of which 64 busy), answer
    size, the number of routes, and search bodies through the firewall."""
    out = {"seconds": args.seconds, "points": []}
    secs = args.seconds

    def point(dim, x, res, **extra):
        res.update(extra)
        res.update({"dimension": dim, "x": x})
        out["points"].append(res)

    # answers of other sizes, served by the upstream nginx (its /_bench/)
    bench_dir = os.path.join(args.upstream_root, "bench")
    os.makedirs(bench_dir, exist_ok=True)
    for name, size in (("16k", 16 * 1024), ("1m", 1024 * 1024)):
        with open(os.path.join(bench_dir, name), "w") as f:
            f.write('{"data":"' + "x" * (size - 11) + '"}')
        os.chmod(os.path.join(bench_dir, name), 0o644)
    routes_extra = ("routes:\n"
                    "  - path: /size/{id}\n"
                    "    methods: [GET]\n"
                    "    upstream: {method: GET, path: \"/_bench/{id}\"}\n"
                    "  - path: /search/{index}\n"
                    "    methods: [POST]\n"
                    "    indices: [books]\n"
                    "    max_body: 2mb\n"
                    "    policy: {max_bytes: 2mb}\n"
                    "    upstream: {method: POST, path: \"/{index}/_search\"}\n")
    e = Esgate(args.esgate, args.workdir, "growth", args.upstream, keepalive="300s", extra=routes_extra,
               depth=args.pipeline_depth)
    try:
        for conns in (64, 256, 1024):
            point("connections", conns, grow_load(e.target, "/", secs, args.workdir, conns=conns))
        if args.idle:
            socks, failed = open_idle(e.port, args.idle)
            try:
                point("connections", "%d (%d idle)" % (len(socks) + 64, len(socks)),
                      grow_load(e.target, "/", secs, args.workdir, conns=64), idle_failed=failed)
            finally:
                for c in socks:
                    c.close()
        for label, path in (("432 B", "/"), ("16 KiB", "/size/16k"), ("1 MiB", "/size/1m")):
            point("answer size", label, grow_load(e.target, path, secs, args.workdir, conns=16))
        for label, size in (("100 B", 100), ("10 KiB", 10 * 1024), ("1 MiB", 1024 * 1024)):
            body = os.path.join(args.workdir, "body-%d.json" % size)
            with open(body, "w") as f:
                f.write(json_of_size(size))
            res = grow_load(e.target, "/search/books", secs, args.workdir, conns=16, body=body)
            res["kib_per_req"] = size / 1024.0
            if res["cpu_us_per_req"] is not None:
                res["cpu_us_per_kib"] = res["cpu_us_per_req"] / res["kib_per_req"]
            point("firewall body", label, res)
    finally:
        e.stop()
    # route tables of 1, 100 and 10,000 templates; the request takes the last
    for n in (1, 100, 10000):
        extra = "routes:\n" + "".join(
            "  - path: /r%d/{index}\n    methods: [GET]\n    indices: [books]\n"
            "    upstream: {method: GET, path: \"/{index}\"}\n" % i for i in range(n))
        e = Esgate(args.esgate, args.workdir, "growth-routes-%d" % n, args.upstream, extra=extra,
                   depth=args.pipeline_depth)
        try:
            point("routes", n, grow_load(e.target, "/r%d/books" % (n - 1), secs, args.workdir))
        finally:
            e.stop()
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


# ---- main ---------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("freeports")
    p.add_argument("n", type=int)
    p = sub.add_parser("listenport")
    p.add_argument("pid", type=int)
    p = sub.add_parser("fetch")
    p.add_argument("url")
    p.add_argument("out")
    p = sub.add_parser("nginx-upstream")
    p.add_argument("prefix")
    p.add_argument("port", type=int)
    p.add_argument("body")
    p.add_argument("ctype")
    p = sub.add_parser("nginx-proxy")
    p.add_argument("prefix")
    p.add_argument("port", type=int)
    p.add_argument("h2port", type=int)
    p.add_argument("upport", type=int)
    p.add_argument("cacheport", type=int)
    for name in ("haproxy-conf", "nghttpx-args", "h2o-conf", "varnish-vcl"):
        p = sub.add_parser(name)
        p.add_argument("prefix")
        if name != "varnish-vcl":
            p.add_argument("port", type=int)
        if name == "haproxy-conf":
            p.add_argument("h2port", type=int)
        p.add_argument("upport", type=int)
    p = sub.add_parser("wait-ready")
    p.add_argument("pid", type=int)
    p.add_argument("port", type=int)
    p.add_argument("workers", type=int)
    p.add_argument("--path", default="/healthz")
    p = sub.add_parser("run")
    p.add_argument("--esgate", required=True, help="MASTER:PORT (2 workers)")
    p.add_argument("--esgate1", required=True, help="MASTER:PORT (1 worker)")
    p.add_argument("--nginx", required=True, help="MASTER:PORT:H2PORT:CACHEPORT")
    p.add_argument("--esgate-cache", required=True, help="MASTER:PORT (2 workers, GET / with cache_ttl 1s)")
    p.add_argument("--peer", action="append", help="NAME:MASTER:PORT[:H2PORT], NAME one of %s" %
                   ", ".join(sorted(PEER_LOADS)))
    p.add_argument("--esgate-rl", help="MASTER:PORT (2 workers, /plain and /limited: rate_limit in Redis)")
    p.add_argument("--upstream", required=True, help="MASTER:PORT")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pause", type=float, default=1.0)
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--out", required=True)
    p = sub.add_parser("vs")
    p.add_argument("--a", required=True, help="MASTER:PORT (2 workers)")
    p.add_argument("--b", required=True, help="MASTER:PORT (2 workers, same configuration)")
    p.add_argument("--a-name", default="A")
    p.add_argument("--b-name", default="B")
    p.add_argument("--upstream", required=True, help="MASTER:PORT")
    p.add_argument("--loads", default="h1-ka-c64,h2-c16-m10")
    p.add_argument("--together", action="store_true", help="load A and B at the same time")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--pause", type=float, default=1.0)
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--out")
    p = sub.add_parser("syscalls")
    p.add_argument("--target", action="append", required=True, help="NAME=MASTER:PORT[:H2PORT]")
    p.add_argument("--loads", default="h1-ka-c64,h2-c16-m10")
    p.add_argument("--seconds", type=int, default=2)
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--out", required=True)
    p = sub.add_parser("growth")
    p.add_argument("--esgate", required=True, help="the esgate binary")
    p.add_argument("--upstream", type=int, required=True, help="the upstream nginx's port")
    p.add_argument("--upstream-root", required=True, help="its prefix (answers of other sizes go in bench/)")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--idle", type=int, default=10000, help="idle connections of the 10,000 point (0: none)")
    p.add_argument("--pipeline-depth", default="", help="upstream.pipeline_depth of each esgate (\"\": unset)")
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--out", required=True)
    p = sub.add_parser("auth-config")
    p.add_argument("dir")
    p = sub.add_parser("auth")
    p.add_argument("--esgate", required=True, help="MASTER:PORT (2 workers, bench.py auth-config's routes)")
    p.add_argument("--upstream", required=True, help="MASTER:PORT")
    p.add_argument("--apikey", required=True, help="the Authorization value of the API key")
    p.add_argument("--bearer", required=True, help="the Authorization value of the JWT")
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pause", type=float, default=1.0)
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--out")
    p = sub.add_parser("idle")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--out", required=True)
    args = ap.parse_args()

    if args.cmd == "freeports":
        socks = []
        for _ in range(args.n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
        for s in socks:
            s.close()
    elif args.cmd == "listenport":
        deadline = time.time() + 10
        while True:
            ports = listen_ports(args.pid) if os.path.exists("/proc/%d" % args.pid) else []
            if ports:
                print(ports[0])
                return
            if time.time() > deadline or not os.path.exists("/proc/%d" % args.pid):
                raise SystemExit("process %d listens on nothing" % args.pid)
            time.sleep(0.05)
    elif args.cmd == "fetch":
        m = re.match(r"http://127\.0\.0\.1:(\d+)(/.*)$", args.url)
        status, ctype, body = http_get(int(m.group(1)), m.group(2))
        if status != 200:
            raise SystemExit("%s answered %d" % (args.url, status))
        with open(args.out, "wb") as f:
            f.write(body)
        print(ctype)
    elif args.cmd == "nginx-upstream":
        nginx_upstream(args.prefix, args.port, args.body, args.ctype)
    elif args.cmd == "nginx-proxy":
        nginx_proxy(args.prefix, args.port, args.h2port, args.upport, args.cacheport)
    elif args.cmd == "wait-ready":
        deadline = time.time() + 15
        wait_http(args.port, args.path, deadline)
        while len(children(args.pid)) != args.workers:
            if time.time() > deadline:
                raise SystemExit("%d has workers %s, not %d" % (args.pid, children(args.pid), args.workers))
            time.sleep(0.05)
    elif args.cmd == "run":
        cmd_run(args)
    elif args.cmd == "vs":
        cmd_vs(args)
    elif args.cmd == "idle":
        cmd_idle(args)
    elif args.cmd == "syscalls":
        cmd_syscalls(args)
    elif args.cmd == "growth":
        cmd_growth(args)
    elif args.cmd == "haproxy-conf":
        haproxy_conf(args.prefix, args.port, args.h2port, args.upport)
    elif args.cmd == "nghttpx-args":
        print("\n".join(nghttpx_args(args.prefix, args.port, args.upport)))
    elif args.cmd == "h2o-conf":
        h2o_conf(args.prefix, args.port, args.upport)
    elif args.cmd == "varnish-vcl":
        varnish_vcl(args.prefix, args.upport)
    elif args.cmd == "auth-config":
        auth_config(args.dir)
    elif args.cmd == "auth":
        cmd_auth(args)


if __name__ == "__main__":
    main()
