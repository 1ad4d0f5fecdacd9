"""Client authentication as the configuration reads it (issue 16, before the
request path enforces it): `esgate key new`, whose output is what clients
send and what the file keeps; the keys file and the JWKS file checked by
`esgate -t` with FILE:LINE:COLUMN; a broken keys file on HUP keeps the
running generation; routes without an auth rule stay open."""

import base64
import hashlib
import os
import re
import signal

from harness import get, make_config, run_cli


def _key_new(name):
    rc, out, err = run_cli(["key", "new", name])
    assert rc == 0, (rc, out, err)
    fields = dict(re.findall(r"^(id|key|header):\s+(.*)$", out, re.M))
    m = re.search(r'^  - \{id: (\S+), hash: "(sha256:[0-9a-f]{64})"\}$', out, re.M)
    assert m and m.group(1) == name, out
    return fields, m.group(0), m.group(2), out


def test_key_new_prints_what_the_client_sends_and_the_file_keeps(ctx):
    fields, line, digest, out = _key_new("reporting")
    key = fields["key"]
    assert fields["id"] == "reporting"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key), key  # 256 random bits, base64url
    header = fields["header"]
    assert header.startswith("Authorization: ApiKey "), header
    # what the official clients send for api_key=(id, key)
    assert base64.b64decode(header.split()[-1]) == ("reporting:" + key).encode()
    assert digest == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert ('api_key=("reporting", "%s")' % key) in out
    # a second key is another key
    assert _key_new("reporting")[0]["key"] != key
    # the line pasted into a configuration is accepted
    path = os.path.join(ctx.tmpdir, "esgate.yaml")
    with open(path, "w") as f:
        f.write(make_config(9200, extra="auth:\n  api_keys:\n  %s\n" % line))
    rc, out2, err = run_cli(["-t", "-c", path])
    assert rc == 0 and "configuration OK" in out2, (rc, out2, err)


def test_key_new_refuses_bad_names(ctx):
    for args in (["key", "new", "a b"], ["key", "new", "a:b"], ["key", "new", ""], ["key"], ["key", "old", "x"],
                 ["key", "new", "x", "y"]):
        rc, out, err = run_cli(args)
        assert rc == 2, (args, rc, out, err)
        assert "key:" not in out, out


def _pos(text, needle):
    """1-based "LINE:COLUMN" of NEEDLE in TEXT."""
    i = text.index(needle)
    return "%d:%d" % (text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i))


def _write(ctx, name, text):
    path = os.path.join(ctx.tmpdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


KEYS_OK = 'api_keys:\n  - {id: app, hash: "sha256:%s"}\n' % hashlib.sha256(b"k").hexdigest()
KEYS_BAD = 'api_keys:\n  - {id: app, hash: "sha256:%s"}\n  - {id: "no good", hash: "my-pasted-key"}\n' % (
    hashlib.sha256(b"k").hexdigest())
ROUTE = ("routes:\n  - path: /s/{index}\n    methods: GET\n    upstream: {method: GET, path: \"/{index}/_search\"}\n"
         "    indices: [books]\n    auth: {}\n")


def test_check_points_into_the_keys_file(ctx):
    keys = _write(ctx, "keys.yaml", KEYS_BAD)
    conf = _write(ctx, "esgate.yaml", make_config(9200, extra="auth: {keys_file: keys.yaml}\n" + ROUTE))
    rc, out, err = run_cli(["-t", "-c", conf])
    assert rc == 1, (rc, out, err)
    assert "esgate: %s:%s: \"id\": bad key id (use 1 to 64 of A-Z a-z 0-9 . _ -)" % (
        keys, _pos(KEYS_BAD, '"no good"')) in err, err
    assert ("esgate: %s:%s: \"hash\" must be \"sha256:\" and 64 hexadecimal digits (esgate key new prints it)"
            % (keys, _pos(KEYS_BAD, '"my-pasted-key"'))) in err, err
    assert "my-pasted-key" not in err, err
    _write(ctx, "keys.yaml", KEYS_OK)
    rc, out, err = run_cli(["-t", "-c", conf])
    assert rc == 0 and "configuration OK" in out, (rc, out, err)


def test_check_points_at_a_bad_jwks_file(ctx):
    _write(ctx, "jwks.json", '{"keys": [{"kty": "oct", "kid": "h", "k": "c2hvcnQ"}]}')
    text = make_config(9200, extra="auth:\n  jwt: {jwks_file: jwks.json}\n")
    conf = _write(ctx, "esgate.yaml", text)
    rc, out, err = run_cli(["-t", "-c", conf])
    assert rc == 1, (rc, out, err)
    want = 'esgate: %s:%s: "jwks_file": %s: keys[0] (kid "h"): oct key shorter than 32 bytes' % (
        conf, _pos(text, "jwks.json"), os.path.join(ctx.tmpdir, "jwks.json"))
    assert want in err, (want, err)
    assert "c2hvcnQ" not in err and "short" not in err.replace("shorter", ""), err


def test_hup_with_a_broken_keys_file_keeps_the_running_generation(ctx):
    d = ctx.esdemo()
    keys = _write(ctx, "keys.yaml", KEYS_OK)
    g = ctx.esgate(make_config(d.port, extra="auth: {keys_file: %s}\n" % keys + ROUTE))
    old = sorted(g.workers())
    assert get(g.port, "/")[0] == 200, "the cluster info has no auth rule: open as before"
    _write(ctx, "keys.yaml", KEYS_BAD)
    g.signal(signal.SIGHUP)
    g.wait_log(r"reload failed: still running generation 1 with the previous configuration$")
    text = g.log_text()
    assert "[error] master[%d]: %s:%s: \"id\": bad key id" % (g.pid, keys, _pos(KEYS_BAD, '"no good"')) in text, text
    assert "my-pasted-key" not in text
    assert sorted(g.workers()) == old
    for _ in range(10):
        assert get(g.port, "/")[0] == 200
    # fixed, the next HUP starts generation 2
    _write(ctx, "keys.yaml", KEYS_OK + '  - {id: second, hash: "sha256:%s"}\n' % hashlib.sha256(b"k2").hexdigest())
    g.signal(signal.SIGHUP)
    g.wait_log(r"configuration OK: starting generation 2 with 2 worker\(s\)$")
    g.wait_log(r"generation 2 serving; draining 2 old worker\(s\)$", timeout=15)
    assert get(g.port, "/")[0] == 200
