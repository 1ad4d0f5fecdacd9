"""esgate's own answers and its mapping of upstream failures, all JSON."""

import json
import time

from harness import free_port, get, make_config, request


def _json_error(status_got, headers, body, status):
    assert status_got == status, (status_got, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    doc = json.loads(body)
    assert isinstance(doc.get("error"), dict), doc
    assert isinstance(doc["error"].get("type"), str) and doc["error"]["type"], doc
    assert isinstance(doc["error"].get("reason"), str) and doc["error"]["reason"], doc
    assert doc.get("status") == status, doc
    return doc


def test_unknown_path_is_404_json(ctx):
    d, g = ctx.start()
    doc = _json_error(*get(g.port, "/nope"), 404)
    assert doc["error"]["type"] == "not_found", doc


def test_post_root_is_405_with_allow(ctx):
    d, g = ctx.start()
    status, headers, body = request(g.port, "POST", "/", body=b"{}", headers={"Content-Type": "application/json"})
    _json_error(status, headers, body, 405)
    assert headers.get("allow") == "GET, HEAD", headers


def test_healthz(ctx):
    d, g = ctx.start()
    status, headers, body = get(g.port, "/healthz")
    assert status == 200, status
    assert json.loads(body) == {"status": "ok"}, body
    assert headers.get("content-type", "").startswith("application/json"), headers


def test_upstream_down_is_502_and_healthz_still_ok(ctx):
    g = ctx.esgate(make_config(free_port()))
    _json_error(*get(g.port, "/"), 502)
    status, _, body = get(g.port, "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}, (status, body)


def test_upstream_slow_is_504_within_a_second(ctx):
    d, g = ctx.start(esdemo_args=("--latency", "3000"), request_timeout="500ms")
    t0 = time.monotonic()
    status, headers, body = get(g.port, "/")
    elapsed = time.monotonic() - t0
    _json_error(status, headers, body, 504)
    assert 0.4 <= elapsed <= 1.5, "504 after %.2fs (request_timeout 500ms)" % elapsed


def test_upstream_closes_is_502(ctx):
    d, g = ctx.start(esdemo_args=("--close",))
    _json_error(*get(g.port, "/"), 502)


def test_forced_upstream_status_is_passed_through(ctx):
    d, g = ctx.start()
    d.control(status=503)
    direct_status, _, direct_body = d.get("/")
    assert direct_status == 503
    status, headers, body = get(g.port, "/")
    doc = _json_error(status, headers, body, 503)
    assert body == direct_body, (body, direct_body)
    assert doc["error"]["type"] == "esdemo_forced_status_exception", doc
    assert headers.get("x-elastic-product") == "Elasticsearch", headers
    d.control(status=0)
    assert get(g.port, "/")[0] == 200
