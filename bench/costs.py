#!/usr/bin/python3
"""bench/costs.py - what one request costs an esgate worker, counted rather
than timed (a shared machine's clock says little; counts do not move):

  costs.py instructions [--load L] [-n N] [--callgrind-out DIR]
      user-space instructions per request (valgrind --tool=callgrind on a
      1-worker esgate): two runs, N and 2N requests, the difference / N, so
      start-up and shutdown cancel out; with --annotate, each function's
      instructions per request, the same difference.
  costs.py syscalls [--load L] [-n N] [--workers W]
      system calls per request of that worker (strace -c -f), by call;
      with W workers (default 1), of all of them together (what passing
      new connections between workers costs: worker/handoff.h).
  costs.py idle [-n N]
      the worker's RSS per idle keep-alive connection (N connections, each
      having had one answer), from VmRSS before and with them.
  costs.py kernel [--load L] [-n N]
      where the worker's whole CPU goes, the kernel's included: perf record
      -g of the worker (cpu-clock samples; this VM has no hardware
      counters) during N requests: user space against the kernel, and each
      system call's share with what the kernel does inside it (in a send
      over loopback, the receiving peer's softirq work; waking the peer;
      the switch back after a sleep).  Shares of samples, so a busy machine
      moves them less than it moves times; the µs a request it prints is a
      timing (perf's cpu-clock total / N).

Loads (L): h1 (keep-alive GET /, 4 connections), h1-close (Connection:
close), h2 (one connection, 10 streams), cache (GET / with cluster_info
cache_ttl 1s); auth-none, auth-key, auth-jwt: bench/bench.py auth-config's
three routes to the cluster info (keep-alive, 4 connections), without auth,
with "auth: {schemes: [api_key]}" and an ApiKey header, with "auth:
{schemes: [jwt]}" and an HS256 bearer token (a hit of the verified-token
cache after its first request), all three in the same configuration.  The upstream is esdemo.  BUILD (default build) names the
esgate build.  Stdlib only; needs valgrind, strace, perf (kernel) and h2load.
"""

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
os.environ["ESGATE_BUILD"] = BUILD

import harness  # noqa: E402

LOADS = {
    "h1": ["--h1", "-c", "4"],
    "h1-close": ["--h1", "-c", "4", "-H", "Connection: close"],
    "h2": ["-c", "1", "-m", "10"],
    "cache": ["--h1", "-c", "4"],
    "auth-none": ["--h1", "-c", "4"],
    "auth-key": ["--h1", "-c", "4"],
    "auth-jwt": ["--h1", "-c", "4"],
}
# the auth loads: the path, and the variable of auth.env whose value is
# the Authorization header (None: no header)
AUTH_LOADS = {"auth-none": ("/info", None), "auth-key": ("/info-key", "APIKEY"), "auth-jwt": ("/info-jwt", "BEARER")}
AUTH_ENV = {}  # auth.env of the running Stack


