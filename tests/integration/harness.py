"""harness.py - helpers for esgate's integration tests (Python 3 stdlib only).

A test function receives a Context (`ctx`): everything it starts through
ctx is stopped and checked by ctx.teardown(), which run.py calls after the
test, pass or fail:
  * esgate gets SIGTERM and must exit 0 within 10 s (else SIGKILL + fail),
  * esdemo is stopped,
  * the esgate log must not contain "[crit]" or sanitizer/segfault reports.
"""

import fcntl
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("ESGATE_BUILD", "build"))
ESGATE = os.path.join(BUILD, "esgate")
ESDEMO = os.path.join(BUILD, "esdemo")
# The AddressSanitizer + UBSan build (make SANITIZE=1 builds into build/asan):
# its shadow memory and quarantine make RSS figures mean something else.
ASAN = os.path.basename(os.path.normpath(BUILD)) == "asan" or "asan" in os.environ.get("ESGATE_BUILD", "")

# Anything here in an esgate log fails the test.
BAD_LOG_MARKERS = ("[crit]", "AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer", "Segmentation")

# ESGATE_WRAP: a command esgate runs under, split as a shell would (e.g.
# "valgrind --trace-children=yes ..."), after any argv_prefix; default none.
# ESGATE_TIME_SCALE: every harness timeout (wait_for, HTTP, Load, stop) is
# multiplied by it, for a slow wrapper; default 1.
WRAP = shlex.split(os.environ.get("ESGATE_WRAP", ""))
TIME_SCALE = float(os.environ.get("ESGATE_TIME_SCALE", "1"))

HTTP_TIMEOUT = 10.0 * TIME_SCALE


class TestFailure(AssertionError):
    pass


