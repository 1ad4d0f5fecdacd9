"""TLS on the listeners (issue 15): real clients (curl, h2load, Python's ssl,
the official Elasticsearch client, openssl s_client) against a TLS listener
beside a clear-text one, with certificates each test makes with openssl:
ALPN h2 then http/1.1, SNI with a default, TLS 1.2/1.3 and AEAD suites
only, no renegotiation, the handshake timeout, HSTS, a root-only key, and
`esgate -t`'s checks (key and certificate, chain, expiry)."""

import http.client
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import warnings

from harness import TIME_SCALE, TestFailure, free_port, get, make_config, run_cli, wait_for


def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0:
        raise TestFailure("openssl %s: %s" % (" ".join(args), p.stderr.decode("utf-8", "replace")))


def make_ca(d, name="ca"):
    """A CA (ECDSA P-256): returns its PEM path."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             name + ".key", "-out", name + ".pem", "-days", "30", "-subj", "/CN=esgate test %s" % name, cwd=d)
    return os.path.join(d, name + ".pem")


def make_cert(d, name, dns, ca="ca", days=30, cn=None, client=False):
    """A certificate for DNS names DNS signed by CA: returns (chain path, key
    path); the chain file holds the leaf then the CA."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name + ".key",
             "-out", name + ".csr", "-subj", "/O=Example/CN=%s" % (cn or dns[0]), cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        if dns:
            f.write("subjectAltName=%s\n" % ",".join("DNS:" + n for n in dns))
        if client:
            f.write("extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
             "-out", name + ".crt", "-days", str(days), "-extfile", name + ".ext", cwd=d)
    chain = os.path.join(d, name + ".chain.pem")
    with open(chain, "w") as out:
        for part in (name + ".crt", ca + ".pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    return chain, os.path.join(d, name + ".key")


def tls_listener(port, cert, key, more=""):
    return '{address: "127.0.0.1:%d", tls: {certificate: "%s", key: "%s"%s}}' % (port, cert, key, more)


def start_tls(ctx, more="", extra="", workers=2, sni=True):
    """esdemo, and esgate with a clear-text listener and a TLS one whose
    default certificate is for a.example and localhost, and (SNI) one for
    b.example and *.b.example.  Returns (esdemo, esgate, TLS port, CA path)."""
    d = ctx.tmpdir
    ca = make_ca(d)
    a = make_cert(d, "a", ["a.example", "localhost"])
    if sni:
        b = make_cert(d, "b", ["b.example", "*.b.example"])
        more = ', sni: [{certificate: "%s", key: "%s"}]' % b + more
    port = free_port()
    demo = ctx.esdemo()
    g = ctx.esgate(make_config(demo.port, workers=workers, extra=extra,
                               listen="127.0.0.1:0, " + tls_listener(port, a[0], a[1], more)), workers=workers)
    g.tls_port = port
    return demo, g, port, ca


class FinishedHeld:
    """A TLS 1.3 client (memory BIOs over a socket to PORT) whose handshake
    has ended on its side with its Finished not sent yet: the first send()
    puts its bytes in the same send() as that Finished, as a client that
    writes its first request at once does.  recv() gives decrypted bytes,
    b"" at the end."""

    def __init__(self, port, cctx, host="localhost", timeout=10 * TIME_SCALE):
        cctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = cctx.wrap_bio(self.inc, self.out, server_hostname=host)
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        while True:
            try:
                self.obj.do_handshake()
                return
            except ssl.SSLWantReadError:
                if self.out.pending:
                    self.raw.sendall(self.out.read())
                got = self.raw.recv(65536)
                if not got:
                    raise TestFailure("closed during the handshake")
                self.inc.write(got)

    def send(self, data):
        self.obj.write(data)
        self.raw.sendall(self.out.read())

    def recv(self, n=65536):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                got = self.raw.recv(65536)
                if not got:
                    return b""
                self.inc.write(got)
            except ssl.SSLZeroReturnError:
                return b""

    def close(self):
        self.raw.close()


def _run(args, timeout=30 * TIME_SCALE, input=None):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL if input is None else None, input=input, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def curl(port, ca, path="/", *args, host="localhost"):
    rc, out, err = _run(["curl", "-sS", "--max-time", str(10 * TIME_SCALE), "--cacert", ca, "--resolve",
                         "%s:%d:127.0.0.1" % (host, port), "-D", "-", "-o", "-", "-w",
                         "\n%{http_version} %{http_code}"] + list(args) + ["https://%s:%d%s" % (host, port, path)])
    if rc != 0:
        raise TestFailure("curl %s: exit %d: %s" % (args, rc, err))
    data, _, tail = out.rpartition("\n")
    version, code = tail.split()
    return version, int(code), data


def s_client(port, *args, input=b"", timeout=15 * TIME_SCALE):
    """openssl s_client's output (stdout and stderr) for one connection."""
    rc, out, err = _run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args), timeout=timeout,
                        input=input)
    return rc, out + err