def auth_setup(d):
    """bench/bench.py's auth configuration in D: its YAML text, and
    AUTH_ENV filled from its auth.env."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench  # noqa: E402 (bench/bench.py: auth_config)
    bench.auth_config(d)
    with open(os.path.join(d, "auth.env")) as f:
        for line in f:
            name, _, value = line.strip().partition("=")
            AUTH_ENV[name] = value.strip("'")
    with open(os.path.join(d, "auth.yaml")) as f:
        return f.read()


def config(upstream_port, load, extra="", workers=1):
    if load == "cache":
        extra += "cluster_info: {cache_ttl: 1s}\n"
    return harness.make_config(upstream_port, workers=workers, keepalive_timeout="30s", request_timeout="30s",
                               extra=extra)


def load_run(port, load, n):
    path, header = AUTH_LOADS.get(load, ("/", None))
    argv = ["h2load", "-n", str(n)] + LOADS[load] + ["http://127.0.0.1:%d%s" % (port, path)]
    if header is not None:
        argv[1:1] = ["-H", "Authorization: " + AUTH_ENV[header]]
    if load == "h1-close":
        # h2load keeps connections open; -c 4 with one request each, many times
        argv = ["h2load", "-n", "4", "--h1", "-c", "4", "-H", "Connection: close",
                "http://127.0.0.1:%d/" % port]
        for _ in range(n // 4):
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode != 0 or b"4 succeeded" not in r.stdout:
                sys.exit("h2load: %s" % r.stdout.decode())
        return
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode()
    m = re.search(r"(\d+) succeeded", out)
    ok = re.search(r"status codes: (\d+) 2xx", out)  # a refused key is an answer too
    if r.returncode != 0 or not m or int(m.group(1)) != n or not ok or int(ok.group(1)) != n:
        sys.exit("h2load: %s" % out)


class Stack:
    """esdemo + a 1-worker (or WORKERS) esgate (under WRAP), stopped by stop()."""

    def __init__(self, load, wrap=(), workers=1):
        self.tmp = tempfile.mkdtemp(prefix="esgate-costs-")
        os.chmod(self.tmp, 0o777)
        harness.WRAP[:] = list(wrap)
        self.ctx = harness.Context(self.tmp)
        self.d = self.ctx.esdemo()
        extra = auth_setup(self.tmp) if load in AUTH_LOADS else ""
        self.g = self.ctx.esgate(config(self.d.port, load, extra, workers), workers=workers, ready=False)
        self.g.wait_ready(workers, timeout=120)
        self.workers = self.g.workers()
        self.worker = self.workers[0]
        # warm up: connections to the upstream, caches
        load_run(self.g.port, load if load != "h1-close" else "h1", 40)

    def stop(self):
        self.ctx.teardown()
        harness.WRAP[:] = []


def callgrind_worker_ir(outdir, worker):
    path = os.path.join(outdir, "cg.%d" % worker)
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1]), path
    sys.exit("no totals in %s" % path)


def annotate_functions(path, inclusive=False):
    """{file:function: instructions} of a callgrind file (self, or with its callees')."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"), "--auto=no",
                          "--threshold=100", path],
                         stdout=subprocess.PIPE).stdout.decode()
    fns = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+) \([ \d.]+%\)\s+(\S.*?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            fns[m.group(2)] = fns.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return fns


def cmd_instructions(args):
    results = []
    for n in (args.n, 2 * args.n):
        outdir = tempfile.mkdtemp(prefix="esgate-cg-")
        os.chmod(outdir, 0o777)
        wrap = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--vgdb=no",
                "--callgrind-out-file=%s/cg.%%p" % outdir]
        harness.TIME_SCALE = 20
        s = Stack(args.load, wrap)
        try:
            load_run(s.g.port, args.load, n)
        finally:
            s.stop()
        ir, path = callgrind_worker_ir(outdir, s.worker)
        results.append((n, ir, path))
    (n1, ir1, _), (n2, ir2, path2) = results
    per = (ir2 - ir1) / (n2 - n1)
    print("%s: %.0f instructions per request in the worker (user space; %d and %d requests: %d and %d)" %
          (args.load, per, n1, n2, ir1, ir2))
    if args.annotate:
        # per function: (its instructions in the 2N run - in the N run) / N,
        # so start-up (dynamic linking, configuration) cancels out as in the total
        f1, f2 = annotate_functions(results[0][2], args.inclusive), annotate_functions(path2, args.inclusive)
        per_fn = sorted(((f2.get(k, 0) - f1.get(k, 0)) / (n2 - n1), k) for k in set(f1) | set(f2))
        print("instructions per request, by function (%s; the %d-request run minus the %d-request one):" %
              ("with its callees" if args.inclusive else "self", n2, n1))
        for v, k in sorted(per_fn, reverse=True)[:args.top]:
            if abs(v) >= 0.5:
                print("  %8.0f  %s" % (v, k))
    print("callgrind file of the %d-request run: %s" % (n2, path2))


def cmd_syscalls(args):
    s = Stack(args.load, workers=args.workers)
    out = os.path.join(s.tmp, "strace.txt")
    try:
        cmd = ["strace", "-f", "-c", "-o", out]
        for w in s.workers:
            for t in sorted(os.listdir("/proc/%d/task" % w)):
                cmd += ["-p", t]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for w in s.workers:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open("/proc/%d/status" % w) as f:
                    if re.search(r"^TracerPid:\s*%d$" % p.pid, f.read(), re.M):
                        break
                time.sleep(0.02)
        load_run(s.g.port, args.load, args.n)
        p.send_signal(signal.SIGINT)
        p.wait(30)
    finally:
        s.stop()
    total = 0
    rows = []
    with open(out) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 5 and re.match(r"^[\d.]+$", cols[0]):
                if cols[-1] == "total":
                    total = int(cols[3])
                else:
                    rows.append((cols[-1], int(cols[3])))
    print("%s: %.2f system calls per request (%d requests, %d worker(s))" % (args.load, total / args.n, args.n,
                                                                          args.workers))
    for name, calls in sorted(rows, key=lambda r: -r[1]):
        print("  %-16s %.3f" % (name, calls / args.n))
    shutil.rmtree(s.tmp, ignore_errors=True)