def wait_for(pred, timeout, what, interval=0.02):
    """Polls pred() until it returns a truthy value; returns it.  Raises on
    timeout (TIMEOUT x ESGATE_TIME_SCALE)."""
    timeout *= TIME_SCALE
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# free_port() hands out ports below the kernel's ephemeral range, in turn,
# from a counter that every test process on the machine shares (a file, under
# flock).  A port that bind(port 0) picked comes from that range: between its
# close and esgate's bind, any connect() on the machine (the test running
# beside, its clients, an esgate's connections to its nodes) may take it as
# its source port, or the other test's free_port() may pick it again.  One CI
# run failed so: a TLS listener's bind found the address in use.
PORTS_FILE = os.path.join(tempfile.gettempdir(), "esgate-test-ports")
PORTS_LOW = 20000


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port with nothing bound to it, that no other free_port() call on the
    machine hands out again soon and no outgoing connection takes."""
    span = _ephemeral_low() - PORTS_LOW
    if span < 1000:  # an odd machine: take what the kernel picks
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port
    fd = os.open(PORTS_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            n = int(os.pread(fd, 32, 0) or b"0")
        except ValueError:
            n = 0
        for _ in range(span):
            port = PORTS_LOW + n % span
            n += 1
            if _bindable(port):
                break
        else:
            raise TestFailure("free_port: every port from %d to %d is taken" % (PORTS_LOW, PORTS_LOW + span - 1))
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d" % (n % span), 0)
    finally:
        os.close(fd)
    return port


def check_clean(text, what):
    """Fails if TEXT (a log or stderr) has a crit line or a sanitizer report."""
    for marker in BAD_LOG_MARKERS:
        if marker in text:
            raise TestFailure("%s contains %r" % (what, marker))


def tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


# ---- plain HTTP helpers -------------------------------------------------

def request(port, method="GET", path="/", body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request on a fresh connection: (status, headers dict lower-cased, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def get(port, path="/", timeout=HTTP_TIMEOUT):
    return request(port, "GET", path, timeout=timeout)


def read_response(f, head=False, require_length=False):
    """One HTTP/1.x response from a buffered socket file: (status, headers
    dict lower-cased, body bytes).  HEAD: no body is read.  A response
    without a length (h2o's own plain errors may close instead) is read to
    EOF, or with REQUIRE_LENGTH (pipelined keep-alive reads, where EOF never
    comes) fails the test."""
    status_line = f.readline()
    if not status_line:
        raise TestFailure("connection closed before a response")
    parts = status_line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        line = f.readline().decode("latin-1")
        if line in ("\r\n", "\n", ""):
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if head or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    elif require_length:
        raise TestFailure("response without a length: %r" % headers)
    else:
        body = f.read()
    return status, headers, body


def raw_request(port, method, target, headers=None, body=None, timeout=HTTP_TIMEOUT):
    """Sends the request line "METHOD TARGET HTTP/1.1" byte for byte (no
    normalisation of TARGET, which may be bytes), with Host, Connection:
    close and Content-Length for BODY, on a fresh connection; returns
    read_response()'s (status, headers, body)."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(("%s: %s" % (k, v)).encode("latin-1"))
    if body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    data = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        f = s.makefile("rb")
        try:
            return read_response(f, head=(method == "HEAD"))
        finally:
            f.close()
    finally:
        s.close()


def send_and_read_all(port, data, timeout=HTTP_TIMEOUT):
    """Sends DATA on a fresh connection and returns every byte that comes
    back until the server closes it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                return got
            got += b
    finally:
        s.close()


def json_error(status_got, headers, body, status, etype=None):
    """Checks an esgate error answer: STATUS, JSON {"error":{"type","reason"},"status"}
    (and the type ETYPE if given); returns the document."""
    if status_got != status:
        raise TestFailure("status %d, want %d: %r" % (status_got, status, body[:300]))
    if not headers.get("content-type", "").startswith("application/json"):
        raise TestFailure("%d answer is not JSON: headers %r body %r" % (status, headers, body[:300]))
    try:
        doc = json.loads(body)
    except ValueError:
        raise TestFailure("%d answer is not JSON: %r" % (status, body[:300]))
    err = doc.get("error") if isinstance(doc, dict) else None
    if not (isinstance(err, dict) and isinstance(err.get("type"), str) and err["type"]
            and isinstance(err.get("reason"), str) and err["reason"] and doc.get("status") == status):
        raise TestFailure("malformed error document: %r" % doc)
    if etype is not None and err["type"] != etype:
        raise TestFailure("error type %r, want %r: %r" % (err["type"], etype, doc))
    return doc


# ---- /proc ----------------------------------------------------------------

def pid_alive(pid):
    """True if PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = st[st.rindex(")") + 2:].split()[0]
    return state not in ("Z", "X")


def proc_ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    rest = st[st.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def children(pid):
    """Live (non-zombie) child PIDs of PID."""
    kids = set()
    path = "/proc/%d/task/%d/children" % (pid, pid)
    if os.path.exists(path):
        try:
            with open(path) as f:
                kids = {int(x) for x in f.read().split()}
        except (FileNotFoundError, ProcessLookupError):
            return []
    else:
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if proc_ppid(int(d))[1] == pid:
                        kids.add(int(d))
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    pass
    return sorted(k for k in kids if pid_alive(k))


def fd_links(pid):
    """{fd: readlink target} for PID's open files."""
    out = {}
    base = "/proc/%d/fd" % pid
    for fd in os.listdir(base):
        try:
            out[int(fd)] = os.readlink(os.path.join(base, fd))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def socket_inodes(pid):
    out = set()
    for target in fd_links(pid).values():
        m = re.match(r"socket:\[(\d+)\]$", target)
        if m:
            out.add(int(m.group(1)))
    return out


def eventpoll_fds(pid):
    return [fd for fd, t in fd_links(pid).items() if t == "anon_inode:[eventpoll]"]


def _hex_addr(s):
    """'0100007F:1F90' -> ('127.0.0.1', 8080); IPv6 gives the hex host."""
    host, port = s.split(":")
    if len(host) == 8:
        b = bytes.fromhex(host)[::-1]
        host = ".".join(str(x) for x in b)
    return host, int(port, 16)


def tcp_rows():
    """The rows of /proc/net/tcp and tcp6, each split into its columns
    (local, remote, state, tx:rx queues, ... the inode at 9)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) >= 10:
                yield cols


def tcp_table():
    """{inode: (local (host, port), remote (host, port), state hex)} from /proc/net/tcp and tcp6."""
    table = {}
    for cols in tcp_rows():
        inode = int(cols[9])
        if inode == 0:
            continue
        table[inode] = (_hex_addr(cols[1]), _hex_addr(cols[2]), cols[3])
    return table


def upstream_sockets(pid, upstream_port, table=None):
    """{inode: local port} of PID's TCP sockets whose remote port is UPSTREAM_PORT."""
    table = tcp_table() if table is None else table
    out = {}
    for ino in socket_inodes(pid):
        e = table.get(ino)
        if e is not None and e[1][1] == upstream_port:
            out[ino] = e[0][1]
    return out



def connection_owner(pids, port, client_port, table=None):
    """Which of PIDS holds the accepted end of our connection from
    CLIENT_PORT to PORT (127.0.0.1), or None (not accepted yet)."""
    table = tcp_table() if table is None else table
    for pid in pids:
        try:
            inodes = socket_inodes(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        for ino in inodes:
            e = table.get(ino)
            if e is not None and e[0][1] == port and e[1][1] == client_port:
                return pid
    return None


def spread_connections(port, pids, per_pid=1, max_tries=1000, timeout=HTTP_TIMEOUT):
    """Opens idle keep-alive connections to PORT until each worker of PIDS
    has accepted PER_PID of them (the kernel hands a connection to whichever
    worker accepts first: with three workers on two loaded CPUs one may win
    none of the first hundreds); closes the spare ones (idle: no request was
    made).  Returns {pid: [http.client.HTTPConnection, ...]}."""
    got = {pid: [] for pid in pids}
    for _ in range(max_tries):
        if all(len(v) >= per_pid for v in got.values()):
            return got
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.connect()
        cport = conn.sock.getsockname()[1]
        owner = wait_for(lambda: connection_owner(pids, port, cport), 5,
                         "a worker of %s to accept the connection from port %d" % (pids, cport))
        if len(got[owner]) < per_pid:
            got[owner].append(conn)
        else:
            conn.close()
    for conns in got.values():
        for c in conns:
            c.close()
    raise TestFailure("%d connections did not reach every worker of %s" % (max_tries, pids))

# ---- esdemo ---------------------------------------------------------------

class Esdemo:
    def __init__(self, tmpdir, args=(), name="esdemo"):
        self.log_path = os.path.join(tmpdir, name + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([ESDEMO, "--port", "0"] + list(args), stdout=subprocess.PIPE,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        self.port = None
        line = [None]

        def read_line():
            line[0] = self.proc.stdout.readline()

        t = threading.Thread(target=read_line, daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while t.is_alive() and time.monotonic() < deadline and self.proc.poll() is None:
            t.join(0.02)
        m = re.match(rb"esdemo listening on 127\.0\.0\.1:(\d+)\s*$", line[0] or b"")
        if not m:
            self.stop()
            raise TestFailure("esdemo did not start (stdout %r); log:\n%s" % (line[0], self.log_text()))
        self.port = int(m.group(1))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def get(self, path="/"):
        return get(self.port, path)

    def get_json(self, path):
        status, _, body = get(self.port, path)
        if status != 200:
            raise TestFailure("esdemo %s answered %d: %r" % (path, status, body))
        return json.loads(body)

    def control(self, **knobs):
        q = "&".join("%s=%s" % (k, v) for k, v in knobs.items())
        return self.get_json("/_esdemo/control?" + q)

    def stats(self):
        return self.get_json("/_esdemo/stats")

    def requests(self):
        """How many ES requests (not /_esdemo/ control ones) it has received."""
        return self.stats()["requests"]

    def last(self):
        """The last ES request it received: method, path, query, headers (lower-case), body."""
        return self.get_json("/_esdemo/last")

    def connections(self, exclude_own=True):
        """Peer ports esdemo reports, minus the connection used to ask."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            conn.connect()
            own = conn.sock.getsockname()[1]
            conn.request("GET", "/_esdemo/connections")
            resp = conn.getresponse()
            doc = json.loads(resp.read())
        finally:
            conn.close()
        ports = set()
        for c in doc["connections"]:
            host, port = c["peer"].rsplit(":", 1)
            if exclude_own and int(port) == own:
                continue
            ports.add(int(port))
        return ports, doc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()


# ---- esgate -----------------------------------------------------------------

def make_config(upstream_port=None, nodes=None, workers=2, graceful_timeout="5s", keepalive_timeout="2s",
                request_timeout=None, connect_timeout="1s", extra="", listen="127.0.0.1:0", upstream=None,
                log_level="info"):
    """UPSTREAM: more keys of the upstream block, {key: value as YAML text},
    written after connect_timeout in the given order.  REQUEST_TIMEOUT
    defaults to 2 s x ESGATE_TIME_SCALE (valgrind slows esgate's own work
    on a 1 MiB body past 2 s on a loaded machine); a test of timeouts passes
    its own."""
    if request_timeout is None:
        request_timeout = "2s" if TIME_SCALE == 1 else "%dms" % (2000 * TIME_SCALE)
    if nodes is None:
        nodes = ["http://127.0.0.1:%d" % upstream_port]
    more = "".join("  %s: %s\n" % kv for kv in (upstream or {}).items())
    return ("listen: [%s]\n"
            "workers: %s\n"
            "graceful_timeout: %s\n"
            "keepalive_timeout: %s\n"
            "log: {level: %s}\n"
            "%s"
            "upstream:\n"
            "  nodes: [%s]\n"
            "  request_timeout: %s\n"
            "  connect_timeout: %s\n") % (listen, workers, graceful_timeout, keepalive_timeout, log_level, extra,
                                         ", ".join(nodes), request_timeout, connect_timeout) + more + (
                # as root, workers must be told whom to run as (last, so line numbers above stay put)
                "user: nobody\n" if os.geteuid() == 0 and "user:" not in extra and "allow_root" not in extra
                else "")


class Esgate:
    """ENV: extra environment variables; ARGV_PREFIX: a wrapper command
    (e.g. systemd-socket-activate ...) that execs esgate in its own pid."""

    def __init__(self, tmpdir, config_text, name="esgate", env=None, argv_prefix=()):
        self.tmpdir = tmpdir
        self.config_path = os.path.join(tmpdir, name + ".yaml")
        self.log_path = os.path.join(tmpdir, name + ".log")
        self.write_config(config_text)
        self.log = open(self.log_path, "wb")
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        self.proc = subprocess.Popen(list(argv_prefix) + WRAP + [ESGATE, "-c", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=full_env)
        self.pid = self.proc.pid
        self.port = None
        self.exit_checked = False
        # Files that also hold this esgate's log (log.file, rotated copies):
        # log_text() appends them, so teardown scans them too.
        self.log_files = []
        # BAD_LOG_MARKERS this test expects (e.g. "[crit]" of a worker that cannot boot).
        self.allowed_markers = ()

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config_path)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for path in self.log_files:
            try:
                with open(path, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return text

    def log_lines(self):
        return self.log_text().splitlines()

    def count(self, regex):
        r = re.compile(regex)
        return sum(1 for line in self.log_lines() if r.search(line))

    def wait_log(self, regex, count=1, timeout=10, alive=True):
        """Waits until REGEX matches at least COUNT log lines; returns the matches.
        Fails at once if esgate exits first, unless ALIVE is False (other
        processes, e.g. a master exec'ed by USR2, write to the same log)."""
        r = re.compile(regex)

        def check():
            if alive and self.proc.poll() is not None:
                raise TestFailure("esgate exited (%s) while waiting for %r" % (self.proc.returncode, regex))
            ms = [m for m in (r.search(line) for line in self.log_lines()) if m]
            return ms if len(ms) >= count else None

        return wait_for(check, timeout, "log line %r x%d" % (regex, count))

    def wait_ready(self, workers=2, generation=1, timeout=15):
        m = self.wait_log(r"\[info\] master\[%d\]: listening on 127\.0\.0\.1:(\d+)$" % self.pid, 1, timeout)
        self.port = int(m[0].group(1))
        self.wait_log(r"\[info\] worker \d+\[\d+\]: generation %d serving \(libev epoll backend\)" % generation,
                      workers, timeout)

        def healthy():
            try:
                return get(self.port, "/healthz", timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(healthy, timeout, "GET /healthz 200")
        return self

    def workers(self):
        return children(self.pid)

    def wait_workers(self, n, timeout=10, exclude=()):
        """Waits until the master has exactly N live children, none of them in EXCLUDE."""
        exclude = set(exclude)

        def check():
            ws = self.workers()
            return ws if len(ws) == n and not (set(ws) & exclude) else None

        return wait_for(check, timeout, "%d workers (not %s); have %s" % (n, sorted(exclude), self.workers()))

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM; returns the exit code, or None if it had to be killed."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        rc = self.wait_exit(10 * TIME_SCALE)
        if rc is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        return rc


def run_cli(args, timeout=20):
    """Runs esgate with ARGS (no daemon): (exit code, stdout, stderr)."""
    p = subprocess.run([ESGATE] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    check_clean(err, "esgate %s stderr" % " ".join(args))
    return p.returncode, out, err


# ---- load generator -----------------------------------------------------------

class Load:
    """THREADS client threads, each looping GET PATH on its own keep-alive
    connection.  Every exception or non-200 counts as a failure; after a
    failure the thread reconnects.  A response with "Connection: close" is
    not a failure: http.client opens a new connection for the next request.
    HEADERS: None, or a callable (called from the load threads, once per
    request, so it must be thread-safe) returning the dict of headers to
    send with that request (e.g. a unique X-Request-Id).
    CONNECT: None, or a callable (port, timeout) returning a new
    http.client connection (e.g. an HTTPSConnection for a TLS listener)."""

    def __init__(self, port, threads=8, path="/", expect_body=None, timeout=5.0, headers=None, connect=None):
        self.port, self.path, self.expect_body, self.timeout = port, path, expect_body, timeout * TIME_SCALE
        self.headers = headers
        self.connect = connect or (lambda port, timeout: http.client.HTTPConnection("127.0.0.1", port,
                                                                                   timeout=timeout))
        self.lock = threading.Lock()
        self.ok_times = []
        self.failures = []  # (time, description)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self):
        conn = None
        while not self.stopping.is_set():
            if conn is None:
                conn = self.connect(self.port, self.timeout)
            try:
                conn.request("GET", self.path, headers=self.headers() if self.headers is not None else {})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise TestFailure("status %d: %r" % (resp.status, body[:200]))
                if self.expect_body is not None and body != self.expect_body:
                    raise TestFailure("unexpected body %r" % body[:200])
                with self.lock:
                    self.ok_times.append(time.monotonic())
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append((time.monotonic(), "%s: %s" % (type(e).__name__, e)))
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def ok(self):
        with self.lock:
            return len(self.ok_times)

    def ok_since(self, t):
        with self.lock:
            return sum(1 for x in self.ok_times if x >= t)

    def wait_ok(self, n, timeout=10):
        start = self.ok()
        return wait_for(lambda: self.ok() >= start + n, timeout, "%d more successful requests" % n)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 2)

    def max_gap(self, start, end):
        """Longest time without a success between START and END."""
        with self.lock:
            ts = sorted(t for t in self.ok_times if start <= t <= end)
        points = [start] + ts + [end]
        return max(b - a for a, b in zip(points, points[1:]))


# ---- per-test context ---------------------------------------------------------

def proc_status(pid):
    """/proc/PID/status as {key: value string}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def stop_pid(pid, sig=signal.SIGTERM, timeout=10):
    """Signals PID (not our child) and waits until it is gone; SIGKILL after
    TIMEOUT.  Returns True if it went on SIG alone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    try:
        wait_for(lambda: not pid_alive(pid), timeout, "pid %d to exit" % pid)
        return True
    except TestFailure:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_for(lambda: not pid_alive(pid), 5, "pid %d to die of SIGKILL" % pid)
        return False


def rss_kb(pid):
    """VmRSS of PID in kB, or 0 if it is gone."""
    try:
        return int(proc_status(pid).get("VmRSS", "0 kB").split()[0])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0


class RssSampler:
    """Samples the VmRSS of PIDS every INTERVAL seconds in a thread, while
    in a with-block; .max is the largest value seen (kB), over all of them."""

    def __init__(self, pids, interval=0.05):
        self.pids, self.interval = list(pids), interval
        self.max = 0
        self.samples = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        for pid in self.pids:
            self.max = max(self.max, rss_kb(pid))
        self.samples += 1

    def _run(self):
        while not self.stopping.is_set():
            self._sample()
            self.stopping.wait(self.interval)

    def __enter__(self):
        self._sample()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(5)
        self._sample()


class Context:
    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.esdemos = []
        self.esgates = []
        self.foreign_pids = []  # processes we did not start but own (a USR2 master): TERMed first in teardown

    def own_pid(self, pid):
        """PID (not a child of ours, e.g. a master exec'ed by USR2) is stopped with
        SIGTERM at teardown, before the esgates, and must go within 10 s."""
        if pid not in self.foreign_pids:
            self.foreign_pids.append(pid)

    def esdemo(self, *args, name=None):
        d = Esdemo(self.tmpdir, args, name=name or "esdemo%d" % len(self.esdemos))
        self.esdemos.append(d)
        return d

    def esgate(self, config_text, workers=2, ready=True, name=None, env=None, argv_prefix=()):
        g = Esgate(self.tmpdir, config_text, name=name or "esgate%d" % len(self.esgates), env=env,
                   argv_prefix=argv_prefix)
        self.esgates.append(g)
        if ready:
            g.wait_ready(workers)
        return g

    def start(self, workers=2, esdemo_args=(), **config):
        """esdemo + esgate in front of it, both ready."""
        d = self.esdemo(*esdemo_args)
        g = self.esgate(make_config(d.port, workers=workers, **config), workers=workers)
        return d, g

    def teardown(self):
        problems = []
        for pid in self.foreign_pids:
            if pid_alive(pid) and not stop_pid(pid):
                problems.append("pid %d did not exit within 10 s of SIGTERM; killed" % pid)
        for g in self.esgates:
            already = g.proc.poll()
            rc = g.stop()
            if rc is None:
                problems.append("esgate (pid %d) did not exit within 10 s of SIGTERM; killed" % g.pid)
            elif rc != 0 and not g.exit_checked:
                problems.append("esgate (pid %d) exited with %d%s" % (g.pid, rc,
                                                                      " (before teardown)" if already is not None else ""))
            # Orphans: workers must go with the master.
            text = g.log_text()
            for m in re.finditer(r"worker \d+ \(pid (\d+)\) started", text):
                pid = int(m.group(1))
                try:
                    wait_for(lambda: not pid_alive(pid), 5, "worker pid %d to exit" % pid)
                except TestFailure:
                    problems.append("worker pid %d still alive after the master exited" % pid)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            for marker in BAD_LOG_MARKERS:
                if marker in text and marker not in g.allowed_markers:
                    problems.append("esgate log %s contains %r" % (g.log_path, marker))
        for d in self.esdemos:
            d.stop()
        if problems:
            msg = "teardown: " + "; ".join(problems)
            for g in self.esgates:
                msg += "\n--- %s (last 40 lines) ---\n%s" % (g.log_path, tail(g.log_text()))
            raise TestFailure(msg)

    def log_tails(self):
        out = ""
        for g in self.esgates:
            try:
                out += "--- %s (last 40 lines) ---\n%s\n" % (g.log_path, tail(g.log_text()))
            except (OSError, ValueError):
                pass
        return out
