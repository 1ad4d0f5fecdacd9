#!/usr/bin/python3
"""bench/tls.py - HTTPS: esgate against nginx and HAProxy 2.6 terminating TLS
in front of the same upstream, same certificate (ECDSA P-256), same worker
count, in interleaved rounds.  `make bench-tls` runs it alone (writing
bench/TLS.md), and `make bench` (bench/run.sh) appends its table to
bench/RESULTS.md; the issue's bars are printed beside the figures.

    bench/tls.py [--seconds S] [--rounds N] [--workers W] [--out FILE]

Loads, each against each contender in turn (the order rotates every round):
  h1-tls-ka-c64    HTTP/1.1 keep-alive over TLS, wrk -t2 -c64
  h2-tls-c16-m10   HTTP/2 over TLS (ALPN h2), h2load -c16 -m10
  tls-new-wrk      new TLS connections, one request each: wrk -t2 -c64 with
                   "Connection: close".  wrk resumes: its ssl_close() is
                   SSL_shutdown() then SSL_clear(), which keeps the session,
                   and the next SSL_connect() offers its ticket.  So this
                   row is mostly resumed handshakes, for every contender
                   that sends a TLS 1.3 resumption a new ticket
  tls-new-full     new TLS connections, full handshakes (no session offered):
                   4 x openssl s_time -new in parallel
  tls-new-resumed  new TLS connections resuming a session with a ticket:
                   4 x openssl s_time -reuse (TLS 1.3) in parallel
The s_time rows count connections per wall-clock second (all four
processes' connections over the time they ran): s_time's own "connections in
Ns" is its user CPU time, not elapsed time.
Each figure is the median over the rounds, with the server's CPU (its
worker processes or threads, from /proc) per request or per connection.
The upstream is nginx answering esdemo's GET / bytes, as in bench/run.sh.
Contenders: esgate (W workers), nginx (W workers, upstream keepalive 64,
keepalive_requests 1000000), HAProxy (nbthread W, http-reuse always).
Every process started here is stopped on exit.
"""

import argparse
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (bench/bench.py: /proc helpers, wrk, h2load, the upstream's nginx.conf)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Mozilla's intermediate TLS 1.2 suites, as esgate's lib/tls.c: the same for all three.
CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
           "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
LOADS = [
    ("h1-tls-ka-c64", "HTTP/1.1 keep-alive over TLS, wrk -t2 -c64", "req/s"),
    ("h2-tls-c16-m10", "HTTP/2 over TLS, h2load -c16 -m10", "req/s"),
    ("tls-new-wrk", "new TLS connections, wrk -c64 Connection: close (wrk resumes its last session)", "conn/s"),
    ("tls-new-full", "new TLS connections, full handshakes, 4 x openssl s_time -new", "conn/s"),
    ("tls-new-resumed", "new TLS connections resuming a ticket, 4 x openssl s_time -reuse", "conn/s"),
]
# The targets: esgate / the better of nginx and HAProxy.
TARGETS = {"h1-tls-ka-c64": 1.0, "h2-tls-c16-m10": 1.3, "tls-new-wrk": 0.95, "tls-new-full": 0.95,
           "tls-new-resumed": 0.95}


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, argv, log, **kw):
        p = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_tls(port, deadline=15.0):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("nothing answers 200 over TLS on port %d" % port)


def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    both = os.path.join(d, "both.pem")  # HAProxy's crt: certificate and key in one file
    with open(both, "w") as out:
        for f in (crt, key):
            with open(f) as i:
                out.write(i.read())
    os.chmod(key, 0o644)
    os.chmod(both, 0o644)
    return crt, key, both


def nginx_tls_conf(prefix, port, upport, crt, key, workers):
    conf = B.nginx_common(prefix, 4096).replace("worker_processes 2;", "worker_processes %d;" % workers) + (
        "    keepalive_requests 1000000;\n"
        "    upstream upstream_pool {\n"
        "        server 127.0.0.1:%d;\n"
        "        keepalive 64;\n"
        "        keepalive_requests 1000000;\n"
        "    }\n"
        "    server {\n"
        "        listen 127.0.0.1:%d ssl http2;\n"
        "        ssl_certificate %s;\n"
        "        ssl_certificate_key %s;\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        ssl_ciphers %s;\n"
        "        ssl_session_tickets on;\n"
        "        location / {\n"
        "            proxy_pass http://upstream_pool;\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Connection \"\";\n"
        "        }\n"
        "    }\n"
        "}\n") % (upport, port, crt, key, CIPHERS)
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)


