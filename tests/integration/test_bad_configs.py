"""Broken configuration files, each with the exact FILE:LINE:COLUMN: message
it must produce: at start (`esgate -t -c FILE` and `esgate -c FILE` exit 1,
no worker starts) and on reload (SIGHUP to a running esgate: the errors and
"reload failed" are logged, the same workers keep serving)."""

import re
import signal

import promparse
from harness import get, make_config, run_cli

PORT = 9200  # the start checks never connect; the reload test uses esdemo's

ROUTE = ("routes:\n"
         "  - path: /search/{index}\n"
         "    methods: [GET, POST]\n"
         "    upstream: {method: POST, path: \"/{index}/_search\"}\n"
         "    indices: [books]\n")


def _pos(text, needle, nth=1):
    """1-based (line, column) of the NTH occurrence of NEEDLE in TEXT."""
    i = -1
    for _ in range(nth):
        i = text.index(needle, i + 1)
        if i < 0:
            raise ValueError(needle)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def _sub(text, old, new):
    assert old in text, (old, text)
    return text.replace(old, new, 1)


def _re(text, pattern, new):
    out, n = re.subn(pattern, new, text, count=1)
    assert n == 1, (pattern, text)
    return out


def _extra(base, lines):
    """BASE with top-level LINES before "upstream:" (as make_config's extra=)."""
    return _sub(base, "upstream:\n", lines + "upstream:\n")


def _up(base, lines):
    """BASE with LINES (YAML text, indented for the upstream block) added
    at the end of the upstream block."""
    return _sub(base, "  connect_timeout: 1s\n", "  connect_timeout: 1s\n" + lines)


