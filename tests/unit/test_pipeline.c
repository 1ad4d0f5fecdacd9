/*
 * test_pipeline.c - worker/pipeline.c and worker/router.c: the route
 * tables a configuration gives, the stages each route passes, in the
 * list's order, and the runner's contract (hand on, answer, suspend and
 * resume).
 */
#include "lib/config.h"
#include "lib/metrics.h"
#include "worker/pipeline.h"
#include "worker/router.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define UP "upstream: {nodes: http://127.0.0.1:9200}\n"

static struct config *
load(const char *yaml)
{
	struct config_errors errs = {0};
	struct config *cfg = config_parse("t.yaml", yaml, strlen(yaml), &errs);

	for (size_t i = 0; i < errs.n; i++)
		cr_log_error("%s", errs.msgs[i]);
	config_errors_free(&errs);
	cr_assert_not_null(cfg);
	return cfg;
}

/* "route,cors,...": the names of P's stages. */
static const char *
names(const struct pipeline *p, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < p->n && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i > 0 ? "," : "", p->stages[i]->name);
	return buf;
}

/* "path:stages path:stages ...": a table's rows. */
static const char *
table(const struct router_table *t, char *buf, size_t len)
{
	char st[256];
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < t->nrows && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s=%s", i > 0 ? " " : "", t->rows[i].name,
		                      names(&t->rows[i].pipeline, st, sizeof(st)));
	return buf;
}

struct tables {
	struct metrics *m;
	struct config *cfg;
	struct exchange_env env;
	struct router *r;
};

static void
tables_build(struct tables *t, const char *yaml)
{
	memset(t, 0, sizeof(*t));
	cr_assert_not_null(t->m = metrics_create(1));
	t->cfg = load(yaml);
	t->env.cfg = t->cfg;
	t->env.metrics = t->m;
	t->env.counts = metrics_shard_claim(t->m, 0);
	t->env.loop = NULL; /* the cache keeps it, and uses it only for requests */
	t->r = router_new(&t->env);
}

static void
tables_free(struct tables *t)
{
	router_free(t->r);
	config_free(t->cfg);
	metrics_destroy(t->m);
}

Test(pipeline, every_route_kind_through_the_same_list)
{
	struct tables t;
	char buf[2048];

	tables_build(&t, "listen: 127.0.0.1:1\n" UP "cluster_info: {cache_ttl: 1s}\n"
	                 "trusted_proxies: [10.0.0.0/8]\n"
	                 "routes:\n"
	                 "  - path: /search/{index}\n"
	                 "    methods: [GET, POST]\n"
	                 "    upstream: {method: POST, path: \"/{index}/_search\"}\n"
	                 "    indices: [books]\n"
	                 "    rate_limit: {rate: 10/s}\n"
	                 "    cors: {allow_origins: '*'}\n"
	                 "  - path: /doc/{index}/{id}\n"
	                 "    methods: GET\n"
	                 "    upstream: {method: GET, path: \"/{index}/_doc/{id}\"}\n"
	                 "    indices: [books]\n"
	                 "    cache_ttl: 2s\n"
	                 "  - path: /plain\n"
	                 "    methods: GET\n"
	                 "    upstream: {method: GET, path: /_cluster/health}\n");
	/* a loopback listener's host */
	cr_expect_str_eq(table(&t.r->local, buf, sizeof(buf)),
	                 "/healthz=route,builtin /metrics=route,builtin /_esgate/status=route,builtin "
	                 "/_esgate/=route,builtin /=route,cache,proxy "
	                 "/search/{index}=route,cors,ratelimit,check,firewall,proxy "
	                 "/doc/{index}/{id}=route,check,cache,proxy "
	                 "/plain=route,check,proxy");
	cr_expect_str_eq(t.r->local.not_found, "no route for this path");
	/* a public listener's: the same without /metrics and /_esgate/ */
	cr_expect_str_eq(table(&t.r->main, buf, sizeof(buf)),
	                 "/healthz=route,builtin /=route,cache,proxy "
	                 "/search/{index}=route,cors,ratelimit,check,firewall,proxy "
	                 "/doc/{index}/{id}=route,check,cache,proxy "
	                 "/plain=route,check,proxy");
	/* the metrics listener's host (used by no connection here) */
	cr_expect_str_eq(table(&t.r->metrics, buf, sizeof(buf)),
	                 "/metrics=route,builtin /_esgate/status=route,builtin /_esgate/=route,builtin");
	cr_expect_not_null(t.r->cache, "a row caches: the router made the cache");
	cr_expect_eq(t.env.cache, t.r->cache);
	/* the cluster info's cache and a route's are the same kind of row */
	cr_expect_eq(t.r->local.rows[4].cache.ttl_ms, 1000);
	cr_expect_eq(t.r->local.rows[4].cache.id, 0);
	cr_expect_eq(t.r->local.rows[4].sanitize, 0, "GET / is never cut down");
	cr_expect_eq(t.r->local.rows[6].cache.ttl_ms, 2000);
	cr_expect_eq(t.r->local.rows[6].cache.id, 2);
	cr_expect_eq(t.r->local.rows[6].sanitize, 1);
	cr_expect_eq(t.r->local.rows[5].index, 0);
	cr_expect_eq(t.r->local.rows[7].index, 2);
	cr_expect_str_eq(names(&t.r->main.entry, buf, sizeof(buf)), "route");
	tables_free(&t);
}

