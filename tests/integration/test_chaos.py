"""Chaos: about 40 s of seeded random faults under keep-alive load, against
three esdemo nodes and esgate: kill -9 of workers, HUP (sometimes with a new
worker count), TTIN/TTOU, nodes stopped (SIGSTOP/SIGCONT) or killed and
restarted (never all three at once).  esgate must keep answering, fail only
requests a fault explains, and end as it began: same master fds, same RSS
(give or take), exactly the configured workers.

ESGATE_CHAOS_SEED=N replays a schedule (the seed is printed);
ESGATE_CHAOS_SECONDS changes the length of the chaos (default 40)."""

import collections
import os
import random
import re
import signal
import time

from harness import Load, fd_links, make_config, rss_kb, wait_for

THREADS = 6
NODES = 3
UPSTREAM = {"node_backoff": "200ms", "node_backoff_max": "1s", "max_retries": "3",
            # A SIGSTOPped node accepts but never answers: its requests time
            # out and, being reads, move on to another node.
            "retry_on_timeout": "true"}
MIN_AGE = 2.2      # kill only workers this old: a younger one dying is a boot failure (backoff)
EXPLAIN = 6.0      # a failure up to this long after a fault is the fault's (1 s timeout x retries)
MAX_GAP = 2.0      # never longer than this without a successful request


def _kind(text):
    """TEXT with its numbers as N, so that failures group by kind."""
    return re.sub(r"\d+", "N", text)[:120]


