"""esgate -t / -v / -h: configuration checking and the command line."""

import os

from harness import make_config, run_cli

GOOD = make_config(9200)


def _pos(text, needle, nth=1):
    """1-based (line, column) of the NTH occurrence of NEEDLE in TEXT."""
    i = -1
    for _ in range(nth):
        i = text.index(needle, i + 1)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def _write(ctx, name, text):
    path = os.path.join(ctx.tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _check_bad(ctx, text, expected):
    """EXPECTED: list of (needle in TEXT, message); each must be reported at the needle's position."""
    path = _write(ctx, "bad.yaml", text)
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 1, (rc, out, err)
    assert "configuration OK" not in out, out
    lines = err.splitlines()
    for needle, message in expected:
        line, col = _pos(text, needle) if isinstance(needle, str) else needle
        want = "esgate: %s:%d:%d: %s" % (path, line, col, message)
        assert want in lines, "expected the line\n  %s\nin stderr:\n%s" % (want, err)
    return err


def test_good_config(ctx):
    path = _write(ctx, "good.yaml", GOOD)
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 0, (rc, out, err)
    assert "configuration OK" in out, (out, err)


def test_workers_0(ctx):
    text = GOOD.replace("workers: 2", "workers: 0")
    _check_bad(ctx, text, [((2, 10), '"workers" must be an integer >= 1 or "auto"')])


def test_unknown_top_level_key(ctx):
    text = GOOD + "foo: 1\n"
    _check_bad(ctx, text, [("foo", 'unknown key "foo"')])


def test_bad_duration(ctx):
    text = GOOD.replace("graceful_timeout: 5s", "graceful_timeout: 10x")
    _check_bad(ctx, text, [("10x", '"graceful_timeout": bad duration "10x" (use 250ms, 30s, 2m, 1h or a number '
                                   'of seconds)')])


def test_listen_port_out_of_range(ctx):
    text = GOOD.replace("listen: [127.0.0.1:0]", "listen: [1.2.3.4:70000]")
    _check_bad(ctx, text, [("1.2.3.4:70000", '"listen": port out of range in "1.2.3.4:70000"')])


def test_bad_node_url(ctx):
    text = GOOD.replace("http://127.0.0.1:9200", "ftp://x")
    _check_bad(ctx, text, [("ftp://x", '"nodes": bad URL "ftp://x" (use http://host:port or https://host:port)')])


def test_missing_upstream(ctx):
    text = GOOD[:GOOD.index("upstream:")]
    # The error is at the mapping that lacks the key: the document's root, 1:1.
    _check_bad(ctx, text, [((1, 1), 'missing required key "upstream"')])


def test_missing_file(ctx):
    path = os.path.join(ctx.tmpdir, "does-not-exist.yaml")
    rc, out, err = run_cli(["-t", "-c", path])
    assert rc == 1, (rc, out, err)
    assert "esgate: %s: cannot open: No such file or directory" % path in err.splitlines(), err
    # Without -t, too: no master starts.
    rc, out, err = run_cli(["-c", path])
    assert rc == 1, (rc, out, err)
    assert "cannot open: No such file or directory" in err, err


def test_two_errors_both_reported(ctx):
    text = GOOD.replace("workers: 2", "workers: 0").replace("graceful_timeout: 5s", "graceful_timeout: 10x")
    err = _check_bad(ctx, text, [
        ((2, 10), '"workers" must be an integer >= 1 or "auto"'),
        ("10x", '"graceful_timeout": bad duration "10x" (use 250ms, 30s, 2m, 1h or a number of seconds)'),
    ])
    assert err.index(":2:10:") < err.index(":3:19:"), "errors not in file order:\n" + err


def test_version(ctx):
    rc, out, err = run_cli(["-v"])
    assert rc == 0, (rc, out, err)
    lines = out.splitlines()
    for lib in ("esgate", "libev", "libh2o", "libyaml", "jansson", "libcurl"):
        assert any(line.startswith(lib + " ") for line in lines), "no %r line in:\n%s" % (lib, out)
    assert any(line.startswith("esgate 0.") or line.startswith("esgate ") for line in lines)


def test_help(ctx):
    rc, out, err = run_cli(["-h"])
    assert rc == 0, (rc, out, err)
    for word in ("HUP", "TERM", "QUIT", "-c", "-t"):
        assert word in out, "%r not in usage:\n%s" % (word, out)