def negotiated(text):
    """The cipher s_client says was agreed, or None if the handshake failed."""
    m = re.search(r"Cipher is (\S+)", text)
    return None if m is None or m.group(1) == "(NONE)" else m.group(1)


def test_curl_http11_and_http2_over_tls(ctx):
    demo, g, port, ca = start_tls(ctx, more=", hsts: 8760h")
    body = demo.get("/")[2].decode()
    version, code, data = curl(port, ca, "/", "--http1.1")
    assert (version, code) == ("1.1", 200), (version, code, data)
    assert data.endswith(body), data
    assert "strict-transport-security: max-age=31536000" in data.lower(), data
    # ALPN: curl offers h2 and http/1.1, esgate picks h2.
    version, code, data = curl(port, ca, "/healthz", "--http2")
    assert (version, code) == ("2", 200), (version, code, data)
    assert "strict-transport-security: max-age=31536000" in data.lower(), data
    # The clear-text listener beside it is unchanged, and has no HSTS.
    status, headers, _ = get(g.port, "/healthz")
    assert status == 200 and "strict-transport-security" not in headers, headers


def test_h2load_over_tls(ctx):
    demo, g, port, ca = start_tls(ctx)
    rc, out, err = _run(["h2load", "-n", "2000", "-c", "4", "-m", "8", "https://127.0.0.1:%d/healthz" % port],
                        timeout=60)
    assert rc == 0, (rc, out, err)
    assert re.search(r"Application protocol: h2\b", out), out
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    assert m and m.group(4) == "2000" and m.group(5) == "0", out


