"""GET /_esgate/: the status page, in a real browser (Debian's headless
chromium, driven through chromedriver's WebDriver API), loaded from a
running esgate: its script runs under the page's strict
Content-Security-Policy, shows the live numbers, and follows new requests.
A screenshot goes to BUILD/test-output/statuspage.png (and the test's
directory)."""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

from harness import BUILD, TestFailure, free_port, get, make_config, request, wait_for
from test_metrics import listen_ports

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1500"]

ROUTES = """cluster_info: {cache_ttl: 1s}
routes:
  - path: /doc/{index}/{id}
    methods: [GET]
    upstream: {method: GET, path: "/{index}/_doc/{id}"}
    indices: [books]
    rate_limit: {rate: 1/m, burst: 1}
"""


class Browser:
    """chromedriver on a free port, one chromium session (fresh profile)."""

    def __init__(self, tmpdir):
        for binary in (CHROMIUM, CHROMEDRIVER):
            if not os.access(binary, os.X_OK):
                raise TestFailure("%s not found (Debian packages chromium, chromium-driver; make test installs them)"
                                  % binary)
        self.port = free_port()
        self.log = open(os.path.join(tmpdir, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen([CHROMEDRIVER, "--port=%d" % self.port], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=tmpdir)
        self.session = None
        wait_for(lambda: self._status_ok(), 20, "chromedriver to answer")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM,
                                   "args": CHROMIUM_ARGS + ["--user-data-dir=" + self.profile]}}}}
        self.session = self._call("POST", "/session", caps, timeout=60)["sessionId"]

    def _status_ok(self):
        try:
            return self._call("GET", "/status", timeout=2)["ready"]
        except (OSError, ValueError, TestFailure):
            return False

    def _call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                doc = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise TestFailure("chromedriver %s %s: %d %s" % (method, path, e.code, e.read()[:500]))
        return doc.get("value")

    def go(self, url):
        self._call("POST", "/session/%s/url" % self.session, {"url": url}, timeout=60)

    def js(self, script, *args):
        return self._call("POST", "/session/%s/execute/sync" % self.session, {"script": script, "args": list(args)})

    def screenshot(self):
        return base64.b64decode(self._call("GET", "/session/%s/screenshot" % self.session, timeout=60))

    def close(self):
        if self.session is not None:
            try:
                self._call("DELETE", "/session/%s" % self.session, timeout=20)
            except (OSError, TestFailure):
                pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


PAGE_STATE = """
var t = function (id) { var e = document.getElementById(id); return e ? e.textContent : null; };
var rows = function (id) {
  return Array.prototype.map.call(document.querySelectorAll('#' + id + ' tbody tr'), function (tr) {
    return Array.prototype.map.call(tr.cells, function (td) { return td.textContent; });
  });
};
return {refreshes: Number(document.body.getAttribute('data-refreshes') || 0), state: t('state'),
        total: t('total-requests'), rate: t('request-rate'), cache: t('cache-hit-ratio'),
        limited: t('ratelimit-refused'), reloads: t('reloads'), restarts: t('restarts'),
        version: t('version'), generation: t('generation'),
        workers: rows('workers'), nodes: rows('nodes'), routes: rows('routes'),
        chart: !!document.getElementById('rate-line')};
"""


def _save_screenshot(png, ctx):
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000, "not a screenshot: %d bytes" % len(png)
    outdir = os.path.join(BUILD, "test-output")
    os.makedirs(outdir, exist_ok=True)
    for d in (outdir, ctx.tmpdir):
        with open(os.path.join(d, "statuspage.png"), "wb") as f:
            f.write(png)


