#!/usr/bin/python3
"""Write bench/RESULTS.md (to stdout) from the JSON bench.py run and
bench.py idle produced.  Stdlib only."""

import argparse
import json
import os
import platform
import re
import statistics

LOADS = [
    ("h1-ka-c64", "HTTP/1.1 keep-alive, 64 connections",
     "wrk -t2 -c64 -d{s}s --latency URL"),
    ("h1-ka-c256", "HTTP/1.1 keep-alive, 256 connections",
     "wrk -t2 -c256 -d{s}s --latency URL"),
    ("h1-close-c64", "HTTP/1.1 Connection: close, 64 connections",
     "wrk -t2 -c64 -d{s}s --latency -H 'Connection: close' URL"),
    ("h2-c16-m10", "HTTP/2 (prior knowledge), 16 connections x 10 streams",
     "h2load -c16 -m10 -D {s} --log-file=FILE URL"),
]
MiB = 1024.0


def med(vals):
    return statistics.median(vals) if vals else float("nan")


def rng(vals, fmt):
    """'median (min–max)' of VALS, formatted with FMT."""
    if not vals:
        return "–"
    if len(vals) == 1:
        return fmt % vals[0]
    return "%s (%s–%s)" % (fmt % med(vals), fmt % min(vals), fmt % max(vals))


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024.0 / 1024.0)
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = "?"
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(), "debian": debian, "mem": mem}


def read_meta(path):
    meta, key, buf = {}, None, []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if key:
                if line == "EOF":
                    meta[key] = "\n".join(buf)
                    key, buf = None, []
                else:
                    buf.append(line)
            elif line.endswith("<<EOF"):
                key = line[:-5]
            elif "=" in line:
                k, v = line.split("=", 1)
                meta[k] = v
    return meta


def verdict(ok_rounds, n_rounds, median_ok):
    if median_ok and ok_rounds == n_rounds:
        return "**met** (every round)"
    if median_ok:
        return "**met** on the median (%d of %d rounds)" % (ok_rounds, n_rounds)
    return "**missed** (%d of %d rounds met it)" % (ok_rounds, n_rounds)


