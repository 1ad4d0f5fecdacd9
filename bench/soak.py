#!/usr/bin/python3
"""esgate soak helper (stdlib only), driven by bench/soak.sh.

    soak.py run --master PID --port PORT --log FILE --out bench/SOAK.md
                [--requests 1000000] [--step 100000] [--conns 64]

Sends --requests GET / to 127.0.0.1:PORT in batches of --step, each an
exact `h2load --h1 -n STEP -c CONNS` run; after each batch, once every
worker's (child of PID) VmRSS has settled (unchanged for 1.5 s: a worker
hands its free heap pages back a second after its last client left), reads
VmRSS, RssAnon and VmHWM (the peak) from /proc.  Passes when every request
got a 2xx (no failed, errored or timed-out request), the workers are the
same processes from the first batch to the last, the log has no crit line,
and each worker's settled RSS after the last batch is at most 110 % of its
settled RSS after the first.  Prints a table, appends a dated section to
--out, exits 1 on failure.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
from bench import children, status_kib  # noqa: E402 (bench/bench.py, beside this file)

MIB = 1024  # KiB
WARMUP = 20000  # requests per warm-up batch, not counted


def log(msg):
    print("[soak %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def h2load(port, n, conns):
    argv = ["h2load", "--h1", "-n", str(n), "-c", str(conns), "http://127.0.0.1:%d/" % port]
    t0 = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.monotonic() - t0
    out = proc.stdout
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    r = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    if proc.returncode != 0 or not m or not s:
        return {"ok": False, "raw": out, "rc": proc.returncode, "elapsed": elapsed}
    total, started, done, succeeded, failed, errored, timeout = map(int, m.groups())
    s2, s3, s4, s5 = map(int, s.groups())
    res = {"total": total, "done": done, "succeeded": succeeded, "failed": failed, "errored": errored,
           "timeout": timeout, "2xx": s2, "3xx": s3, "4xx": s4, "5xx": s5,
           "rps": float(r.group(1)) if r else n / elapsed, "elapsed": elapsed, "raw": out}
    res["ok"] = (total == n and done == n and succeeded == n and s2 == n
                 and failed == 0 and errored == 0 and timeout == 0)
    return res


def served(port):
    """{pid: requests served} from esgate's /_esgate/status."""
    with urllib.request.urlopen("http://127.0.0.1:%d/_esgate/status" % port, timeout=5) as r:
        doc = json.load(r)
    return {w["pid"]: w["requests"] for w in doc["workers"]}


def settle(pids, quiet=1.5, limit=10.0):
    """Waits until no worker's VmRSS has changed for QUIET seconds (at most
    LIMIT); returns {pid: (rss, anon, hwm)} (None for a pid that is gone)."""
    def sample():
        out = {}
        for pid in pids:
            try:
                out[pid] = (status_kib(pid, "VmRSS"), status_kib(pid, "RssAnon"), status_kib(pid, "VmHWM"))
            except OSError:
                out[pid] = None
        return out
    deadline = time.monotonic() + limit
    last = sample()
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = sample()
        if {p: v and v[0] for p, v in now.items()} != {p: v and v[0] for p, v in last.items()}:
            since = time.monotonic()
        last = now
        if time.monotonic() - since >= quiet:
            break
    return last


