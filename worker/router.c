/*
 * router.c - the route tables, built from the configuration when a worker
 * starts (see router.h).
 *
 * The worker's own endpoints are rows like the configured routes, made
 * from router_builtins below: each says where it is served and when.  They
 * come first, match their path exactly (never through a template, so a
 * configured "/{index}" cannot take /healthz) and claim it: a wrong method
 * there is a 405, not a try at the next row.
 */
#include "worker/router.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

#define ROUTER_GET_HEAD (CONFIG_METHOD_GET | CONFIG_METHOD_HEAD)

/* Which table a builtin goes in, for a configuration. */
enum router_host {
	ROUTER_HOST_MAIN,    /* a public listener */
	ROUTER_HOST_LOCAL,   /* a public listener bound to a loopback address */
	ROUTER_HOST_METRICS, /* metrics.listen */
};

/* One of the worker's own endpoints. */
struct router_builtin {
	const char *path;
	enum router_kind kind;
	/* 1 if it is served on HOST's table with CFG */
	int (*served)(const struct config *cfg, enum router_host host);
};

static int
router_health_served(const struct config *cfg, enum router_host host)
{
	return host != ROUTER_HOST_METRICS;
}

/* /metrics, /_esgate/status and /_esgate/ tell whoever asks the config
 * path, the pids, the uptime and every route's traffic: nowhere with
 * metrics: {enabled: false}; on a metrics listener's connections; on a
 * loopback listener unless there is a metrics listener; on any other
 * (public) listener only with metrics: {public: true}, as nginx's
 * stub_status and HAProxy's stats are only where they are put. */
static int
router_metrics_served(const struct config *cfg, enum router_host host)
{
	if (!cfg->metrics)
		return 0;
	switch (host) {
	case ROUTER_HOST_METRICS: return 1;
	case ROUTER_HOST_LOCAL: return cfg->metrics_public || !cfg->metrics_listen;
	default: return cfg->metrics_public;
	}
}

/* GET /: the original app's es.info(), upstream GET / with no parameters. */
static int
router_cluster_info_served(const struct config *cfg, enum router_host host)
{
	return cfg->cluster_info && host != ROUTER_HOST_METRICS;
}

/* The worker's own endpoints, in the order they are tried. */
static const struct router_builtin router_builtins[] = {
    {"/healthz", ROUTER_HEALTH, router_health_served},
    {"/metrics", ROUTER_METRICS, router_metrics_served},
    {"/_esgate/status", ROUTER_STATUS, router_metrics_served},
    {"/_esgate/", ROUTER_PAGE, router_metrics_served},
    {"/", ROUTER_UPSTREAM, router_cluster_info_served},
};

#define ROUTER_NBUILTINS (sizeof(router_builtins) / sizeof(router_builtins[0]))

/* The metrics series of a builtin, registered in router_new. */
struct router_metrics {
	int root, health, metrics, status, page;
};

static int
router_builtin_metric(const struct router_metrics *m, enum router_kind kind)
{
	switch (kind) {
	case ROUTER_HEALTH: return m->health;
	case ROUTER_METRICS: return m->metrics;
	case ROUTER_STATUS: return m->status;
	case ROUTER_PAGE: return m->page;
	default: return m->root;
	}
}

static void
router_builtin_row(const struct config *cfg, const struct router_builtin *b, const struct router_metrics *m,
                   struct router_row *row)
{
	memset(row, 0, sizeof(*row));
	row->name = b->path;
	row->exact = b->path;
	row->exact_len = strlen(b->path);
	row->methods = ROUTER_GET_HEAD;
	row->claims_path = 1;
	row->kind = b->kind;
	row->metric = router_builtin_metric(m, b->kind);
	if (b->kind == ROUTER_UPSTREAM) {
		/* the cluster's own info document: passed on as it comes, never
		 * cut down; cached as cluster_info: {cache_ttl, coalesce} say */
		row->upstream_method = CONFIG_METHOD_GET;
		row->upstream_path = "/";
		row->cache = (struct cache_route){.id = 0,
		                                  .ttl_ms = cfg->cluster_info_cache_ttl_ms,
		                                  .coalesce = cfg->cluster_info_coalesce,
		                                  .sanitize = 0,
		                                  .metric = row->metric};
	}
	pipeline_build(row, &row->pipeline);
}