def test_python_ssl_and_the_elasticsearch_client(ctx):
    demo, g, port, ca = start_tls(ctx)
    sctx = ssl.create_default_context(cafile=ca)
    sctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with sctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
            assert s.version() in ("TLSv1.3", "TLSv1.2"), s.version()
    sctx = ssl.create_default_context(cafile=ca)  # no ALPN: HTTP/1.1
    c = http.client.HTTPSConnection("localhost", port, context=sctx, timeout=10)
    c.request("GET", "/healthz")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b'{"status":"ok"}', r.status
    c.close()
    try:
        import elasticsearch
    except ImportError:
        raise TestFailure("python3-elasticsearch is not installed (make test-deps installs it)")
    major = int(elasticsearch.__versionstr__.split(".")[0])
    kw = {"request_timeout": 10} if major >= 8 else {"timeout": 10}
    es = elasticsearch.Elasticsearch("https://localhost:%d" % port, ca_certs=ca, max_retries=0, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = es.info()
    assert info["tagline"] == "You Know, for Search", info
    # and it checks the certificate: another CA's bundle is refused
    other = make_ca(ctx.tmpdir, "other")
    es = elasticsearch.Elasticsearch("https://localhost:%d" % port, ca_certs=other, max_retries=0, **kw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es.info()
    except Exception as e:  # the client's ConnectionError/SSLError, by version
        assert "certificate" in str(e).lower() or "ssl" in str(e).lower(), e
    else:
        raise TestFailure("a client trusting another CA got an answer")


def _subject(port, servername=None):
    args = ["-servername", servername] if servername else ["-noservername"]
    rc, text = s_client(port, *args)
    m = re.search(r"subject=(.*)", text)
    assert m and negotiated(text), text
    return m.group(1)


def test_sni_picks_the_certificate_unknown_gets_the_default(ctx):
    demo, g, port, ca = start_tls(ctx)
    assert "CN = a.example" in _subject(port, "a.example")
    assert "CN = a.example" in _subject(port, "localhost")
    assert "CN = b.example" in _subject(port, "b.example")
    assert "CN = b.example" in _subject(port, "x.b.example")  # the wildcard
    assert "CN = a.example" in _subject(port, "y.x.b.example")  # a wildcard is one label
    assert "CN = a.example" in _subject(port, "unknown.example")
    assert "CN = a.example" in _subject(port)  # no SNI at all
    # and a real client checks the name it asked for
    version, code, _ = curl(port, ca, "/healthz", host="x.b.example")
    assert code == 200, code


def test_old_protocols_and_weak_suites_are_refused(ctx):
    demo, g, port, ca = start_tls(ctx)
    # SECLEVEL=0 so that the client itself is willing to offer them.
    for proto in ("-tls1", "-tls1_1"):
        rc, text = s_client(port, proto, "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost")
        assert negotiated(text) is None, (proto, text)
    # TLS 1.2 without forward secrecy or without AEAD: no suite in common.
    for suites in ("AES128-GCM-SHA256:AES256-SHA", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256",
                   "ECDHE-RSA-AES256-SHA384:DHE-RSA-AES128-SHA"):
        rc, text = s_client(port, "-tls1_2", "-cipher", suites + "@SECLEVEL=0", "-servername", "localhost")
        assert negotiated(text) is None, (suites, text)
    rc, text = s_client(port, "-tls1_2", "-servername", "localhost")
    assert negotiated(text) == "ECDHE-ECDSA-AES128-GCM-SHA256" or "GCM" in negotiated(text) or \
        "CHACHA20" in negotiated(text), text
    rc, text = s_client(port, "-tls1_3", "-servername", "localhost")
    assert negotiated(text) and "TLSv1.3" in text, text
    # TLS 1.3 only when the listener says so
    assert "Compression: NONE" in text or "Compression" not in text, text


def test_min_version_tls13(ctx):
    demo, g, port, ca = start_tls(ctx, more=", min_version: TLSv1.3", sni=False)
    rc, text = s_client(port, "-tls1_2", "-servername", "localhost")
    assert negotiated(text) is None, text
    rc, text = s_client(port, "-tls1_3", "-servername", "localhost")
    assert negotiated(text), text


def test_renegotiation_is_refused(ctx):
    demo, g, port, ca = start_tls(ctx)
    # "R" asks s_client to renegotiate (not with -ign_eof or -quiet, which
    # turn its commands off); the request after it must not be served.
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2", "-servername",
                          "localhost"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        try:
            p.stdin.write(b"R\n")
            p.stdin.flush()
            time.sleep(0.5)  # s_client reads its stdin line by line; give it the R alone
            p.stdin.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            p.stdin.flush()
            time.sleep(1)  # its end of input would end the connection before an answer
            p.stdin.close()
        except BrokenPipeError:
            pass  # s_client has gone already: the server closed the connection
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        killer = threading.Timer(15 * TIME_SCALE, p.kill)
        killer.start()
        out = p.stdout.read().decode("utf-8", "replace")
        killer.cancel()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "RENEGOTIATING" in out, out
    assert negotiated(out), out  # the first handshake was fine
    assert "HTTP/1.1 200" not in out, out
    # and the server is none the worse for it
    assert curl(port, ca, "/healthz")[1] == 200


def test_silent_and_slow_clients_are_cut_at_the_handshake_timeout(ctx):
    # 1 s, stretched under valgrind: the good client's own handshake must fit
    limit = 1.0 * TIME_SCALE
    demo, g, port, ca = start_tls(ctx, extra="tls: {handshake_timeout: %dms}\n" % int(limit * 1000), workers=1)
    silent = socket.create_connection(("127.0.0.1", port))
    slow = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    # A ClientHello that never ends: a record header promising 512 bytes, 10 of them.
    slow.sendall(b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc\x03\x03" + b"\x00" * 4)
    # Meanwhile the one worker serves others.
    assert curl(port, ca, "/healthz")[1] == 200
    for s in (silent, slow):
        s.settimeout(10)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    took = time.monotonic() - t0
    assert 0.8 * limit <= took < 4 * limit, took
    silent.close()
    slow.close()

    # and the worker's connection count falls back: nothing is held
    def gauge():
        status, _, body = get(g.port, "/metrics")
        m = re.search(rb"^esgate_connections_open (\d+)", body, re.M)
        return m is not None and int(m.group(1)) <= 1  # the scrape's own
    wait_for(gauge, 5, "esgate_connections back to the scrape's own")


def _cfg_for(ctx, cert, key, port=None):
    demo_port = free_port()
    return make_config(demo_port, listen="127.0.0.1:0, " + tls_listener(port or free_port(), cert, key))


def _write(ctx, name, text):
    path = os.path.join(ctx.tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_check_config_names_the_listener_for_bad_certificates(ctx):
    d = ctx.tmpdir
    make_ca(d)
    a = make_cert(d, "a", ["localhost"])
    b = make_cert(d, "b", ["localhost"])
    # a key that is another certificate's
    path = _write(ctx, "mismatch.yaml", _cfg_for(ctx, a[0], b[1]))
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 1, (rc, out, err)
    assert re.search(r"mismatch\.yaml:1:\d+: listen 127\.0\.0\.1:\d+: the key .*b\.key does not match the "
                     r"certificate .*a\.chain\.pem", err), err
    # a file that is no certificate, a chain whose second entry does not parse
    garbage = _write(ctx, "garbage.pem", "not a certificate\n")
    path = _write(ctx, "garbage.yaml", _cfg_for(ctx, garbage, a[1]))
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 1 and re.search(r"garbage\.yaml:1:\d+: listen .*: no certificate in .*garbage\.pem", err), err
    with open(a[0]) as f:
        broken = _write(ctx, "broken.pem", f.read() + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    path = _write(ctx, "broken.yaml", _cfg_for(ctx, broken, a[1]))
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 1 and re.search(r"broken\.yaml:1:\d+: listen .*: certificate 3 of the chain in .*broken\.pem "
                                 r"does not parse", err), err
    # a missing key, and a key in a mapping spelled wrong
    path = _write(ctx, "missing.yaml", make_config(free_port(), listen='127.0.0.1:0, {address: "127.0.0.1:%d", '
                                                   'tls: {certificate: "%s", key: "%s/nope.key", colour: red}}'
                                                   % (free_port(), a[0], d)))
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 1 and "cannot read the key %s/nope.key: No such file or directory" % d in err, err
    assert re.search(r'missing\.yaml:1:\d+: unknown key "colour" in listen tls', err), err
    # a good one: OK; expiring within 14 days: OK with a warning
    path = _write(ctx, "good.yaml", _cfg_for(ctx, a[0], a[1]))
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 0 and out.strip() == "configuration OK" and "warning" not in err, (rc, out, err)
    soon = make_cert(d, "soon", ["localhost"], days=5)
    path = _write(ctx, "soon.yaml", _cfg_for(ctx, soon[0], soon[1]))
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 0 and out.strip() == "configuration OK", (rc, out, err)
    assert re.search(r"soon\.yaml:1:\d+: warning: listen .*: the certificate .*soon\.chain\.pem expires in [45] "
                     r"day", err), err


def test_a_root_only_key_is_read_before_privileges_are_dropped(ctx):
    if os.geteuid() != 0:
        return  # needs root to mean anything (the workers run as nobody)
    d = ctx.tmpdir
    make_ca(d)
    a = make_cert(d, "a", ["localhost"])
    os.chown(a[1], 0, 0)
    os.chmod(a[1], 0o600)
    os.chmod(d, 0o700)  # and nobody could not even reach the file
    port = free_port()
    demo = ctx.esdemo()
    g = ctx.esgate(make_config(demo.port, listen="127.0.0.1:0, " + tls_listener(port, a[0], a[1])))
    version, code, _ = curl(port, os.path.join(d, "ca.pem"), "/healthz")
    assert code == 200, code
    # the workers are nobody's, and could not read it themselves
    for pid in g.workers():
        with open("/proc/%d/status" % pid) as f:
            uid = re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1)
        assert uid != "0", pid


def test_metrics_count_handshakes_and_show_certificate_expiry(ctx):
    import promparse
    demo, g, port, ca = start_tls(ctx)
    sctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # full, TLS 1.3
        with sctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            sess = s.session
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:  # resumed, TLS 1.3
        with sctx.wrap_socket(raw, server_hostname="localhost", session=sess) as s:
            assert s.session_reused
    rc, text = s_client(port, "-tls1_2", "-servername", "localhost")  # full, TLS 1.2
    assert negotiated(text), text
    rc, text = s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost")  # refused
    assert negotiated(text) is None, text
    want = {("full", "TLSv1.3"): 1, ("resumed", "TLSv1.3"): 1, ("full", "TLSv1.2"): 1, ("failed", "other"): 1,
            ("resumed", "TLSv1.2"): 0, ("failed", "TLSv1.2"): 0, ("failed", "TLSv1.3"): 0}

    def counted():
        fams = promparse.parse(get(g.port, "/metrics")[2].decode())
        got = {k: promparse.value(fams, "esgate_tls_handshakes_total", result=k[0], version=k[1]) for k in want}
        return fams if got == want else None
    fams = wait_for(counted, 5, "esgate_tls_handshakes_total %s" % want)
    # each certificate's notAfter, the default's and the SNI one's
    for name, cn in (("a", "a.example"), ("b", "b.example")):
        with open(os.path.join(ctx.tmpdir, name + ".crt")) as f:
            pem = f.read()
        der = ssl.PEM_cert_to_DER_cert(pem)
        p = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-inform", "DER"], input=der,
                           capture_output=True, check=True)
        not_after = ssl.cert_time_to_seconds(p.stdout.decode().strip().split("=", 1)[1])
        got = promparse.value(fams, "esgate_tls_certificate_expiry_timestamp_seconds",
                              listener="127.0.0.1:%d" % port, file=os.path.join(ctx.tmpdir, name + ".chain.pem"),
                              name=cn)
        assert got == not_after, (name, got, not_after)


class _Records:
    """A TLS client over a memory BIO that counts the TLS records each
    answer comes in (every record after the handshake is application data
    on the wire, TLS 1.3 or 1.2)."""

    def __init__(self, port, ca, version):
        c = ssl.create_default_context(cafile=ca)
        c.minimum_version = c.maximum_version = version
        c.set_alpn_protocols(["http/1.1"])
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = c.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10 * TIME_SCALE)
        self.raw = b""
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._record()
        self._flush()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _record(self):
        """Feeds the next whole record to the TLS object."""
        while len(self.raw) < 5 or len(self.raw) < 5 + int.from_bytes(self.raw[3:5], "big"):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise TestFailure("closed after %r" % self.raw[:64])
            self.raw += chunk
        n = 5 + int.from_bytes(self.raw[3:5], "big")
        self.inc.write(self.raw[:n])
        self.raw = self.raw[n:]

    def get(self, path):
        """(records, status line, body) of one keep-alive GET."""
        self.obj.write(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode())
        self._flush()
        data, records = b"", 0
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length: *(\d+)", head)
            if sep and m and len(body) >= int(m.group(1)):
                return records, head.split(b"\r\n")[0], body
            self._record()
            records += 1
            try:
                while True:
                    data += self.obj.read(65536)
            except ssl.SSLWantReadError:
                pass

    def close(self):
        self.sock.close()


def test_a_small_answer_is_one_tls_record(ctx):
    """An HTTP/1.1 answer of up to 16 KiB (head and body) comes in one TLS
    record, as nginx and HAProxy send it: libh2o 2.2.5 made a record per
    buffer (the head, then the body) and cut them at 1400 bytes
    (worker/tlswrite.c).  Larger answers still arrive whole."""
    routes = "routes:\n  - path: /big\n    methods: [GET]\n    upstream: {method: GET, path: /_esdemo/big}\n" \
             "    params: [bytes]\n"
    demo, g, port, ca = start_tls(ctx, extra=routes)
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        c = _Records(port, ca, version)
        try:
            c.get("/")  # TLS 1.3: the session tickets come before this one
            for path, size in (("/", None), ("/big?bytes=5000", 5000), ("/big?bytes=14000", 14000)):
                records, status, body = c.get(path)
                assert status == b"HTTP/1.1 200 OK", (version, path, status)
                assert size is None or len(body) == size, (version, path, len(body))
                assert records == 1, "%s %s: %d bytes of answer in %d TLS records" % (
                    version, path, len(body), records)
            records, status, body = c.get("/big?bytes=300000")
            assert status == b"HTTP/1.1 200 OK" and len(body) == 300000, (version, status, len(body))
            assert body.startswith(b'{"data":"0123456789abcdef') and body.endswith(b'"}'), body[-32:]
        finally:
            c.close()