# (name, base config -> broken text, [(needle | (line, col) | (needle, nth), message), ...])
CASES = [
    # YAML syntax
    ("yaml unclosed flow sequence", lambda b: _sub(b, "listen: [127.0.0.1:0]", "listen: [127.0.0.1:0"),
     [((2, 8), "YAML syntax error: did not find expected ',' or ']'")]),
    ("yaml bad indentation", lambda b: _sub(b, "  request_timeout: 2s\n", "   request_timeout: 2s\n"),
     [("request_timeout: 2s", "YAML syntax error: did not find expected key")]),
    ("yaml tab indentation", lambda b: _sub(b, "  request_timeout: 2s\n", "\trequest_timeout: 2s\n"),
     [("\trequest", "YAML syntax error: found character that cannot start any token")]),
    ("yaml second document", lambda b: b + "---\nworkers: 3\n", [("workers: 3", "only one YAML document is allowed")]),
    ("top level not a mapping", lambda b: "- listen\n- workers\n", [((1, 1), "top level must be a mapping")]),
    # unknown keys, at every level
    ("unknown top-level key", lambda b: _extra(b, "foo: 1\n"), [("foo", 'unknown key "foo"')]),
    ("unknown key in log", lambda b: _sub(b, "log: {level: info}", "log: {level: info, colour: red}"),
     [("colour", 'unknown key "colour" in log')]),
    ("unknown key in upstream", lambda b: _up(b, "  retry_after: 5s\n"),
     [("retry_after", 'unknown key "retry_after" in upstream')]),
    ("unknown key in route", lambda b: _extra(b, ROUTE + "    cache: true\n"),
     [("cache", 'unknown key "cache" in route')]),
    ("unknown key in route upstream",
     lambda b: _extra(b, _sub(ROUTE, '_search"}', '_search", query: x}')),
     [("query", 'unknown key "query" in route upstream')]),
    ("unknown key in access_log", lambda b: _extra(b, "access_log: {file: '-', rotate: daily}\n"),
     [("rotate", 'unknown key "rotate" in access_log')]),
    ("unknown key in metrics", lambda b: _extra(b, "metrics: {enabled: true, port: 9145}\n"),
     [("port", 'unknown key "port" in metrics')]),
    # wrong types
    ("log not a mapping", lambda b: _sub(b, "log: {level: info}", "log: info"),
     [("info", '"log" must be a mapping')]),
    ("listen a mapping without address", lambda b: _sub(b, "listen: [127.0.0.1:0]", "listen: {a: 1}"),
     [("a: 1", 'unknown key "a" in listen'), ("{a: 1}", 'missing required key "address" in listen')]),
    ("listen a sequence in a sequence", lambda b: _sub(b, "listen: [127.0.0.1:0]", "listen: [[127.0.0.1:0]]"),
     [("[127.0.0.1:0]]", '"listen" must be an address, a mapping with "address", or a sequence of them')]),
    ("listen tls without its files", lambda b: _sub(b, "listen: [127.0.0.1:0]",
                                                    'listen: [127.0.0.1:0, {address: "127.0.0.1:1", tls: '
                                                    '{certificate: /nonexistent.pem, key: /nonexistent.key}}]'),
     [("/nonexistent.pem", "listen 127.0.0.1:1: cannot read the certificate /nonexistent.pem: "
       "No such file or directory")]),
    ("routes a mapping", lambda b: _extra(b, "routes: {path: /x}\n"),
     [("{path", '"routes" must be a sequence')]),
    ("workers a sequence", lambda b: _sub(b, "workers: 2", "workers: [2]"), [("[2]", '"workers" must be a scalar')]),
    ("cluster_info not a boolean", lambda b: _extra(b, "cluster_info: maybe\n"),
     [("maybe", '"cluster_info" must be true or false')]),
    # bad values
    ("workers 0", lambda b: _sub(b, "workers: 2", "workers: 0"),
     [((2, 10), '"workers" must be an integer >= 1 or "auto"')]),
    ("workers many", lambda b: _sub(b, "workers: 2", "workers: many"),
     [("many", '"workers" must be an integer >= 1 or "auto"')]),
    ("workers 2000", lambda b: _sub(b, "workers: 2", "workers: 2000"),
     [("2000", '"workers" must be an integer >= 1 or "auto"')]),
    ("bad duration", lambda b: _sub(b, "graceful_timeout: 5s", "graceful_timeout: 10x"),
     [("10x", '"graceful_timeout": bad duration "10x" (use 250ms, 30s, 2m, 1h or a number of seconds)')]),
    ("negative duration", lambda b: _sub(b, "request_timeout: 2s", "request_timeout: -1s"),
     [("-1s", '"request_timeout": bad duration "-1s" (use 250ms, 30s, 2m, 1h or a number of seconds)')]),
    ("zero keepalive_timeout", lambda b: _sub(b, "keepalive_timeout: 2s", "keepalive_timeout: 0"),
     [((4, 20), '"keepalive_timeout" must be greater than 0')]),
    ("bad size", lambda b: _extra(b, ROUTE + "    max_body: 1gb\n"),
     [("1gb", '"max_body": bad size "1gb" (use a number of bytes, or kb or mb)')]),
    ("size too big", lambda b: _extra(b, ROUTE + "    max_body: 200mb\n"),
     [("200mb", '"max_body" must be at most 100mb')]),
    ("listen port 70000", lambda b: _sub(b, "listen: [127.0.0.1:0]", "listen: [127.0.0.1:70000]"),
     [("127.0.0.1:70000", '"listen": port out of range in "127.0.0.1:70000"')]),
    ("listen bad address", lambda b: _sub(b, "listen: [127.0.0.1:0]", "listen: [localhost]"),
     [("localhost", '"listen": bad address "localhost" (use host:port, [v6]:port or unix:/path)')]),
    ("node URL scheme ftp", lambda b: _re(b, r"http://127\.0\.0\.1:\d+", "ftp://127.0.0.1:%d" % PORT),
     [("ftp://", '"nodes": bad URL "ftp://127.0.0.1:%d" (use http://host:port or https://host:port)' % PORT)]),
    ("node URL without scheme", lambda b: _re(b, r"http://127\.0\.0\.1:\d+", "127.0.0.1:%d" % PORT),
     [("127.0.0.1:%d" % PORT, '"nodes": bad URL "127.0.0.1:%d" (use http://host:port or https://host:port)' % PORT)]),
    ("metrics listen bad address", lambda b: _extra(b, "metrics: {listen: 'nowhere'}\n"),
     [("'nowhere'", '"listen": bad address "nowhere" (use host:port, [v6]:port or unix:/path)')]),
    ("metrics public not a bool", lambda b: _extra(b, "metrics: {public: maybe}\n"),
     [("maybe", '"public" must be true or false')]),
    # missing required keys
    ("missing upstream", lambda b: _re(b, r"upstream:\n(  .*\n)*", ""), [((1, 1), 'missing required key "upstream"')]),
    ("missing listen", lambda b: b[b.index("\n") + 1:], [((1, 1), 'missing required key "listen"')]),
    ("missing nodes", lambda b: _re(b, r"  nodes: .*\n", ""),
     [("request_timeout", 'missing required key "nodes" in upstream')]),
    ("route without methods", lambda b: _extra(b, _sub(ROUTE, "    methods: [GET, POST]\n", "")),
     [("path: /search", 'missing required key "methods" in route')]),
    ("route upstream without path", lambda b: _extra(
        b, _sub(ROUTE, '{method: POST, path: "/{index}/_search"}', "{method: POST}")),
     [("{method: POST}", 'missing required key "path" in route upstream')]),
    # duplicates
    ("duplicate key", lambda b: _sub(b, "workers: 2\n", "workers: 2\nworkers: 3\n"),
     [("workers: 3", 'duplicate key "workers"')]),
    ("duplicate listen", lambda b: _sub(b, "listen: [127.0.0.1:0]", "listen: [127.0.0.1:0, 127.0.0.1:0]"),
     [(("127.0.0.1:0", 2), 'duplicate listen address "127.0.0.1:0"')]),
    # authentication and TLS
    ("api_key with username", lambda b: _up(b, "  api_key: id:key\n  username: elastic\n  password: secret\n"),
     [("elastic", '"api_key" and "username" cannot be used together')]),  # at the value
    ("bearer with api_key", lambda b: _up(b, "  api_key: id:key\n  bearer: tok\n"),
     [("tok", '"bearer" cannot be used with "api_key"')]),
    ("username without password", lambda b: _up(b, "  username: elastic\n"),
     [("elastic", '"username" needs "password"')]),
    ("cert_file without key_file", lambda b: _up(b, "  cert_file: /etc/ssl/x.pem\n"),
     [("/etc/ssl/x.pem", '"cert_file" needs "key_file"')]),
    ("node_backoff_max below node_backoff", lambda b: _up(b, "  node_backoff: 10s\n  node_backoff_max: 7s\n"),
     [("7s", '"node_backoff_max" must not be less than "node_backoff"')]),
    # users, logs
    ("unknown user", lambda b: _extra(b.replace("user: nobody\n", ""), "user: no-such-user-esgate\n"),
     [("no-such-user-esgate", '"user": unknown user "no-such-user-esgate"')]),
    ("bad log level", lambda b: _sub(b, "log: {level: info}", "log: {level: verbose}"),
     [("verbose", '"level": unknown log level "verbose" (use debug, info, warn or error)')]),
    ("bad access_log format", lambda b: _extra(b, "access_log: {file: '-', format: apache}\n"),
     [("apache", '"format": unknown access log format "apache" (use combined or json)')]),
    # routes
    ("placeholder not a whole segment", lambda b: _extra(b, _sub(ROUTE, "/search/{index}", "/search/x{index}")),
     [("/search/x", '"path": a placeholder must be a whole segment')]),
    ("unknown placeholder", lambda b: _extra(b, _sub(ROUTE, "/search/{index}", "/search/{name}")),
     [("/search/{name}", '"path": unknown placeholder "{name}" (use {index} or {id})')]),
    ("upstream placeholder not in path", lambda b: _extra(b, (
        "routes:\n"
        "  - path: /search/{index}\n"
        "    methods: [GET]\n"
        "    upstream: {method: GET, path: \"/{index}/_doc/{id}\"}\n"
        "    indices: [books]\n")),
     [('"/{index}/_doc', '"path": placeholder {id} is not in the route\'s path')]),
    ("route on /healthz", lambda b: _extra(b, (
        "routes:\n"
        "  - path: /healthz\n"
        "    methods: [GET]\n"
        "    upstream: {method: GET, path: /_cluster/health}\n")),
     [("/healthz", '"path": /healthz is reserved')]),
    ("duplicate route", lambda b: _extra(b, ROUTE + ROUTE[len("routes:\n"):].replace(
        "[GET, POST]", "[POST]")),
     [(("/search/{index}", 2), 'duplicate route "/search/{index}"')]),
    ("indices missing with {index}", lambda b: _extra(b, _sub(ROUTE, "    indices: [books]\n", "")),
     [("path: /search", 'missing required key "indices" in route')]),
    ("unknown method", lambda b: _extra(b, _sub(ROUTE, "[GET, POST]", "[GET, PUT]")),
     [("PUT", '"methods": unknown method "PUT" (use GET, HEAD or POST)')]),
    ("unknown upstream method", lambda b: _extra(b, _sub(ROUTE, "method: POST", "method: DELETE")),
     [("DELETE", '"method": unknown method "DELETE" (use GET, HEAD or POST)')]),
    # the micro-cache
    ("cache_ttl not a duration", lambda b: _extra(b, ROUTE.replace("[GET, POST]", "[GET]").replace(
        "method: POST", "method: GET") + "    cache_ttl: 1 second\n"),
     [("1 second", '"cache_ttl": bad duration "1 second" (use 250ms, 30s, 2m, 1h or a number of seconds)')]),
    ("cache_ttl on a POST upstream", lambda b: _extra(b, ROUTE + "    cache_ttl: 1s\n"),
     [("1s\n", '"cache_ttl": only routes whose upstream method is GET are cached or coalesced')]),
    ("coalesce not a boolean", lambda b: _extra(b, ROUTE.replace("method: POST", "method: GET") +
                                                "    coalesce: sometimes\n"),
     [("sometimes", '"coalesce" must be true or false')]),
    ("cluster_info cache_ttl too long", lambda b: _extra(b, "cluster_info: {cache_ttl: 48h}\n"),
     [("48h", '"cache_ttl" must be at most 24h')]),
    ("cluster_info unknown key", lambda b: _extra(b, "cluster_info: {ttl: 1s}\n"),
     [("ttl:", 'unknown key "ttl" in cluster_info')]),
    ("cache max_size not a size", lambda b: _extra(b, "cache: {max_size: huge}\n"),
     [("huge", '"max_size" must be a size from 1kb to 1024mb (e.g. 512kb, 4mb)')]),
    ("cache entry over max_size", lambda b: _extra(b, "cache: {max_size: 64kb, max_entry_size: 128kb}\n"),
     [("128kb", '"max_entry_size" must not be more than "max_size"')]),
]