# costs.py kernel: the rows, as perf report's symbols (with their callees)
KERNEL_ROWS = [
    ("all system calls", ["do_syscall_64"]),
    ("  send to the node (sendto, sendmsg)", ["__sys_sendto", "__sys_sendmsg"]),
    ("  recv from the node (recvfrom)", ["__sys_recvfrom"]),
    ("  writev to the client", ["do_writev"]),
    ("  read from the client", ["ksys_read"]),
    ("  epoll_wait", ["do_epoll_wait"]),
    ("  epoll_ctl", ["do_epoll_ctl"]),
    ("the receiving peer's softirq, run in our sends and writes", ["do_softirq.part.0"]),
    ("  of which the peer's TCP input (tcp_v4_rcv)", ["tcp_v4_rcv"]),
    ("  of which waking the peer (sock_def_readable)", ["sock_def_readable"]),
    ("the switch back in after sleeping (schedule)", ["schedule"]),
]
# (kernel 6.x symbols; a row whose symbols are all absent prints 0)


def perf_report(data, *args):
    return subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()


def cmd_kernel(args):
    s = Stack(args.load)
    data = os.path.join(s.tmp, "perf.data")
    try:
        p = subprocess.Popen(["perf", "record", "-g", "-F", "4000", "-p", str(s.worker), "-o", data],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attaches
        load_run(s.g.port, args.load, args.n)
        p.send_signal(signal.SIGINT)
        p.wait(60)
    finally:
        s.stop()
    cpu_ns = 0  # cpu-clock's event count is the sampled CPU time, in ns
    for line in perf_report(data, "--no-children", "--sort", "dso").splitlines():
        m = re.match(r"^# Event count \(approx\.\): (\d+)", line)
        if m:
            cpu_ns = int(m.group(1))
    dsos = {}
    for line in perf_report(data, "--no-children", "--sort", "dso").splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+(\S+)", line)
        if m:
            dsos[m.group(2)] = dsos.get(m.group(2), 0.0) + float(m.group(1))
    syms = {}
    for line in perf_report(data, "--children", "--sort", "sym").splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+([\d.]+)%\s+\[[k.]\]\s+(\S+)", line)
        if m and m.group(3) not in syms:
            syms[m.group(3)] = float(m.group(1))
    kernel = sum(v for k, v in dsos.items() if k.startswith("[kernel"))
    print("%s: the worker's CPU during %d requests, perf record -g (cpu-clock at 4 kHz): %.2f us a request "
          "(a timing)" % (args.load, args.n, cpu_ns / 1000.0 / args.n))
    print("  %5.1f %%  kernel" % kernel)
    for k, v in sorted(dsos.items(), key=lambda kv: -kv[1]):
        if not k.startswith("[kernel") and v >= 0.5:
            print("  %5.1f %%  %s" % (v, k))
    print("with what runs inside them (perf's children):")
    for label, names in KERNEL_ROWS:
        v = sum(syms.get(n, 0.0) for n in names)
        print("  %5.1f %%  %s" % (v, label))
    shutil.rmtree(s.tmp, ignore_errors=True)


def vmrss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s*(\d+)", f.read(), re.M).group(1))


def cmd_idle(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench  # noqa: E402 (bench/bench.py: open_idle)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.n + 200)), hard))
    s = Stack("h1")
    try:
        time.sleep(0.5)
        before = vmrss_kib(s.worker)
        socks, failed = bench.open_idle(s.g.port, args.n)
        time.sleep(1.0)
        during = vmrss_kib(s.worker)
        for c in socks:
            c.close()
    finally:
        s.stop()
    print("idle: %d connections (%d failed): worker VmRSS %d -> %d KiB, %.2f KiB per connection" %
          (len(socks), failed, before, during, (during - before) / max(1, len(socks))))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("instructions")
    a.add_argument("--load", choices=sorted(LOADS), default="h1")
    a.add_argument("-n", type=int, default=2000)
    a.add_argument("--annotate", action="store_true", help="also the functions' instructions per request")
    a.add_argument("--inclusive", action="store_true", help="with --annotate: a function's callees count in it")
    a.add_argument("--top", type=int, default=40, help="with --annotate: how many functions")
    a.set_defaults(func=cmd_instructions)
    a = sub.add_parser("syscalls")
    a.add_argument("--load", choices=sorted(LOADS), default="h1")
    a.add_argument("-n", type=int, default=5000)
    a.add_argument("--workers", type=int, default=1, help="strace all of W workers (default 1)")
    a.set_defaults(func=cmd_syscalls)
    a = sub.add_parser("kernel")
    a.add_argument("--load", choices=sorted(set(LOADS) - {"h1-close"}), default="h2")
    a.add_argument("-n", type=int, default=200000)
    a.set_defaults(func=cmd_kernel)
    a = sub.add_parser("idle")
    a.add_argument("-n", type=int, default=2000)
    a.set_defaults(func=cmd_idle)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
