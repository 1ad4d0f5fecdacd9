#!/usr/bin/python3
"""bench/tlscosts.py - what a TLS connection or request costs the server,
counted rather than timed, for esgate, nginx and HAProxy alike (the
TLS companion of bench/costs.py; a shared machine's clock says little,
counts do not move):

    bench/tlscosts.py [--servers esgate,nginx,haproxy] [--loads full,resumed,ka,h2] [-n N]

Each server runs with one worker (HAProxy: nbthread 1) under valgrind
--tool=callgrind, in front of the same upstream (nginx answering esdemo's
GET / bytes, as bench/tls.py), with bench/tls.py's configurations and an
ECDSA P-256 certificate.  The figure is the user-space instructions of the
serving process (the one with the most) in a run of 2N minus a run of N,
over N: start-up and warm-up cancel out.  The kernel's work (system calls,
TCP) is not in it: bench/costs.py syscalls and strace -c count those.

Loads (the client is not counted):
  full     N new TLS 1.3 connections, one GET / each, no session offered
           (Python's ssl): a full handshake (ECDHE X25519, ECDSA P-256)
  resumed  N new TLS 1.3 connections, each resuming with the ticket of
           the one before (as wrk and browsers reconnect)
  stime    as resumed, with openssl s_time -www's request: "GET / HTTP/1.0"
           and no Host (bench/tls.py's tls-new-resumed row)
  ka       h2load --h1 -c4 -n N over TLS: HTTP/1.1 keep-alive requests
  h2       h2load -c1 -m10 -n N over TLS: HTTP/2 requests
BUILD (default build) names the esgate build.
"""

import argparse
import glob
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402
import tls as T  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tls_client(port, load, n):
    if load in ("full", "resumed", "stime"):
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.minimum_version = ssl.TLSVersion.TLSv1_3
        sess = None
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
                with c.wrap_socket(raw, server_hostname="localhost",
                                   session=sess if load != "full" else None) as s:
                    s.sendall(b"GET / HTTP/1.0\r\n\r\n" if load == "stime" else
                              b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data.startswith(b"HTTP/1.1 200") and not data.startswith(b"HTTP/1.0 200"):
                        sys.exit("%s: %r" % (load, data[:200]))
                    if load != "full":
                        if sess is not None and not s.session_reused:
                            sys.exit("resumed: a connection made a full handshake")
                        sess = s.session
        return
    argv = ["h2load", "-n", str(n)] + (["--h1", "-c", "4"] if load == "ka" else ["-c", "1", "-m", "10"])
    out = subprocess.run(argv + ["https://127.0.0.1:%d/" % port], capture_output=True, text=True).stdout
    if "%d succeeded" % n not in out:
        sys.exit("h2load: %s" % out)


def run_once(server, build, load, n, env):
    outdir = tempfile.mkdtemp(prefix="tlscosts-", dir=env["tmp"])
    os.chmod(outdir, 0o777)
    vg = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--vgdb=no",
          "--callgrind-out-file=%s/cg.%%p" % outdir]
    port = T.freeport()
    log = open(os.path.join(outdir, "log"), "w")
    if server == "esgate":
        cfg = os.path.join(outdir, "esgate.yaml")
        with open(cfg, "w") as f:
            f.write("listen:\n  - address: \"127.0.0.1:%d\"\n    tls: {certificate: \"%s\", key: \"%s\"}\n"
                    "workers: 1\nlog: {level: warn}\nupstream:\n  nodes: [http://127.0.0.1:%d]\n%s"
                    % (port, env["crt"], env["key"], env["up"], "user: nobody\n" if os.geteuid() == 0 else ""))
        argv = [os.path.join(build, "esgate"), "-c", cfg]
    elif server == "nginx":
        prefix = os.path.join(outdir, "nginx")
        os.makedirs(prefix)
        T.nginx_tls_conf(prefix, port, env["up"], env["crt"], env["key"], 1)
        argv = [env["nginx"], "-p", prefix, "-c", prefix + "/nginx.conf", "-e", prefix + "/error.log",
                "-g", "daemon off;"]
    else:
        cfg = os.path.join(outdir, "haproxy.cfg")
        T.haproxy_conf(cfg, port, env["up"], env["both"], 1)
        argv = ["haproxy", "-db", "-f", cfg]
    p = subprocess.Popen(vg + argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        T.wait_tls(port, 180)
        tls_client(port, "ka", 40)  # warm-up: the upstream connections
        if load in ("full", "resumed", "stime"):
            tls_client(port, load, 4)
        tls_client(port, load, n)
        time.sleep(0.5)
    finally:
        p.send_signal(signal.SIGQUIT if server == "nginx" else signal.SIGTERM)
        p.wait(180)
    best = 0
    for path in glob.glob(os.path.join(outdir, "cg.*")):
        with open(path) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    best = max(best, int(line.split()[1]))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="esgate,nginx,haproxy")
    ap.add_argument("--loads", default="full,resumed,ka,h2")
    ap.add_argument("-n", type=int, default=0, help="connections or requests (default: 100 or 2000)")
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    args = ap.parse_args()
    build = os.path.join(ROOT, args.build)
    tmp = tempfile.mkdtemp(prefix="esgate-tlscosts.")
    os.chmod(tmp, 0o755)
    procs = T.Procs()
    try:
        crt, key, both = T.make_cert(tmp)
        demo_port = T.freeport()
        demo = procs.start([os.path.join(build, "esdemo"), "--port", str(demo_port)], os.path.join(tmp, "esdemo.log"))
        B.wait_http(demo_port, "/", time.time() + 10)
        ctype = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench.py"), "fetch",
                                "http://127.0.0.1:%d/" % demo_port, os.path.join(tmp, "body.json")],
                               capture_output=True, text=True, check=True).stdout.strip()
        demo.terminate()
        demo.wait()
        up = T.freeport()
        os.makedirs(os.path.join(tmp, "upstream"))
        B.nginx_upstream(os.path.join(tmp, "upstream"), up, os.path.join(tmp, "body.json"), ctype)
        nginx = subprocess.run(["sh", "-c", "command -v nginx"], capture_output=True, text=True).stdout.strip()
        prefix = os.path.join(tmp, "upstream")
        procs.start([nginx, "-p", prefix, "-c", prefix + "/nginx.conf", "-e", prefix + "/error.log",
                     "-g", "daemon off;"], os.path.join(tmp, "upstream.log"))
        B.wait_http(up, "/", time.time() + 10)
        env = {"tmp": tmp, "crt": crt, "key": key, "both": both, "up": up, "nginx": nginx}
        for load in args.loads.split(","):
            n = args.n or (100 if load in ("full", "resumed", "stime") else 2000)
            for server in args.servers.split(","):
                a = run_once(server, build, load, n, env)
                b = run_once(server, build, load, 2 * n, env)
                print("%-8s %-8s %9.0f instructions per %s (%d: %d, %d: %d)" % (
                    load, server, (b - a) / n, "connection" if load in ("full", "resumed", "stime") else "request",
                    n, a, 2 * n, b), flush=True)
    finally:
        procs.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