def test_status_page_in_headless_chromium(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=2, extra=ROUTES))
    for _ in range(20):
        assert get(g.port, "/")[0] == 200  # one upstream request a second, the rest cache hits
    codes = [get(g.port, "/doc/books/1")[0] for _ in range(5)]
    assert codes == [200, 429, 429, 429, 429], codes

    b = Browser(ctx.tmpdir)
    try:
        b.go("http://127.0.0.1:%d/_esgate/" % g.port)
        st = wait_for(lambda: (lambda s: s if s["refreshes"] >= 1 else None)(b.js(PAGE_STATE)), 20,
                      "the page's script to render (is it blocked by its own CSP?)")
        assert st["state"] == "live", st
        assert st["version"] and st["generation"] == "1", st
        pids = sorted(int(r[0]) for r in st["workers"])
        assert pids == sorted(g.workers()), (st["workers"], g.workers())
        assert all(r[2] == "1" and r[3] == "ready" for r in st["workers"]), st["workers"]
        node = "http://127.0.0.1:%d" % d.port
        nodes = {r[0]: r for r in st["nodes"]}
        assert nodes[node][1] == "up" and int(nodes[node][2]) >= 2 and nodes[node][3] == "0", st["nodes"]
        assert re.match(r"\d+\.\d ms$", nodes[node][4]), st["nodes"]
        routes = {r[0]: r for r in st["routes"]}
        doc = routes["/doc/{index}/{id}"]
        assert doc[2] == "1" and doc[4] == "4" and doc[7] == "4", doc  # 2xx, 4xx, rate-limited
        assert routes["/"][2] == "20" and re.match(r"\d+\.\d%$", routes["/"][6]), routes["/"]
        assert float(routes["/"][6][:-1]) >= 80, routes["/"]  # hits: most of the 20
        assert st["limited"] == "4", st
        assert re.match(r"\d+\.\d%$", st["cache"]) and float(st["cache"][:-1]) >= 80, st
        assert st["reloads"] == "0 / 0", st
        a = int(st["total"])
        assert a >= 25, st

        # Live: new requests show at the next refresh (every 2 s).
        for _ in range(100):
            assert get(g.port, "/healthz")[0] == 200
        st2 = wait_for(lambda: (lambda s: s if int(s["total"]) >= a + 100 else None)(b.js(PAGE_STATE)), 10,
                       "the requests count to rise by 100")
        assert st2["refreshes"] > st["refreshes"] and st2["chart"], st2
        routes = {r[0]: r for r in st2["routes"]}
        assert int(routes["/healthz"][2]) >= 100, routes
        # A few more refreshes, so the chart has a line, then the picture.
        for _ in range(50):
            get(g.port, "/")
        wait_for(lambda: b.js(PAGE_STATE)["refreshes"] >= st2["refreshes"] + 2, 10, "two more refreshes")
        _save_screenshot(b.screenshot(), ctx)

        # A reload shows: generation 2, its workers, one reload ok.
        g.signal(__import__("signal").SIGHUP)
        g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
        st3 = wait_for(lambda: (lambda s: s if s["generation"] == "2" and s["reloads"] == "1 / 0" and
                                all(r[2] == "2" for r in s["workers"]) else None)(b.js(PAGE_STATE)), 15,
                       "the page to show generation 2")
        assert len(st3["workers"]) == 2, st3["workers"]
    finally:
        b.close()


def test_status_page_headers_and_where_it_is_served(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, extra="metrics: {listen: 127.0.0.1:0}\n"))
    main, mport = listen_ports(g, 2)
    status, headers, body = get(mport, "/_esgate/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8", (status, headers)
    assert body == open(os.path.join(os.path.dirname(__file__), "../../worker/statuspage.html"), "rb").read()
    csp = headers["content-security-policy"]
    directives = dict((p.strip().split(" ", 1) + [""])[:2] for p in csp.split(";"))
    assert directives["default-src"] == "'none'", csp
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", directives["script-src"]), csp
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", directives["style-src"]), csp
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'", csp
    assert "unsafe" not in csp, csp
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store", headers
    # No external asset: nothing in the page names another origin or a src/href.
    assert not re.search(rb"\b(src|href)\s*=", body), "the page loads something"
    assert not re.search(rb"https?://(?!www\.w3\.org/2000/svg)", body), "the page names another origin"
    status, headers, body = request(mport, "HEAD", "/_esgate/")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000, (status, headers)
    status, headers, _ = request(mport, "POST", "/_esgate/", body=b"x")
    assert status == 405 and headers.get("allow") == "GET, HEAD", (status, headers)
    # Only where /_esgate/status is: not on the public listener then.
    assert get(main, "/_esgate/")[0] == 404
    assert get(mport, "/_esgate")[0] == 404 and get(mport, "/_esgate/x")[0] == 404
    # Its requests are counted under their own route (each once its
    # exchange is over, which may be a moment after the client has read it).
    def counted():
        text = get(mport, "/metrics")[2].decode()
        return (re.search(r'^esgate_requests_total\{route="/_esgate/",code="2xx"\} 2$', text, re.M) and
                re.search(r'^esgate_requests_total\{route="/_esgate/",code="4xx"\} 1$', text, re.M))
    wait_for(counted, 5, "GET and HEAD /_esgate/ counted as 2xx, the POST as 4xx")