static void
router_route_row(const struct config_route *r, uint32_t i, int metric, struct router_row *row)
{
	memset(row, 0, sizeof(*row));
	row->name = r->path;
	row->tmpl = r->path_tmpl;
	row->methods = r->methods;
	row->kind = ROUTER_UPSTREAM;
	row->route = r;
	row->index = i;
	row->upstream_method = r->upstream_method;
	row->sanitize = !r->errors_detail;
	row->metric = metric;
	row->cache = (struct cache_route){.id = 1 + i,
	                                  .ttl_ms = r->cache_ttl_ms,
	                                  .coalesce = r->coalesce,
	                                  .sanitize = row->sanitize,
	                                  .metric = metric};
	pipeline_build(row, &row->pipeline);
}

static void
router_table_init(struct router_table *t, size_t cap, const char *not_found)
{
	if ((t->rows = calloc(cap > 0 ? cap : 1, sizeof(*t->rows))) == NULL)
		log_fatal("calloc");
	t->nrows = 0;
	t->not_found = not_found;
	pipeline_entry(&t->entry);
}

/* T's route set: its templates by row number, so that matching a path does
 * not try every route (stage_route.c). */
static void
router_table_index(struct router_table *t)
{
	for (size_t i = 0; i < t->nrows; i++) {
		if (t->rows[i].tmpl == NULL)
			continue;
		if (t->set == NULL && (t->set = route_set_new()) == NULL)
			log_fatal("route_set_new");
		if (route_set_add(t->set, t->rows[i].tmpl, i) != 0)
			log_fatal("route_set_add");
	}
}

struct router *
router_new(struct exchange_env *env)
{
	const struct config *cfg = env->cfg;
	struct router *r = calloc(1, sizeof(*r));
	struct router_metrics m;
	int caching = 0;

	if (r == NULL)
		log_fatal("calloc");
	/* Metric series by route: the builtins (whether served or not, so
	 * the series exist the same way in every configuration), then the
	 * path templates. */
	m.root = metrics_route(env->metrics, "/");
	m.health = metrics_route(env->metrics, "/healthz");
	m.metrics = metrics_route(env->metrics, "/metrics");
	m.status = metrics_route(env->metrics, "/_esgate/status");
	m.page = metrics_route(env->metrics, "/_esgate/");
	env->metric_unmatched = metrics_route(env->metrics, "unmatched");

	router_table_init(&r->main, ROUTER_NBUILTINS + cfg->nroutes, "no route for this path");
	router_table_init(&r->local, ROUTER_NBUILTINS + cfg->nroutes, "no route for this path");
	router_table_init(&r->metrics, ROUTER_NBUILTINS, "only /metrics, /_esgate/status and /_esgate/ here");
	for (size_t i = 0; i < ROUTER_NBUILTINS; i++) {
		const struct router_builtin *b = &router_builtins[i];
		if (b->served(cfg, ROUTER_HOST_MAIN))
			router_builtin_row(cfg, b, &m, &r->main.rows[r->main.nrows++]);
		if (b->served(cfg, ROUTER_HOST_LOCAL))
			router_builtin_row(cfg, b, &m, &r->local.rows[r->local.nrows++]);
		if (b->served(cfg, ROUTER_HOST_METRICS))
			router_builtin_row(cfg, b, &m, &r->metrics.rows[r->metrics.nrows++]);
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		int metric = metrics_route(env->metrics, cfg->routes[i].path);

		router_route_row(&cfg->routes[i], (uint32_t)i, metric, &r->main.rows[r->main.nrows++]);
		router_route_row(&cfg->routes[i], (uint32_t)i, metric, &r->local.rows[r->local.nrows++]);
	}

	router_table_index(&r->main);
	router_table_index(&r->local);

	/* The micro-cache, only when a row asks for it (the local table has
	 * the same rows that cache). */
	for (size_t i = 0; i < r->main.nrows; i++)
		caching |= r->main.rows[i].cache.ttl_ms > 0 || r->main.rows[i].cache.coalesce;
	if (caching)
		r->cache = cache_new(env->loop, env->cfg, env->counts, env->upstream);
	env->cache = r->cache;
	return r;
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	cache_free(r->cache); /* cancels the upstream requests it owns */
	route_set_free(r->main.set);
	route_set_free(r->local.set);
	free(r->main.rows);
	free(r->local.rows);
	free(r->metrics.rows);
	free(r);
}