def _age(pid):
    """Seconds since PID started, or 0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except OSError:
        return 0.0
    return uptime - int(st[st.rindex(")") + 2:].split()[19]) / os.sysconf("SC_CLK_TCK")


def _asan(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def test_chaos_under_load(ctx):
    seed = int(os.environ.get("ESGATE_CHAOS_SEED") or random.SystemRandom().randrange(1, 2 ** 31))
    duration = float(os.environ.get("ESGATE_CHAOS_SECONDS", "40"))
    print("chaos: seed %d (ESGATE_CHAOS_SEED=%d replays it), %.0f s" % (seed, seed, duration), flush=True)
    rng = random.Random(seed)

    nodes = [ctx.esdemo("--name", "n%d" % i) for i in range(NODES)]
    ports = [d.port for d in nodes]
    urls = ["http://127.0.0.1:%d" % p for p in ports]

    def config(workers):
        return make_config(nodes=urls, workers=workers, request_timeout="1s", connect_timeout="200ms",
                           upstream=UPSTREAM)

    g = ctx.esgate(config(2), workers=2)
    asan = _asan(g.pid)
    faults = {}        # node index -> (kind, end time)
    kills = hups = ttx = node_faults = 0
    file_workers = want = 2  # the file's worker count; the one the master heads for
    windows = []       # [start, end] of each fault that may fail requests (end None: not over)
    owners = []        # the node index of each window (None: a worker kill)

    def end_fault(i):
        kind, _ = faults.pop(i)
        if kind == "stop":
            os.kill(nodes[i].proc.pid, signal.SIGCONT)
        else:
            nodes[i] = ctx.esdemo("--port", str(ports[i]), "--name", "n%d" % i,
                                  name="n%d-restart%d" % (i, node_faults))
            assert nodes[i].port == ports[i], (i, ports[i], nodes[i].port)
        for k, (s, e) in enumerate(windows):
            if e is None and owners[k] == i:
                windows[k] = (s, time.monotonic() + EXPLAIN)

    try:
        with Load(g.port, threads=THREADS) as load:
            load.wait_ok(200)
            base_fds = fd_links(g.pid)
            base_rss = rss_kb(g.pid)
            t_start = time.monotonic()
            deadline = t_start + duration
            while time.monotonic() < deadline:
                now = time.monotonic()
                for i in [i for i, (_, until) in faults.items() if now >= until]:
                    end_fault(i)
                action = rng.choices(["kill", "hup", "ttin", "ttou", "node"], weights=[4, 2, 2, 2, 3])[0]
                if action == "kill":
                    old = [p for p in g.workers() if _age(p) >= MIN_AGE]
                    if old:
                        victim = rng.choice(sorted(old))
                        try:
                            os.kill(victim, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        else:
                            kills += 1
                            windows.append((now, now + EXPLAIN))
                            owners.append(None)
                elif action == "hup":
                    if rng.random() < 0.5:
                        file_workers = rng.randint(1, 3)
                        g.write_config(config(file_workers))
                    # The file's count: a reload drops TTIN/TTOU changes.
                    want = file_workers
                    g.signal(signal.SIGHUP)
                    hups += 1
                elif action == "ttin" and want < 4:
                    g.signal(signal.SIGTTIN)
                    want += 1
                    ttx += 1
                elif action in ("ttin", "ttou"):
                    g.signal(signal.SIGTTOU)
                    want = max(1, want - 1)
                    ttx += 1
                elif action == "node":
                    up = [i for i in range(NODES) if i not in faults]
                    if len(up) > 1:  # never all three down
                        i = rng.choice(up)
                        kind = rng.choice(["stop", "kill"])
                        if kind == "stop":
                            os.kill(nodes[i].proc.pid, signal.SIGSTOP)
                        else:
                            nodes[i].proc.kill()
                            nodes[i].proc.wait(5)
                        faults[i] = (kind, now + rng.uniform(0.5, 3.0))
                        node_faults += 1
                        windows.append((now, None))
                        owners.append(i)
                time.sleep(rng.uniform(0.3, 1.0))
            t_chaos_end = time.monotonic()

            # Settle: every node back, the file's 2 workers, one last generation.
            for i in list(faults):
                end_fault(i)
            g.write_config(config(2))
            g.signal(signal.SIGHUP)
            hups += 1
            # Each HUP is one "reloading" line and one generation more.
            g.wait_log(r"\[info\] master\[%d\]: reloading " % g.pid, count=hups, timeout=10)
            gen = hups + 1
            g.wait_log(r"configuration OK: starting generation %d with 2 worker\(s\)$" % gen, timeout=10)
            g.wait_log(r"generation %d serving; draining \d+ old worker\(s\)$" % gen, timeout=20)

            def final_workers():
                ws = g.workers()
                return ws if len(ws) == 2 and all(
                    g.count(r"worker \d+ \(pid %d\) started, generation %d$" % (p, gen)) for p in ws) else None

            final = wait_for(final_workers, 20, "exactly the 2 workers of generation %d" % gen)
            load.wait_ok(200, timeout=10)
            t_end = time.monotonic()

            def same_fds():
                return len(fd_links(g.pid)) == len(base_fds)

            try:
                wait_for(same_fds, 10, "the master's fd count to be back to %d" % len(base_fds))
            except AssertionError:
                now_fds = fd_links(g.pid)
                raise AssertionError("master fds: %d at the start, %d at the end; new: %s; gone: %s" % (
                    len(base_fds), len(now_fds),
                    sorted((fd, t) for fd, t in now_fds.items() if base_fds.get(fd) != t),
                    sorted((fd, t) for fd, t in base_fds.items() if now_fds.get(fd) != t)))
            end_rss = rss_kb(g.pid)
    finally:
        for i, (kind, _) in list(faults.items()):
            if kind == "stop":
                os.kill(nodes[i].proc.pid, signal.SIGCONT)
    time.sleep(1.0)  # nothing to poll for: no respawn, no leftover
    assert sorted(g.workers()) == sorted(final), (final, g.workers())
    assert g.proc.poll() is None, "the master died"

    failures = load.failures
    total = load.ok() + len(failures)
    print("chaos: seed %d, master fds %d -> %d, VmRSS %d -> %d kB, max gap %.2f s" % (
        seed, len(base_fds), len(fd_links(g.pid)), base_rss, end_rss, load.max_gap(t_start, t_end)), flush=True)
    by_kill = sum(1 for t, _ in failures if any(
        o is None and s - 0.1 <= t <= e for (s, e), o in zip(windows, owners)))
    print("chaos: %d failure(s) near a worker kill, %d only near a node fault" % (
        by_kill, len(failures) - by_kill), flush=True)
    for what, n in collections.Counter(_kind(d) for _, d in failures).most_common():
        print("chaos: %d x %s" % (n, what), flush=True)
    print("chaos: %d requests, %d failed, %d worker kills, %d HUPs, %d TTIN/TTOU, %d node faults" % (
        total, len(failures), kills, hups, ttx, node_faults), flush=True)

    gap = load.max_gap(t_start, t_end)
    assert gap <= MAX_GAP, "no successful request for %.2f s (seed %d)" % (gap, seed)
    budget = (kills + node_faults) * THREADS
    assert len(failures) <= budget, "%d failed requests > %d (seed %d), first: %s" % (
        len(failures), budget, seed, failures[:3])
    unexplained = [f for f in failures
                   if not any(s - 0.1 <= f[0] <= (e if e is not None else t_end) for s, e in windows)]
    assert not unexplained, "%d failure(s) away from any worker kill or node fault (seed %d): %s" % (
        len(unexplained), seed, [(round(t - t_start, 2), d) for t, d in unexplained[:5]])
    assert t_chaos_end - t_start >= duration - 0.1
    limit = 16384 if asan else 2048
    assert end_rss - base_rss <= limit, "master VmRSS %d kB -> %d kB (+%d kB > %d kB, seed %d)" % (
        base_rss, end_rss, end_rss - base_rss, limit, seed)
