"""TLS and reloads (issue 15): a HUP after a certificate renewal serves the
new certificate to new connections with not one request failed under
HTTP/1.1 keep-alive and HTTP/2 load over TLS; a HUP with a key that is not
the certificate's keeps the running generation and its certificate, and
logs why; a key handed over as a systemd credential ($CREDENTIALS_DIRECTORY)
is read from there; socket activation and the USR2 binary upgrade serve
TLS on the sockets they hand over."""

import hashlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading

from harness import Load, TestFailure, free_port, make_config, wait_for
from test_tls import make_ca, make_cert, tls_listener


def _fingerprint(port, ca):
    """SHA-256 of the certificate a new connection gets."""
    sctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with sctx.wrap_socket(raw, server_hostname="localhost") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def _file_fingerprint(path):
    der = subprocess.run(["openssl", "x509", "-outform", "DER", "-in", path], capture_output=True,
                         check=True).stdout
    return hashlib.sha256(der).hexdigest()


def _install(src, dst):
    """Replaces DST by a copy of SRC in one rename, as ACME clients do."""
    shutil.copyfile(src, dst + ".new")
    os.rename(dst + ".new", dst)


def _h2_client(port, ca, stop, results):
    """curl fetching 50 URLs per HTTP/2 connection over TLS, over and over."""
    url = "https://localhost:%d/healthz" % port
    while not stop.is_set():
        cmd = ["curl", "-sS", "--http2", "--cacert", ca, "--resolve", "localhost:%d:127.0.0.1" % port,
               "--max-time", "20", "-w", "%{http_code} %{http_version}\n"]
        for _ in range(50):
            cmd += [url, "-o", "/dev/null"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        results.append((out.returncode, out.stdout.split("\n")[:-1], out.stderr))


def test_hup_with_a_renewed_certificate_loses_nothing_and_a_bad_key_keeps_the_old(ctx):
    d = ctx.tmpdir
    ca = make_ca(d)
    old = make_cert(d, "old", ["localhost"])
    new = make_cert(d, "new", ["localhost"])
    cert, key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
    _install(old[0], cert)
    _install(old[1], key)
    port = free_port()
    demo = ctx.esdemo()
    g = ctx.esgate(make_config(demo.port, listen="127.0.0.1:0, " + tls_listener(port, cert, key)))
    assert _fingerprint(port, ca) == _file_fingerprint(old[0])

    sctx = ssl.create_default_context(cafile=ca)

    def connect(p, timeout):
        return http.client.HTTPSConnection("localhost", p, timeout=timeout, context=sctx)

    stop = threading.Event()
    h2_results = []
    h2 = [threading.Thread(target=_h2_client, args=(port, ca, stop, h2_results), daemon=True) for _ in range(2)]
    with Load(port, threads=4, path="/healthz", expect_body=b'{"status":"ok"}', connect=connect) as load:
        for t in h2:
            t.start()
        load.wait_ok(100)
        # the renewal: new certificate and key, then a reload
        _install(new[0], cert)
        _install(new[1], key)
        g.signal(signal.SIGHUP)
        g.wait_log(r"\[info\] master\[%d\]: generation 2 serving; draining \d+ old worker\(s\)$" % g.pid, timeout=15)
        wait_for(lambda: _fingerprint(port, ca) == _file_fingerprint(new[0]), 10, "the new certificate")
        load.wait_ok(100)
        runs = len(h2_results)
        wait_for(lambda: len(h2_results) >= runs + 2, 30, "HTTP/2 runs after the reload")
        # a key that is not the certificate's: the reload fails, generation 2 serves on
        _install(old[1], key)
        g.signal(signal.SIGHUP)
        g.wait_log(r"\[error\] master\[%d\]: .*: listen 127\.0\.0\.1:%d: the key .*live\.key does not match the "
                   r"certificate .*live\.pem$" % (g.pid, port), timeout=15)
        g.wait_log(r"reload failed: still running generation 2", timeout=15)
        load.wait_ok(100)
        assert _fingerprint(port, ca) == _file_fingerprint(new[0])
        stop.set()
        for t in h2:
            t.join(40)
    assert not load.failures, "%d HTTP/1.1 request(s) over TLS failed, first: %s" % (
        len(load.failures), load.failures[:3])
    transfers = [line for rc, lines, err in h2_results for line in lines]
    bad = [line for line in transfers if line != "200 2"]
    errs = [err for rc, lines, err in h2_results if err.strip()]
    assert len(transfers) >= 100, transfers[:5]
    # Before the drain waited WORKER_GOAWAY_DELAY before its GOAWAY, about
    # one run in five lost one transfer here: curl's "(52) Empty reply from
    # server" on a connection whose handshake ended as its worker began to
    # drain (RELIABILITY.md).
    assert not bad, "%d of %d HTTP/2 transfers failed, first: %s; curl said: %s" % (
        len(bad), len(transfers), bad[:3], errs[:3])
    assert all(rc == 0 for rc, _, _ in h2_results), [(rc, err) for rc, _, err in h2_results if rc]
    assert len(g.workers()) == 2
    print("%d HTTP/1.1 requests over TLS, %d HTTP/2 transfers, none failed" % (load.ok(), len(transfers)))


def test_key_from_the_credentials_directory(ctx):
    """What systemd's LoadCredential= gives the service: a directory named
    by $CREDENTIALS_DIRECTORY holding a copy of the key."""
    d = ctx.tmpdir
    ca = make_ca(d)
    a = make_cert(d, "a", ["localhost"])
    creds = os.path.join(d, "credentials")
    os.mkdir(creds, 0o700)
    shutil.copyfile(a[1], os.path.join(creds, "esgate-tls.key"))
    port = free_port()
    demo = ctx.esdemo()
    g = ctx.esgate(make_config(demo.port, listen="127.0.0.1:0, " + tls_listener(
        port, a[0], "$CREDENTIALS_DIRECTORY/esgate-tls.key")), env={"CREDENTIALS_DIRECTORY": creds})
    assert _fingerprint(port, ca) == _file_fingerprint(a[0])
    assert g.count("CREDENTIALS_DIRECTORY") == 0


def test_socket_activation_takes_the_listen_entrys_tls(ctx):
    """Under systemd socket activation, the Nth socket is served with the
    Nth "listen" entry's tls."""
    sa = shutil.which("systemd-socket-activate")
    if sa is None:
        raise TestFailure("systemd-socket-activate not found (package systemd)")
    d = ctx.tmpdir
    ca = make_ca(d)
    a = make_cert(d, "a", ["localhost"])
    demo = ctx.esdemo()
    for attempt in range(5):
        port = free_port()
        g = ctx.esgate(make_config(demo.port, listen=tls_listener(0, a[0], a[1])), ready=False,
                       argv_prefix=[sa, "-l", "127.0.0.1:%d" % port])
        wait_for(lambda: g.proc.poll() is not None or "as 3." in g.log_text(), 10, "systemd-socket-activate to listen")
        if g.proc.poll() is None:
            break
        g.exit_checked = True
        assert attempt < 4, g.log_text()
    # the first connection makes systemd-socket-activate exec esgate
    assert _fingerprint(port, ca) == _file_fingerprint(a[0])
    g.wait_log(r"socket activation: 1 socket\(s\) from systemd replace \"listen\"$")
    for _ in range(5):
        assert _fingerprint(port, ca) == _file_fingerprint(a[0])


def test_usr2_binary_upgrade_keeps_serving_tls(ctx):
    """USR2: the new master reads the certificates again and its workers
    serve the inherited TLS socket with them; over TLS keep-alive load,
    nothing fails."""
    from test_upgrade import _start_upgrade
    d = ctx.tmpdir
    ca = make_ca(d)
    a = make_cert(d, "a", ["localhost"])
    port = free_port()
    demo = ctx.esdemo()
    g = ctx.esgate(make_config(demo.port, listen="127.0.0.1:0, " + tls_listener(port, a[0], a[1])))
    sctx = ssl.create_default_context(cafile=ca)

    def connect(p, timeout):
        return http.client.HTTPSConnection("localhost", p, timeout=timeout, context=sctx)

    old_workers = g.workers()
    with Load(port, threads=4, path="/healthz", expect_body=b'{"status":"ok"}', connect=connect) as load:
        load.wait_ok(100)
        new = _start_upgrade(ctx, g)
        g.wait_log(r"\[info\] master\[%d\]: inherited 127\.0\.0\.1:%d \(fd \d+\) from the old master$" % (new, port),
                   alive=False)
        assert g.wait_exit(15) == 0
        g.exit_checked = True
        wait_for(lambda: not any(os.path.exists("/proc/%d" % p) for p in old_workers), 10, "the old workers")
        n = load.ok()
        load.wait_ok(200, timeout=15)
    assert not load.failures, "%d TLS request(s) failed across the upgrade, first: %s" % (
        len(load.failures), load.failures[:3])
    assert load.ok() - n >= 200
    assert _fingerprint(port, ca) == _file_fingerprint(a[0])