Test(pipeline, builtins_follow_the_configuration)
{
	struct tables t;
	char buf[2048];

	/* metrics on a listener of their own, no cluster info, no cache */
	tables_build(&t, "listen: 127.0.0.1:1\n" UP "cluster_info: false\nmetrics: {listen: 127.0.0.1:2}\n"
	                 "routes:\n"
	                 "  - path: /\n"
	                 "    methods: GET\n"
	                 "    upstream: {method: GET, path: /}\n");
	cr_expect_str_eq(table(&t.r->main, buf, sizeof(buf)), "/healthz=route,builtin /=route,check,proxy");
	cr_expect_str_eq(table(&t.r->local, buf, sizeof(buf)), "/healthz=route,builtin /=route,check,proxy");
	cr_expect_str_eq(table(&t.r->metrics, buf, sizeof(buf)),
	                 "/metrics=route,builtin /_esgate/status=route,builtin /_esgate/=route,builtin");
	cr_expect_str_eq(t.r->metrics.not_found, "only /metrics, /_esgate/status and /_esgate/ here");
	cr_expect_null(t.r->cache);
	cr_expect_null(t.env.cache);
	tables_free(&t);

	/* metrics off: on neither host */
	tables_build(&t, "listen: 127.0.0.1:1\n" UP "metrics: {enabled: false, listen: 127.0.0.1:2}\n");
	cr_expect_str_eq(table(&t.r->main, buf, sizeof(buf)), "/healthz=route,builtin /=route,proxy");
	cr_expect_str_eq(table(&t.r->local, buf, sizeof(buf)), "/healthz=route,builtin /=route,proxy");
	cr_expect_eq(t.r->metrics.nrows, 0);
	tables_free(&t);

	/* metrics.public: on every host */
	tables_build(&t, "listen: 127.0.0.1:1\n" UP "metrics: {public: true, listen: 127.0.0.1:2}\n");
	cr_expect_str_eq(table(&t.r->main, buf, sizeof(buf)),
	                 "/healthz=route,builtin /metrics=route,builtin /_esgate/status=route,builtin "
	                 "/_esgate/=route,builtin /=route,proxy");
	cr_expect_str_eq(table(&t.r->local, buf, sizeof(buf)),
	                 "/healthz=route,builtin /metrics=route,builtin /_esgate/status=route,builtin "
	                 "/_esgate/=route,builtin /=route,proxy");
	cr_expect_eq(t.r->metrics.nrows, 3);
	tables_free(&t);
}

/*
 * The runner, with stages of the test's own.
 */

static char trail[256];
static struct exchange *suspended;

static enum pipeline_result
note(struct exchange *ex, const char *what, enum pipeline_result r)
{
	strncat(trail, what, sizeof(trail) - strlen(trail) - 1);
	if (r == PIPELINE_SUSPENDED)
		suspended = ex;
	return r;
}

static enum pipeline_result
run_a(struct exchange *ex)
{
	return note(ex, "a", PIPELINE_NEXT);
}

static enum pipeline_result
run_wait(struct exchange *ex)
{
	return note(ex, "w", PIPELINE_SUSPENDED);
}

static enum pipeline_result
run_b(struct exchange *ex)
{
	return note(ex, "b", PIPELINE_NEXT);
}

static enum pipeline_result
run_answer(struct exchange *ex)
{
	return note(ex, "!", PIPELINE_ANSWERED);
}

static const struct pipeline_stage stage_a = {"a", run_a, NULL}, stage_wait = {"wait", run_wait, NULL},
                                   stage_b = {"b", run_b, NULL}, stage_answer = {"answer", run_answer, NULL};

Test(pipeline, runner_hands_on_suspends_resumes_and_stops)
{
	struct pipeline p = {.stages = {&stage_a, &stage_wait, &stage_b, &stage_answer, &stage_a}, .n = 5};
	struct exchange ex;

	memset(&ex, 0, sizeof(ex));
	ex.pipeline = &p;
	trail[0] = '\0';
	pipeline_run(&ex);
	cr_expect_str_eq(trail, "aw", "a suspended stage stops the run");
	cr_expect_eq(suspended, &ex);
	cr_expect_eq(ex.next, 2);
	pipeline_resume(&ex);
	cr_expect_str_eq(trail, "awb!", "resumed with the next stage, until one answers");
	cr_expect_eq(ex.next, 4, "nothing after the answer");
}