def haproxy_conf(path, port, upport, both, workers):
    with open(path, "w") as f:
        f.write("global\n"
                "    nbthread %d\n"
                "    maxconn 4096\n"
                "    ssl-default-bind-ciphers %s\n"
                "    ssl-default-bind-options ssl-min-ver TLSv1.2\n"
                "    tune.ssl.default-dh-param 2048\n"
                "defaults\n"
                "    mode http\n"
                "    timeout connect 5s\n"
                "    timeout client 30s\n"
                "    timeout server 30s\n"
                "    timeout http-keep-alive 10s\n"
                "    http-reuse always\n"
                "frontend tls\n"
                "    bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1\n"
                "    default_backend es\n"
                "backend es\n"
                "    server up 127.0.0.1:%d\n" % (workers, CIPHERS, port, both, upport))


def s_time(port, secs, mode, n=4):
    """N openssl s_time (MODE -new: full handshakes, -reuse: one session
    resumed) in parallel: connections per wall-clock second in all, and the
    clients' own CPU.  s_time's "N connections in Xs" is its user CPU time,
    so the rate is taken from the connections over the elapsed time."""
    argv = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, mode, "-time", str(secs), "-www", "/"]
    t0 = time.monotonic()
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(n)]
    gen = 0.0
    conns = fresh = 0
    for p in procs:
        out = p.stdout.read().decode("utf-8", "replace")
        _, status, ru = os.wait4(p.pid, 0)
        gen += ru.ru_utime + ru.ru_stime
        m = re.findall(r"(\d+) connections in [\d.]+s;", out)
        if not m or status != 0:
            raise RuntimeError("openssl s_time: %s" % out[-500:])
        conns += int(m[-1])  # the last block is the one MODE asked for
        # one mark a connection: "r" resumed, "*" a full handshake
        marks = re.findall(r"^([r*]+)$", out, re.M)
        fresh += marks[-1].count("*") if marks else 0
    elapsed = time.monotonic() - t0
    if mode == "-reuse" and fresh:
        B.log("s_time -reuse: %d of %d connections made a full handshake" % (fresh, conns))
    return {"rps": conns / max(elapsed, 1e-9), "requests": conns, "gen_cpu_s": gen, "errors": 0,
            "p50_ms": float("nan"), "p99_ms": float("nan"), "cmd": argv + ["(x%d)" % n],
            "full_handshakes": fresh}


def measure(name, pids, port, load, secs, workdir):
    url = "https://127.0.0.1:%d/" % port
    c0 = B.cpu_ticks(pids)
    if load == "h1-tls-ka-c64":
        res = B.wrk(url, 64, secs)
    elif load == "h2-tls-c16-m10":
        res = B.h2load(url, secs, workdir)
    elif load == "tls-new-wrk":
        res = B.wrk(url, 64, secs, close=True)
    elif load == "tls-new-full":
        res = s_time(port, secs, "-new")
    elif load == "tls-new-resumed":
        res = s_time(port, secs, "-reuse")
    else:
        raise ValueError(load)
    c1 = B.cpu_ticks(pids)
    res["cpu_us"] = (c1 - c0) / B.CLK_TCK * 1e6 / max(res["requests"], 1) if c0 is not None and c1 is not None \
        else float("nan")
    res.pop("raw", None)
    B.log("%-8s %-16s %9.0f /s  err %d  cpu %6.1f us each" % (name, load, res["rps"], res["errors"], res["cpu_us"]))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", "5")))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "5")))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--loads", default=",".join(name for name, _, _ in LOADS))
    ap.add_argument("--out", default=None, help="write the Markdown table here too")
    args = ap.parse_args()
    loads = args.loads.split(",")
    for tool in ("nginx", "haproxy", "wrk", "h2load", "openssl"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            raise SystemExit("bench/tls.py: %s not found (make bench-deps)" % tool)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="esgate-bench-tls.")
    os.chmod(tmp, 0o755)
    procs = Procs()
    try:
        crt, key, both = make_cert(tmp)
        build = os.path.join(ROOT, args.build)
        # the upstream: nginx answering esdemo's GET / bytes
        demo_port = freeport()
        demo = procs.start([os.path.join(build, "esdemo"), "--port", str(demo_port)], os.path.join(tmp, "esdemo.log"))
        B.wait_http(demo_port, "/", time.time() + 10)
        ctype = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench.py"), "fetch",
                                "http://127.0.0.1:%d/" % demo_port, os.path.join(tmp, "body.json")],
                               capture_output=True, text=True, check=True).stdout.strip()
        demo.terminate()
        demo.wait()
        up_port = freeport()
        os.makedirs(os.path.join(tmp, "upstream"))
        B.nginx_upstream(os.path.join(tmp, "upstream"), up_port, os.path.join(tmp, "body.json"), ctype)
        nginx = subprocess.run(["sh", "-c", "command -v nginx"], capture_output=True, text=True).stdout.strip()

        def start_nginx(name):
            prefix = os.path.join(tmp, name)
            return procs.start([nginx, "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"), "-e",
                                os.path.join(prefix, "error.log"), "-g", "daemon off;"], os.path.join(tmp, name + ".log"))
        upstream = start_nginx("upstream")
        B.wait_http(up_port, "/", time.time() + 10)

        contenders = {}
        # esgate
        port = freeport()
        with open(os.path.join(tmp, "esgate.yaml"), "w") as f:
            f.write("listen:\n  - address: \"127.0.0.1:%d\"\n    tls: {certificate: \"%s\", key: \"%s\"}\n"
                    "workers: %d\nlog: {level: warn}\nupstream:\n  nodes: [http://127.0.0.1:%d]\n%s"
                    % (port, crt, key, args.workers, up_port, "user: nobody\n" if os.geteuid() == 0 else ""))
        p = procs.start([os.path.join(build, "esgate"), "-c", os.path.join(tmp, "esgate.yaml")],
                        os.path.join(tmp, "esgate.log"))
        wait_tls(port)
        contenders["esgate"] = (p, port, lambda p=p: B.children(p.pid))
        # nginx
        port = freeport()
        os.makedirs(os.path.join(tmp, "nginx"))
        nginx_tls_conf(os.path.join(tmp, "nginx"), port, up_port, crt, key, args.workers)
        p = start_nginx("nginx")
        wait_tls(port)
        contenders["nginx"] = (p, port, lambda p=p: B.children(p.pid))
        # HAProxy: one process, nbthread threads
        port = freeport()
        haproxy_conf(os.path.join(tmp, "haproxy.cfg"), port, up_port, both, args.workers)
        p = procs.start(["haproxy", "-db", "-f", os.path.join(tmp, "haproxy.cfg")], os.path.join(tmp, "haproxy.log"))
        wait_tls(port)
        contenders["haproxy"] = (p, port, lambda p=p: [p.pid])

        results = {(n, load): [] for n in contenders for load in loads}
        names = list(contenders)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for load in loads:
                for n in order:
                    proc, port, pids = contenders[n]
                    results[(n, load)].append(measure(n, pids(), port, load, args.seconds, tmp))
                    time.sleep(0.5)
        table = report(results, names, loads, args)
        print(table)
        if args.out:
            with open(args.out, "w") as f:
                f.write(table)
    finally:
        procs.stop()
        if os.environ.get("BENCH_TLS_KEEP"):
            B.log("kept %s" % tmp)
        else:
            subprocess.run(["rm", "-rf", tmp])