def _expected(text, path, expected):
    """The full error lines (without a prefix) EXPECTED names in TEXT at PATH."""
    out = []
    for where, message in expected:
        if isinstance(where, tuple) and isinstance(where[0], int):
            line, col = where
        elif isinstance(where, tuple):
            line, col = _pos(text, where[0], where[1])
        else:
            line, col = _pos(text, where)
        out.append("%s:%d:%d: %s" % (path, line, col, message))
    return out


def _error_lines(lines, path, prefix):
    r = re.compile(re.escape(prefix + path) + r":\d+:\d+: ")
    return [line[len(prefix):] for line in lines if r.match(line)]


def _texts(port):
    base = make_config(port)
    return [(name, make(base), expected) for name, make, expected in CASES]


def test_bad_configs_at_start(ctx):
    assert len(CASES) >= 30
    path = "%s/bad.yaml" % ctx.tmpdir
    problems = []
    for name, text, expected in _texts(PORT):
        with open(path, "w") as f:
            f.write(text)
        want = _expected(text, path, expected)
        # esgate -t: every error, then the verdict
        rc, out, err = run_cli(["-t", "-c", path])
        got = _error_lines(err.splitlines(), path, "esgate: ")
        if rc != 1 or got != want or "configuration OK" in out:
            problems.append("%s: esgate -t: exit %s, errors\n    %s\n  want\n    %s" % (
                name, rc, "\n    ".join(got), "\n    ".join(want)))
            continue
        if "esgate: configuration file %s test failed" % path not in err.splitlines():
            problems.append("%s: esgate -t: no 'test failed' line:\n%s" % (name, err))
        # esgate -c: the same errors, and no master or worker starts
        rc, out, err = run_cli(["-c", path], timeout=10)
        got = _error_lines(err.splitlines(), path, "esgate: ")
        if rc != 1 or got != want:
            problems.append("%s: esgate -c: exit %s, errors %s, want %s" % (name, rc, got, want))
        if re.search(r"listening on|started|worker \d+", err):
            problems.append("%s: esgate -c started something:\n%s" % (name, err))
    assert not problems, "%d of %d broken configs misreported:\n%s" % (len(problems), len(CASES), "\n".join(problems))


