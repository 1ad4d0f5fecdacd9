"""What goes upstream besides the path: the configured credentials (and only
them), the request id as X-Opaque-Id; and what never shows: the client's own
credentials and headers upstream, the configured secrets in answers or logs."""

import base64
import re

from harness import make_config, request

API_KEY = "id:key"
API_KEY_B64 = "aWQ6a2V5"  # base64("id:key")
USERNAME, PASSWORD = "esgate-user", "s3cret-Pa55word-x9"
BEARER = "dGVzdC1iZWFyZXItdG9rZW4tOTk5"

# Client headers that must never reach the cluster.
HOSTILE_HEADERS = {
    "Authorization": "Basic " + base64.b64encode(b"elastic:client-side-pw").decode(),
    "X-Evil": "1",
    "Cookie": "session=client-cookie-123",
    "X-Forwarded-For": "10.6.6.6",
    "Proxy-Authorization": "Basic Y2xpZW50OnByb3h5",
    "User-Agent": "evil-agent/1.0",
    "X-Opaque-Id": "client-chosen-opaque-id",
}

# What esgate may send upstream: request line basics, plus the headers it
# owns (curl adds Host and, for bodies, Content-Length).
ALLOWED_UPSTREAM = {"host", "accept", "accept-encoding", "content-type", "content-length", "x-opaque-id",
                    "authorization", "user-agent"}

REQ_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _start(ctx, upstream):
    d = ctx.esdemo()
    # access log on stderr too: the whole log is searched for secrets.
    g = ctx.esgate(make_config(d.port, upstream=upstream, log_level="debug", extra="access_log: {file: \"-\"}\n"))
    return d, g


def _upstream_headers(d, g):
    """GET / with HOSTILE_HEADERS: (headers esdemo got, answer headers, answer body)."""
    status, headers, body = request(g.port, "GET", "/", headers=HOSTILE_HEADERS)
    assert status == 200, (status, body)
    last = d.last()
    assert last["path"] == "/" and last["method"] == "GET", last
    return last["headers"], headers, body


def _assert_only_configured_headers(up, want_auth):
    assert up.get("authorization") == want_auth, "upstream Authorization %r, want %r" % (
        up.get("authorization"), want_auth)
    for name in ("x-evil", "cookie", "x-forwarded-for", "proxy-authorization"):
        assert name not in up, "client header %s reached the upstream: %r" % (name, up)
    assert up.get("user-agent") != HOSTILE_HEADERS["User-Agent"], up
    # X-Opaque-Id upstream is esgate's request id, never the client's own X-Opaque-Id.
    assert REQ_ID_RE.match(up.get("x-opaque-id", "")), up
    extra = set(up) - ALLOWED_UPSTREAM
    assert not extra, "unexpected headers upstream: %r" % up


def _assert_secrets_absent(g, resp_headers, body, secrets):
    text = g.log_text()
    for s in secrets:
        assert s not in text, "secret %r in the esgate log:\n%s" % (
            s, "\n".join(line for line in text.splitlines() if s in line))
        assert s.encode() not in body, "secret %r in the answer body" % s
        for k, v in resp_headers.items():
            assert s not in v, "secret %r in answer header %s" % (s, k)


def test_api_key_is_base64_encoded_and_replaces_client_authorization(ctx):
    d, g = _start(ctx, {"api_key": '"%s"' % API_KEY})
    up, resp_headers, body = _upstream_headers(d, g)
    _assert_only_configured_headers(up, "ApiKey " + API_KEY_B64)
    # An error answer too; then the whole log.
    request(g.port, "GET", "/nope", headers=HOSTILE_HEADERS)
    _assert_secrets_absent(g, resp_headers, body, [API_KEY, API_KEY_B64])


def test_basic_auth_is_sent_and_password_never_logged(ctx):
    d, g = _start(ctx, {"username": USERNAME, "password": PASSWORD})
    up, resp_headers, body = _upstream_headers(d, g)
    b64 = base64.b64encode(("%s:%s" % (USERNAME, PASSWORD)).encode()).decode()
    _assert_only_configured_headers(up, "Basic " + b64)
    _assert_secrets_absent(g, resp_headers, body, [PASSWORD, b64])


def test_bearer_token_is_sent_and_never_logged(ctx):
    d, g = _start(ctx, {"bearer": '"%s"' % BEARER})
    up, resp_headers, body = _upstream_headers(d, g)
    _assert_only_configured_headers(up, "Bearer " + BEARER)
    _assert_secrets_absent(g, resp_headers, body, [BEARER])


def test_no_credentials_configured_means_no_authorization_upstream(ctx):
    d, g = _start(ctx, {})
    up, _, _ = _upstream_headers(d, g)
    assert "authorization" not in up, "the client's Authorization was forwarded: %r" % up
    _assert_only_configured_headers(up, None)


def test_secrets_stay_out_of_the_log_when_the_upstream_fails(ctx):
    # The error paths (502 after retries, debug logging) are where a URL or
    # header dump would leak credentials.
    d, g = _start(ctx, {"api_key": '"%s"' % API_KEY})
    d.control(status=503)
    status, headers, body = request(g.port, "GET", "/", headers=HOSTILE_HEADERS)
    assert status == 503, (status, body)
    d.control(close=1, status=0)
    status, headers2, body2 = request(g.port, "GET", "/", headers=HOSTILE_HEADERS)
    assert status == 502, (status, body2)
    d.control(close=0)
    _assert_secrets_absent(g, headers, body + body2, [API_KEY, API_KEY_B64])


def test_valid_request_id_is_returned_and_sent_as_opaque_id(ctx):
    d, g = _start(ctx, {})
    for rid in ("abc-123", "A.b_c:d-9", "x" * 128, "0"):
        status, headers, body = request(g.port, "GET", "/", headers={"X-Request-Id": rid})
        assert status == 200, (status, body)
        assert headers.get("x-request-id") == rid, (rid, headers)
        got = d.last()["headers"].get("x-opaque-id")
        assert got == rid, "X-Request-Id %r went upstream as X-Opaque-Id %r" % (rid, got)
        assert "x-request-id" not in d.last()["headers"], d.last()["headers"]


def test_invalid_request_id_is_replaced_by_a_generated_one(ctx):
    d, g = _start(ctx, {})
    seen = set()
    for rid in (None, "a b", "x" * 200, "x" * 129, "<x>", "a/b", "id;drop", ""):
        hdrs = {} if rid is None else {"X-Request-Id": rid}
        status, headers, body = request(g.port, "GET", "/", headers=hdrs)
        assert status == 200, (rid, status, body)
        got = headers.get("x-request-id", "")
        assert REQ_ID_RE.match(got), "X-Request-Id %r answered with %r, want 32 hex digits" % (rid, got)
        opaque = d.last()["headers"].get("x-opaque-id")
        assert opaque == got, "answer id %r but X-Opaque-Id %r upstream (sent %r)" % (got, opaque, rid)
        seen.add(got)
    assert len(seen) == 8, "generated ids repeat: %r" % sorted(seen)


def test_error_answers_carry_a_request_id(ctx):
    d, g = _start(ctx, {})
    status, headers, _ = request(g.port, "GET", "/nope", headers={"X-Request-Id": "err-1"})
    assert status == 404 and headers.get("x-request-id") == "err-1", (status, headers)
    status, headers, _ = request(g.port, "GET", "/healthz")
    assert status == 200 and REQ_ID_RE.match(headers.get("x-request-id", "")), headers
