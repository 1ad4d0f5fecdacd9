#!/usr/bin/python3
"""check_boot.py - esgate's Debian package under a real systemd (`make check-boot`).

    /usr/bin/python3 tests/boot/check_boot.py [--build build] [--cache DIR] [--keep]

Builds the package twice (this tree's version, and a newer one for the
upgrade), boots a Debian 12 container with systemd as PID 1
(systemd-nspawn -b, sharing the host's network), installs the package with
apt and drives it as an operator would, asserting each step:

  install        apt install ./esgate_V.deb: the esgate user, the conffile
                 (root:esgate 0640), esgate.service enabled and started
                 (esgate.socket not enabled)
  boot           after a reboot the enabled unit runs and answers
  reload         `systemctl reload` under load (wrk): zero failed requests,
                 the new worker count
  broken reload  a broken file is refused with FILE:LINE:COLUMN in
                 `journalctl -u esgate`; the old configuration still serves
  usr2           `systemctl kill -s USR2 --kill-who=main` under load:
                 MainPID moves to the new master, the unit stays active
                 (also past WatchdogSec), zero failed requests, the old
                 master gone, systemd refused no notification
  logrotate      logrotate -f: the access log moves aside, USR1 reopens it,
                 no line lost
  warnings       `journalctl -u esgate -p warning` shows warnings and worse
                 only, and does show them
  security       `systemd-analyze security esgate.service` <= 2.0
  stop           `systemctl stop` after the upgrade: Result=success within
                 TimeoutStopSec
  socket         esgate.socket: the first connection starts the service on
                 systemd's socket
  tls            a TLS listener whose root-only (0600) key reaches the
                 service through the shipped LoadCredential= drop-in: HTTPS
                 answers, the esgate user cannot read the file, a reload
                 re-reads the credential, a broken one is refused
  upgrade        apt install of the newer package under load: a binary
                 upgrade (USR2) by postinst, zero failed requests, the new
                 version serves, the edited conffile kept
  remove, purge  the service stopped and gone; purge removes the
                 configuration and logs

The container's root file system is made once with `debootstrap
--variant=minbase` (Debian's mirror as this machine's apt is configured)
into --cache (default /var/cache/esgate-boot), keyed by what it holds, and
copied for each run; a run starts from a clean copy.  Nothing in the
container needs the network: the package's dependencies are in the cached
file system.  Ports are free ports of the host (the network is shared).

If systemd-nspawn cannot boot a container here, every step FAILS: this
check never passes without having run.  Prints "ok"/"FAIL" per assertion,
then "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = "bookworm"
# What the container holds besides the package's own dependencies.
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "logrotate"]
MAX_EXPOSURE = 2.0
WATCHDOG_SEC = 4  # test drop-in: a master that stops pinging shows within the run

passed = 0
failed = 0
_section = [None, 0.0]


def section(name):
    """Prints how long the previous section took, and starts NAME."""
    now = time.monotonic()
    if _section[0] is not None:
        print("# %s: %.1fs" % (_section[0], now - _section[1]), flush=True)
    _section[0], _section[1] = name, now


def ok(what):
    global passed
    passed += 1
    print("ok   %s" % what, flush=True)


def fail(what, detail=""):
    global failed
    failed += 1
    print("FAIL %s" % what, flush=True)
    if detail:
        print("\n".join("     " + line for line in str(detail).rstrip().splitlines()[-40:]), flush=True)


def check(cond, what, detail=""):
    if cond:
        ok(what)
    else:
        fail(what, detail)
    return cond


class Abort(Exception):
    """A step that cannot go on: the rest of the run is skipped (and fails)."""


def run(cmd, timeout=600, check_rc=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=timeout, **kw)
    out = p.stdout.decode("utf-8", "replace")
    if check_rc and p.returncode != 0:
        raise Abort("%s exited %d:\n%s" % (" ".join(cmd), p.returncode, out[-3000:]))
    return p.returncode, out


def free_port():
    """A free port below the kernel's ephemeral range.  esgate's own port is
    given up while the socket unit holds another, and restarted after: a port
    from the ephemeral range (what bind(0) hands out) may meanwhile become the
    local port of some client's connection, whose TIME_WAIT then refuses the
    bind (seen with ~25,000 TIME_WAIT sockets on a busy machine)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    low = max(low, 2048)
    for _ in range(200):
        port = random.randrange(max(1024, low // 2), low)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise Abort("no free port below %d" % low)


def wait_for(pred, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Abort("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def http(port, path="/", timeout=5, headers=None, scheme="http", context=None):
    req = urllib.request.Request("%s://127.0.0.1:%d%s" % (scheme, port, path), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return None, str(e).encode()


# ---- the root file system -------------------------------------------------------

def host_mirror():
    """The Debian mirror this machine's apt uses for SUITE, or None (then
    debootstrap's own default)."""
    uris = []
    try:
        for name in sorted(os.listdir("/etc/apt/sources.list.d")):
            if name.endswith(".sources"):
                text = open(os.path.join("/etc/apt/sources.list.d", name)).read()
                for stanza in re.split(r"\n\s*\n", text):
                    if re.search(r"^Suites:.*\b%s\b" % SUITE, stanza, re.M) and \
                            re.search(r"^Types:.*\bdeb\b", stanza, re.M):
                        m = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                        if m and "security" not in m.group(1):
                            uris.append(m.group(1))
    except OSError:
        pass
    for path in ["/etc/apt/sources.list"]:
        try:
            for line in open(path):
                m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+%s\s" % SUITE, line)
                if m:
                    uris.append(m.group(1))
        except OSError:
            pass
    return uris[0] if uris else None


def deb_depends(deb):
    """The package names a .deb depends on (first of each alternative)."""
    _, out = run(["dpkg-deb", "-f", deb, "Depends"])
    names = []
    for item in out.split(","):
        name = item.split("|")[0].strip().split(" ")[0].split(":")[0]
        if name:
            names.append(name)
    return names


def rootfs(cache, packages):
    """The cached minbase root file system holding PACKAGES, made if missing."""
    key = hashlib.sha256(("%s %s" % (SUITE, " ".join(sorted(packages)))).encode()).hexdigest()[:12]
    path = os.path.join(cache, "%s-%s" % (SUITE, key))
    if os.path.isfile(os.path.join(path, ".complete")):
        return path, False
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="debootstrap-", dir=cache)
    os.chmod(tmp, 0o755)  # the container's "/": mkdtemp's 0700 locks out every user but root
    cmd = ["debootstrap", "--variant=minbase", "--include=" + ",".join(sorted(packages)), SUITE, tmp]
    mirror = host_mirror()
    if mirror:
        cmd.append(mirror)
    t0 = time.monotonic()
    rc, out = run(cmd, timeout=1200, check_rc=False)
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise Abort("debootstrap failed (%d):\n%s" % (rc, out[-3000:]))
    # The container runs no getty on the console, and answers to its own name.
    open(os.path.join(tmp, "etc/hostname"), "w").write("esgate-boot\n")
    subprocess.run(["ln", "-sf", "/dev/null", os.path.join(tmp, "etc/systemd/system/console-getty.service")])
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "dpkg-db-backup.timer"):
        subprocess.run(["ln", "-sf", "/dev/null", os.path.join(tmp, "etc/systemd/system", unit)])
    open(os.path.join(tmp, ".complete"), "w").write("%s\n%s\n" % (" ".join(cmd), time.ctime()))
    try:
        os.rename(tmp, path)
    except OSError:  # another run made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    print("# debootstrap: %.0fs, %s" % (time.monotonic() - t0, path), flush=True)
    return path, True


# ---- the container -----------------------------------------------------------------

class Container:
    def __init__(self, root, name, logdir):
        self.root, self.name, self.logdir = root, name, logdir
        self.proc = None
        self.leader = None
        self.boots = 0

    def boot(self):
        self.boots += 1
        log = open(os.path.join(self.logdir, "nspawn-%d.log" % self.boots), "wb")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--boot", "--directory", self.root, "--machine", self.name,
             "--register=no", "--keep-unit"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.leader = None
        t0 = time.monotonic()

        def up():
            if self.proc.poll() is not None:
                raise Abort("systemd-nspawn exited (%d) while booting:\n%s" % (
                    self.proc.returncode, open(log.name, errors="replace").read()[-3000:]))
            try:
                kids = open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)).read().split()
            except OSError:
                return None
            if not kids:
                return None
            self.leader = int(kids[0])
            rc, out = self.sh("systemctl is-system-running", check_rc=False, timeout=10)
            return out.strip() in ("running", "degraded")

        wait_for(up, 90, "the container to boot (systemctl is-system-running)", interval=0.2)
        return time.monotonic() - t0

    def run(self, argv, timeout=120, check_rc=True, input_text=None):
        if self.leader is None:
            raise Abort("the container is not running")
        p = subprocess.run(["nsenter", "--target", str(self.leader), "--all"] + argv,
                           input=input_text.encode() if input_text is not None else None,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "SYSTEMD_PAGER": "",
                                "SYSTEMD_COLORS": "0"})
        out = p.stdout.decode("utf-8", "replace")
        if check_rc and p.returncode != 0:
            raise Abort("in the container: %s exited %d:\n%s" % (" ".join(argv), p.returncode, out[-3000:]))
        return p.returncode, out

    def sh(self, script, **kw):
        return self.run(["/bin/sh", "-c", script], **kw)

    def write(self, path, text):
        self.run(["/bin/sh", "-c", 'cat >"$1"', "sh", path], input_text=text)

    def prop(self, unit, *names):
        _, out = self.run(["systemctl", "show", unit] + ["-p" + n for n in names])
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def poweroff(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.run(["systemctl", "poweroff"], check_rc=False, timeout=30)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
        self.leader = None

    def kill(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # nspawn: a clean shutdown of the container
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# ---- load -----------------------------------------------------------------------------

class Wrk:
    """wrk on the host against PORT for SECONDS, HTTP/1.1 keep-alive; counts
    every failure: non-2xx/3xx answers and socket errors (connect, read,
    write, timeout)."""

    def __init__(self, port, seconds, logdir, name, path="/", connections=32):
        self.out = os.path.join(logdir, "wrk-%s.txt" % name)
        self.proc = subprocess.Popen(
            ["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency",
             "http://127.0.0.1:%d%s" % (port, path)], stdout=open(self.out, "wb"), stderr=subprocess.STDOUT)

    def result(self):
        self.proc.wait(120)
        text = open(self.out, errors="replace").read()
        m = re.search(r"(\d+) requests in", text)
        requests = int(m.group(1)) if m else 0
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
        non2xx = int(m.group(1)) if m else 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        sock = sum(int(x) for x in m.groups()) if m else 0
        return requests, non2xx + sock, text


# ---- the steps ---------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--cache", default=os.environ.get("ESGATE_BOOT_CACHE", "/var/cache/esgate-boot"))
    ap.add_argument("--keep", action="store_true", help="keep the run's directory (container, logs)")
    args = ap.parse_args()
    t_start = time.monotonic()
    build = os.path.join(ROOT, args.build)
    outdir = os.path.join(build, "boot")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    print("# check-boot: logs in %s" % outdir, flush=True)

    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "wrk", "dpkg-buildpackage"):
        if shutil.which(tool) is None:
            fail("%s not found: the boot test cannot run (make check-boot installs it)" % tool)
            return
    esdemo_bin = os.path.join(build, "esdemo")
    if not os.access(esdemo_bin, os.X_OK):
        fail("%s missing (make builds it)" % esdemo_bin)
        return

    runroot = None
    ct = None
    esdemo = None
    try:
        # The two packages: this version, and a newer one for the upgrade.
        t0 = time.monotonic()
        debdir = os.path.join(outdir, "deb")
        _, out = run([os.path.join(ROOT, "debian/build-deb.sh"), debdir], timeout=900)
        deb1 = out.strip().splitlines()[-1]
        v1 = re.search(r"esgate_(.+)_[^_]+\.deb$", deb1).group(1)
        v2 = v1 + "+boot1"
        _, out = run([os.path.join(ROOT, "debian/build-deb.sh"), debdir, v2], timeout=900,
                     env=dict(os.environ, LINTIAN="0"))
        deb2 = out.strip().splitlines()[-1]
        print("# packages: %s, %s (%.0fs)" % (os.path.basename(deb1), os.path.basename(deb2),
                                             time.monotonic() - t0), flush=True)

        t0 = time.monotonic()
        cached, made = rootfs(args.cache, BASE_PACKAGES + deb_depends(deb1))
        print("# root file system: %s (%s)" % (cached, "made" if made else "cached"), flush=True)
        runroot = tempfile.mkdtemp(prefix="run-", dir=args.cache)
        root = os.path.join(runroot, "root")
        run(["cp", "-a", "--reflink=auto", cached, root])
        os.remove(os.path.join(root, ".complete"))
        os.makedirs(os.path.join(root, "srv/esgate-test"))
        for d in (deb1, deb2):
            shutil.copy(d, os.path.join(root, "srv/esgate-test"))
        print("# copied the root file system: %.1fs" % (time.monotonic() - t0), flush=True)

        ct = Container(root, "esgate-boot-%d" % os.getpid(), outdir)
        try:
            took = ct.boot()
        except Abort as e:
            fail("systemd-nspawn -b cannot boot a Debian 12 container on this machine", str(e))
            raise
        ok("systemd-nspawn -b: Debian 12 booted with systemd as PID 1 (%.1fs)" % took)
        _, pid1 = ct.run(["cat", "/proc/1/comm"])
        check(pid1.strip() == "systemd", "PID 1 in the container is systemd", pid1)

        esdemo, esdemo_port = start_esdemo(esdemo_bin, outdir)
        expect_root = http(esdemo_port, "/")[1]

        steps(ct, esdemo_port, expect_root, outdir, v1, v2)
    except Abort as e:
        fail("check-boot stopped", str(e))
    finally:
        if ct is not None:
            try:
                _, j = ct.run(["journalctl", "--no-pager", "-o", "short-precise"], check_rc=False, timeout=30)
                open(os.path.join(outdir, "journal.txt"), "w").write(j)
            except (Abort, subprocess.SubprocessError, OSError):
                pass
            ct.kill()
        if esdemo is not None:
            esdemo.terminate()
            esdemo.wait(5)
        if runroot is not None and not args.keep:
            shutil.rmtree(runroot, ignore_errors=True)
        print("# check-boot: %.0fs" % (time.monotonic() - t_start), flush=True)


def start_esdemo(binary, outdir):
    p = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=open(os.path.join(outdir, "esdemo.log"), "wb"), stdin=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    m = re.match(r"esdemo listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        raise Abort("esdemo did not start: %r" % line)
    return p, int(m.group(1))


def config(port, upstream_port, workers):
    return ("# written by tests/boot/check_boot.py\n"
            "listen: [127.0.0.1:%d]\n"
            "workers: %d\n"
            "graceful_timeout: 5s\n"
            "keepalive_timeout: 5s\n"
            "access_log: {file: /var/log/esgate/access.log, format: combined}\n"
            "upstream:\n"
            "  nodes: [http://127.0.0.1:%d]\n") % (port, workers, upstream_port)


def status(port):
    s, body = http(port, "/_esgate/status")
    return json.loads(body) if s == 200 else None


def cgroup_pids(ct):
    _, out = ct.run(["cat", "/sys/fs/cgroup/unified/system.slice/esgate.service/cgroup.procs"], check_rc=False)
    if not out.strip() or "No such file" in out:
        _, out = ct.run(["cat", "/sys/fs/cgroup/system.slice/esgate.service/cgroup.procs"], check_rc=False)
    return sorted(int(x) for x in out.split() if x.isdigit())


def journal(ct, *extra):
    _, out = ct.run(["journalctl", "-u", "esgate", "--no-pager", "-o", "cat"] + list(extra), check_rc=False)
    return out


def watch_state(ct, seconds, every=0.1):
    """ActiveState/SubState of esgate.service every EVERY s for SECONDS:
    the set of states seen."""
    seen = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        p = ct.prop("esgate.service", "ActiveState", "SubState")
        seen.add("%s/%s" % (p.get("ActiveState"), p.get("SubState")))
        time.sleep(every)
    return seen


def steps(ct, up, expect_root, outdir, v1, v2):
    deb1 = "/srv/esgate-test/esgate_%s_amd64.deb" % v1
    deb2 = "/srv/esgate-test/esgate_%s_amd64.deb" % v2

    section("install")
    # -- install ------------------------------------------------------------------
    default_port_free = True
    try:
        s = socket.socket()
        s.bind(("127.0.0.1", 8080))
        s.close()
    except OSError:
        default_port_free = False
    rc, out = ct.run(["apt-get", "install", "-y", "--no-install-recommends", deb1], check_rc=False, timeout=300)
    if not check(rc == 0, "apt install ./esgate_%s_amd64.deb" % v1, out):
        raise Abort("the package did not install")
    _, out = ct.run(["getent", "passwd", "esgate"], check_rc=False)
    check(re.match(r"esgate:x:\d+:\d+:[^:]*:/nonexistent:/usr/sbin/nologin$", out.strip()),
          "the esgate system user exists (sysusers)", out)
    _, out = ct.run(["stat", "-c", "%U:%G %a", "/etc/esgate/esgate.yaml"])
    check(out.strip() == "root:esgate 640", "/etc/esgate/esgate.yaml is root:esgate 0640", out)
    _, out = ct.run(["dpkg-query", "-W", "-f", "${Conffiles}", "esgate"])
    check("/etc/esgate/esgate.yaml" in out and "/etc/logrotate.d/esgate" in out,
          "esgate.yaml and the logrotate file are conffiles", out)
    _, en = ct.run(["systemctl", "is-enabled", "esgate.service"], check_rc=False)
    _, en_sock = ct.run(["systemctl", "is-enabled", "esgate.socket"], check_rc=False)
    check(en.strip() == "enabled" and en_sock.strip() == "disabled",
          "esgate.service enabled, esgate.socket not", en + en_sock)
    state = ct.prop("esgate.service", "ActiveState")["ActiveState"]
    if default_port_free:
        check(state == "active" and http(8080, "/healthz")[0] == 200,
              "started on install with the shipped configuration (127.0.0.1:8080)", journal(ct))
    else:
        j = journal(ct)
        check(state != "active" and "cannot listen on 127.0.0.1:8080: Address already in use" in j,
              "started on install with the shipped configuration: 127.0.0.1:8080 is taken on this host "
              "(shared network), and the journal says so", j)

    section("boot")
    # -- our configuration, then a reboot -------------------------------------------
    port = free_port()
    ct.write("/etc/esgate/esgate.yaml", config(port, up, 2))
    # A short watchdog, so that a master that stops pinging (after a USR2)
    # is caught within this run; the shipped unit says 30s.
    ct.run(["mkdir", "-p", "/etc/systemd/system/esgate.service.d"])
    ct.write("/etc/systemd/system/esgate.service.d/test-watchdog.conf",
             "[Service]\nWatchdogSec=%ds\n" % WATCHDOG_SEC)
    ct.poweroff()
    took = ct.boot()
    ok("rebooted (%.1fs)" % took)
    p = ct.prop("esgate.service", "ActiveState", "UnitFileState", "MainPID", "StatusText")
    s, body = http(port, "/")
    check(p["ActiveState"] == "active" and p["UnitFileState"] == "enabled" and (s, body) == (200, expect_root),
          "boot: the enabled unit started at boot and answers GET / on 127.0.0.1:%d" % port,
          "%r %r %r\n%s" % (p, s, body[:200], journal(ct)))
    check(re.match(r"generation 1: 2 of 2 worker\(s\) ready", p["StatusText"]), "boot: STATUS= says 2 of 2 ready",
          p["StatusText"])

    section("reload")
    # -- reload under load -----------------------------------------------------------
    main0 = p["MainPID"]
    load = Wrk(port, 8, outdir, "reload")
    time.sleep(2)
    ct.write("/etc/esgate/esgate.yaml", config(port, up, 3))
    t0 = time.monotonic()
    rc, out = ct.run(["systemctl", "reload", "esgate"], check_rc=False, timeout=60)
    check(rc == 0, "reload: systemctl reload esgate exits 0 (%.2fs)" % (time.monotonic() - t0), out)
    wait_for(lambda: (lambda st: st and st["generation"] == 2 and
                      sum(1 for w in st["workers"] if w["generation"] == 2 and w["state"] == "ready") == 3)(
        status(port)), 15, "3 ready workers of generation 2")
    requests, failures, text = load.result()
    check(requests > 1000 and failures == 0,
          "reload under load: %d requests, %d failed" % (requests, failures), text)
    p = ct.prop("esgate.service", "ActiveState", "MainPID", "StatusText")
    workers = [w for w in status(port)["workers"] if w["state"] == "ready"]
    check(len(workers) == 3 and all(w["generation"] == 2 for w in workers) and p["MainPID"] == main0 and
          p["StatusText"].startswith("generation 2: 3 of 3 worker(s) ready; last reload: ok"),
          "reload: 3 workers of generation 2, same main process, STATUS= updated", "%r %r" % (p, workers))

    section("broken reload")
    # -- a broken file on reload ------------------------------------------------------
    good = config(port, up, 3)
    ct.write("/etc/esgate/esgate.yaml", good.replace("workers: 3", "workers: lots"))
    rc, out = ct.run(["systemctl", "reload", "esgate"], check_rc=False, timeout=60)
    j = journal(ct)
    m = re.search(r"/etc/esgate/esgate\.yaml:(\d+):(\d+): .*workers", j)
    check(rc != 0 and m is not None,
          "broken reload: refused, journalctl -u esgate shows FILE:LINE:COLUMN (%s)" % (m.group(0) if m else "-"),
          out + j[-2000:])
    p = ct.prop("esgate.service", "ActiveState", "MainPID")
    check(p["ActiveState"] == "active" and p["MainPID"] == main0 and http(port, "/")[0] == 200 and
          status(port)["generation"] == 2, "broken reload: still active, generation 2 serving", repr(p))
    ct.write("/etc/esgate/esgate.yaml", good)

    section("usr2")
    # -- USR2 under load ----------------------------------------------------------------
    old = ct.prop("esgate.service", "MainPID")["MainPID"]
    old_pids = cgroup_pids(ct)
    load = Wrk(port, 10, outdir, "usr2")
    time.sleep(2)
    t0 = time.monotonic()
    ct.run(["systemctl", "kill", "-s", "USR2", "--kill-who=main", "esgate"])
    new = wait_for(lambda: (lambda m: m if m not in (old, "0") else None)(
        ct.prop("esgate.service", "MainPID")["MainPID"]), 20, "MainPID to move")
    moved = time.monotonic() - t0
    wait_for(lambda: int(old) not in cgroup_pids(ct), 20, "the old master to exit")
    gone = time.monotonic() - t0
    states = watch_state(ct, WATCHDOG_SEC + 1.5)  # past the watchdog period
    requests, failures, text = load.result()
    p = ct.prop("esgate.service", "ActiveState", "SubState", "MainPID", "StatusText", "NRestarts")
    check(new != old and p["MainPID"] == new,
          "usr2: MainPID moved %s -> %s (%.2fs), the old master gone after %.2fs" % (old, new, moved, gone))
    check(states == {"active/running"} and p["ActiveState"] == "active" and p["NRestarts"] == "0",
          "usr2: the unit stayed active/running, also past WatchdogSec=%ds (states seen: %s)" % (
              WATCHDOG_SEC, ", ".join(sorted(states))), repr(p) + "\n" + journal(ct)[-3000:])
    check("binary upgrade from pid %s" % old in p["StatusText"],
          "usr2: STATUS= is the new master's: %r" % p["StatusText"])
    check(requests > 1000 and failures == 0, "usr2 under load: %d requests, %d failed" % (requests, failures), text)
    check(not set(old_pids) & set(cgroup_pids(ct)), "usr2: none of the old processes is left",
          "%s %s" % (old_pids, cgroup_pids(ct)))
    _, sysj = ct.run(["journalctl", "-u", "esgate", "--no-pager", "-o", "cat", "_PID=1"], check_rc=False)
    check(not re.search(r"reception only permitted|Watchdog timeout|stop-sigterm|Killing process", sysj),
          "usr2: systemd refused no notification and killed nothing", sysj[-2000:])

    section("logrotate")
    # -- logrotate ----------------------------------------------------------------------
    tag = "rot%d" % os.getpid()
    for i in range(50):
        http(port, "/healthz", headers={"X-Request-Id": "%s-a-%d" % (tag, i)})
    rc, out = ct.run(["logrotate", "-f", "/etc/logrotate.d/esgate"], check_rc=False)
    check(rc == 0, "logrotate -f /etc/logrotate.d/esgate", out)
    wait_for(lambda: ct.run(["test", "-e", "/var/log/esgate/access.log"], check_rc=False)[0] == 0, 5,
             "a new access.log")
    for i in range(50):
        http(port, "/healthz", headers={"X-Request-Id": "%s-b-%d" % (tag, i)})
    time.sleep(0.5)
    _, rotated = ct.run(["cat", "/var/log/esgate/access.log.1"], check_rc=False)
    _, current = ct.run(["cat", "/var/log/esgate/access.log"], check_rc=False)
    _, owner = ct.run(["stat", "-c", "%U:%G %a", "/var/log/esgate/access.log"], check_rc=False)
    a_old, b_old = rotated.count(tag + "-a-"), rotated.count(tag + "-b-")
    a_new, b_new = current.count(tag + "-a-"), current.count(tag + "-b-")
    check(a_old + a_new == 50 and b_new == 50 and b_old == 0 and a_old > 0,
          "logrotate: access.log.1 has the earlier lines (%d), access.log the later ones (%d), none lost" % (
              a_old, b_new), "%d %d %d %d" % (a_old, a_new, b_old, b_new))
    check(owner.strip() == "esgate:esgate 640", "logrotate: the new access.log is esgate:esgate 0640", owner)

    section("warnings")
    # -- the warnings, and the journal's priorities -----------------------------------
    ct.run(["systemctl", "kill", "-s", "TTOU", "--kill-who=main", "esgate"])
    ct.run(["systemctl", "kill", "-s", "TTOU", "--kill-who=main", "esgate"])
    ct.run(["systemctl", "kill", "-s", "TTOU", "--kill-who=main", "esgate"])  # 3 -> 1, then "keeping the last"
    wait_for(lambda: "keeping the last worker" in journal(ct, "-p", "warning"), 10, "the TTOU warning")
    _, jw = ct.run(["journalctl", "-u", "esgate", "--no-pager", "-o", "json", "-p", "warning",
                    "SYSLOG_IDENTIFIER=esgate"], check_rc=False)
    entries = [json.loads(line) for line in jw.splitlines() if line.startswith("{")]
    msgs = [e.get("MESSAGE", "") for e in entries]
    check(entries and all(int(e.get("PRIORITY", 9)) <= 4 for e in entries) and
          not [m for m in msgs if "[info]" in m or "[debug]" in m] and
          any("[warn]" in m and "keeping the last worker" in m for m in msgs) and
          any(re.match(r"esgate: /etc/esgate/esgate\.yaml:\d+:\d+: ", m) for m in msgs),
          "journalctl -u esgate -p warning: %d entries, warnings and errors only" % len(entries), "\n".join(msgs))
    info = journal(ct, "-p", "info")
    check("[info]" in info, "journalctl -u esgate -p info has the [info] lines the above leaves out")
    ct.run(["systemctl", "kill", "-s", "TTIN", "--kill-who=main", "esgate"])

    section("security")
    # -- systemd-analyze security --------------------------------------------------------
    _, out = ct.run(["systemd-analyze", "security", "--no-pager", "esgate.service"], check_rc=False)
    m = re.search(r"Overall exposure level for esgate\.service: (\d+\.\d+)", out)
    check(m and float(m.group(1)) <= MAX_EXPOSURE,
          "systemd-analyze security esgate.service: %s <= %.1f" % (m.group(1) if m else "?", MAX_EXPOSURE),
          out[-2000:])

    section("stop")
    # -- stop (the main process is the USR2's new master: not systemd's child) ------------
    p = ct.prop("esgate.service", "TimeoutStopUSec")
    limit = parse_usec(p["TimeoutStopUSec"])
    load = Wrk(port, 3, outdir, "stop", connections=8)
    time.sleep(1)
    t0 = time.monotonic()
    rc, out = ct.run(["systemctl", "stop", "esgate"], check_rc=False, timeout=limit + 30)
    took = time.monotonic() - t0
    load.result()
    p = ct.prop("esgate.service", "ActiveState", "Result", "ExecMainStatus")
    check(rc == 0 and p["Result"] == "success" and p["ActiveState"] == "inactive" and took < limit,
          "stop: Result=success in %.2fs (TimeoutStopSec=%.0fs)" % (took, limit), "%r\n%s" % (p, out))
    check(cgroup_pids(ct) == [] and http(port, "/healthz")[0] is None, "stop: nothing left running or listening")

    section("socket")
    # -- socket activation -----------------------------------------------------------
    sport = free_port()
    ct.run(["mkdir", "-p", "/etc/systemd/system/esgate.socket.d"])
    ct.write("/etc/systemd/system/esgate.socket.d/test.conf",
             "[Socket]\nListenStream=\nListenStream=127.0.0.1:%d\n" % sport)
    ct.run(["systemctl", "daemon-reload"])
    ct.run(["systemctl", "start", "esgate.socket"])
    p = ct.prop("esgate.service", "ActiveState")
    check(p["ActiveState"] == "inactive", "socket: esgate.socket listening, esgate.service not started yet",
          repr(p))
    s, body = http(sport, "/", timeout=15)
    # a worker answers as soon as it serves; the master says READY=1 (and
    # systemd "active") once every worker has: poll, do not race it
    deadline = time.monotonic() + 15
    while True:
        p = ct.prop("esgate.service", "ActiveState", "TriggeredBy")
        if p["ActiveState"] != "activating" or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    j = journal(ct)
    check((s, body) == (200, expect_root) and p["ActiveState"] == "active" and "esgate.socket" in p["TriggeredBy"] and
          "socket activation: 1 socket(s) from systemd replace \"listen\"" in j and http(port, "/")[0] is None,
          "socket: the first connection started esgate.service on systemd's 127.0.0.1:%d (listen: ignored)" % sport,
          "%r %r %r" % (s, body[:100], p))
    ct.run(["systemctl", "stop", "esgate.socket", "esgate.service"])
    ct.run(["rm", "-r", "/etc/systemd/system/esgate.socket.d"])
    ct.run(["systemctl", "daemon-reload"])
    ct.run(["systemctl", "start", "esgate.service"])
    wait_for(lambda: http(port, "/healthz")[0] == 200, 15, "esgate to serve again")

    section("tls")
    # -- a TLS listener whose key reaches the service as a systemd credential -----------
    # The key stays 0600 root:root; systemd/esgate-tls.conf's LoadCredential=
    # hands a copy to the service (User=esgate), for esgate -t, the start and
    # each reload.
    tport = free_port()
    tdir = tempfile.mkdtemp(prefix="tls-", dir=outdir)
    key, crt = os.path.join(tdir, "key.pem"), os.path.join(tdir, "cert.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", crt, "-days", "30", "-subj", "/CN=esgate-boot",
         "-addext", "subjectAltName=IP:127.0.0.1"])
    ct.run(["mkdir", "-p", "/etc/esgate/tls"])
    ct.write("/etc/esgate/tls/cert.pem", open(crt).read())
    ct.sh("umask 077 && cat >/etc/esgate/tls/key.pem", input_text=open(key).read())
    # The drop-in the package ships, pointed at this key.
    ct.sh("sed 's|^LoadCredential=esgate-tls.key:.*|LoadCredential=esgate-tls.key:/etc/esgate/tls/key.pem|' "
          "/usr/share/doc/esgate/examples/esgate-tls.conf >/etc/systemd/system/esgate.service.d/tls.conf")
    _, dropin = ct.run(["grep", "-c", "^LoadCredential=esgate-tls.key:/etc/esgate/tls/key.pem$",
                        "/etc/systemd/system/esgate.service.d/tls.conf"], check_rc=False)
    check(dropin.strip() == "1", "tls: the package ships the LoadCredential= drop-in "
          "(/usr/share/doc/esgate/examples/esgate-tls.conf)", dropin)
    ct.write("/etc/esgate/esgate.yaml", good.replace(
        "listen: [127.0.0.1:%d]\n" % port,
        "listen:\n  - 127.0.0.1:%d\n  - address: 127.0.0.1:%d\n    tls: {certificate: /etc/esgate/tls/cert.pem,"
        " key: $CREDENTIALS_DIRECTORY/esgate-tls.key}\n" % (port, tport)))
    ct.run(["systemctl", "daemon-reload"])
    rc, out = ct.run(["systemctl", "restart", "esgate.service"], check_rc=False, timeout=60)
    _, mode = ct.run(["stat", "-c", "%U:%G %a", "/etc/esgate/tls/key.pem"])
    rc_read, _ = ct.run(["runuser", "-u", "esgate", "--", "cat", "/etc/esgate/tls/key.pem"], check_rc=False)
    tls_ctx = ssl.create_default_context(cafile=crt)
    s, body = http(tport, "/", scheme="https", context=tls_ctx)
    check(rc == 0 and mode.strip() == "root:root 600" and rc_read != 0 and (s, body) == (200, expect_root),
          "tls: the key (root:root 0600, unreadable to the esgate user) reaches the service through "
          "LoadCredential=; GET / over TLS on 127.0.0.1:%d" % tport,
          "%d %r %d %r %r\n%s" % (rc, mode, rc_read, s, body[:200], out + journal(ct)[-2000:]))
    gen = status(port)["generation"]
    rc, out = ct.run(["systemctl", "reload", "esgate"], check_rc=False, timeout=60)
    st = wait_for(lambda: (lambda st: st if st and st["generation"] == gen + 1 and
                           all(w["generation"] == gen + 1 for w in st["workers"] if w["state"] == "ready")
                           else None)(status(port)), 15, "generation %d" % (gen + 1))
    s, body = http(tport, "/", scheme="https", context=tls_ctx)
    check(rc == 0 and st is not None and (s, body) == (200, expect_root),
          "tls: systemctl reload re-reads the credential (generation %d), TLS still answers" % (gen + 1),
          "%d %r %r\n%s" % (rc, s, body[:200], out + journal(ct)[-2000:]))
    # With the drop-in a reload is the HUP alone: the master refuses a broken
    # file itself and keeps the generation that runs.
    tls_good = ct.run(["cat", "/etc/esgate/esgate.yaml"])[1]
    ct.write("/etc/esgate/esgate.yaml", tls_good.replace("workers: 3", "workers: lots"))
    ct.run(["systemctl", "reload", "esgate"], check_rc=False, timeout=60)
    j = wait_for(lambda: (lambda j: j if re.search(r"/etc/esgate/esgate\.yaml:\d+:\d+: .*workers", j) and
                          "reload failed" in j else None)(journal(ct, "-p", "err")), 15,
                 "the refused reload in the journal")
    s, body = http(tport, "/", scheme="https", context=tls_ctx)
    check(status(port)["generation"] == gen + 1 and (s, body) == (200, expect_root),
          "tls: a broken file on reload is refused by the master (journalctl -u esgate -p err: FILE:LINE:COLUMN), "
          "generation %d keeps serving TLS" % (gen + 1), j[-2000:])
    ct.run(["rm", "-r", "/etc/systemd/system/esgate.service.d/tls.conf", "/etc/esgate/tls"])
    ct.write("/etc/esgate/esgate.yaml", good)
    ct.run(["systemctl", "daemon-reload"])
    ct.run(["systemctl", "restart", "esgate.service"])
    wait_for(lambda: http(port, "/healthz")[0] == 200, 15, "esgate to serve again")

    section("upgrade")
    # -- package upgrade under load --------------------------------------------------------
    old = ct.prop("esgate.service", "MainPID")["MainPID"]
    load = Wrk(port, 12, outdir, "upgrade")
    time.sleep(2)
    rc, out = ct.run(["apt-get", "install", "-y", "--no-install-recommends", deb2], check_rc=False, timeout=300)
    check(rc == 0 and "esgate: binary upgraded without a restart (main process %s -> " % old in out,
          "upgrade: apt install ./esgate_%s_amd64.deb over %s: postinst did a binary upgrade" % (v2, v1), out)
    requests, failures, text = load.result()
    check(requests > 1000 and failures == 0, "upgrade under load: %d requests, %d failed" % (requests, failures),
          text)
    st = status(port)
    p = ct.prop("esgate.service", "ActiveState", "MainPID", "NRestarts")
    check(st and st["version"] == v2 and p["ActiveState"] == "active" and p["MainPID"] != old and
          p["NRestarts"] == "0", "upgrade: version %s serves, unit active, not restarted" % v2, "%r %r" % (st, p))
    _, conf = ct.run(["cat", "/etc/esgate/esgate.yaml"])
    _, ver = ct.run(["dpkg-query", "-W", "-f", "${Version}", "esgate"])
    check(conf == good and ver == v2, "upgrade: dpkg has %s, the edited esgate.yaml kept" % ver)

    section("remove")
    # -- remove, purge -------------------------------------------------------------------
    rc, out = ct.run(["apt-get", "remove", "-y", "esgate"], check_rc=False, timeout=120)
    _, files = ct.sh("for f in /usr/sbin/esgate /lib/systemd/system/esgate.service /etc/esgate/esgate.yaml; do "
                     "test -e $f && echo $f; done", check_rc=False)
    p = ct.prop("esgate.service", "ActiveState", "LoadState")
    check(rc == 0 and p["ActiveState"] == "inactive" and files.split() == ["/etc/esgate/esgate.yaml"] and
          http(port, "/healthz")[0] is None,
          "remove: stopped, binary and unit gone, configuration kept", "%s\n%r\n%s" % (out[-1500:], p, files))
    rc, out = ct.run(["apt-get", "purge", "-y", "esgate"], check_rc=False, timeout=120)
    _, left = ct.sh("ls -d /etc/esgate /var/log/esgate 2>/dev/null; dpkg -l esgate 2>&1 | tail -1",
                    check_rc=False)
    check(rc == 0 and "/etc/esgate" not in left and "/var/log/esgate" not in left,
          "purge: configuration and logs gone", out[-1500:] + left)
    section(None)


def parse_usec(text):
    """systemd's '40s' / '1min 30s' / '90000000' into seconds."""
    if text.isdigit():
        return int(text) / 1e6
    total = 0.0
    for num, unit in re.findall(r"([\d.]+)\s*(min|ms|us|s|h)", text):
        total += float(num) * {"h": 3600, "min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


if __name__ == "__main__":
    main()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed or not passed else 0)
