"""conf/grafana/esgate.json, the Grafana dashboard for /metrics: every
metric it queries is one that a running esgate's /metrics exposes, and
every label it groups or filters by is one those metrics carry."""

import json
import os
import re

from harness import get, make_config
from test_statuspage import ROUTES

DASHBOARD = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "grafana", "esgate.json")
# A route with an auth rule, for the authentication metrics.
AUTH = 'auth:\n  api_keys:\n    - {id: grafana, hash: "sha256:%s"}\n' % ("0" * 64)
AUTH_ROUTE = ("  - path: /private/{index}\n    methods: [GET]\n    upstream: {method: POST, path: \"/{index}/_search\"}\n"
              "    indices: [books]\n    auth: {}\n")
# Labels Prometheus adds to every series it scrapes, and the histogram's.
SCRAPE_LABELS = {"instance", "job", "le"}


def _exposed(text):
    """{metric name: set of label names seen} from a /metrics text: the
    families of the # TYPE lines (a histogram's _bucket, _sum, _count)."""
    names = {}
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
        name, kind = m.groups()
        names[name] = set()
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[name + suffix] = set()
    for m in re.finditer(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$", text, re.M):
        assert m.group(1) in names, "a sample of no # TYPE family: %s" % m.group(0)
        names[m.group(1)] |= set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2) or ""))
    return names


def _exprs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expr", "definition") and isinstance(v, str):
                out.append(v)
            else:
                _exprs(v, out)
    elif isinstance(node, list):
        for v in node:
            _exprs(v, out)
    return out


def test_dashboard_queries_only_what_metrics_exposes(ctx):
    d = ctx.esdemo()
    g = ctx.esgate(make_config(d.port, workers=2, extra=AUTH + ROUTES + AUTH_ROUTE))
    # Requests that give every family its series: cache hits, a rate-limit
    # refusal, upstream attempts, an authentication.
    for _ in range(3):
        assert get(g.port, "/")[0] == 200
    assert [get(g.port, "/doc/books/1")[0] for _ in range(2)] == [200, 429]
    assert get(g.port, "/private/books")[0] == 401
    status, _, body = get(g.port, "/metrics")
    assert status == 200
    exposed = _exposed(body.decode())
    assert "esgate_ratelimit_refused_total" in exposed and "esgate_upstream_duration_seconds_bucket" in exposed

    dash = json.load(open(DASHBOARD))
    assert dash["uid"] == "esgate" and dash["title"], dash.get("title")
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(panels) >= 15, len(panels)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for p in panels:
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        gp = p["gridPos"]
        assert gp["x"] >= 0 and gp["w"] > 0 and gp["x"] + gp["w"] <= 24, (p["title"], gp)

    exprs = _exprs(dash, [])
    used = set()
    for e in exprs:
        names = set(re.findall(r"\b(esgate_[a-z0-9_]+)\b", e))
        assert names, "a query without an esgate metric: %s" % e
        unknown = names - set(exposed)
        assert not unknown, "%s not in /metrics (query %s)" % (sorted(unknown), e)
        used |= names
        labels = set()
        for m in re.finditer(r"\b(?:by|without)\s*\(([^)]*)\)", e):
            labels |= {x.strip() for x in m.group(1).split(",") if x.strip()}
        for m in re.finditer(r"\{([^}]*)\}", e):
            labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(1)))
        carried = set().union(*(exposed[n] for n in names)) | SCRAPE_LABELS
        assert labels <= carried, "labels %s not on %s (query %s)" % (sorted(labels - carried), sorted(names), e)
    # Every family is on the dashboard somewhere.
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    missing = {n for n in exposed if not n.endswith(("_bucket", "_sum", "_count"))} - families
    assert not missing, "metrics not on the dashboard: %s" % sorted(missing)