def test_bad_configs_on_reload(ctx):
    d = ctx.esdemo()
    good = make_config(d.port)
    g = ctx.esgate(good)
    workers = sorted(g.workers())
    assert len(workers) == 2, workers
    body = d.get("/")[2]
    problems = []
    cases = _texts(d.port)
    prefix = "[error] master[%d]: " % g.pid
    failed_re = re.compile(r"\[error\] master\[%d\]: reload failed: still running generation 1 with the "
                           r"previous configuration$" % g.pid)
    seen = len(g.log_lines())
    for i, (name, text, expected) in enumerate(cases):
        g.write_config(text)
        g.signal(signal.SIGHUP)
        g.wait_log(failed_re.pattern, count=i + 1, timeout=10)
        lines = g.log_lines()
        segment = lines[seen:]
        seen = len(lines)
        # the errors of this reload, between "reloading" and "reload failed"
        end = next(k for k, line in enumerate(segment) if failed_re.search(line))
        stamped = [line.split(" ", 2)[2] if line[:2] == "20" else line for line in segment[:end + 1]]
        got = _error_lines(stamped, g.config_path, prefix)
        want = _expected(text, g.config_path, expected)
        if got != want:
            problems.append("%s: reload logged\n    %s\n  want\n    %s" % (name, "\n    ".join(got),
                                                                        "\n    ".join(want)))
        if not any(("reloading %s" % g.config_path) in line for line in segment):
            problems.append("%s: no 'reloading %s' line" % (name, g.config_path))
        # nothing changed: the same workers serve
        if sorted(g.workers()) != workers:
            problems.append("%s: workers %s became %s" % (name, workers, g.workers()))
            workers = sorted(g.workers())
        status, _, got_body = get(g.port, "/")
        if (status, got_body) != (200, body):
            problems.append("%s: GET / answered %d %r" % (name, status, got_body[:200]))
    assert "generation 2" not in g.log_text()
    assert not problems, "%d of %d broken configs misreported on reload:\n%s" % (
        len(problems), len(cases), "\n".join(problems))
    fams = promparse.parse(get(g.port, "/metrics")[2].decode())
    assert promparse.value(fams, "esgate_reloads_total", result="failed") == len(cases)
    assert promparse.value(fams, "esgate_reloads_total", result="ok") == 0
    # and a good file then reloads as generation 2
    g.write_config(good)
    g.signal(signal.SIGHUP)
    g.wait_log(r"configuration OK: starting generation 2 with 2 worker\(s\)$")
    g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
    g.wait_workers(2, timeout=15, exclude=workers)
    status, _, got_body = get(g.port, "/")
    assert (status, got_body) == (200, body), (status, got_body[:200])
    assert g.count(r"reload failed") == len(cases)