def main():
    ap = argparse.ArgumentParser()
    for opt in ("raw", "idle", "meta", "nginx-conf", "upstream-conf", "esgate-conf", "esgate-cache-conf",
                "serverlogs"):
        ap.add_argument("--" + opt, required=True)
    # issue 21: system calls per request and the cost-growth table (optional:
    # an older run's raw data has neither)
    ap.add_argument("--syscalls")
    ap.add_argument("--growth")
    args = ap.parse_args()
    raw = json.load(open(args.raw))
    idle = json.load(open(args.idle))
    meta = read_meta(args.meta)
    m = machine()
    runs = raw["runs"]
    rounds = raw["rounds"]
    secs = raw["seconds"]

    def sel(target, load):
        return sorted((r for r in runs if r["target"] == target and r["load"] == load), key=lambda r: r["round"])

    def pairs(load):
        """(esgate run, nginx run) of each round."""
        e, n = sel("esgate", load), sel("nginx", load)
        return list(zip(e, n))

    def cache_pairs():
        """(esgate-cache run, nginx-cache run) of each round."""
        return list(zip(sel("esgate-cache", "h1-ka-c64-cache"), sel("nginx-cache", "h1-ka-c64-cache")))

    def cache_bound_ok(r):
        """At most workers/ttl a second: each worker fetches at most once per
        TTL, so a window of T seconds holds at most workers x (floor(T/ttl) + 1)."""
        window = r["upstream_requests"] / r["upstream_rps"] if r["upstream_rps"] else secs
        return r["upstream_requests"] <= r["cache_workers"] * (int(window / 1.0) + 1)

    out = []
    w = out.append
    w("# esgate benchmark: esgate vs nginx as a reverse proxy\n")
    w("Written by `bench/run.sh` (`make bench`) from one run; do not edit by hand.\n")
    w("- **Date**: %s (loads took %ss of the run's %ss)" % (raw["started"], "%d" % (len(runs) * secs),
                                                             meta.get("elapsed", "?")))
    w("- **Machine**: %s CPUs, %s, %s RAM; kernel %s; Debian %s" % (m["nproc"], m["cpu"], m["mem"], m["kernel"],
                                                                   m["debian"]))
    w("- **Load average** at start `%s`, at end `%s` — the machine is shared: see *Noise* below."
      % (raw["loadavg_start"], raw["loadavg_end"]))
    w("- **Command**: `%s`" % meta.get("command", "bench/run.sh"))
    w("- **Commit**: `%s` (the tree the esgate measured was built from)" % meta.get("commit", "?"))
    w("- **Versions**:")
    for line in meta.get("esgate_version", "").splitlines():
        w("  - %s" % line)
    for k in ("nginx_version", "wrk_version", "h2load_version", "python_version"):
        w("  - %s" % meta.get(k, "?"))
    w("")

    w("## Setup\n")
    w("All on 127.0.0.1, on this one %s-CPU machine: the load generator, the contender and the upstream share "
      "the CPUs, as they would not in production. Numbers are comparable between contenders *within a round*; "
      "absolute numbers are not portable.\n" % m["nproc"])
    w("- **Upstream** (stands in for Elasticsearch): nginx, 2 workers, `return 200` with the %d-byte JSON body "
      "esdemo answers for `GET /` (copied from a running esdemo at the start), `Content-Type` as esdemo's, "
      "`X-Elastic-Product: Elasticsearch`." % len_body(args.upstream_conf))
    depth = re.search(r"pipeline_depth: (\d+)", open(args.esgate_conf).read())
    w("- **esgate**: 2 workers, its built-in `GET /` (cluster_info) route → upstream `GET /`; %sdefaults otherwise "
      "(access log off, log level warn, `max_connections_per_node: 64` per worker, metrics on)." % (
          "`upstream.pipeline_depth: %s` (pipelining to the upstream, off by default: README, *Pipelining to the "
          "nodes*; every esgate of this run has it); " % depth.group(1) if depth else ""))
    w("- **nginx** (the reference): 2 workers, `proxy_pass http://upstream_pool` with `keepalive 64`, "
      "`proxy_http_version 1.1`, `proxy_set_header Connection \"\"`, access log off; HTTP/2 on a second port "
      "(`listen … http2`: nginx cannot serve HTTP/1.1 and prior-knowledge h2c on one port, esgate does). "
      "`keepalive_requests 1000000` on its client side and pool, and on the upstream: nginx's default of 1000 "
      "would close connections (HTTP/2 ones too) every 1000 requests, which esgate never does — this only "
      "helps nginx.")
    w("- **Rounds**: %d, each running every load for %ds against esgate and nginx back to back; esgate goes "
      "first in odd rounds, nginx in even ones. Each round also measures the upstream alone (the ceiling) "
      "and esgate with 1 worker. One unrecorded 1 s warm-up per contender and protocol before round 1." %
      (rounds, secs))
    w("- **CPU µs/request**: utime+stime of the contender's worker processes (children of its master, from "
      "`/proc/PID/stat`) after minus before the load, divided by the requests the load generator completed. "
      "The upstream's workers are measured the same way.")
    w("- **Errors**: wrk's non-2xx/3xx answers plus socket errors (connect, read, write, timeout); h2load's "
      "failed requests (4xx/5xx and errored). **p50/p99**: wrk `--latency`; for h2load, computed from its "
      "per-request `--log-file` (its own summary has only min/max/mean/sd, shown in the raw table).")
    w("- **RSS**: `VmRSS` of each worker from `/proc/PID/status` right after the 256-connection run "
      "(includes shared pages: esgate's metrics shared memory, nginx's inherited master memory).")
    w("")

    # ---- summary --------------------------------------------------------------
    w("## Summary\n")
    w("Median over %d rounds; the ratio is esgate/nginx within each round, median (min–max).\n" % rounds)
    w("| load | esgate req/s | nginx req/s | req/s ratio | p99 ms esgate / nginx | CPU µs/req esgate / nginx | "
      "errors esgate / nginx |")
    w("|---|---|---|---|---|---|---|")
    for load, title, _ in LOADS:
        p = pairs(load)
        es = [e for e, _ in p]
        ns = [n for _, n in p]
        w("| %s | %.0f | %.0f | %s× | %.2f / %.2f | %.1f / %.1f | %d / %d |" % (
            title, med(vals(es, "rps")), med(vals(ns, "rps")), rng([e["rps"] / n["rps"] for e, n in p], "%.2f"),
            med(vals(es, "p99_ms")), med(vals(ns, "p99_ms")), med(vals(es, "cpu_us_per_req")),
            med(vals(ns, "cpu_us_per_req")), sum(r["errors"] for r in es), sum(r["errors"] for r in ns)))
    w("")

    # ---- targets --------------------------------------------------------------
    w("## Targets (from the issue)\n")
    w("| target | measured (median over rounds, min–max) | verdict |")
    w("|---|---|---|")
    for load in ("h1-ka-c64", "h1-ka-c256"):
        p = pairs(load)
        ratios = [e["rps"] / n["rps"] for e, n in p]
        w("| HTTP/1.1 keep-alive req/s ≥ 1.0× nginx (%s) | %s× | %s |" % (
            load, rng(ratios, "%.2f"), verdict(sum(r >= 1.0 for r in ratios), len(ratios), med(ratios) >= 1.0)))
    for load in ("h1-ka-c64", "h1-ka-c256"):
        p = pairs(load)
        ratios = [e["cpu_us_per_req"] / n["cpu_us_per_req"] for e, n in p
                  if e["cpu_us_per_req"] and n["cpu_us_per_req"]]
        w("| HTTP/1.1 keep-alive CPU/request ≤ nginx (%s) | esgate %s µs vs nginx %s µs: %s× | %s |" % (
            load, "%.1f" % med(vals([e for e, _ in p], "cpu_us_per_req")),
            "%.1f" % med(vals([n for _, n in p], "cpu_us_per_req")),
            rng(ratios, "%.2f"), verdict(sum(r <= 1.0 for r in ratios), len(ratios), med(ratios) <= 1.0)))
    for load, _, _ in LOADS:
        p = pairs(load)
        ratios = [e["p99_ms"] / n["p99_ms"] for e, n in p]
        w("| p99 ≤ nginx (%s) | esgate %s ms vs nginx %s ms: %s× | %s |" % (
            load, "%.2f" % med([e["p99_ms"] for e, _ in p]), "%.2f" % med([n["p99_ms"] for _, n in p]),
            rng(ratios, "%.2f"), verdict(sum(r <= 1.0 for r in ratios), len(ratios), med(ratios) <= 1.0)))
    p = pairs("h2-c16-m10")
    ratios = [e["rps"] / n["rps"] for e, n in p]
    w("| HTTP/2 req/s ≥ 1.3× nginx | %s× | %s |" % (
        rng(ratios, "%.2f"), verdict(sum(r >= 1.3 for r in ratios), len(ratios), med(ratios) >= 1.3)))
    rss_e = [max(x["rss_kib"] for x in e["rss"]) / MiB for e in sel("esgate", "h1-ka-c256")]
    rss_n = [max(x["rss_kib"] for x in n["rss"]) / MiB for n in sel("nginx", "h1-ka-c256")]
    w("| esgate worker RSS ≤ 10 MiB after the 256-connection run | largest worker %s MiB (nginx's: %s MiB) | %s |"
      % (rng(rss_e, "%.1f"), rng(rss_n, "%.1f"),
         verdict(sum(r <= 10.0 for r in rss_e), len(rss_e), max(rss_e) <= 10.0)))
    cp = cache_pairs()
    ratios = [e["rps"] / n["rps"] for e, n in cp]
    w("| cache_ttl 1s on `GET /`: req/s ≥ 1.0× nginx `proxy_cache` (valid 1s, lock on), wrk -c64 | %s× | %s |" % (
        rng(ratios, "%.2f"), verdict(sum(r >= 1.0 for r in ratios), len(ratios), med(ratios) >= 1.0)))
    ok = [cache_bound_ok(e) for e, _ in cp]
    w("| upstream req/s ≤ workers/ttl (esgate: 2 workers / 1 s; in a T-second load at most "
      "workers × (⌊T/ttl⌋ + 1) requests, the window's edges included) | esgate %s req/s "
      "(nginx's shared cache: %s) | %s |" % (
          rng([e["upstream_rps"] for e, _ in cp], "%.2f"), rng([n["upstream_rps"] for _, n in cp], "%.2f"),
          verdict(sum(ok), len(ok), all(ok) if ok else False)))
    rl = list(zip(sel("esgate-redis", "h1-ka-c64"), sel("esgate-nolimit", "h1-ka-c64")))
    if rl:
        ratios = [e["rps"] / n["rps"] for e, n in rl]
        w("| `rate_limit` in Redis (set high, nothing refused) on a route: req/s ≥ 0.95× the same route "
          "without a limit, wrk -c64 | %s× | %s |" % (
              rng(ratios, "%.2f"), verdict(sum(r >= 0.95 for r in ratios), len(ratios), med(ratios) >= 0.95)))
    w("")
    w("Ratios are esgate/nginx, taken within each round and then summarised; \"met\" needs the median ratio "
      "on the right side of the target, \"every round\" says no round crossed it.\n")

    # The profile behind the misses is measured by hand (perf, strace), not
    # by this run: bench/PROFILE.md, dated, is copied in as it stands.
    profile = os.path.join(os.path.dirname(os.path.abspath(__file__)), "PROFILE.md")
    if os.path.exists(profile):
        with open(profile) as f:
            w(f.read().rstrip("\n") + "\n")

    # ---- per load ---------------------------------------------------------------
    peers_section(w, runs, rounds, LOADS)
    machine_section(w, runs, secs, m["nproc"], LOADS)
    if args.syscalls and os.path.exists(args.syscalls):
        syscalls_section(w, json.load(open(args.syscalls)))
    if args.growth and os.path.exists(args.growth):
        growth_section(w, json.load(open(args.growth)))

    w("## Results per load\n")
    for load, title, cmd in LOADS:
        p = pairs(load)
        es = [e for e, _ in p]
        ns = [n for _, n in p]
        w("### %s\n" % title)
        w("`%s`, %d rounds; median (min–max) over rounds.\n" % (cmd.format(s=secs), len(p)))
        w("| | esgate | nginx | esgate/nginx (per round) |")
        w("|---|---|---|---|")

        def row(label, key, fmt, ratio=True):
            ev = vals(es, key)
            nv = vals(ns, key)
            rt = rng([e[key] / n[key] for e, n in zip(es, ns) if e.get(key) is not None and n.get(key)],
                     "%.2f") + "×" if ratio else ""
            w("| %s | %s | %s | %s |" % (label, rng(ev, fmt), rng(nv, fmt), rt))
        row("requests/s", "rps", "%.0f")
        row("p50 latency, ms", "p50_ms", "%.2f")
        row("p99 latency, ms", "p99_ms", "%.2f")
        w("| errors (all rounds) | %s | %s | |" % (errs(es), errs(ns)))
        row("worker CPU, µs/request", "cpu_us_per_req", "%.1f")
        row("upstream CPU, µs/request", "upstream_cpu_us_per_req", "%.1f", ratio=False)
        if load == "h1-ka-c256":
            w("| worker VmRSS after the run, MiB (largest worker) | %s | %s | |" % (rng(rss_e, "%.1f"),
                                                                                  rng(rss_n, "%.1f")))
            for key, label in (("anon_kib", "anonymous (RssAnon)"), ("file_kib", "file-backed: binary, libraries "
                               "(RssFile)"), ("shmem_kib", "shared memory (RssShmem)")):
                w("| … of which %s, MiB (largest worker) | %s | %s | |" % (
                    label, rng([max(x[key] for x in e["rss"]) / MiB for e in es], "%.1f"),
                    rng([max(x[key] for x in n["rss"]) / MiB for n in ns], "%.1f")))
            if all("hwm_kib" in x for r in es + ns for x in r["rss"]):
                w("| worker peak RSS since it started (VmHWM), MiB (largest worker) | %s | %s | |" % (
                    rng([max(x["hwm_kib"] for x in e["rss"]) / MiB for e in es], "%.1f"),
                    rng([max(x["hwm_kib"] for x in n["rss"]) / MiB for n in ns], "%.1f")))
        w("| CPU used by other processes on the machine, %% | %s | %s | |" % (
            rng(vals(es, "foreign_cpu_pct"), "%.0f"), rng(vals(ns, "foreign_cpu_pct"), "%.0f")))
        w("")

    # ---- cached ----------------------------------------------------------------------
    cp = cache_pairs()
    if cp:
        es = [e for e, _ in cp]
        ns = [n for _, n in cp]
        w("## Cached: `GET /` with a 1 s micro-cache\n")
        w("`wrk -t2 -c64 -d%ds --latency`, HTTP/1.1 keep-alive, against a second esgate (2 workers, "
          "`cluster_info: {cache_ttl: 1s}`, which coalesces its misses) and a second nginx server block "
          "(`proxy_cache` with `proxy_cache_valid 200 1s` and `proxy_cache_lock on`, same upstream pool); "
          "interleaved like the others. The upstream's requests are counted at the upstream (nginx "
          "`stub_status`, read before and after each load, its own query subtracted). esgate's cache is per "
          "worker, so its bound is workers/ttl = 2/s; nginx's cache is shared by its workers.\n" % secs)
        w("| | esgate cache_ttl 1s | nginx proxy_cache 1s | esgate/nginx (per round) |")
        w("|---|---|---|---|")
        for label, key, fmt in (("requests/s", "rps", "%.0f"), ("p50 latency, ms", "p50_ms", "%.2f"),
                                ("p99 latency, ms", "p99_ms", "%.2f"),
                                ("worker CPU, µs/request", "cpu_us_per_req", "%.1f")):
            w("| %s | %s | %s | %s× |" % (label, rng(vals(es, key), fmt), rng(vals(ns, key), fmt),
                                         rng([e[key] / n[key] for e, n in cp if e.get(key) is not None and n.get(key)],
                                             "%.2f")))
        w("| errors (all rounds) | %s | %s | |" % (errs(es), errs(ns)))
        w("| upstream requests during the load | %s | %s | |" % (
            ", ".join(str(e["upstream_requests"]) for e in es), ", ".join(str(n["upstream_requests"]) for n in ns)))
        w("| upstream requests/s during the load | %s | %s | |" % (rng(vals(es, "upstream_rps"), "%.2f"),
                                                                 rng(vals(ns, "upstream_rps"), "%.2f")))
        w("")

    # ---- the Redis-backed limit ------------------------------------------------------
    rl = list(zip(sel("esgate-redis", "h1-ka-c64"), sel("esgate-nolimit", "h1-ka-c64")))
    if rl:
        es = [e for e, _ in rl]
        ns = [n for _, n in rl]
        w("## A rate limit kept in Redis\n")
        w("`wrk -t2 -c64 -d%ds --latency` against a fourth esgate (2 workers) with `rate_limit: {redis}` and two "
          "routes to the upstream's `GET /`: `/limited` with `rate_limit: {rate: 1000000/s}` (never refusing: "
          "each worker decides locally and reconciles with Redis every 5 ms) and `/plain`, the same route "
          "without a limit; interleaved like the others.\n" % secs)
        w("| | /limited (Redis) | /plain (no limit) | limited/plain (per round) |")
        w("|---|---|---|---|")
        for label, key, fmt in (("requests/s", "rps", "%.0f"), ("p50 latency, ms", "p50_ms", "%.2f"),
                                ("p99 latency, ms", "p99_ms", "%.2f"),
                                ("worker CPU, µs/request", "cpu_us_per_req", "%.1f")):
            w("| %s | %s | %s | %s× |" % (label, rng(vals(es, key), fmt), rng(vals(ns, key), fmt),
                                         rng([e[key] / n[key] for e, n in rl if e.get(key) is not None and n.get(key)],
                                             "%.2f")))
        w("| errors, refused included (all rounds) | %s | %s | |" % (errs(es), errs(ns)))
        w("| Redis round trips, errors, fallback decisions (esgate's counters after each load) | %s | | |" % (
            "; ".join("%s, %s, %s" % (e.get("redis_round_trips"), e.get("redis_errors"), e.get("redis_fallback"))
                      for e in es)))
        w("")

    # ---- ceiling --------------------------------------------------------------------
    w("## The upstream's ceiling\n")
    ceil = sel("upstream", "h1-ka-c64")
    w("The upstream nginx measured directly (`wrk -t2 -c64 -d%ds --latency`), once per round:\n" % secs)
    w("| round | upstream req/s | p99 ms | upstream CPU µs/req | fastest contender that round (req/s, load) | "
      "headroom |")
    w("|---|---|---|---|---|---|")
    for c in ceil:
        best = max((r for r in runs if r["round"] == c["round"] and r["target"] in ("esgate", "nginx")
                    and r["load"] in dict((x[0], 1) for x in LOADS)),
                   key=lambda r: r["rps"])
        w("| %d | %.0f | %.2f | %s | %.0f (%s, %s) | %.1f× |" % (
            c["round"] + 1, c["rps"], c["p99_ms"], num(c["cpu_us_per_req"]), best["rps"], best["target"], best["load"],
            c["rps"] / best["rps"]))
    w("")
    head = [c["rps"] / max((r["rps"] for r in runs if r["round"] == c["round"] and r["target"] in
                           ("esgate", "nginx")), default=1) for c in ceil]
    contenders = [r for r in runs if r["target"] in ("esgate", "nginx")]
    up_cost = med(vals(contenders, "upstream_cpu_us_per_req"))
    px_cost = med(vals(contenders, "cpu_us_per_req"))
    if head and min(head) >= 1.2:
        w("In every round the upstream alone served at least %.1f× what the fastest contender got through it, "
          "and while a contender ran the upstream's workers spent a median %.1f µs per request against the "
          "contenders' %.1f µs: the upstream is not the bottleneck. What limits every run is the %s CPUs that "
          "the load generator, the contender and the upstream share.\n" % (min(head), up_cost, px_cost, m["nproc"]))
    else:
        w("**Warning**: in some round the upstream alone served less than 1.2× what the fastest contender got "
          "through it (headroom %s): the upstream may have limited the contenders, and their ratios are "
          "then closer to 1 than they would be.\n" % ", ".join("%.2f×" % h for h in head))

    # ---- scaling --------------------------------------------------------------------
    w("## esgate scaling: 1 vs 2 workers\n")
    one = sel("esgate-1w", "h1-ka-c64")
    two = sel("esgate", "h1-ka-c64")
    w("`wrk -t2 -c64 -d%ds`, HTTP/1.1 keep-alive, same round:\n" % secs)
    w("| round | 1 worker req/s | 2 workers req/s | 2/1 | 1 worker CPU µs/req | 2 workers CPU µs/req |")
    w("|---|---|---|---|---|---|")
    sc = []
    for a, b in zip(one, two):
        sc.append(b["rps"] / a["rps"])
        w("| %d | %.0f | %.0f | %.2f× | %s | %s |" % (a["round"] + 1, a["rps"], b["rps"], b["rps"] / a["rps"],
                                                        num(a["cpu_us_per_req"]), num(b["cpu_us_per_req"])))
    w("")
    w("2 workers / 1 worker: %s×, median (min–max). The %s CPUs also run wrk's 2 threads and the upstream's 2 workers, so "
      "2× is not to be expected here; the CPU µs/request columns show whether a request costs a worker more "
      "when two share the machine.\n" % (rng(sc, "%.2f"), m["nproc"]))

    # ---- idle -----------------------------------------------------------------------
    w("## %d idle keep-alive connections\n" % idle["n"])
    w("A fresh esgate (2 workers, `keepalive_timeout: 300s` so none is closed while counting; otherwise as "
      "above) served 50 `GET /` first. Then a Python script (non-blocking sockets, at most 256 connecting at "
      "once) opened %d connections, sent `GET /healthz` on each, read the answer, and left them idle; 2 s later "
      "the workers' RSS was read, then all were closed (open-files limit %s).\n" % (idle["n"], idle["nofile_limit"]))
    w("- opened: %d (%d failed) in %.1f s; esgate's `esgate_connections_open` gauge then: %s (the /metrics "
      "request's own connection included); closed by esgate while idle: %d" % (
          idle["opened"], idle["failed"], idle["open_seconds"], idle["gauge_connections_open"],
          idle["closed_by_server_while_idle"]))
    w("")
    w("| worker | VmRSS before, MiB | with %d idle, MiB | after closing them, MiB | RssAnon before → with, MiB |"
      % idle["n"])
    w("|---|---|---|---|---|")
    tb = td = 0
    for b, d, a in zip(idle["before"], idle["during"], idle["after_close"]):
        tb += b["rss_kib"]
        td += d["rss_kib"]
        w("| pid %d | %.1f | %.1f | %.1f | %.1f → %.1f |" % (b["pid"], b["rss_kib"] / MiB, d["rss_kib"] / MiB,
                                                            a["rss_kib"] / MiB, b["anon_kib"] / MiB,
                                                            d["anon_kib"] / MiB))
    w("")
    w("Together: %.1f → %.1f MiB, i.e. %.2f KiB per idle connection.\n" % (
        tb / MiB, td / MiB, (td - tb) / max(idle["opened"], 1)))

    # ---- noise ------------------------------------------------------------------------
    w("## Noise\n")
    w("\"Other processes\" is the machine's busy CPU time during a run (`/proc/stat`) minus what the contender's "
      "workers, the upstream's workers and the load generator used, as a share of all CPUs. Other people's "
      "jobs ran on this machine; a run with a high share there is slower than it would be alone, for whichever "
      "contender it hit — hence the interleaving and the per-round ratios.\n")
    fo = vals(runs, "foreign_cpu_pct")
    w("Over all %d runs: median %.0f%%, min %.0f%%, max %.0f%%.\n" % (len(fo), med(fo), min(fo), max(fo)))

    # ---- raw --------------------------------------------------------------------------
    w("## Every run\n")
    w("| round | target | load | req/s | p50 ms | p99 ms | errors | worker CPU µs/req | upstream CPU µs/req | "
      "other CPU % | notes |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        notes = list(r.get("notes", []))
        if r.get("socket_errors") and any(r["socket_errors"].values()):
            notes.append("socket errors %s" % r["socket_errors"])
        if r.get("non2xx"):
            notes.append("non-2xx %d" % r["non2xx"])
        if "time_for_request" in r:
            t = r["time_for_request"]
            notes.append("h2load time for request: min %s max %s mean %s sd %s" % (t["min"], t["max"], t["mean"],
                                                                                   t["sd"]))
        if "rss" in r:
            notes.append("VmRSS KiB " + ", ".join(str(x["rss_kib"]) for x in r["rss"]))
        up = r.get("upstream_cpu_us_per_req")
        w("| %d | %s | %s | %.0f | %.2f | %.2f | %d | %s | %s | %s | %s |" % (
            r["round"] + 1, r["target"], r["load"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"],
            num(r["cpu_us_per_req"]), num(up), num(r["foreign_cpu_pct"], "%.0f"), "; ".join(notes)))
    w("")

    # ---- configs --------------------------------------------------------------------
    w("## Configuration used\n")
    w("esgate (2 workers; the 1-worker one differs in `workers`, the idle one in `keepalive_timeout`):\n")
    w("```yaml\n%s```\n" % open(args.esgate_conf).read())
    w("esgate with the cache (the cached scenario):\n")
    w("```yaml\n%s```\n" % open(args.esgate_cache_conf).read())
    w("nginx, the contender (the second server block is the cached scenario's):\n")
    w("```nginx\n%s```\n" % open(args.nginx_conf).read())
    w("nginx, the upstream (body shortened here):\n")
    w("```nginx\n%s```\n" % shorten_body(open(args.upstream_conf).read()))
    logs = open(args.serverlogs).read().strip()
    w("Server logs (esgate at warn, nginx's error logs at warn): %s\n" % (
        "empty." if not logs else "\n\n```\n%s\n```" % logs))
    print("\n".join(out))


# ---- issue 21: every row against its strongest peer ------------------------------

ROW_PEERS = {
    "h1-ka-c64": ("nginx", "haproxy"),
    "h1-ka-c256": ("nginx", "haproxy"),
    "h1-close-c64": ("nginx", "haproxy"),
    "h2-c16-m10": ("haproxy", "nghttpx", "h2o", "nginx"),
    "h1-ka-c64-cache": ("varnish", "nginx-cache"),
}


# What each row's issue asks of esgate against its best peer (req/s ratio):
# issue 21's table; the micro-cache row's target is the better of Varnish
# and nginx proxy_cache.
ROW_TARGET = {"h1-ka-c64": 1.15, "h1-ka-c256": 1.0, "h1-close-c64": 1.0, "h2-c16-m10": 1.3, "h1-ka-c64-cache": 1.5}


def row_contenders(runs, load, keep=lambda r: True):
    """A row's esgate target name, its KEEP runs by contender, the peers
    that ran, and the best of them (highest median req/s; None when esgate
    or every peer is missing)."""
    me = "esgate-cache" if load.endswith("-cache") else "esgate"
    by = {}
    for r in runs:
        if r["load"] == load and keep(r):
            by.setdefault(r["target"], []).append(r)
    peers = [p for p in ROW_PEERS.get(load, ()) if p in by]
    best = max(peers, key=lambda p: med([r["rps"] for r in by[p]])) if me in by and peers else None
    return me, by, peers, best


def machine_section(w, runs, secs, ncpu, loads):
    """Where the machine's CPU went per request, contender by contender:
    the proxy's own processes, the upstream's, the load generator's, and the
    rest of the machine (kernel threads, softirq work not charged to a
    process, other users), medians over the rounds.  On two CPUs req/s is
    bounded by the sum, so esgate's lead over a peer is the peer's sum over
    esgate's, at equal idle time; the last two columns read the model
    backwards: esgate's ratio if its own processes cost nothing, and the
    own CPU it would need for the row's target."""
    rows = [(load, title) for load, title, _ in loads] + [("h1-ka-c64-cache", "micro-cache, GET / (1 s), 64 connections")]
    if not any(r.get("foreign_cpu_pct") is not None for r in runs):
        return
    w("## What the rest of the machine costs\n")
    w("µs of CPU per request, median over the rounds: the contender's processes (*own*), the upstream's "
      "(*upstream*), the load generator's (*generator*), and everything else the machine did meanwhile (*rest*: "
      "kernel threads, softirq work charged to no process, anyone else's processes); *idle* is the share of "
      "the %d CPUs' time nobody used.  On this machine req/s ≈ (busy CPU time) / (the four summed), so a "
      "row's ratio is bounded by the peer's sum over esgate's.  For esgate: the ratio to the row's best peer "
      "if esgate's own CPU were 0 (the others' and the idle share as measured), and the own CPU that the "
      "row's target would need, by the same model.\n" % ncpu)
    w("| row | contender | own | upstream | generator | rest | sum | idle % | esgate/best at 0 µs own | own µs for the target |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for load, title in rows:
        me, by, peers, best = row_contenders(
            runs, load, lambda r: r.get("foreign_cpu_pct") is not None and r.get("cpu_us_per_req"))
        if best is None:
            continue
        cost = {}
        for t in [me] + peers:
            parts = []
            for r in by[t]:
                n = max(r["requests"], 1)
                run_s = r["requests"] / r["rps"] if r["rps"] else secs
                parts.append((r["cpu_us_per_req"], r.get("upstream_cpu_us_per_req") or 0.0,
                              r["gen_cpu_s"] * 1e6 / n, r["foreign_cpu_pct"] / 100.0 * run_s * ncpu * 1e6 / n,
                              100.0 - r["machine_busy_pct"]))
            cost[t] = [med([p[i] for p in parts]) for i in range(5)]
        for t in [me] + peers:
            own, up, gen, rest, idle = cost[t]
            total = own + up + gen + rest
            extra = ("", "")
            if t == me:
                p_own, p_up, p_gen, p_rest, p_idle = cost[best]
                p_total = p_own + p_up + p_gen + p_rest
                busy, p_busy = 100.0 - idle, 100.0 - p_idle
                others = up + gen + rest
                at0 = (busy / others) / (p_busy / p_total) if others > 0 and p_busy > 0 else None
                target = ROW_TARGET.get(load)
                need = busy * p_total / (target * p_busy) - others if target and p_busy > 0 else None
                extra = ("%.2f×" % at0 if at0 else "?",
                         ("%.1f (×%.2f)" % (need, target)) if need is not None and need > 0 else
                         ("none (×%.2f)" % target if need is not None else "?"))
            w("| %s | %s%s | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %s | %s |" % (
                title if t == me else "", t, " (best peer)" if t == best else "", own, up, gen, rest, total, idle,
                extra[0], extra[1]))
    w("")


def peers_section(w, runs, rounds, loads):
    """Per row: every contender's median req/s, p99, CPU µs/request and
    errors, and esgate's ratio to the best peer of the row within each
    round (the peer with the higher median req/s), median (min-max)."""
    rows = [(load, title) for load, title, _ in loads] + [("h1-ka-c64-cache", "micro-cache, GET / (1 s), 64 connections")]
    if not any(r["target"] in ("haproxy", "nghttpx", "h2o", "varnish") for r in runs):
        return
    w("## Against the strongest peer of each row\n")
    w("Median over %d rounds (min–max); the contenders of a row take turns, each round in another order. "
      "The ratio is esgate's req/s over the best peer's (the peer with the highest median), round by round; "
      "CPU µs/request is the contender's processes' utime+stime over the requests completed.\n" % rounds)
    w("| row | contender | req/s | p99 ms | CPU µs/req | errors | esgate/best req/s |")
    w("|---|---|---|---|---|---|---|")
    for load, title in rows:
        me, by, peers, best = row_contenders(runs, load)
        if best is None:
            continue
        mine = {r["round"]: r for r in by[me]}
        ratios = [mine[r["round"]]["rps"] / r["rps"] for r in by[best] if r["round"] in mine and r["rps"]]
        for t in [me] + peers:
            rs = by[t]
            w("| %s | %s%s | %s | %s | %s | %d | %s |" % (
                title if t == me else "", t, " (best peer)" if t == best else "",
                rng([r["rps"] for r in rs], "%.0f"), rng([r["p99_ms"] for r in rs], "%.2f"),
                rng(vals(rs, "cpu_us_per_req"), "%.1f") if vals(rs, "cpu_us_per_req") else "?",
                sum(r["errors"] for r in rs), rng(ratios, "%.2f") + "×" if t == me and ratios else ""))
    w("")


def syscalls_section(w, rows):
    w("## System calls per request\n")
    w("A short separate run of each contender under `strace -c -f` (all threads of its workers), never during "
      "the timed runs: strace slows what it traces several times over, so only the count per request means "
      "something here.\n")
    w("| contender | load | calls/request | largest |")
    w("|---|---|---|---|")
    for r in rows:
        top = ", ".join("%s %.2f" % kv for kv in list(r["by_call"].items())[:5])
        w("| %s | %s | %.2f | %s |" % (r["target"], r["load"], r["syscalls_per_req"], top))
    w("")


def growth_section(w, growth):
    w("## Cost growth\n")
    w("esgate alone (2 workers), one input growing at a time, %d s per point (h2load --h1). A row that grows "
      "faster than its input is a finding; route matching should stay flat in the number of routes.\n"
      % growth["seconds"])
    w("| input | value | req/s | p99 ms | CPU µs/req | note |")
    w("|---|---|---|---|---|---|")
    for p in growth["points"]:
        note = []
        if p.get("cpu_us_per_kib") is not None:
            note.append("%.1f µs per KiB parsed, checked and re-serialised" % p["cpu_us_per_kib"])
        if p.get("non2xx"):
            note.append("%d non-2xx" % p["non2xx"])
        if p.get("idle_failed"):
            note.append("%d idle connections failed to open" % p["idle_failed"])
        w("| %s | %s | %.0f | %.2f | %s | %s |" % (p["dimension"], p["x"], p["rps"], p["p99_ms"],
                                                   num(p.get("cpu_us_per_req")), "; ".join(note)))
    w("")


def vals(rs, key):
    """The KEY values of RS that were measured (None: a worker died)."""
    return [r[key] for r in rs if r.get(key) is not None]


def num(x, fmt="%.1f"):
    return "–" if x is None else fmt % x


def errs(rs):
    total = sum(r["errors"] for r in rs)
    if not total:
        return "0"
    non2xx = sum(r["non2xx"] for r in rs)
    return "%d (%d non-2xx, %d without answer)" % (total, non2xx, total - non2xx)


def len_body(conf_path):
    text = open(conf_path).read()
    i = text.index("return 200 '") + len("return 200 '")
    return len(text[i:text.index("';", i)].encode())


def shorten_body(text):
    i = text.index("return 200 '") + len("return 200 '")
    j = text.index("';", i)
    return text[:i] + text[i:i + 60] + "…" + text[j:]


if __name__ == "__main__":
    main()
