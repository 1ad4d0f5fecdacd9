/*
 * stage_builtin.c - the builtin stage, the last of the worker's own
 * endpoints (see pipeline.h and worker/router.h): /healthz from the worker
 * itself, /metrics and /_esgate/status from the memory it shares with the
 * master and the other workers, so the answer is the same whichever worker
 * gives it; /_esgate/, the status page that reads those two.
 */
#include "worker/router.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/metrics.h"
#include "lib/scoreboard.h"
#include "worker/statuspage.h"

static void
stage_builtin_health(struct exchange *ex)
{
	static const char health[] = "{\"status\":\"ok\"}";

	exchange_send_json(ex->req, 200, health, sizeof(health) - 1);
}

static const char *const stage_builtin_stores[] = {"local", "redis", "fallback"};

/* With rate_limit: {redis}, each worker's view of it from the scoreboard
 * (per worker, unlike the shared counters: a state, not a count), after
 * TEXT; NULL when out of memory (TEXT freed). */
static char *
stage_builtin_metrics_workers(const struct exchange_env *env, char *text, size_t *len)
{
	static const char head[] = "# HELP esgate_ratelimit_redis_up Whether the worker's limits are shared through "
	                           "Redis (1) or falling back (0: the local limit, or 503 with fail: closed).\n"
	                           "# TYPE esgate_ratelimit_redis_up gauge\n";
	size_t cap = *len + sizeof(head) + (size_t)env->sb->nslots * 64;
	char *out;

	if (env->cfg->redis.address == NULL)
		return text;
	if ((out = realloc(text, cap)) == NULL) {
		free(text);
		return NULL;
	}
	memcpy(out + *len, head, sizeof(head) - 1);
	*len += sizeof(head) - 1;
	for (uint32_t i = 0; i < env->sb->nslots; i++) {
		const struct scoreboard_slot *s = &env->sb->slots[i];

		if (__atomic_load_n(&s->pid, __ATOMIC_RELAXED) == 0 ||
		    __atomic_load_n(&s->state, __ATOMIC_RELAXED) != SCOREBOARD_READY)
			continue;
		*len += (size_t)snprintf(out + *len, cap - *len, "esgate_ratelimit_redis_up{worker=\"%u\"} %d\n",
		                         (unsigned)s->id,
		                         __atomic_load_n(&s->ratelimit_store, __ATOMIC_RELAXED) == SCOREBOARD_STORE_REDIS);
	}
	return out;
}

/* A label value as the exposition format wants it: \\, \" and \n escaped. */
static void
stage_builtin_label(char *out, size_t outlen, const char *s)
{
	size_t j = 0;

	for (; *s != '\0' && j + 3 < outlen; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[j++] = '\\';
			out[j++] = *s == '\n' ? 'n' : *s;
		} else {
			out[j++] = *s;
		}
	}
	out[j] = '\0';
}

/* Each TLS listener's certificates' expiry, from this worker's
 * configuration (what it serves), after TEXT; NULL when out of memory
 * (TEXT freed).  The family is always declared, with no sample when there
 * is no TLS listener. */
static char *
stage_builtin_metrics_certs(const struct exchange_env *env, char *text, size_t *len)
{
	static const char head[] = "# HELP esgate_tls_certificate_expiry_timestamp_seconds When each certificate of "
	                           "the TLS listeners expires (notAfter), in Unix time.\n"
	                           "# TYPE esgate_tls_certificate_expiry_timestamp_seconds gauge\n";
	const struct config *cfg = env->cfg;
	size_t cap = *len + sizeof(head);
	char *out;

	for (size_t i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].tls != NULL)
			cap += cfg->listen[i].tls->ncerts * (2 * 4096 + 1024);
	if ((out = realloc(text, cap)) == NULL) {
		free(text);
		return NULL;
	}
	memcpy(out + *len, head, sizeof(head) - 1);
	*len += sizeof(head) - 1;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct tls_listener *t = cfg->listen[i].tls;
		char listener[512], file[4096], name[512];

		if (t == NULL)
			continue;
		stage_builtin_label(listener, sizeof(listener), cfg->listen[i].spec);
		for (size_t c = 0; c < t->ncerts; c++) {
			stage_builtin_label(file, sizeof(file), t->certs[c].cert_file);
			stage_builtin_label(name, sizeof(name), t->certs[c].nnames > 0 ? t->certs[c].names[0] : "");
			*len += (size_t)snprintf(out + *len, cap - *len,
			                         "esgate_tls_certificate_expiry_timestamp_seconds{listener=\"%s\","
			                         "file=\"%s\",name=\"%s\"} %lld\n",
			                         listener, file, name, (long long)t->certs[c].not_after);
		}
	}
	return out;
}