def run(args):
    steps = args.requests // args.step
    if steps * args.step != args.requests or steps < 2:
        raise SystemExit("--requests must be a multiple (>= 2) of --step")
    workers = children(args.master)
    if not workers:
        raise SystemExit("master %d has no workers" % args.master)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open("/proc/loadavg") as f:
        load_start = " ".join(f.read().split()[:3])
    # Warm-up, not counted: until every worker has served requests (the
    # kernel may hand a whole batch's connections to one worker), so that
    # the baseline after the first counted batch is a working worker's RSS,
    # not a fresh one's.
    warmups = 0
    while warmups < 5:
        res = h2load(args.port, WARMUP, args.conns)
        warmups += 1
        if not res["ok"]:
            raise SystemExit("warm-up batch failed:\n%s" % res["raw"])
        if all(n > 0 for pid, n in served(args.port).items() if pid in workers):
            break
    log("warm-up: %d x %d requests (every worker served some: %s)" % (warmups, WARMUP, served(args.port)))
    t_start = time.monotonic()
    rows = []  # (cumulative, result, {pid: (rss, anon, hwm)}, {pid: served in the batch})
    problems = []
    before = served(args.port)
    for i in range(steps):
        res = h2load(args.port, args.step, args.conns)
        now = children(args.master)
        sample = settle(workers)
        after = served(args.port)
        batch = {pid: after.get(pid, 0) - before.get(pid, 0) for pid in workers}
        before = after
        rows.append(((i + 1) * args.step, res, sample, batch))
        if res["ok"]:
            log("%7d requests: %d 2xx, %.0f req/s, RSS %s KiB" % (
                (i + 1) * args.step, res["2xx"], res["rps"],
                " ".join(str(sample[p][0]) if sample[p] else "gone" for p in workers)))
        else:
            problems.append("batch %d: not every request succeeded" % (i + 1))
            log("batch %d failed:\n%s" % (i + 1, res["raw"]))
        if now != workers:
            problems.append("batch %d: workers changed from %s to %s" % (i + 1, workers, now))
            log(problems[-1])
            break
        if not res["ok"]:
            break
    elapsed = time.monotonic() - t_start
    with open("/proc/loadavg") as f:
        load_end = " ".join(f.read().split()[:3])

    # The RSS rule, per worker: after the last batch vs after the first.
    verdicts = []
    complete = len(rows) == steps and all(r[1]["ok"] for r in rows)
    for idx, pid in enumerate(workers):
        first = rows[0][2].get(pid)
        last = rows[-1][2].get(pid)
        if not complete or first is None or last is None:
            verdicts.append((idx + 1, pid, first and first[0], last and last[0], None, None, False))
            continue
        base, end = first[0], last[0]
        limit, rule = base * 110 // 100, "110 %% of %d KiB" % base
        ok = end <= limit
        verdicts.append((idx + 1, pid, base, end, limit, rule, ok))
        if not ok:
            problems.append("worker %d (pid %d): RSS %d KiB after %d requests > limit %d KiB (%s)" % (
                idx + 1, pid, end, rows[-1][0], limit, rule))

    crit = []
    if args.log and os.path.exists(args.log):
        with open(args.log, errors="replace") as f:
            loglines = [ln.rstrip("\n") for ln in f]
        crit = [ln for ln in loglines if "[crit]" in ln or "Sanitizer" in ln]
        if crit:
            problems.append("esgate logged %d crit/sanitizer line(s)" % len(crit))
    else:
        loglines = []

    total_req = sum(r[1].get("total", 0) for r in rows)
    total_2xx = sum(r[1].get("2xx", 0) for r in rows)
    total_bad = sum(r[1].get("failed", 0) + r[1].get("errored", 0) + r[1].get("timeout", 0)
                    + r[1].get("3xx", 0) + r[1].get("4xx", 0) + r[1].get("5xx", 0) for r in rows)
    passed = not problems

    # ---- the report (stdout and --out) ----
    L = []
    L.append("## %s — %s" % (date, "PASS" if passed else "FAIL"))
    L.append("")
    L.append("- **Command**: `%s` (%d × `h2load --h1 -n %d -c %d http://127.0.0.1:PORT/`, GET / → "
             "esgate's cluster-info route → esdemo `GET /`), after %d uncounted warm-up batch(es) of %d "
             "until every worker had served requests" % (args.command, steps, args.step, args.conns, warmups, WARMUP))
    L.append("- **esgate**: 2 workers, `log: {level: warn}`%s, defaults otherwise; upstream `build/esdemo --port 0`"
             % (", `user: nobody`" if os.geteuid() == 0 else ""))
    L.append("- **Machine**: %d CPUs, kernel %s; load average %s at start, %s at end (shared machine); %.0f s of load"
             % (os.cpu_count(), platform.release(), load_start, load_end, elapsed))
    L.append("- **Requests**: %d sent, %d answered 2xx, %d not (non-2xx, failed, errored or timed out)"
             % (total_req, total_2xx, total_bad))
    L.append("")
    hdr = "| requests | req/s | 2xx | failed | " + " | ".join(
        "worker %d RSS KiB (anon; peak) / requests it served" % (i + 1) for i in range(len(workers))) + " |"
    L.append(hdr)
    L.append("|" + "---:|" * (4 + len(workers)))
    for cum, res, sample, batch in rows:
        cells = ["%d" % cum, "%.0f" % res.get("rps", 0), "%d" % res.get("2xx", 0),
                 "%d" % res["failed"] if "failed" in res else "? (h2load rc %s)" % res.get("rc")]
        for pid in workers:
            s = sample.get(pid)
            cells.append(("%d (%d; %d)" % s if s else "gone") + " / %d" % batch.get(pid, 0))
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("| worker | pid | RSS after %d | RSS after %d | limit | rule applied | verdict |" % (
        args.step, rows[-1][0]))
    L.append("|---|---:|---:|---:|---:|---|---|")
    for n, pid, base, end, limit, rule, ok in verdicts:
        L.append("| %d | %d | %s KiB | %s KiB | %s | %s | %s |" % (
            n, pid, base if base is not None else "-", end if end is not None else "-",
            "%d KiB" % limit if limit else "-", rule or "-", "**pass**" if ok else "**FAIL**"))
    L.append("")
    if problems:
        L.append("Failures:")
        L.extend("- %s" % p for p in problems)
        L.append("")
    L.append("esgate's log (level warn) had %d line(s)%s" % (len(loglines), ":" if loglines else "."))
    if loglines:
        L.append("")
        L.append("```")
        L.extend(loglines[:20])
        if len(loglines) > 20:
            L.append("... (%d more)" % (len(loglines) - 20))
        L.append("```")
    L.append("")
    text = "\n".join(L)
    print(text)

    new = not os.path.exists(args.out)
    with open(args.out, "a") as f:
        if new:
            f.write("# esgate soak runs\n\n"
                    "Appended by `bench/soak.sh` (`make soak`), one section per run, newest last.\n"
                    "The target (from the issue): after a million requests, each worker's RSS is within\n"
                    "10 % of its RSS after the first 100,000 (counted after a warm-up in which every worker\n"
                    "served requests), and every request succeeded.  RSS is read\n"
                    "once it has settled after each batch (a worker gives its free heap pages back a\n"
                    "second after its last client left); VmHWM, the peak, is shown beside it.\n\n")
        f.write(text + "\n")
    log("%s; appended to %s" % ("PASS" if passed else "FAIL", args.out))
    return 0 if passed else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--master", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--requests", type=int, default=1000000)
    p.add_argument("--step", type=int, default=100000)
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--log")
    p.add_argument("--out", required=True)
    p.add_argument("--command", default="bench/soak.sh")
    args = ap.parse_args()
    sys.exit(run(args))


if __name__ == "__main__":
    main()