def report(results, names, loads, args):
    med = lambda vals: statistics.median(vals) if vals else float("nan")  # noqa: E731
    lines = ["# TLS: esgate against nginx and HAProxy", "",
             "Written by `bench/tls.py` (`make bench-tls`): %d round(s) of %d s, %d workers (HAProxy: nbthread %d), "
             "ECDSA P-256, TLS 1.3 unless the load says otherwise; %s, %d CPUs, load average at the end %s." % (
                 args.rounds, args.seconds, args.workers, args.workers, time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                       time.gmtime()),
                 os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3])), "",
             "| load | %s | esgate / best other | target | errors |" % " | ".join(
                 "%s /s (CPU us each)" % n for n in names),
             "|---|%s---|---|---|" % ("---|" * len(names))]
    for load, what, unit in LOADS:
        if load not in loads:
            continue
        cells, rps = [], {}
        errors = 0
        for n in names:
            rs = results[(n, load)]
            rps[n] = med([x["rps"] for x in rs])
            cells.append("%.0f (%.1f)" % (rps[n], med([x["cpu_us"] for x in rs])))
            errors += sum(x["errors"] for x in rs)
        best = max(rps[n] for n in names if n != "esgate")
        ratio = rps["esgate"] / best if best else float("nan")
        lines.append("| %s (%s) | %s | %.2f | %.2f %s | %d |" % (what, unit, " | ".join(cells), ratio, TARGETS[load],
                                                                  "met" if ratio >= TARGETS[load] else "MISSED",
                                                                  errors))
    lines.append("")
    if "tls-new-resumed" in loads:
        # a contender whose -reuse connections were not resumed would be
        # measured on full handshakes: say how many were, for each
        said = []
        for n in names:
            rs = results[(n, "tls-new-resumed")]
            conns = sum(x["requests"] for x in rs)
            full = sum(x.get("full_handshakes", 0) for x in rs)
            said.append("%s %d of %d (%.1f %%)" % (n, conns - full, conns, 100.0 * (conns - full) / max(conns, 1)))
        lines.append("Connections of the `s_time -reuse` row that resumed (s_time's \"r\" marks, all rounds): %s."
                     % "; ".join(said))
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