static void
stage_builtin_metrics(struct exchange *ex)
{
	h2o_req_t *req = ex->req;
	size_t len;
	char *text = metrics_render(ex->env->metrics, &len);
	static const char type[] = "text/plain; version=0.0.4; charset=utf-8";

	if (text != NULL)
		text = stage_builtin_metrics_workers(ex->env, text, &len);
	if (text != NULL)
		text = stage_builtin_metrics_certs(ex->env, text, &len);
	if (text == NULL) {
		exchange_send_error(req, 500, "internal_error", "out of memory");
		return;
	}
	req->res.status = 200;
	req->res.reason = "OK";
	req->res.content_length = len;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, sizeof(type) - 1);
	h2o_send_inline(req, text, len); /* copies */
	free(text);
}

/* GET /_esgate/status: what this esgate is, and its workers, read from the
 * scoreboard shared with the master. */
static void
stage_builtin_status(struct exchange *ex)
{
	static const char *const states[] = {"starting", "ready", "draining", "stopping"};
	const struct exchange_env *env = ex->env;
	json_t *doc, *workers = json_array();
	uint64_t now = scoreboard_now_ms();
	size_t alive, nodes = upstream_nodes(env->upstream, &alive);
	char *text;

	for (uint32_t i = 0; i < env->sb->nslots; i++) {
		const struct scoreboard_slot *s = &env->sb->slots[i];
		int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
		uint32_t store = __atomic_load_n(&s->ratelimit_store, __ATOMIC_RELAXED);
		if (pid == 0)
			continue;
		json_t *w = json_pack("{s:i,s:i,s:i,s:f,s:I,s:s,s:s}", "pid", (int)pid, "id", (int)s->id, "generation",
		                      (int)s->generation, "age_seconds", (double)(now - s->started_ms) / 1000.0, "requests",
		                      (json_int_t)__atomic_load_n(&s->requests, __ATOMIC_RELAXED), "state",
		                      st < 4 ? states[st] : "unknown", "ratelimit_store",
		                      store < 3 ? stage_builtin_stores[store] : "unknown");

		if (w != NULL && env->cfg->redis.address != NULL)
			json_object_set_new(
			    w, "redis",
			    json_pack("{s:I,s:I,s:I}", "round_trips",
			              (json_int_t)__atomic_load_n(&s->redis_round_trips, __ATOMIC_RELAXED), "errors",
			              (json_int_t)__atomic_load_n(&s->redis_errors, __ATOMIC_RELAXED), "fallback",
			              (json_int_t)__atomic_load_n(&s->redis_fallback, __ATOMIC_RELAXED)));
		json_array_append_new(workers, w);
	}
	doc = json_pack("{s:s,s:s,s:i,s:I,s:i,s:o,s:{s:i,s:i}}", "version", ESGATE_VERSION, "config", env->cfg->path,
	                "generation", (int)__atomic_load_n(&env->metrics->generation, __ATOMIC_RELAXED),
	                "uptime_seconds", (json_int_t)(time(NULL) - (time_t)env->metrics->started_unix), "served_by",
	                (int)getpid(), "workers", workers, "upstream", "nodes", (int)nodes, "alive", (int)alive);
	text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(doc);
	if (text == NULL) {
		exchange_send_error(ex->req, 500, "internal_error", "out of memory");
		return;
	}
	exchange_send_json(ex->req, 200, text, strlen(text));
	free(text);
}

static enum pipeline_result
stage_builtin_run(struct exchange *ex)
{
	switch (ex->row->kind) {
	case ROUTER_HEALTH: stage_builtin_health(ex); break;
	case ROUTER_METRICS: stage_builtin_metrics(ex); break;
	case ROUTER_STATUS: stage_builtin_status(ex); break;
	case ROUTER_PAGE: statuspage_serve(ex->req); break;
	case ROUTER_UPSTREAM: /* not this stage's (see stage_builtin_applies): a bug */
		exchange_send_error(ex->req, 500, "internal_error", "no answer for this route");
		break;
	}
	return PIPELINE_ANSWERED;
}

static int
stage_builtin_applies(const struct router_row *row)
{
	return row->kind != ROUTER_UPSTREAM;
}

const struct pipeline_stage stage_builtin = {"builtin", stage_builtin_run, stage_builtin_applies};
