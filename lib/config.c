/*
 * config.c - reads the YAML configuration into a struct config.
 *
 * libyaml's document API gives a node tree whose nodes carry their start
 * mark, so every message can point at the offending node.  Each mapping
 * level (top, "log:", "upstream:", a route and its "upstream:") is a
 * static table of directives, as in
 * h2o's configurator: the walker checks key names, duplicates, node types
 * and required keys, and the handlers only check values.  Nothing stops at
 * the first error: an operator fixing a file wants to see every problem in
 * one run.  The struct config is filled as the walk goes and thrown away if
 * anything was wrong, so a reload never sees half a configuration.
 *
 * A key's default sits in its row, written as in the file, and is read by
 * the key's own handler before the walk (config_defaults), so a default
 * can never be a value the file could not hold.  What one value means (an
 * address, a URL, a duration, a size, a rate, an origin) is lib/parse.c's;
 * the handlers here put its answer in place and word the errors.
 */
#include "config.h"
#include "dls.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_WORKERS_MAX 1024
#define CONFIG_MAXCONN_MAX 100000
#define CONFIG_PIPELINE_MAX 16 /* worker/h1client.c: H1CLIENT_PIPE_MAX */
#define CONFIG_RETRIES_MAX 100
#define CONFIG_BODY_MAX (100 * 1024 * 1024) /* Elasticsearch's own http.max_content_length */
#define CONFIG_FILE_MAX (16 * 1024 * 1024) /* a config is never this big */

/* Node types a directive accepts; a directive may accept several. */
#define CONFIG_T_SCALAR 0x1
#define CONFIG_T_SEQUENCE 0x2
#define CONFIG_T_MAPPING 0x4

/* Directive flags. */
#define CONFIG_F_REQUIRED 0x1
#define CONFIG_F_POSITIVE 0x2 /* durations: 0 is not allowed */

struct config_ctx {
	const char *name; /* file name for the messages */
	yaml_document_t *doc;
	struct config_errors *errs;
	size_t nerr; /* counted here too: a message may fail to allocate */
	struct config *cfg;
	/* what the generic handlers' offsets are relative to: cfg, or the
	 * struct config_route being read */
	char *base;
	yaml_node_t *route_upath; /* the current route's upstream "path" */
	yaml_node_t *root_route;  /* the first route whose path is "/" */
	/* "auth": what is checked once the whole file (and the keys file)
	 * is read, with where it was written */
	struct config_pending *pending;
	size_t npending;
};

/* A place in a file, kept past the walk of its node: a keys file's
 * document is gone by the time the checks across the file run. */
struct config_pending {
	int kind;		/* 'r': a grant's route path; 'k': an API key id; 'a': a route's "auth";
				 * 'd': a grant's "dls" (b 0) or "fields" (b 1) */
	size_t a, b;		/* 'r': grant and path numbers; 'k': key number (in file order);
				 * 'a': route number; 'd': grant number */
	const char *name;	/* the file */
	yaml_mark_t mark;
	yaml_node_t *node;	/* 'a': the "schemes" node, or NULL (main document, still there) */
};

struct config_directive;
typedef void config_handler(struct config_ctx *, const struct config_directive *, yaml_node_t *);

struct config_directive {
	const char *name;
	unsigned types; /* CONFIG_T_* */
	unsigned flags; /* CONFIG_F_* */
	config_handler *handler;
	size_t off;      /* field in ctx->base (struct config, or struct config_route), for the generic handlers */
	const char *def; /* the default, written as in the file and read by the same handler before
	                  * the walk; NULL: none (a string left unset, a zero, or a value derived
	                  * from other keys where the walk says so) */
};

/* A directive table and the words naming its scope in messages. */
struct config_scope {
	const struct config_directive *dirs;
	size_t ndirs;
	const char *suffix; /* "" at the top, " in upstream", ... */
};

static void config_error(struct config_ctx *, const yaml_mark_t *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void config_errorf(struct config_errors *, const char *, ...) __attribute__((format(printf, 2, 3)));

/*
 * Errors.
 */

static void
config_errors_add(struct config_errors *errs, char *msg)
{
	char **p;

	if (errs == NULL || msg == NULL) {
		free(msg);
		return;
	}
	if ((p = realloc(errs->msgs, (errs->n + 1) * sizeof(*p))) == NULL) {
		free(msg);
		return;
	}
	errs->msgs = p;
	errs->msgs[errs->n++] = msg;
}

/* A message without a position ("FILE: ..."); the caller puts the name in. */
static void
config_errorf(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	config_errors_add(errs, msg);
}

static void
config_error(struct config_ctx *ctx, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;
	char *body, *msg = NULL;

	ctx->nerr++;
	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	va_end(ap);
	if (body == NULL)
		return;
	/* libyaml counts from 0, editors and compilers from 1 */
	if (asprintf(&msg, "%s:%zu:%zu: %s", ctx->name, mark->line + 1, mark->column + 1, body) < 0)
		msg = NULL;
	free(body);
	config_errors_add(ctx->errs, msg);
}

static void
config_nomem(struct config_ctx *ctx, yaml_node_t *node)
{
	config_error(ctx, &node->start_mark, "out of memory");
}

void
config_errors_free(struct config_errors *errs)
{
	if (errs == NULL)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

/*
 * Handlers.  The walker has checked the node type against the table.
 */

static const char *
config_scalar(yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

/* A string field of struct config; empty strings are refused because an
 * empty "pidfile:" or "password:" is a mistake, never a wish. */
static void
config_on_string(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	char **field = (char **)(void *)(ctx->base + d->off);

	if (config_scalar(node)[0] == '\0') {
		config_error(ctx, &node->start_mark, "\"%s\" must not be empty", d->name);
		return;
	}
	if ((*field = strdup(config_scalar(node))) == NULL)
		config_nomem(ctx, node);
}

static void
config_on_duration(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off);
	uint64_t ms;

	if (parse_duration(config_scalar(node), &ms) != 0) {
		config_error(ctx, &node->start_mark,
		             "\"%s\": bad duration \"%s\" (use 250ms, 30s, 2m, 1h or a number of seconds)", d->name,
		             config_scalar(node));
		return;
	}
	if (ms == 0 && (d->flags & CONFIG_F_POSITIVE)) {
		config_error(ctx, &node->start_mark, "\"%s\" must be greater than 0", d->name);
		return;
	}
	*field = ms;
}

static void
config_on_workers(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	const char *s = config_scalar(node);
	uint64_t v;
	long n;

	if (strcmp(s, "auto") == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		ctx->cfg->workers_auto = 1;
		ctx->cfg->workers = n < 1 ? 1 : n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (unsigned)n;
		return;
	}
	if (parse_uint(s, CONFIG_WORKERS_MAX, &v) != 0 || v < 1) {
		config_error(ctx, &node->start_mark, "\"workers\" must be an integer >= 1 or \"auto\"");
		return;
	}
	ctx->cfg->workers_auto = 0;
	ctx->cfg->workers = (unsigned)v;
}

static void
config_on_level(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	int level;

	if ((level = log_level_parse(config_scalar(node))) < 0) {
		config_error(ctx, &node->start_mark,
		             "\"level\": unknown log level \"%s\" (use debug, info, warn or error)",
		             config_scalar(node));
		return;
	}
	ctx->cfg->log_level = level;
}

/* A count from 1 to MAX into *OUT, or an error that names the range. */
static void
config_count(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node, unsigned max, unsigned *out)
{
	uint64_t v;

	if (parse_uint(config_scalar(node), max, &v) != 0 || v < 1) {
		config_error(ctx, &node->start_mark, "\"%s\" must be an integer from 1 to %u", d->name, max);
		return;
	}
	*out = (unsigned)v;
}

static void
config_on_maxconn(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_count(ctx, d, node, CONFIG_MAXCONN_MAX, &ctx->cfg->upstream.max_connections_per_node);
}

static void
config_on_pipeline_depth(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_count(ctx, d, node, CONFIG_PIPELINE_MAX, &ctx->cfg->upstream.pipeline_depth);
}

/* A scalar naming one of two values: *FIELD = V1 or V2, else an error that
 * names both. */
static void
config_pick(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node, int *field,
            const char *n1, int v1, const char *n2, int v2)
{
	const char *s = config_scalar(node);

	if (strcmp(s, n1) == 0)
		*field = v1;
	else if (strcmp(s, n2) == 0)
		*field = v2;
	else
		config_error(ctx, &node->start_mark, "\"%s\" must be %s or %s", d->name, n1, n2);
}

static void
config_on_http_client(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_pick(ctx, d, node, &ctx->cfg->upstream.http_client, "native", CONFIG_HTTP_CLIENT_NATIVE, "curl",
	            CONFIG_HTTP_CLIENT_CURL);
}

/* "listen" and "nodes" take one string or a sequence of them: returns the
 * item nodes in *ITEMS and their count, or -1 after reporting. */
static int
config_string_list(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node,
                   yaml_node_item_t **items, size_t *n, const char *what)
{
	if (node->type == YAML_SCALAR_NODE) {
		*items = NULL;
		*n = 1;
		return 0;
	}
	*items = node->data.sequence.items.start;
	*n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
	if (*n == 0) {
		config_error(ctx, &node->start_mark, "\"%s\" must name at least one %s", d->name, what);
		return -1;
	}
	return 0;
}

/* Parses one address (the value of ITEM) and appends it to cfg->listen,
 * refusing a duplicate of any address already there: "listen" and
 * "metrics.listen" share the list, in whichever order the file has them.
 * Messages name the key "listen" in both places. */
static void
config_listen_item(struct config_ctx *ctx, yaml_node_t *item, int metrics_only)
{
	struct config *cfg = ctx->cfg;
	struct parse_listen l, *p;
	size_t j;

	switch (parse_listen(config_scalar(item), &l)) {
	case PARSE_OK: break;
	case PARSE_RANGE:
		config_error(ctx, &item->start_mark, "\"listen\": port out of range in \"%s\"", config_scalar(item));
		return;
	case PARSE_NOMEM: config_nomem(ctx, item); return;
	default:
		config_error(ctx, &item->start_mark,
		             "\"listen\": bad address \"%s\" (use host:port, [v6]:port or unix:/path)",
		             config_scalar(item));
		return;
	}
	/* Two sockets on one address cannot both bind.  Port 0 would bind
	 * twice, but within one list the spec names a socket across reloads;
	 * the metrics listener may still ask for a port of its own with 0. */
	for (j = 0; j < cfg->nlisten; j++)
		if (cfg->listen[j].kind == l.kind && cfg->listen[j].port == l.port &&
		    (cfg->listen[j].metrics_only == metrics_only || l.port != 0 || l.kind == PARSE_LISTEN_UNIX) &&
		    (l.kind == PARSE_LISTEN_UNIX ? strcmp(cfg->listen[j].host, l.host)
		                                  : strcasecmp(cfg->listen[j].host, l.host)) == 0)
			break;
	if (j < cfg->nlisten) {
		config_error(ctx, &item->start_mark, "duplicate listen address \"%s\"", config_scalar(item));
		parse_listen_clear(&l);
		return;
	}
	if ((p = realloc(cfg->listen, (cfg->nlisten + 1) * sizeof(*p))) == NULL) {
		parse_listen_clear(&l);
		config_nomem(ctx, item);
		return;
	}
	l.metrics_only = metrics_only;
	cfg->listen = p;
	cfg->listen[cfg->nlisten++] = l;
}

static void config_listen_mapping(struct config_ctx *, yaml_node_t *);

/* "listen": an address, a listener mapping ({address, tls}), or a
 * sequence of either. */
static void
config_on_listen(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	yaml_node_item_t *items;
	yaml_node_t *item;
	size_t n, i;

	if (node->type == YAML_MAPPING_NODE) {
		config_listen_mapping(ctx, node);
		return;
	}
	if (config_string_list(ctx, d, node, &items, &n, "address") != 0)
		return;
	for (i = 0; i < n; i++) {
		item = items == NULL ? node : yaml_document_get_node(ctx->doc, items[i]);
		if (item != NULL && item->type == YAML_MAPPING_NODE) {
			config_listen_mapping(ctx, item);
			continue;
		}
		if (item == NULL || item->type != YAML_SCALAR_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be an address, a mapping with \"address\", or a sequence of them",
			             d->name);
			continue;
		}
		config_listen_item(ctx, item, 0);
	}
}

static void
config_on_nodes(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_upstream *up = &ctx->cfg->upstream;
	yaml_node_item_t *items;
	yaml_node_t *item;
	size_t n, i;

	if (config_string_list(ctx, d, node, &items, &n, "URL") != 0)
		return;
	if ((up->nodes = calloc(n, sizeof(*up->nodes))) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	for (i = 0; i < n; i++) {
		item = items == NULL ? node : yaml_document_get_node(ctx->doc, items[i]);
		if (item == NULL || item->type != YAML_SCALAR_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a string or a sequence of strings", d->name);
			continue;
		}
		switch (parse_node(config_scalar(item), &up->nodes[up->nnodes])) {
		case PARSE_OK: up->nnodes++; break;
		case PARSE_RANGE:
			config_error(ctx, &item->start_mark, "\"%s\": port out of range in \"%s\"", d->name,
			             config_scalar(item));
			break;
		case PARSE_NOMEM: config_nomem(ctx, item); break;
		default:
			config_error(ctx, &item->start_mark,
			             "\"%s\": bad URL \"%s\" (use http://host:port or https://host:port)", d->name,
			             config_scalar(item));
			break;
		}
	}
}

static void
config_on_api_key(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	const char *s = config_scalar(node);

	if (s[0] == '\0') {
		config_error(ctx, &node->start_mark, "\"%s\" must not be empty", d->name);
		return;
	}
	/* "id:key" as Kibana shows it; an encoded key has no ':' */
	ctx->cfg->upstream.api_key = parse_api_key(s);
	if (ctx->cfg->upstream.api_key == NULL)
		config_nomem(ctx, node);
}

/* An integer from 0 to MAX into *V; -1 after reporting. */
static int
config_uint_upto(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node, uint64_t max,
                 uint64_t *v)
{
	if (parse_uint(config_scalar(node), max, v) == 0)
		return 0;
	config_error(ctx, &node->start_mark, "\"%s\" must be an integer from 0 to %llu", d->name,
	             (unsigned long long)max);
	return -1;
}

static void
config_on_retries(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t v;

	if (config_uint_upto(ctx, d, node, CONFIG_RETRIES_MAX, &v) != 0)
		return;
	ctx->cfg->upstream.max_retries = (unsigned)v;
}

static void
config_on_count(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off);

	(void)config_uint_upto(ctx, d, node, UINT32_MAX, field);
}

static void
config_on_bool(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	int *field = (int *)(void *)(ctx->base + d->off);
	const char *s = config_scalar(node);

	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
		*field = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
		*field = 0;
	else
		config_error(ctx, &node->start_mark, "\"%s\" must be true or false", d->name);
}

/* Names are resolved now, so that `esgate -t` and a reload catch a user
 * that does not exist before any worker tries to become it. */
static void
config_on_user(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct passwd *pw;

	config_on_string(ctx, d, node);
	if (ctx->cfg->user == NULL)
		return;
	if ((pw = getpwnam(ctx->cfg->user)) == NULL) {
		config_error(ctx, &node->start_mark, "\"user\": unknown user \"%s\"", ctx->cfg->user);
		return;
	}
	ctx->cfg->uid = pw->pw_uid;
	ctx->cfg->user_gid = pw->pw_gid;
}

static void
config_on_group(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct group *gr;

	config_on_string(ctx, d, node);
	if (ctx->cfg->group == NULL)
		return;
	if ((gr = getgrnam(ctx->cfg->group)) == NULL) {
		config_error(ctx, &node->start_mark, "\"group\": unknown group \"%s\"", ctx->cfg->group);
		return;
	}
	ctx->cfg->gid = gr->gr_gid;
}

static void config_on_log(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_access_log(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_metrics(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_limits(struct config_ctx *, const struct config_directive *, yaml_node_t *);

static void
config_on_access_format(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	const char *s = config_scalar(node);

	if (strcmp(s, "json") == 0)
		ctx->cfg->access_log_json = 1;
	else if (strcmp(s, "combined") == 0)
		ctx->cfg->access_log_json = 0;
	else
		config_error(ctx, &node->start_mark, "\"format\": unknown access log format \"%s\" (use combined or json)",
		             s);
}

/* metrics.listen: one more listening socket, for /metrics only. */
static void
config_on_metrics_listen(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	size_t before = ctx->cfg->nlisten;

	config_listen_item(ctx, node, 1);
	if (ctx->cfg->nlisten > before)
		ctx->cfg->metrics_listen = 1;
}
static void config_on_upstream(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_routes(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_path(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_methods(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_upstream(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_upstream_method(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_upstream_path(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_indices(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_params(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_max_body(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_trusted_proxies(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_policy(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_policy_list(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_policy_depth(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_policy_limit(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_policy_bytes(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_rate_limit(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_rate(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_burst(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_cors(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_cors_list(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_errors(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_cluster_info(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_cache(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_cache_size(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_cache_ttl(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_auth(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_nothing(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_tls_version(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_hsts(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_client_verify(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_tls_global(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_ticket_rotation(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_auth(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_rate_limit_top(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_redis(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_redis_address(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_redis_database(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_redis_fail(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_redis_duration(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_redis_prefix(struct config_ctx *, const struct config_directive *, yaml_node_t *);

#define CONFIG_OFF(field) offsetof(struct config, field)
#define CONFIG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct config_directive config_top_dirs[] = {
    {"listen", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE | CONFIG_T_MAPPING, CONFIG_F_REQUIRED, config_on_listen, 0, NULL},
    {"workers", CONFIG_T_SCALAR, 0, config_on_workers, 0, "auto"},
    {"graceful_timeout", CONFIG_T_SCALAR, 0, config_on_duration, CONFIG_OFF(graceful_timeout_ms), "30s"},
    {"keepalive_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_OFF(keepalive_timeout_ms),
     "10s"},
    {"pidfile", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(pidfile), NULL},
    {"timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_OFF(timeout_ms), "30s"},
    {"max_requests", CONFIG_T_SCALAR, 0, config_on_count, CONFIG_OFF(max_requests), "0"},
    {"max_requests_jitter", CONFIG_T_SCALAR, 0, config_on_count, CONFIG_OFF(max_requests_jitter), "0"},
    {"user", CONFIG_T_SCALAR, 0, config_on_user, CONFIG_OFF(user), NULL},
    {"group", CONFIG_T_SCALAR, 0, config_on_group, CONFIG_OFF(group), NULL},
    {"allow_root", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(allow_root), "false"},
    {"log", CONFIG_T_MAPPING, 0, config_on_log, 0, NULL},
    {"upstream", CONFIG_T_MAPPING, CONFIG_F_REQUIRED, config_on_upstream, 0, NULL},
    {"cluster_info", CONFIG_T_SCALAR | CONFIG_T_MAPPING, 0, config_on_cluster_info, CONFIG_OFF(cluster_info), "true"},
    {"cache", CONFIG_T_MAPPING, 0, config_on_cache, 0, NULL},
    {"routes", CONFIG_T_SEQUENCE, 0, config_on_routes, 0, NULL},
    {"access_log", CONFIG_T_MAPPING, 0, config_on_access_log, 0, NULL},
    {"metrics", CONFIG_T_MAPPING, 0, config_on_metrics, 0, NULL},
    {"limits", CONFIG_T_MAPPING, 0, config_on_limits, 0, NULL},
    {"trusted_proxies", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_trusted_proxies, 0, NULL},
    {"auth", CONFIG_T_MAPPING, 0, config_on_auth, 0, NULL},
    {"rate_limit", CONFIG_T_MAPPING, 0, config_on_rate_limit_top, 0, NULL},
    {"tls", CONFIG_T_MAPPING, 0, config_on_tls_global, 0, NULL},
};

/* The top-level "rate_limit:": where every limit keeps its buckets. */
static const struct config_directive config_rate_limit_top_dirs[] = {
    {"redis", CONFIG_T_MAPPING, 0, config_on_redis, 0, NULL},
};

#define CONFIG_XOFF(field) offsetof(struct config_redis, field)

static const struct config_directive config_redis_dirs[] = {
    {"address", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_redis_address, 0, NULL},
    {"username", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_XOFF(username), NULL},
    {"password", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_XOFF(password), NULL},
    {"database", CONFIG_T_SCALAR, 0, config_on_redis_database, 0, "0"},
    {"timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_redis_duration, CONFIG_XOFF(timeout_ms), "250ms"},
    {"prefix", CONFIG_T_SCALAR, 0, config_on_redis_prefix, CONFIG_XOFF(prefix), "esgate:rl:"},
    {"fail", CONFIG_T_SCALAR, 0, config_on_redis_fail, 0, "open"},
    {"sync_interval", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_redis_duration, CONFIG_XOFF(sync_ms), "5ms"},
};

/* A listener written as a mapping: {address, tls}.  Both are read once
 * the walk has found them (config_listen_mapping), in that order. */
static const struct config_directive config_listener_dirs[] = {
    {"address", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_nothing, 0, NULL},
    {"tls", CONFIG_T_MAPPING, 0, config_on_nothing, 0, NULL},
};

#define CONFIG_TOFF(field) offsetof(struct tls_listener, field)

/* A listener's "tls:" (fields of struct tls_listener).  The files are
 * read once the walk is over (config_listen_tls). */
static const struct config_directive config_tls_dirs[] = {
    {"certificate", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_nothing, 0, NULL},
    {"key", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_nothing, 0, NULL},
    {"sni", CONFIG_T_SEQUENCE, 0, config_on_nothing, 0, NULL},
    {"min_version", CONFIG_T_SCALAR, 0, config_on_tls_version, CONFIG_TOFF(min_version), "TLSv1.2"},
    {"hsts", CONFIG_T_SCALAR, 0, config_on_hsts, CONFIG_TOFF(hsts_max_age_s), "0"},
    {"client_ca", CONFIG_T_SCALAR, 0, config_on_nothing, 0, NULL},
    {"client_verify", CONFIG_T_SCALAR, 0, config_on_client_verify, CONFIG_TOFF(client_verify), NULL},
};

/* One "sni:" entry: another certificate, sent to clients asking for one
 * of its names. */
static const struct config_directive config_sni_dirs[] = {
    {"certificate", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_nothing, 0, NULL},
    {"key", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_nothing, 0, NULL},
};

/* The top-level "tls:": what every TLS listener of the process shares. */
static const struct config_directive config_tls_global_dirs[] = {
    {"handshake_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration,
     CONFIG_OFF(tls_handshake_timeout_ms), "10s"},
    {"ticket_rotation", CONFIG_T_SCALAR, 0, config_on_ticket_rotation, CONFIG_OFF(tls_ticket_rotation_ms), "1h"},
};

static const struct config_directive config_access_log_dirs[] = {
    {"file", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(access_log), NULL},
    {"format", CONFIG_T_SCALAR, 0, config_on_access_format, 0, "combined"},
};

static const struct config_directive config_metrics_dirs[] = {
    {"enabled", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(metrics), "true"},
    {"listen", CONFIG_T_SCALAR, 0, config_on_metrics_listen, 0, NULL},
    {"public", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(metrics_public), "false"},
};

/* limits: one number each, in a range of its own (config_on_limit). */
static void
config_on_limit(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	static const struct {
		const char *name;
		uint64_t min, max;
		int size;        /* a size (kb, mb), not a plain integer */
		int zero_is_off; /* 0 is "no limit", below min as it is */
		const char *hint;
	} ranges[] = {
	    {"max_header_size", 1024, 1024 * 1024, 1, 0, "a size from 1kb to 1mb (e.g. 32kb)"},
	    {"max_connections", 1, 1000000, 0, 0, "an integer from 1 to 1000000"},
	    {"max_connections_per_address", 0, 1000000, 0, 0, "an integer from 0 (no limit) to 1000000"},
	    {"h2_max_streams", 1, 100, 0, 0, "an integer from 1 to 100 (libh2o refuses more)"},
	    {"h2_max_resets", 0, 1000000, 0, 0, "an integer from 0 (no limit) to 1000000"},
	    {"h2_body_buffer", 65536, 4096ULL * 1024 * 1024, 1, 1, "a size from 64kb to 4096mb, or 0 (no limit)"},
	};
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off);
	uint64_t v;
	size_t i;
	int bad;

	for (i = 0; strcmp(ranges[i].name, d->name) != 0; i++)
		;
	if (ranges[i].size)
		bad = parse_size(config_scalar(node), &v) != 0;
	else
		bad = parse_uint(config_scalar(node), ranges[i].max, &v) != 0;
	if (bad || ((v < ranges[i].min || v > ranges[i].max) && !(ranges[i].zero_is_off && v == 0))) {
		config_error(ctx, &node->start_mark, "\"%s\" must be %s", d->name, ranges[i].hint);
		return;
	}
	*field = v;
}

#define CONFIG_LOFF(field) offsetof(struct config, limits.field)

static const struct config_directive config_limits_dirs[] = {
    {"max_header_size", CONFIG_T_SCALAR, 0, config_on_limit, CONFIG_LOFF(max_header_size), "32kb"},
    {"header_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_LOFF(header_timeout_ms), "10s"},
    {"max_connections", CONFIG_T_SCALAR, 0, config_on_limit, CONFIG_LOFF(max_connections), "4096"},
    {"max_connections_per_address", CONFIG_T_SCALAR, 0, config_on_limit, CONFIG_LOFF(max_connections_per_address),
     "0"},
    {"h2_max_streams", CONFIG_T_SCALAR, 0, config_on_limit, CONFIG_LOFF(h2_max_streams), "100"},
    {"h2_max_resets", CONFIG_T_SCALAR, 0, config_on_limit, CONFIG_LOFF(h2_max_resets), "100"},
    {"h2_reset_interval", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_LOFF(h2_reset_interval_ms),
     "10s"},
    {"h2_body_buffer", CONFIG_T_SCALAR, 0, config_on_limit, CONFIG_LOFF(h2_body_buffer), "32mb"},
};

/* cluster_info: {enabled, cache_ttl, coalesce}: the built-in GET / is a
 * route too, whose cache settings are these. */
static const struct config_directive config_cluster_info_dirs[] = {
    {"enabled", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(cluster_info), NULL},
    {"cache_ttl", CONFIG_T_SCALAR, 0, config_on_cache_ttl, CONFIG_OFF(cluster_info_cache_ttl_ms), NULL},
    {"coalesce", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(cluster_info_coalesce), NULL},
};

static const struct config_directive config_cache_dirs[] = {
    {"max_size", CONFIG_T_SCALAR, 0, config_on_cache_size, CONFIG_OFF(cache_max_size), "1mb"},
    {"max_entry_size", CONFIG_T_SCALAR, 0, config_on_cache_size, CONFIG_OFF(cache_max_entry), "256kb"},
};

static const struct config_directive config_log_dirs[] = {
    {"level", CONFIG_T_SCALAR, 0, config_on_level, 0, "info"},
    {"file", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(log_file), NULL},
};

static const struct config_directive config_upstream_dirs[] = {
    {"nodes", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, CONFIG_F_REQUIRED, config_on_nodes, 0, NULL},
    {"api_key", CONFIG_T_SCALAR, 0, config_on_api_key, 0, NULL},
    {"username", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(upstream.username), NULL},
    {"password", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(upstream.password), NULL},
    {"bearer", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(upstream.bearer), NULL},
    {"request_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_OFF(upstream.request_timeout_ms),
     "10s"},
    {"connect_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_OFF(upstream.connect_timeout_ms),
     "1s"},
    {"max_connections_per_node", CONFIG_T_SCALAR, 0, config_on_maxconn, 0, "64"},
    {"pipeline_depth", CONFIG_T_SCALAR, 0, config_on_pipeline_depth, 0, "1"},
    {"max_retries", CONFIG_T_SCALAR, 0, config_on_retries, 0, "3"},
    {"retry_on_timeout", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(upstream.retry_on_timeout), "false"},
    {"node_backoff", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_OFF(upstream.node_backoff_ms),
     "1s"},
    {"node_backoff_max", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration,
     CONFIG_OFF(upstream.node_backoff_max_ms), "30s"},
    {"ca_file", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(upstream.ca_file), NULL},
    {"cert_file", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(upstream.cert_file), NULL},
    {"key_file", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(upstream.key_file), NULL},
    {"verify", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(upstream.verify), "true"},
    {"sniff_on_start", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(upstream.sniff_on_start), "false"},
    {"sniff_interval", CONFIG_T_SCALAR, 0, config_on_duration, CONFIG_OFF(upstream.sniff_interval_ms), "0"},
    {"http_client", CONFIG_T_SCALAR, 0, config_on_http_client, 0, "native"},
};

#define CONFIG_ROFF(field) offsetof(struct config_route, field)

static const struct config_directive config_route_dirs[] = {
    {"path", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_route_path, 0, NULL},
    {"methods", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, CONFIG_F_REQUIRED, config_on_route_methods, 0, NULL},
    {"upstream", CONFIG_T_MAPPING, CONFIG_F_REQUIRED, config_on_route_upstream, 0, NULL},
    {"indices", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_route_indices, 0, NULL},
    {"params", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_route_params, 0, NULL},
    {"max_body", CONFIG_T_SCALAR, 0, config_on_route_max_body, 0, "1mb"},
    {"json", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_ROFF(json), "true"},
    {"policy", CONFIG_T_MAPPING, 0, config_on_route_policy, 0, NULL},
    {"rate_limit", CONFIG_T_MAPPING, 0, config_on_route_rate_limit, 0, NULL},
    {"cors", CONFIG_T_MAPPING, 0, config_on_route_cors, 0, NULL},
    {"errors", CONFIG_T_MAPPING, 0, config_on_route_errors, 0, NULL},
    {"cache_ttl", CONFIG_T_SCALAR, 0, config_on_cache_ttl, CONFIG_ROFF(cache_ttl_ms), "0"},
    {"coalesce", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_ROFF(coalesce), NULL},
    {"auth", CONFIG_T_MAPPING, 0, config_on_route_auth, 0, NULL},
};

/* The walks below move ctx->base to the struct being filled. */
/* allow_remote_indices, allow_date_math, allow_exclusions: a {index}
 * value is checked as a plain index name (lib/route.c) before any policy
 * is consulted, so these expressions are always refused; "true" would be a
 * promise the worker does not keep, hence an error rather than a no-op. */
static void
config_on_index_expr(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	int *field = (int *)(void *)(ctx->base + d->off);

	config_on_bool(ctx, d, node);
	if (*field)
		config_error(ctx, &node->start_mark, "\"%s\" is not supported: {index} takes plain index names only",
		             d->name);
}

#define CONFIG_POFF(field) offsetof(struct dsl_policy, field)

static const struct config_directive config_policy_dirs[] = {
    {"queries", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_policy_list, 'q', NULL},
    {"max_size", CONFIG_T_SCALAR, 0, config_on_count, CONFIG_POFF(max_size), NULL},
    {"max_from", CONFIG_T_SCALAR, 0, config_on_count, CONFIG_POFF(max_from), NULL},
    {"aggs", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_policy_list, 'a', NULL},
    {"max_agg_depth", CONFIG_T_SCALAR, 0, config_on_policy_depth, 0, NULL},
    {"max_buckets", CONFIG_T_SCALAR, 0, config_on_count, CONFIG_POFF(max_buckets), NULL},
    {"max_aggs", CONFIG_T_SCALAR, 0, config_on_policy_limit, CONFIG_POFF(max_aggs), NULL},
    {"max_searches", CONFIG_T_SCALAR, 0, config_on_policy_limit, CONFIG_POFF(max_searches), NULL},
    {"max_depth", CONFIG_T_SCALAR, 0, config_on_policy_limit, CONFIG_POFF(max_depth), NULL},
    {"max_bytes", CONFIG_T_SCALAR, 0, config_on_policy_bytes, CONFIG_POFF(max_bytes), NULL},
    {"source_fields", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_policy_list, 's', NULL},
    {"allow_pit", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_POFF(allow_pit), NULL},
    {"allow_scroll", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_POFF(allow_scroll), NULL},
    {"allow_remote_indices", CONFIG_T_SCALAR, 0, config_on_index_expr, CONFIG_POFF(allow_remote_indices), NULL},
    {"allow_date_math", CONFIG_T_SCALAR, 0, config_on_index_expr, CONFIG_POFF(allow_date_math), NULL},
    {"allow_exclusions", CONFIG_T_SCALAR, 0, config_on_index_expr, CONFIG_POFF(allow_exclusions), NULL},
};

static const struct config_directive config_rate_limit_dirs[] = {
    {"rate", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_rate, 0, NULL},
    {"burst", CONFIG_T_SCALAR, 0, config_on_burst, 0, NULL},
};

#define CONFIG_COFF(field) offsetof(struct config_cors, field)

static const struct config_directive config_cors_dirs[] = {
    {"allow_origins", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, CONFIG_F_REQUIRED, config_on_cors_list, 'o', NULL},
    {"allow_headers", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_cors_list, 'h', NULL},
    {"max_age", CONFIG_T_SCALAR, 0, config_on_duration, CONFIG_COFF(max_age_ms), NULL},
};

static const struct config_directive config_errors_dirs[] = {
    {"detail", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_ROFF(errors_detail), NULL},
};

static const struct config_directive config_route_upstream_dirs[] = {
    {"method", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_route_upstream_method, 0, NULL},
    {"path", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_route_upstream_path, 0, NULL},
};

static const struct config_scope config_top = {config_top_dirs, CONFIG_NELEM(config_top_dirs), ""};
static const struct config_scope config_listener = {config_listener_dirs, CONFIG_NELEM(config_listener_dirs),
                                                    " in listen"};
static const struct config_scope config_tls = {config_tls_dirs, CONFIG_NELEM(config_tls_dirs), " in listen tls"};
static const struct config_scope config_sni = {config_sni_dirs, CONFIG_NELEM(config_sni_dirs), " in listen tls sni"};
static const struct config_scope config_tls_global = {config_tls_global_dirs, CONFIG_NELEM(config_tls_global_dirs),
                                                      " in tls"};
static const struct config_scope config_cluster_info = {config_cluster_info_dirs,
                                                        CONFIG_NELEM(config_cluster_info_dirs), " in cluster_info"};
static const struct config_scope config_cache = {config_cache_dirs, CONFIG_NELEM(config_cache_dirs), " in cache"};
static const struct config_scope config_log = {config_log_dirs, CONFIG_NELEM(config_log_dirs), " in log"};
static const struct config_scope config_access_log = {config_access_log_dirs, CONFIG_NELEM(config_access_log_dirs),
                                                      " in access_log"};
static const struct config_scope config_metrics = {config_metrics_dirs, CONFIG_NELEM(config_metrics_dirs),
                                                   " in metrics"};
static const struct config_scope config_limits = {config_limits_dirs, CONFIG_NELEM(config_limits_dirs),
                                                  " in limits"};
static const struct config_scope config_upstream = {config_upstream_dirs, CONFIG_NELEM(config_upstream_dirs),
                                                    " in upstream"};
static const struct config_scope config_route = {config_route_dirs, CONFIG_NELEM(config_route_dirs), " in route"};
static const struct config_scope config_policy = {config_policy_dirs, CONFIG_NELEM(config_policy_dirs),
                                                  " in route policy"};
static const struct config_scope config_rate_limit = {config_rate_limit_dirs, CONFIG_NELEM(config_rate_limit_dirs),
                                                      " in route rate_limit"};
static const struct config_scope config_rate_limit_top = {
    config_rate_limit_top_dirs, CONFIG_NELEM(config_rate_limit_top_dirs), " in rate_limit"};
static const struct config_scope config_redis = {config_redis_dirs, CONFIG_NELEM(config_redis_dirs),
                                                 " in rate_limit redis"};
static const struct config_scope config_cors = {config_cors_dirs, CONFIG_NELEM(config_cors_dirs), " in route cors"};
static const struct config_scope config_errors_scope = {config_errors_dirs, CONFIG_NELEM(config_errors_dirs),
                                                        " in route errors"};
static const struct config_scope config_route_upstream = {
    config_route_upstream_dirs, CONFIG_NELEM(config_route_upstream_dirs), " in route upstream"};

static const char *
config_type_msg(unsigned types)
{
	switch (types) {
	case CONFIG_T_SCALAR: return "must be a scalar";
	case CONFIG_T_SCALAR | CONFIG_T_SEQUENCE: return "must be a string or a sequence of strings";
	case CONFIG_T_SEQUENCE: return "must be a sequence";
	case CONFIG_T_MAPPING: return "must be a mapping";
	case CONFIG_T_SCALAR | CONFIG_T_MAPPING: return "must be a scalar or a mapping";
	case CONFIG_T_SCALAR | CONFIG_T_SEQUENCE | CONFIG_T_MAPPING:
		return "must be an address, a mapping with \"address\", or a sequence of them";
	default: return "has the wrong type";
	}
}

static unsigned
config_type_bit(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE: return CONFIG_T_SCALAR;
	case YAML_SEQUENCE_NODE: return CONFIG_T_SEQUENCE;
	case YAML_MAPPING_NODE: return CONFIG_T_MAPPING;
	default: return 0;
	}
}

/* Walks one mapping against its table: the only place that knows about
 * unknown, duplicate, mistyped and missing keys.  VALS (NULL, or one slot
 * per directive, zeroed) gets the value node of each key present with the
 * right type, for the checks across keys. */
static void
config_walk(struct config_ctx *ctx, yaml_node_t *map, const struct config_scope *scope, yaml_node_t **vals)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k, *v;
	unsigned long seen = 0; /* one bit per directive; tables are small */
	const struct config_directive *d;
	size_t i;

	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		k = yaml_document_get_node(ctx->doc, pair->key);
		v = yaml_document_get_node(ctx->doc, pair->value);
		if (k == NULL || v == NULL)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			config_error(ctx, &k->start_mark, "key must be a string");
			continue;
		}
		for (i = 0; i < scope->ndirs; i++)
			if (strcmp(config_scalar(k), scope->dirs[i].name) == 0)
				break;
		if (i == scope->ndirs) {
			config_error(ctx, &k->start_mark, "unknown key \"%s\"%s", config_scalar(k), scope->suffix);
			continue;
		}
		d = &scope->dirs[i];
		if (seen & (1UL << i)) {
			config_error(ctx, &k->start_mark, "duplicate key \"%s\"", d->name);
			continue;
		}
		seen |= 1UL << i;
		if ((config_type_bit(v) & d->types) == 0) {
			config_error(ctx, &v->start_mark, "\"%s\" %s", d->name, config_type_msg(d->types));
			continue;
		}
		if (vals != NULL)
			vals[i] = v;
		d->handler(ctx, d, v);
	}
	for (i = 0; i < scope->ndirs; i++)
		if ((scope->dirs[i].flags & CONFIG_F_REQUIRED) && !(seen & (1UL << i)))
			config_error(ctx, &map->start_mark, "missing required key \"%s\"%s", scope->dirs[i].name,
			             scope->suffix);
}

/* Gives every directive of SCOPE that has a default its value, through its
 * own handler, as if the file said it; the walk then overrides what the
 * file does say.  A default is the table's text, so an error here is a typo
 * in this file, reported at 1:1. */
static void
config_defaults(struct config_ctx *ctx, const struct config_scope *scope)
{
	for (size_t i = 0; i < scope->ndirs; i++) {
		const struct config_directive *d = &scope->dirs[i];
		yaml_node_t node;

		if (d->def == NULL)
			continue;
		memset(&node, 0, sizeof(node));
		node.type = YAML_SCALAR_NODE;
		node.data.scalar.value = (yaml_char_t *)(uintptr_t)d->def;
		node.data.scalar.length = strlen(d->def);
		d->handler(ctx, d, &node);
	}
}

static void
config_on_log(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_log, NULL);
}

static void
config_on_limits(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_limits, NULL);
}

static void
config_on_access_log(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_access_log, NULL);
}

static void
config_on_metrics(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_metrics, NULL);
}

/*
 * The micro-cache: "cache_ttl" and "coalesce" on a route or on
 * "cluster_info", and the worker-wide "cache" sizes.
 */

static yaml_node_t *config_val(const struct config_scope *, yaml_node_t **, const char *);

#define CONFIG_CACHE_TTL_MAX (24 * 3600 * 1000ULL) /* a micro-cache, not a CDN */
#define CONFIG_CACHE_SIZE_MAX (1024 * 1024 * 1024ULL)

static void
config_on_cache_ttl(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off);

	config_on_duration(ctx, d, node);
	if (*field > CONFIG_CACHE_TTL_MAX) {
		config_error(ctx, &node->start_mark, "\"%s\" must be at most 24h", d->name);
		*field = 0;
	}
}

static void
config_on_cache_size(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off);
	uint64_t v;

	if (parse_size(config_scalar(node), &v) != 0 || v < 1024 || v > CONFIG_CACHE_SIZE_MAX) {
		config_error(ctx, &node->start_mark, "\"%s\" must be a size from 1kb to 1024mb (e.g. 512kb, 4mb)",
		             d->name);
		return;
	}
	*field = v;
}

static void
config_on_cache(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	yaml_node_t *vals[CONFIG_NELEM(config_cache_dirs)] = {0};
	yaml_node_t *entry;

	config_walk(ctx, node, &config_cache, vals);
	entry = config_val(&config_cache, vals, "max_entry_size");
	if (entry == NULL && ctx->cfg->cache_max_entry > ctx->cfg->cache_max_size)
		ctx->cfg->cache_max_entry = ctx->cfg->cache_max_size; /* the default follows a small max_size */
	if (ctx->cfg->cache_max_entry > ctx->cfg->cache_max_size)
		config_error(ctx, entry != NULL ? &entry->start_mark : &node->start_mark,
		             "\"max_entry_size\" must not be more than \"max_size\"");
}

static void
config_on_cluster_info(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	if (node->type == YAML_SCALAR_NODE) {
		config_on_bool(ctx, d, node);
		return;
	}
	ctx->cfg->cluster_info_coalesce = -1;
	config_walk(ctx, node, &config_cluster_info, NULL);
	if (ctx->cfg->cluster_info_coalesce < 0)
		ctx->cfg->cluster_info_coalesce = ctx->cfg->cluster_info_cache_ttl_ms > 0;
}

/* The value node of directive NAME from a walk's VALS, NULL if absent. */
static yaml_node_t *
config_val(const struct config_scope *scope, yaml_node_t **vals, const char *name)
{
	for (size_t i = 0; i < scope->ndirs; i++)
		if (strcmp(scope->dirs[i].name, name) == 0)
			return vals[i];
	abort(); /* a typo in this file */
}

static void
config_on_upstream(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	yaml_node_t *vals[CONFIG_NELEM(config_upstream_dirs)] = {0};
	yaml_node_t *api_key, *username, *password, *bearer, *cert, *key, *backoff, *backoff_max;
	struct config_upstream *up = &ctx->cfg->upstream;

	config_walk(ctx, node, &config_upstream, vals);
	api_key = config_val(&config_upstream, vals, "api_key");
	username = config_val(&config_upstream, vals, "username");
	password = config_val(&config_upstream, vals, "password");
	bearer = config_val(&config_upstream, vals, "bearer");
	cert = config_val(&config_upstream, vals, "cert_file");
	key = config_val(&config_upstream, vals, "key_file");
	backoff = config_val(&config_upstream, vals, "node_backoff");
	backoff_max = config_val(&config_upstream, vals, "node_backoff_max");
	if (api_key != NULL && username != NULL)
		config_error(ctx, &username->start_mark, "\"api_key\" and \"username\" cannot be used together");
	if (username != NULL && password == NULL)
		config_error(ctx, &username->start_mark, "\"username\" needs \"password\"");
	if (password != NULL && username == NULL)
		config_error(ctx, &password->start_mark, "\"password\" needs \"username\"");
	if (bearer != NULL && api_key != NULL)
		config_error(ctx, &bearer->start_mark, "\"bearer\" cannot be used with \"api_key\"");
	if (bearer != NULL && username != NULL)
		config_error(ctx, &bearer->start_mark, "\"bearer\" cannot be used with \"username\"");
	if (cert != NULL && key == NULL)
		config_error(ctx, &cert->start_mark, "\"cert_file\" needs \"key_file\"");
	if (key != NULL && cert == NULL)
		config_error(ctx, &key->start_mark, "\"key_file\" needs \"cert_file\"");
	/* either may be the one written: point at the maximum if it is there,
	 * since a lone node_backoff above the default maximum is the odd one */
	if ((backoff != NULL || backoff_max != NULL) && up->node_backoff_max_ms < up->node_backoff_ms)
		config_error(ctx, backoff_max != NULL ? &backoff_max->start_mark : &backoff->start_mark,
		             "\"node_backoff_max\" must not be less than \"node_backoff\"");
}

/*
 * Routes.  Each "routes:" item is walked with ctx->base pointing at its
 * struct config_route, so the generic handlers fill it like struct config.
 */

static struct config_route *
config_cur_route(struct config_ctx *ctx)
{
	return (struct config_route *)(void *)ctx->base;
}

unsigned
config_method_parse(const char *s, size_t len)
{
	if (len == 3 && memcmp(s, "GET", 3) == 0)
		return CONFIG_METHOD_GET;
	if (len == 4 && memcmp(s, "HEAD", 4) == 0)
		return CONFIG_METHOD_HEAD;
	if (len == 4 && memcmp(s, "POST", 4) == 0)
		return CONFIG_METHOD_POST;
	return 0;
}

static unsigned
config_method(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	const char *s = config_scalar(node);
	unsigned m;

	if ((m = config_method_parse(s, strlen(s))) == 0)
		config_error(ctx, &node->start_mark, "\"%s\": unknown method \"%s\" (use GET, HEAD or POST)", d->name,
		             s);
	return m;
}

void
config_route_clear(struct config_route *r)
{
	if (r == NULL)
		return;
	free(r->path);
	route_template_free(r->path_tmpl);
	free(r->upstream_path);
	free(r->auth_index);
	route_template_free(r->upstream_tmpl);
	for (size_t i = 0; i < r->nindices; i++)
		free(r->indices[i]);
	free(r->indices);
	for (size_t i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r->params);
	dsl_policy_clear(&r->policy);
	for (size_t i = 0; i < r->cors.norigins; i++)
		free(r->cors.origins[i]);
	free(r->cors.origins);
	for (size_t i = 0; i < r->cors.nheaders; i++)
		free(r->cors.headers[i]);
	free(r->cors.headers);
	memset(r, 0, sizeof(*r));
}

static struct route_template *
config_template(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node, char **src)
{
	struct route_template *t;
	char err[128];

	if ((t = route_compile(config_scalar(node), err, sizeof(err))) == NULL) {
		config_error(ctx, &node->start_mark, "\"%s\": %s", d->name, err);
		return NULL;
	}
	if ((*src = strdup(config_scalar(node))) == NULL) {
		config_nomem(ctx, node);
		route_template_free(t);
		return NULL;
	}
	return t;
}

static void
config_on_route_path(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_route *r = config_cur_route(ctx);
	const char *s = config_scalar(node);

	if ((r->path_tmpl = config_template(ctx, d, node, &r->path)) == NULL)
		return;
	/* the worker's own endpoints come first; a route there would never
	 * be reached, which is worse than an error */
	if (strcmp(s, "/healthz") == 0 || strcmp(s, "/metrics") == 0 || strncmp(s, "/_esgate", 8) == 0)
		config_error(ctx, &node->start_mark, "\"%s\": %s is reserved", d->name, s);
	else if (strcmp(s, "/") == 0 && ctx->root_route == NULL)
		ctx->root_route = node; /* checked once cluster_info is known */
}

static void
config_on_route_methods(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_route *r = config_cur_route(ctx);
	yaml_node_item_t *items;
	yaml_node_t *item;
	size_t n;
	unsigned m;

	if (config_string_list(ctx, d, node, &items, &n, "method") != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		item = items == NULL ? node : yaml_document_get_node(ctx->doc, items[i]);
		if (item == NULL || item->type != YAML_SCALAR_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a string or a sequence of strings", d->name);
			continue;
		}
		if ((m = config_method(ctx, d, item)) == 0)
			continue;
		if (r->methods & m)
			config_error(ctx, &item->start_mark, "\"%s\": duplicate method \"%s\"", d->name,
			             config_scalar(item));
		r->methods |= m;
	}
}

static void
config_on_route_upstream(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_route_upstream, NULL);
}

static void
config_on_route_upstream_method(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_cur_route(ctx)->upstream_method = config_method(ctx, d, node);
}

static void
config_on_route_upstream_path(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_route *r = config_cur_route(ctx);

	ctx->route_upath = node;
	r->upstream_tmpl = config_template(ctx, d, node, &r->upstream_path);
}

/* A list of non-empty strings into a new array; the items VALID (if not
 * NULL) refuses are reported with MSG.  WHAT names an item in the message
 * for an empty sequence, which is fine when EMPTY_OK. */
static void
config_strings(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node, char ***out, size_t *nout,
               const char *what, int empty_ok, int (*valid)(const char *), const char *msg)
{
	yaml_node_item_t *items;
	yaml_node_t *item;
	size_t n;

	if (empty_ok && node->type == YAML_SEQUENCE_NODE &&
	    node->data.sequence.items.top == node->data.sequence.items.start)
		return;
	if (config_string_list(ctx, d, node, &items, &n, what) != 0)
		return;
	if ((*out = calloc(n, sizeof(**out))) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s;

		item = items == NULL ? node : yaml_document_get_node(ctx->doc, items[i]);
		if (item == NULL || item->type != YAML_SCALAR_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a string or a sequence of strings", d->name);
			continue;
		}
		s = config_scalar(item);
		if (s[0] == '\0') {
			config_error(ctx, &item->start_mark, "\"%s\" must not contain an empty string", d->name);
			continue;
		}
		if (valid != NULL && !valid(s)) {
			config_error(ctx, &item->start_mark, "\"%s\": %s \"%s\"", d->name, msg, s);
			continue;
		}
		if (((*out)[*nout] = strdup(s)) == NULL) {
			config_nomem(ctx, item);
			continue;
		}
		(*nout)++;
	}
}

/* An exact name, or a prefix and '*' ("logs-*"); a lone "*" would open
 * every index, system ones included, so it is not a prefix. */
static int
config_index_entry(const char *s)
{
	size_t len = strlen(s);

	if (len > 1 && s[len - 1] == '*')
		return route_index_valid(s, len - 1, 1);
	return route_index_valid(s, len, 0);
}

static void
config_on_route_indices(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_route *r = config_cur_route(ctx);

	config_strings(ctx, d, node, &r->indices, &r->nindices, "index", 0, config_index_entry, "invalid index name");
}

static void
config_on_route_params(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_route *r = config_cur_route(ctx);

	config_strings(ctx, d, node, &r->params, &r->nparams, "parameter", 1, NULL, NULL);
}

static void
config_on_route_max_body(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t v;

	if (parse_size(config_scalar(node), &v) != 0) {
		config_error(ctx, &node->start_mark, "\"%s\": bad size \"%s\" (use a number of bytes, or kb or mb)",
		             d->name, config_scalar(node));
		return;
	}
	if (v > CONFIG_BODY_MAX) {
		config_error(ctx, &node->start_mark, "\"%s\" must be at most 100mb", d->name);
		return;
	}
	config_cur_route(ctx)->max_body = v;
}

/* Query and aggregation type names are Elasticsearch identifiers. */
static int
config_dsl_name(const char *s)
{
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

/* A field name or pattern, as Elasticsearch takes them in _source. */
static int
config_field_name(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f || *s == ',' || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

static void
config_on_route_policy(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_route *r = config_cur_route(ctx);

	ctx->base = (char *)&r->policy;
	config_walk(ctx, node, &config_policy, NULL);
	ctx->base = (char *)r;
}

/* Each query or aggregation type of a list must be one the firewall knows
 * the shape of (it refuses the others wherever they appear, and says so
 * here, where the operator can see it), and not one it can never allow. */
static void
config_policy_type(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *item, int which)
{
	const char *what = which == 'q' ? "query type" : "aggregation type", *s;

	if (item->type != YAML_SCALAR_NODE || (s = config_scalar(item))[0] == '\0' || !config_dsl_name(s))
		return; /* config_strings() said why */
	switch (dsl_type_known(which, s)) {
	case 0:
		config_error(ctx, &item->start_mark, "\"%s\": unknown %s \"%s\" (the firewall does not know its shape)",
		             d->name, what, s);
		break;
	case -1:
		config_error(ctx, &item->start_mark,
		             "\"%s\": %s \"%s\" can never be allowed (it runs a script or hides its query)", d->name, what,
		             s);
		break;
	}
}

static void
config_policy_types(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node, int which)
{
	yaml_node_item_t *it;
	yaml_node_t *item;

	if (node->type == YAML_SCALAR_NODE) {
		config_policy_type(ctx, d, node, which);
		return;
	}
	if (node->type != YAML_SEQUENCE_NODE)
		return;
	for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++)
		if ((item = yaml_document_get_node(ctx->doc, *it)) != NULL)
			config_policy_type(ctx, d, item, which);
}

/* queries, aggs and source_fields replace the default lists whole: an
 * operator adding one query type writes the full list, and sees it. */
static void
config_on_policy_list(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct dsl_policy *p = (struct dsl_policy *)(void *)ctx->base;

	dsl_policy_reset_list(p, (int)d->off);
	switch (d->off) {
	case 'q':
		config_strings(ctx, d, node, &p->queries, &p->nqueries, "query type", 1, config_dsl_name,
		               "invalid query type");
		config_policy_types(ctx, d, node, 'q');
		break;
	case 'a':
		config_strings(ctx, d, node, &p->aggs, &p->naggs, "aggregation type", 1, config_dsl_name,
		               "invalid aggregation type");
		config_policy_types(ctx, d, node, 'a');
		break;
	default:
		/* an empty list would read as "any field" */
		config_strings(ctx, d, node, &p->source_fields, &p->nsource_fields, "field", 0, config_field_name,
		               "invalid field name");
		break;
	}
}

#define CONFIG_AGG_DEPTH_MAX 16

static void
config_on_policy_depth(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct dsl_policy *p = (struct dsl_policy *)(void *)ctx->base;
	uint64_t v;

	if (config_uint_upto(ctx, d, node, CONFIG_AGG_DEPTH_MAX, &v) != 0)
		return;
	p->max_agg_depth = (unsigned)v;
}

/* The policy's cost caps: each a range of its own. */
static const struct {
	const char *name;
	uint64_t min, max;
} config_policy_limits[] = {
    {"max_aggs", 0, 10000},
    {"max_searches", 1, 1000},
    {"max_depth", 4, 1000}, /* below jansson's own 2048 */
};

static void
config_on_policy_limit(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off), v;

	for (size_t i = 0; i < CONFIG_NELEM(config_policy_limits); i++) {
		if (strcmp(config_policy_limits[i].name, d->name) != 0)
			continue;
		if (parse_uint(config_scalar(node), config_policy_limits[i].max, &v) != 0 ||
		    v < config_policy_limits[i].min) {
			config_error(ctx, &node->start_mark, "\"%s\" must be an integer from %llu to %llu", d->name,
			             (unsigned long long)config_policy_limits[i].min,
			             (unsigned long long)config_policy_limits[i].max);
			return;
		}
		*field = v;
	}
}

/* The largest body the firewall parses: what it costs to parse and walk
 * one grows with it (README, RELIABILITY.md). */
static void
config_on_policy_bytes(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off), v;

	if (parse_size(config_scalar(node), &v) != 0) {
		config_error(ctx, &node->start_mark, "\"%s\": bad size \"%s\" (use a number of bytes, or kb or mb)",
		             d->name, config_scalar(node));
		return;
	}
	if (v < 1024 || v > CONFIG_BODY_MAX) {
		config_error(ctx, &node->start_mark, "\"%s\" must be from 1kb to 100mb", d->name);
		return;
	}
	*field = v;
}

#define CONFIG_RATE_MAX 1000000

/* A "rate_limit"-shaped mapping (a route's, and auth's failed_limit and
 * a grant's) into RL, with SCOPE naming where it is. */
static void
config_rate_walk(struct config_ctx *ctx, yaml_node_t *node, const struct config_scope *scope,
                 struct config_rate_limit *rl)
{
	char *base = ctx->base;

	ctx->base = (char *)rl;
	config_walk(ctx, node, scope, NULL);
	ctx->base = base;
	if (rl->rate > 0 && rl->burst == 0)
		rl->burst = rl->rate >= 1 ? rl->rate : 1;
}

static void
config_on_route_rate_limit(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_rate_walk(ctx, node, &config_rate_limit, &config_cur_route(ctx)->rate_limit);
}

/* "N/s" or "N/m"; the default burst is N, kept in burst until then. */
static void
config_on_rate(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_rate_limit *r = (struct config_rate_limit *)(void *)ctx->base;
	uint64_t n;

	if (parse_rate(config_scalar(node), CONFIG_RATE_MAX, &r->rate, &n) != 0) {
		config_error(ctx, &node->start_mark, "\"%s\": bad rate \"%s\" (use N/s or N/m, N from 1 to %d)",
		             d->name, config_scalar(node), CONFIG_RATE_MAX);
		return;
	}
	if (r->burst == 0)
		r->burst = (double)n;
}

static void
config_on_burst(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t v;

	if (parse_uint(config_scalar(node), CONFIG_RATE_MAX, &v) != 0 || v == 0) {
		config_error(ctx, &node->start_mark, "\"%s\" must be an integer from 1 to %d", d->name, CONFIG_RATE_MAX);
		return;
	}
	((struct config_rate_limit *)(void *)ctx->base)->burst = (double)v;
}

/*
 * The top-level "rate_limit: {redis: {...}}": the store shared by a fleet
 * (worker/limiter.h).  The host is resolved by each worker when it
 * starts, as the upstream's are, not here: `esgate -t` and the fuzzer
 * must not ask a DNS server.
 */

#define CONFIG_REDIS_TIMEOUT_MAX (60 * 1000ULL)
#define CONFIG_REDIS_SYNC_MAX 1000ULL
#define CONFIG_REDIS_DB_MAX 100000
#define CONFIG_REDIS_PREFIX_MAX 200 /* worker/limiter.c builds keys in a 256-byte buffer */

static void
config_on_rate_limit_top(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_rate_limit_top, NULL);
}

static void
config_on_redis(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	yaml_node_t *vals[CONFIG_NELEM(config_redis_dirs)] = {0};
	yaml_node_t *user, *password;
	struct config_redis *r = &ctx->cfg->redis;
	char *base = ctx->base;

	ctx->base = (char *)r;
	config_defaults(ctx, &config_redis);
	config_walk(ctx, node, &config_redis, vals);
	ctx->base = base;
	user = config_val(&config_redis, vals, "username");
	password = config_val(&config_redis, vals, "password");
	if (user != NULL && password == NULL)
		config_error(ctx, &user->start_mark, "\"username\" needs \"password\"");
}

/* "host:port", "[v6]:port", "host" (port 6379), or a unix socket's
 * absolute path. */
static void
config_on_redis_address(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_redis *r = (struct config_redis *)(void *)ctx->base;
	const char *s = config_scalar(node), *colon, *hs;
	size_t hlen;
	uint64_t port = 6379;

	if ((r->address = strdup(s)) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	if (s[0] == '/') {
		if ((r->unix_path = strdup(s)) == NULL)
			config_nomem(ctx, node);
		return;
	}
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
			config_error(ctx, &node->start_mark, "\"address\": bad address \"%s\" (use host:port, "
			             "[v6]:port or /path/to/socket)", s);
			return;
		}
		hs = s + 1;
		hlen = (size_t)(end - hs);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon) {
			config_error(ctx, &node->start_mark, "\"address\": an IPv6 address goes in brackets: [%s]:6379",
			             s);
			return;
		}
		hs = s;
		hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (colon != NULL && (parse_uint(colon + 1, 65535, &port) != 0 || port == 0)) {
		config_error(ctx, &node->start_mark, "\"address\": bad port in \"%s\"", s);
		return;
	}
	if (hlen == 0 || hlen > 253 || memchr(hs, ' ', hlen) != NULL || memchr(hs, '/', hlen) != NULL) {
		config_error(ctx, &node->start_mark, "\"address\": bad host in \"%s\"", s);
		return;
	}
	if ((r->host = strndup(hs, hlen)) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	r->port = (unsigned)port;
}

static void
config_on_redis_database(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t v;

	if (config_uint_upto(ctx, d, node, CONFIG_REDIS_DB_MAX, &v) != 0)
		return;
	((struct config_redis *)(void *)ctx->base)->database = (unsigned)v;
}

static void
config_on_redis_fail(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_pick(ctx, d, node, &((struct config_redis *)(void *)ctx->base)->fail_closed, "open", 0, "closed", 1);
}

/* The file's prefix replaces the default's copy. */
static void
config_on_redis_prefix(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_redis *r = (struct config_redis *)(void *)ctx->base;

	free(r->prefix);
	r->prefix = NULL;
	if (strlen(config_scalar(node)) > CONFIG_REDIS_PREFIX_MAX) {
		config_error(ctx, &node->start_mark, "\"%s\" must be at most %d bytes", d->name, CONFIG_REDIS_PREFIX_MAX);
		return;
	}
	config_on_string(ctx, d, node);
}

/* timeout (up to 60s) and sync_interval (up to 1s). */
static void
config_on_redis_duration(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off);
	uint64_t max = d->off == CONFIG_XOFF(sync_ms) ? CONFIG_REDIS_SYNC_MAX : CONFIG_REDIS_TIMEOUT_MAX;

	config_on_duration(ctx, d, node);
	if (*field > max) {
		config_error(ctx, &node->start_mark, "\"%s\" must be at most %s", d->name,
		             max == CONFIG_REDIS_SYNC_MAX ? "1s" : "60s");
		*field = max;
	}
}

static void
config_on_route_cors(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_route *r = config_cur_route(ctx);

	ctx->base = (char *)&r->cors;
	config_walk(ctx, node, &config_cors, NULL);
	ctx->base = (char *)r;
}

static void
config_on_cors_list(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_cors *c = (struct config_cors *)(void *)ctx->base;

	if (d->off == 'o')
		config_strings(ctx, d, node, &c->origins, &c->norigins, "origin", 0, parse_origin,
		               "bad origin (use \"*\" or scheme://host[:port])");
	else
		config_strings(ctx, d, node, &c->headers, &c->nheaders, "header", 1, parse_header_name,
		               "invalid header name");
}

static void
config_on_route_errors(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_errors_scope, NULL);
}

static void
config_on_trusted_proxies(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config *cfg = ctx->cfg;
	yaml_node_item_t *items;
	yaml_node_t *item;
	size_t n;

	if (node->type == YAML_SEQUENCE_NODE && node->data.sequence.items.top == node->data.sequence.items.start)
		return;
	if (config_string_list(ctx, d, node, &items, &n, "address") != 0)
		return;
	if ((cfg->trusted_proxies = calloc(n, sizeof(*cfg->trusted_proxies))) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		item = items == NULL ? node : yaml_document_get_node(ctx->doc, items[i]);
		if (item == NULL || item->type != YAML_SCALAR_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a string or a sequence of strings", d->name);
			continue;
		}
		if (ratelimit_cidr_parse(config_scalar(item), &cfg->trusted_proxies[cfg->ntrusted_proxies]) != 0) {
			config_error(ctx, &item->start_mark,
			             "\"%s\": bad address or CIDR \"%s\" (use 10.0.0.0/8, fd00::/8 or an address)",
			             d->name, config_scalar(item));
			continue;
		}
		cfg->ntrusted_proxies++;
	}
}

/* The DSL_BODY_* of an upstream path ending in a search API, or -1. */
static int
config_search_kind(const char *upath)
{
	const char *last = strrchr(upath, '/');

	last = last == NULL ? upath : last + 1;
	if (strcmp(last, "_search") == 0)
		return DSL_BODY_SEARCH;
	if (strcmp(last, "_count") == 0)
		return DSL_BODY_COUNT;
	if (strcmp(last, "_msearch") == 0)
		return DSL_BODY_MSEARCH;
	return -1;
}

/* Reads route R (the last one so far in cfg->routes) from MAP, then the
 * checks that need the whole route, and the routes before it. */
static void
config_route_read(struct config_ctx *ctx, yaml_node_t *map, struct config_route *r)
{
	yaml_node_t *vals[CONFIG_NELEM(config_route_dirs)] = {0};
	yaml_node_t *path, *indices;
	struct config *cfg = ctx->cfg;
	unsigned vars, missing;

	ctx->base = (char *)r;
	config_defaults(ctx, &config_route);
	r->search = -1;   /* derived from the upstream path below */
	r->coalesce = -1; /* "not written": derived from cache_ttl below */
	dsl_policy_defaults(&r->policy);
	ctx->route_upath = NULL;
	config_walk(ctx, map, &config_route, vals);
	ctx->base = (char *)cfg;
	path = config_val(&config_route, vals, "path");
	indices = config_val(&config_route, vals, "indices");
	if (r->path_tmpl == NULL)
		return; /* reported */
	vars = route_template_vars(r->path_tmpl);
	if ((vars & ROUTE_VAR_INDEX) && indices == NULL)
		config_error(ctx, &map->start_mark, "missing required key \"indices\" in route");
	if (!(vars & ROUTE_VAR_INDEX) && indices != NULL)
		config_error(ctx, &indices->start_mark, "\"indices\": the route's path has no {index}");
	if (r->upstream_tmpl != NULL) {
		yaml_node_t *policy = config_val(&config_route, vals, "policy");

		r->search = config_search_kind(r->upstream_path);
		{
			char ibuf[ROUTE_INDEX_MAX + 1];
			const char *ui = auth_upstream_index(r->upstream_path, ibuf, sizeof(ibuf));

			if (ui != NULL && (r->auth_index = strdup(ui)) == NULL)
				config_error(ctx, &map->start_mark, "out of memory");
		}
		if (policy != NULL && r->search < 0)
			config_error(ctx, &policy->start_mark,
			             "\"policy\": the route's upstream path is not a search (_search, _count or _msearch)");
		missing = route_template_vars(r->upstream_tmpl) & ~vars;
		if (missing & ROUTE_VAR_INDEX)
			config_error(ctx, &ctx->route_upath->start_mark,
			             "\"path\": placeholder {index} is not in the route's path");
		if (missing & ROUTE_VAR_ID)
			config_error(ctx, &ctx->route_upath->start_mark,
			             "\"path\": placeholder {id} is not in the route's path");
	}
	/* A cache_ttl implies coalescing, as nginx's proxy_cache_lock: a
	 * miss must not send every concurrent client upstream. */
	if (r->coalesce < 0)
		r->coalesce = r->cache_ttl_ms > 0;
	if ((r->cache_ttl_ms > 0 || r->coalesce) && r->upstream_method != 0 && r->upstream_method != CONFIG_METHOD_GET) {
		yaml_node_t *ttl = config_val(&config_route, vals, "cache_ttl");
		yaml_node_t *co = config_val(&config_route, vals, "coalesce");
		config_error(ctx, ttl != NULL ? &ttl->start_mark : &co->start_mark,
		             "\"%s\": only routes whose upstream method is GET are cached or coalesced",
		             ttl != NULL ? "cache_ttl" : "coalesce");
	}
	for (struct config_route *o = cfg->routes; o < r; o++)
		if (o->path_tmpl != NULL && route_template_same(o->path_tmpl, r->path_tmpl) &&
		    (o->methods & r->methods) != 0) {
			config_error(ctx, &path->start_mark, "duplicate route \"%s\"", r->path);
			break;
		}
}

static void
config_on_routes(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config *cfg = ctx->cfg;
	yaml_node_item_t *it;
	yaml_node_t *item;
	size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);

	if (n == 0)
		return;
	if ((cfg->routes = calloc(n, sizeof(*cfg->routes))) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
		item = yaml_document_get_node(ctx->doc, *it);
		if (item == NULL || item->type != YAML_MAPPING_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a sequence of mappings", d->name);
			continue;
		}
		config_route_read(ctx, item, &cfg->routes[cfg->nroutes++]);
	}
}

/*
 * Authentication: "auth" at the top and on a route (lib/auth.h).  Values
 * are judged by lib/apikey.h, lib/jwt.h, lib/dls.h and lib/fls.h; what
 * needs the whole file (a grant's routes, duplicate key ids, the schemes
 * a route asks for) is kept in ctx->pending for config_auth_finish().
 * Messages name a key id at most, never a key, hash or secret.
 */

#define CONFIG_JSON_DEPTH_MAX 64
#define CONFIG_LEEWAY_MAX (5 * 60 * 1000ULL)
#define CONFIG_JWT_CACHE_MAX 1000000

static void config_on_auth_keys(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_keys_file(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_auth_jwt(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_failed_limit(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_grants(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_groups(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_key_id(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_key_hash(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_key_expires(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_key_groups(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_jwks_file(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_jwt_audience(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_jwt_cache_size(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_grant_list(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_grant_routes(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_grant_rate_limit(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_grant_dls(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_grant_fields(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_fields_list(struct config_ctx *, const struct config_directive *, yaml_node_t *);
static void config_on_route_auth_schemes(struct config_ctx *, const struct config_directive *, yaml_node_t *);

static const struct config_directive config_auth_dirs[] = {
    {"api_keys", CONFIG_T_SEQUENCE, 0, config_on_auth_keys, 0, NULL},
    {"keys_file", CONFIG_T_SCALAR, 0, config_on_keys_file, 0, NULL},
    {"jwt", CONFIG_T_MAPPING, 0, config_on_auth_jwt, 0, NULL},
    {"failed_limit", CONFIG_T_SCALAR | CONFIG_T_MAPPING, 0, config_on_failed_limit, 0, NULL},
    {"grants", CONFIG_T_SEQUENCE, 0, config_on_grants, 0, NULL},
    {"groups", CONFIG_T_MAPPING, 0, config_on_groups, 0, NULL},
};

static const struct config_directive config_keys_file_dirs[] = {
    {"api_keys", CONFIG_T_SEQUENCE, CONFIG_F_REQUIRED, config_on_auth_keys, 0, NULL},
};

static const struct config_directive config_apikey_dirs[] = {
    {"id", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_key_id, 0, NULL},
    {"hash", CONFIG_T_SCALAR, CONFIG_F_REQUIRED, config_on_key_hash, 0, NULL},
    {"expires", CONFIG_T_SCALAR, 0, config_on_key_expires, 0, NULL},
    {"groups", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_key_groups, 0, NULL},
    {"grants", CONFIG_T_SEQUENCE, 0, config_on_grants, 0, NULL},
};

#define CONFIG_JOFF(field) offsetof(struct auth_jwt, field)

static const struct config_directive config_jwt_dirs[] = {
    {"jwks_file", CONFIG_T_SCALAR, 0, config_on_jwks_file, 0, NULL},
    {"issuer", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_JOFF(issuer), NULL},
    {"audience", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_jwt_audience, 0, NULL},
    {"leeway", CONFIG_T_SCALAR, 0, config_on_duration, CONFIG_JOFF(leeway_ms), NULL},
    {"hs256_secret", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_JOFF(hs256_secret), NULL},
    {"principal_claim", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_JOFF(subject_claim), NULL},
    {"groups_claim", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_JOFF(groups_claim), NULL},
    {"cache_size", CONFIG_T_SCALAR, 0, config_on_jwt_cache_size, 0, NULL},
};

static const struct config_directive config_grant_dirs[] = {
    {"principals", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_grant_list, 'p', NULL},
    {"groups", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_grant_list, 'g', NULL},
    {"routes", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_grant_routes, 0, NULL},
    {"indices", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_grant_list, 'i', NULL},
    {"rate_limit", CONFIG_T_MAPPING, 0, config_on_grant_rate_limit, 0, NULL},
    {"dls", CONFIG_T_SCALAR | CONFIG_T_MAPPING, 0, config_on_grant_dls, 0, NULL},
    {"fields", CONFIG_T_MAPPING, 0, config_on_grant_fields, 0, NULL},
};

static const struct config_directive config_fields_dirs[] = {
    {"allow", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_fields_list, 'a', NULL},
    {"hide", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_fields_list, 'h', NULL},
};

static const struct config_directive config_route_auth_dirs[] = {
    {"required", CONFIG_T_SCALAR, 0, config_on_bool, offsetof(struct auth_rule, required), NULL},
    {"schemes", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, config_on_route_auth_schemes, 0, NULL},
};

static const struct config_scope config_auth = {config_auth_dirs, CONFIG_NELEM(config_auth_dirs), " in auth"};
static const struct config_scope config_keys_file = {config_keys_file_dirs, CONFIG_NELEM(config_keys_file_dirs),
                                                     " in keys file"};
static const struct config_scope config_apikey = {config_apikey_dirs, CONFIG_NELEM(config_apikey_dirs), " in api key"};
static const struct config_scope config_jwt = {config_jwt_dirs, CONFIG_NELEM(config_jwt_dirs), " in auth jwt"};
static const struct config_scope config_grant = {config_grant_dirs, CONFIG_NELEM(config_grant_dirs), " in grant"};
static const struct config_scope config_fields = {config_fields_dirs, CONFIG_NELEM(config_fields_dirs),
                                                  " in grant fields"};
static const struct config_scope config_route_auth = {config_route_auth_dirs, CONFIG_NELEM(config_route_auth_dirs),
                                                      " in route auth"};
static const struct config_scope config_failed_limit = {config_rate_limit_dirs, CONFIG_NELEM(config_rate_limit_dirs),
                                                        " in auth failed_limit"};
static const struct config_scope config_grant_rate = {config_rate_limit_dirs, CONFIG_NELEM(config_rate_limit_dirs),
                                                      " in grant rate_limit"};

static void
config_pend(struct config_ctx *ctx, int kind, size_t a, size_t b, yaml_node_t *node, yaml_node_t *keep)
{
	struct config_pending *p;

	if ((p = realloc(ctx->pending, (ctx->npending + 1) * sizeof(*p))) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	ctx->pending = p;
	p[ctx->npending++] = (struct config_pending){
	    .kind = kind, .a = a, .b = b, .name = ctx->name, .mark = node->start_mark, .node = keep};
}

/* Errors at a kept place: the file may be another than ctx->name. */
static void config_error_at(struct config_ctx *, const struct config_pending *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
config_error_at(struct config_ctx *ctx, const struct config_pending *p, const char *fmt, ...)
{
	va_list ap;
	char *body, *msg = NULL;

	ctx->nerr++;
	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	va_end(ap);
	if (body == NULL)
		return;
	if (asprintf(&msg, "%s:%zu:%zu: %s", p->name, p->mark.line + 1, p->mark.column + 1, body) < 0)
		msg = NULL;
	free(body);
	config_errors_add(ctx->errs, msg);
}

/* A path from the file: absolute, or relative to the configuration
 * file's directory (not the working directory, which a service does not
 * choose). */
static char *
config_resolve(struct config_ctx *ctx, const char *s)
{
	const char *slash = strrchr(ctx->cfg->path, '/');
	char *out;

	if (s[0] == '/' || slash == NULL)
		return strdup(s);
	if (asprintf(&out, "%.*s/%s", (int)(slash - ctx->cfg->path), ctx->cfg->path, s) < 0)
		return NULL;
	return out;
}

static struct apikey *
config_cur_key(struct config_ctx *ctx)
{
	return (struct apikey *)(void *)ctx->base;
}

static struct auth_grant *
config_cur_grant(struct config_ctx *ctx)
{
	return (struct auth_grant *)(void *)ctx->base;
}

static void
config_on_key_id(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	const char *s = config_scalar(node);

	if (!apikey_id_valid(s, strlen(s))) {
		config_error(ctx, &node->start_mark, "\"id\": bad key id (use 1 to %d of A-Z a-z 0-9 . _ -)",
		             APIKEY_ID_MAX);
		return;
	}
	if ((config_cur_key(ctx)->id = strdup(s)) == NULL)
		config_nomem(ctx, node);
}

/* The message never shows the value: it may be a key pasted by mistake. */
static void
config_on_key_hash(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	if (apikey_hash_parse(config_scalar(node), config_cur_key(ctx)->hash) != 0)
		config_error(ctx, &node->start_mark,
		             "\"hash\" must be \"sha256:\" and 64 hexadecimal digits (esgate key new prints it)");
}

static void
config_on_key_expires(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	if (apikey_time_parse(config_scalar(node), &config_cur_key(ctx)->expires) != 0 ||
	    config_cur_key(ctx)->expires <= 0)
		config_error(ctx, &node->start_mark,
		             "\"expires\": bad time \"%s\" (use 2026-12-31 or 2026-12-31T23:59:59Z)",
		             config_scalar(node));
}

static int
config_group_name(const char *s)
{
	return auth_group_name_valid(s);
}

static void
config_on_key_groups(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct apikey *k = config_cur_key(ctx);

	config_strings(ctx, d, node, &k->groups, &k->ngroups, "group", 1, config_group_name, "bad group name");
}

/* One api_keys item; it and its grants are appended to cfg->auth. */
static void
config_key_read(struct config_ctx *ctx, yaml_node_t *map)
{
	struct apikey_set *set = &ctx->cfg->auth.keys;
	struct apikey *p;
	size_t first_grant = ctx->cfg->auth.ngrants;
	char *base = ctx->base;

	if ((p = realloc(set->keys, (set->n + 1) * sizeof(*p))) == NULL) {
		config_nomem(ctx, map);
		return;
	}
	set->keys = p;
	memset(&p[set->n], 0, sizeof(*p));
	ctx->base = (char *)&p[set->n];
	config_walk(ctx, map, &config_apikey, NULL);
	ctx->base = base;
	p = &set->keys[set->n];
	if (p->id == NULL) {
		apikey_clear(p);
		return; /* reported */
	}
	config_pend(ctx, 'k', set->n, 0, map, NULL);
	set->n++;
	/* a key's own grants name the key */
	for (size_t i = first_grant; i < ctx->cfg->auth.ngrants; i++) {
		struct auth_grant *g = &ctx->cfg->auth.grants[i];

		/* principals written there were refused (config_grant_read) */
		for (size_t j = 0; j < g->nprincipals; j++)
			free(g->principals[j]);
		free(g->principals);
		g->nprincipals = 0;
		if ((g->principals = calloc(1, sizeof(char *))) == NULL ||
		    asprintf(&g->principals[0], "key:%s", p->id) < 0) {
			config_nomem(ctx, map);
			continue;
		}
		g->nprincipals = 1;
	}
}

static void
config_on_auth_keys(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);

		if (item == NULL || item->type != YAML_MAPPING_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a sequence of mappings", d->name);
			continue;
		}
		config_key_read(ctx, item);
	}
}

static char *config_read_file(const char *path, size_t *lenp, char *err, size_t errlen);
static void config_rest(struct config_ctx *, yaml_parser_t *);

/* The keys file: YAML with "api_keys:" as in the main file, read now and
 * again at each reload (the whole configuration is read again then). */
static void
config_on_keys_file(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_ctx sub;
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	char err[256], *buf;
	size_t len;

	if (config_scalar(node)[0] == '\0') {
		config_error(ctx, &node->start_mark, "\"%s\" must not be empty", d->name);
		return;
	}
	if ((ctx->cfg->auth.keys_file = config_resolve(ctx, config_scalar(node))) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	if ((buf = config_read_file(ctx->cfg->auth.keys_file, &len, err, sizeof(err))) == NULL) {
		config_error(ctx, &node->start_mark, "\"%s\": %s: %s", d->name, ctx->cfg->auth.keys_file, err);
		return;
	}
	if (!yaml_parser_initialize(&parser)) {
		free(buf);
		config_nomem(ctx, node);
		return;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	sub = *ctx;
	sub.name = ctx->cfg->auth.keys_file;
	sub.nerr = 0;
	if (!yaml_parser_load(&parser, &doc)) {
		config_errorf(ctx->errs, "%s:%zu:%zu: YAML syntax error: %s", sub.name, parser.problem_mark.line + 1,
		              parser.problem_mark.column + 1,
		              parser.problem != NULL ? parser.problem : "unknown error");
		ctx->nerr++;
		yaml_parser_delete(&parser);
		free(buf);
		return;
	}
	sub.doc = &doc;
	/* an empty file is a file without keys */
	if ((root = yaml_document_get_root_node(&doc)) != NULL) {
		if (root->type != YAML_MAPPING_NODE)
			config_error(&sub, &root->start_mark, "top level must be a mapping");
		else
			config_walk(&sub, root, &config_keys_file, NULL);
	}
	config_rest(&sub, &parser);
	ctx->nerr += sub.nerr;
	ctx->pending = sub.pending;
	ctx->npending = sub.npending;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	free(buf);
}

static void
config_on_jwks_file(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_jwt *j = &ctx->cfg->auth.jwt;
	char err[JWT_ERR_MAX], *buf;
	size_t len;

	if (config_scalar(node)[0] == '\0') {
		config_error(ctx, &node->start_mark, "\"%s\" must not be empty", d->name);
		return;
	}
	if ((j->jwks_file = config_resolve(ctx, config_scalar(node))) == NULL) {
		config_nomem(ctx, node);
		return;
	}
	if ((buf = config_read_file(j->jwks_file, &len, err, sizeof(err))) != NULL) {
		j->keys = jwt_jwks_parse(buf, len, NULL, err, sizeof(err));
		free(buf);
	}
	if (j->keys == NULL)
		config_error(ctx, &node->start_mark, "\"%s\": %s: %s", d->name, j->jwks_file, err);
}

static void
config_on_jwt_audience(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_jwt *j = &ctx->cfg->auth.jwt;

	config_strings(ctx, d, node, &j->audiences, &j->naudiences, "audience", 0, NULL, NULL);
}

static void
config_on_jwt_cache_size(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t v;

	if (config_uint_upto(ctx, d, node, CONFIG_JWT_CACHE_MAX, &v) != 0)
		return;
	ctx->cfg->auth.jwt.cache_size = (unsigned)v;
}

static void
config_on_auth_jwt(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	yaml_node_t *vals[CONFIG_NELEM(config_jwt_dirs)] = {0};
	struct auth_jwt *j = &ctx->cfg->auth.jwt;
	yaml_node_t *secret, *leeway, *jwks;
	char *base = ctx->base;

	j->enabled = 1;
	ctx->base = (char *)j;
	config_walk(ctx, node, &config_jwt, vals);
	ctx->base = base;
	secret = config_val(&config_jwt, vals, "hs256_secret");
	leeway = config_val(&config_jwt, vals, "leeway");
	jwks = config_val(&config_jwt, vals, "jwks_file");
	if (jwks == NULL && secret == NULL)
		config_error(ctx, &node->start_mark, "\"jwt\" needs \"jwks_file\" or \"hs256_secret\"");
	if (leeway != NULL && j->leeway_ms > CONFIG_LEEWAY_MAX)
		config_error(ctx, &leeway->start_mark, "\"leeway\" must be at most 5m");
	if (j->hs256_secret != NULL) {
		struct jwt_keyset *k;

		if (strlen(j->hs256_secret) < JWT_SECRET_MIN)
			config_error(ctx, &secret->start_mark, "\"hs256_secret\" must be at least %d bytes",
			             JWT_SECRET_MIN);
		else if (jwks == NULL || j->keys != NULL) {
			if ((k = jwt_keyset_add_secret(j->keys, (const unsigned char *)j->hs256_secret,
			                               strlen(j->hs256_secret))) == NULL)
				config_nomem(ctx, secret);
			else
				j->keys = k;
		}
	}
}

static void
config_on_failed_limit(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config_rate_limit rl = {0};

	if (node->type == YAML_SCALAR_NODE) {
		const char *s = config_scalar(node);

		if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
			ctx->cfg->auth.failed_rate = ctx->cfg->auth.failed_burst = 0;
		else
			config_error(ctx, &node->start_mark, "\"%s\" must be a mapping {rate, burst} or false",
			             d->name);
		return;
	}
	config_rate_walk(ctx, node, &config_failed_limit, &rl);
	ctx->cfg->auth.failed_rate = rl.rate;
	ctx->cfg->auth.failed_burst = rl.burst;
}

static int
config_principal(const char *s)
{
	return auth_principal_valid(s);
}

static void
config_on_grant_list(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_grant *g = config_cur_grant(ctx);

	switch (d->off) {
	case 'p':
		config_strings(ctx, d, node, &g->principals, &g->nprincipals, "principal", 0, config_principal,
		               "bad principal (use key:ID, jwt:SUBJECT, cert:SUBJECT or anonymous)");
		break;
	case 'g':
		config_strings(ctx, d, node, &g->groups, &g->ngroups, "group", 0, config_group_name, "bad group name");
		break;
	default:
		config_strings(ctx, d, node, &g->indices, &g->nindices, "index", 0, config_index_entry,
		               "invalid index name");
		break;
	}
}

static void
config_on_grant_routes(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_grant *g = config_cur_grant(ctx);
	size_t before, gi = (size_t)(g - ctx->cfg->auth.grants);
	yaml_node_item_t *items;
	size_t n;

	config_strings(ctx, d, node, &g->route_paths, &g->nroute_paths, "route", 0, NULL, NULL);
	/* the positions of the paths kept, for config_auth_finish() */
	if (g->route_paths == NULL || config_string_list(ctx, d, node, &items, &n, "route") != 0)
		return;
	before = 0;
	for (size_t i = 0; i < n && before < g->nroute_paths; i++) {
		yaml_node_t *item = items == NULL ? node : yaml_document_get_node(ctx->doc, items[i]);

		if (item != NULL && item->type == YAML_SCALAR_NODE &&
		    strcmp(config_scalar(item), g->route_paths[before]) == 0)
			config_pend(ctx, 'r', gi, before++, item, NULL);
	}
}

static void
config_on_grant_rate_limit(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_grant *g = config_cur_grant(ctx);
	struct config_rate_limit rl = {0};

	config_rate_walk(ctx, node, &config_grant_rate, &rl);
	g->rate = rl.rate;
	g->burst = rl.burst;
}

/* A YAML node as a JSON value, for a document filter written in YAML:
 * plain scalars are typed as YAML reads them (true, 12, 1.5, null),
 * quoted ones are strings.  Placeholders are checked in each string, at
 * its own position. */
static json_t *
config_json(struct config_ctx *ctx, yaml_node_t *node, unsigned depth)
{
	char err[160];
	json_t *out, *v;

	if (depth > CONFIG_JSON_DEPTH_MAX) {
		config_error(ctx, &node->start_mark, "\"dls\": nested too deep");
		return NULL;
	}
	if (node->type == YAML_SCALAR_NODE) {
		const char *s = config_scalar(node);
		char *end;

		if (strlen(s) != node->data.scalar.length) {
			config_error(ctx, &node->start_mark, "\"dls\": a string holds a NUL byte");
			return NULL;
		}
		if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
			long long ll;
			double dd;

			if (strcmp(s, "true") == 0)
				return json_true();
			if (strcmp(s, "false") == 0)
				return json_false();
			if (strcmp(s, "null") == 0 || strcmp(s, "~") == 0 || s[0] == '\0')
				return json_null();
			errno = 0;
			ll = strtoll(s, &end, 10);
			if (end != s && *end == '\0' && errno == 0 && strchr("+-0123456789", s[0]) != NULL)
				return json_integer(ll);
			errno = 0;
			dd = strtod(s, &end);
			if (end != s && *end == '\0' && errno == 0 && strchr("+-.0123456789", s[0]) != NULL &&
			    strspn(s, "+-.0123456789eE") == strlen(s))
				return json_real(dd);
		}
		if (dls_placeholders_check(s, err, sizeof(err)) != 0) {
			config_error(ctx, &node->start_mark, "\"dls\": %s", err);
			return NULL;
		}
		return json_string(s);
	}
	if (node->type == YAML_SEQUENCE_NODE) {
		if ((out = json_array()) == NULL)
			return NULL;
		for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
			yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);

			if (item == NULL || (v = config_json(ctx, item, depth + 1)) == NULL ||
			    json_array_append_new(out, v) != 0) {
				json_decref(out);
				return NULL;
			}
		}
		return out;
	}
	if (node->type != YAML_MAPPING_NODE || (out = json_object()) == NULL)
		return NULL;
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
		yaml_node_t *val = yaml_document_get_node(ctx->doc, pair->value);
		const char *ks;

		if (k == NULL || val == NULL || k->type != YAML_SCALAR_NODE) {
			config_error(ctx, k != NULL ? &k->start_mark : &node->start_mark, "key must be a string");
			json_decref(out);
			return NULL;
		}
		ks = config_scalar(k);
		if (strstr(ks, "{{") != NULL || strstr(ks, "}}") != NULL) {
			config_error(ctx, &k->start_mark, "\"dls\": a key may not hold a placeholder");
			json_decref(out);
			return NULL;
		}
		if (json_object_get(out, ks) != NULL) {
			config_error(ctx, &k->start_mark, "duplicate key \"%s\"", ks);
			json_decref(out);
			return NULL;
		}
		if ((v = config_json(ctx, val, depth + 1)) == NULL || json_object_set_new(out, ks, v) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

static void
config_on_grant_dls(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_grant *g = config_cur_grant(ctx);
	json_error_t jerr;
	char err[160];
	size_t before = ctx->nerr;

	if (node->type == YAML_SCALAR_NODE) {
		/* JSON text, as pasted from a Kibana console */
		if ((g->dls = json_loads(config_scalar(node), JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
			config_error(ctx, &node->start_mark, "\"dls\": not JSON: %s", jerr.text);
			return;
		}
		if (dls_template_check(g->dls, err, sizeof(err)) != 0) {
			config_error(ctx, &node->start_mark, "\"dls\": %s", err);
			return;
		}
	} else if ((g->dls = config_json(ctx, node, 0)) == NULL) {
		if (ctx->nerr == before)
			config_nomem(ctx, node);
		return;
	}
	if (!json_is_object(g->dls) || json_object_size(g->dls) != 1 ||
	    !json_is_object(json_object_iter_value(json_object_iter(g->dls))))
		config_error(ctx, &node->start_mark,
		             "\"dls\" must be one query, e.g. {term: {tenant: \"{{claims.tenant}}\"}}");
	config_pend(ctx, 'd', (size_t)(g - ctx->cfg->auth.grants), 0, node, NULL);
}

static int
config_field_entry(const char *s)
{
	return fls_pattern_valid(s);
}

static void
config_on_fields_list(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct fls_rules *f = (struct fls_rules *)(void *)ctx->base;

	if (d->off == 'a')
		config_strings(ctx, d, node, &f->allow, &f->nallow, "field", 0, config_field_entry,
		               "invalid field name");
	else
		config_strings(ctx, d, node, &f->hide, &f->nhide, "field", 0, config_field_entry, "invalid field name");
}

static void
config_on_grant_fields(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_grant *g = config_cur_grant(ctx);

	ctx->base = (char *)&g->fields;
	config_walk(ctx, node, &config_fields, NULL);
	ctx->base = (char *)g;
	if (node->data.mapping.pairs.top == node->data.mapping.pairs.start)
		config_error(ctx, &node->start_mark, "\"fields\" needs \"allow\" or \"hide\"");
	config_pend(ctx, 'd', (size_t)(g - ctx->cfg->auth.grants), 1, node, NULL);
}

/* One grant; KEY_GRANT when it is an API key's own (it names the key). */
static void
config_grant_read(struct config_ctx *ctx, yaml_node_t *map, int key_grant)
{
	yaml_node_t *vals[CONFIG_NELEM(config_grant_dirs)] = {0};
	struct auth_config *a = &ctx->cfg->auth;
	struct auth_grant *p;
	char *base = ctx->base;

	if ((p = realloc(a->grants, (a->ngrants + 1) * sizeof(*p))) == NULL) {
		config_nomem(ctx, map);
		return;
	}
	a->grants = p;
	memset(&p[a->ngrants], 0, sizeof(*p));
	ctx->base = (char *)&p[a->ngrants++];
	config_walk(ctx, map, &config_grant, vals);
	ctx->base = base;
	p = &a->grants[a->ngrants - 1];
	if (key_grant) {
		yaml_node_t *who = config_val(&config_grant, vals, "principals");

		if (who == NULL)
			who = config_val(&config_grant, vals, "groups");
		if (who != NULL)
			config_error(ctx, &who->start_mark, "a key's own grant names the key: no principals or groups");
	} else if (p->nprincipals == 0 && p->ngroups == 0 && config_val(&config_grant, vals, "principals") == NULL &&
	           config_val(&config_grant, vals, "groups") == NULL)
		config_error(ctx, &map->start_mark, "a grant needs \"principals\" or \"groups\"");
}

static void
config_on_grants(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	/* under "auth", or in an api_keys item (whose walk set ctx->base to it) */
	int key_grant = ctx->base != (char *)ctx->cfg;

	for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);

		if (item == NULL || item->type != YAML_MAPPING_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a sequence of mappings", d->name);
			continue;
		}
		config_grant_read(ctx, item, key_grant);
	}
}

/* groups: {NAME: [principal, ...], ...}: names are the operator's, so
 * this mapping is walked by hand. */
static void
config_on_groups(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_config *a = &ctx->cfg->auth;
	size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	struct config_directive members = {"groups", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, 0, NULL, 0, NULL};

	if (n == 0 || (a->groups = calloc(n, sizeof(*a->groups))) == NULL) {
		if (n > 0)
			config_nomem(ctx, node);
		return;
	}
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
		struct auth_group *g;
		size_t i;

		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE || !auth_group_name_valid(config_scalar(k))) {
			config_error(ctx, k != NULL ? &k->start_mark : &node->start_mark,
			             "\"groups\": bad group name (use 1 to 128 of A-Z a-z 0-9 . _ : -)");
			continue;
		}
		for (i = 0; i < a->ngroups; i++)
			if (strcmp(a->groups[i].name, config_scalar(k)) == 0)
				break;
		if (i < a->ngroups) {
			config_error(ctx, &k->start_mark, "duplicate key \"%s\"", config_scalar(k));
			continue;
		}
		if (v->type != YAML_SCALAR_NODE && v->type != YAML_SEQUENCE_NODE) {
			config_error(ctx, &v->start_mark, "\"%s\" must be a string or a sequence of strings",
			             config_scalar(k));
			continue;
		}
		g = &a->groups[a->ngroups++];
		if ((g->name = strdup(config_scalar(k))) == NULL) {
			config_nomem(ctx, k);
			continue;
		}
		members.name = g->name;
		config_strings(ctx, &members, v, &g->members, &g->nmembers, "principal", 1, config_principal,
		               "bad principal (use key:ID, jwt:SUBJECT, cert:SUBJECT or anonymous)");
	}
}

static void
config_on_auth(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_auth, NULL);
}

static void
config_on_route_auth_schemes(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct auth_rule *a = (struct auth_rule *)(void *)ctx->base;
	yaml_node_item_t *items;
	size_t n;
	unsigned bit;

	if (config_string_list(ctx, d, node, &items, &n, "scheme") != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = items == NULL ? node : yaml_document_get_node(ctx->doc, items[i]);

		if (item == NULL || item->type != YAML_SCALAR_NODE) {
			config_error(ctx, item == NULL ? &node->start_mark : &item->start_mark,
			             "\"%s\" must be a string or a sequence of strings", d->name);
			continue;
		}
		if ((bit = auth_scheme_parse(config_scalar(item))) == 0)
			config_error(ctx, &item->start_mark,
			             "\"%s\": unknown scheme \"%s\" (use api_key, jwt or client_cert)", d->name,
			             config_scalar(item));
		else if (a->schemes & bit)
			config_error(ctx, &item->start_mark, "\"%s\": duplicate scheme \"%s\"", d->name,
			             config_scalar(item));
		a->schemes |= bit;
	}
}

static void
config_on_route_auth(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	yaml_node_t *vals[CONFIG_NELEM(config_route_auth_dirs)] = {0};
	struct config_route *r = config_cur_route(ctx);

	r->auth.enabled = 1;
	r->auth.required = 1;
	ctx->base = (char *)&r->auth;
	config_walk(ctx, node, &config_route_auth, vals);
	ctx->base = (char *)r;
	config_pend(ctx, 'a', (size_t)(r - ctx->cfg->routes), 0, node, config_val(&config_route_auth, vals, "schemes"));
}

static int
config_pending_key_cmp(const void *a, const void *b, void *arg)
{
	const struct config_pending *pa = *(const struct config_pending *const *)a;
	const struct config_pending *pb = *(const struct config_pending *const *)b;
	const struct apikey *keys = arg;
	int c = strcmp(keys[pa->a].id, keys[pb->a].id);

	return c != 0 ? c : pa->a < pb->a ? -1 : pa->a > pb->a;
}

/* A scheme a route names must be one the configuration can verify. */
static void
config_auth_scheme_check(struct config_ctx *ctx, yaml_node_t *item, unsigned configured)
{
	unsigned bit;

	if (item != NULL && item->type == YAML_SCALAR_NODE && (bit = auth_scheme_parse(config_scalar(item))) != 0 &&
	    !(configured & bit))
		config_error(ctx, &item->start_mark, "\"schemes\": %s is not configured (set %s)", config_scalar(item),
		             bit == AUTH_SCHEME_JWT ? "auth.jwt" : "auth.api_keys or auth.keys_file");
}

/* 1 if route R can carry a document filter or field rules: a search,
 * count or _msearch, or a get-by-id (which the worker turns into a
 * search on the id). */
static int
config_route_filterable(const struct config_route *r)
{
	static const char *const gets[] = {"/_doc/{id}", "/_source/{id}"};
	size_t n = r->upstream_path != NULL ? strlen(r->upstream_path) : 0;

	if (r->search >= 0)
		return 1;
	if (r->upstream_method != CONFIG_METHOD_GET && r->upstream_method != CONFIG_METHOD_HEAD)
		return 0;
	for (size_t i = 0; i < CONFIG_NELEM(gets); i++)
		if (n > strlen(gets[i]) && strcmp(r->upstream_path + n - strlen(gets[i]), gets[i]) == 0)
			return 1;
	return 0;
}

/* A grant's "dls" or "fields" (P->b 0 or 1) on every route it covers. */
static void
config_auth_filterable(struct config_ctx *ctx, const struct config_pending *p)
{
	const struct auth_grant *g = &ctx->cfg->auth.grants[p->a];
	size_t n = g->nroute_paths > 0 ? g->nroutes : ctx->cfg->nroutes;

	for (size_t i = 0; i < n; i++) {
		const struct config_route *r = &ctx->cfg->routes[g->nroute_paths > 0 ? g->routes[i] : i];

		if (!r->auth.enabled || r->path == NULL || config_route_filterable(r))
			continue;
		config_error_at(ctx, p,
		                "\"%s\": route \"%s\" cannot apply it (only search, count, _msearch and get-by-id "
		                "routes can)",
		                p->b == 0 ? "dls" : "fields", r->path);
		return;
	}
}

/* The checks across the file, once everything is read. */
static void
config_auth_finish(struct config_ctx *ctx)
{
	struct config *cfg = ctx->cfg;
	struct auth_config *a = &cfg->auth;
	unsigned configured = auth_schemes_configured(a);
	struct config_pending **keys = NULL;
	size_t nkeys = 0;

	for (size_t i = 0; i < ctx->npending; i++) {
		struct config_pending *p = &ctx->pending[i];

		if (p->kind == 'k') {
			struct config_pending **q = realloc(keys, (nkeys + 1) * sizeof(*q));

			if (q == NULL) {
				config_error_at(ctx, p, "out of memory");
				continue;
			}
			keys = q;
			keys[nkeys++] = p;
		} else if (p->kind == 'r') {
			struct auth_grant *g = &a->grants[p->a];
			const char *path = g->route_paths[p->b];
			size_t found = 0;

			for (size_t r = 0; r < cfg->nroutes; r++) {
				size_t *q;

				if (cfg->routes[r].path == NULL || strcmp(cfg->routes[r].path, path) != 0)
					continue;
				found++;
				if (!cfg->routes[r].auth.enabled) {
					config_error_at(
					    ctx, p,
					    "\"routes\": route \"%s\" has no \"auth\" rule: it is open to everyone",
					    path);
					break;
				}
				if ((q = realloc(g->routes, (g->nroutes + 1) * sizeof(*q))) == NULL) {
					config_error_at(ctx, p, "out of memory");
					break;
				}
				g->routes = q;
				g->routes[g->nroutes++] = r;
			}
			if (found == 0)
				config_error_at(ctx, p, "\"routes\": no route \"%s\"", path);
		} else if (p->kind == 'a') {
			struct auth_rule *rule = &cfg->routes[p->a].auth;

			if (p->node == NULL) {
				rule->schemes = configured & (AUTH_SCHEME_APIKEY | AUTH_SCHEME_JWT);
				if (rule->schemes == 0)
					config_error_at(ctx, p,
					                "\"auth\": no authentication is configured (set auth.api_keys, "
					                "auth.keys_file or auth.jwt, or schemes: [client_cert])");
				continue;
			}
			if (p->node->type == YAML_SCALAR_NODE)
				config_auth_scheme_check(ctx, p->node, configured);
			else
				for (yaml_node_item_t *it = p->node->data.sequence.items.start;
				     it < p->node->data.sequence.items.top; it++)
					config_auth_scheme_check(ctx, yaml_document_get_node(ctx->doc, *it),
					                         configured);
		}
	}
	/* once every grant's routes are known */
	for (size_t i = 0; i < ctx->npending; i++)
		if (ctx->pending[i].kind == 'd')
			config_auth_filterable(ctx, &ctx->pending[i]);
	/* duplicate key ids: the later one is the error */
	if (nkeys > 1) {
		qsort_r(keys, nkeys, sizeof(*keys), config_pending_key_cmp, a->keys.keys);
		for (size_t i = 1; i < nkeys; i++)
			if (strcmp(a->keys.keys[keys[i - 1]->a].id, a->keys.keys[keys[i]->a].id) == 0)
				config_error_at(ctx, keys[i], "duplicate API key id \"%s\"",
				                a->keys.keys[keys[i]->a].id);
	}
	free(keys);
	(void)apikey_set_sort(&a->keys);
	free(ctx->pending);
	ctx->pending = NULL;
	ctx->npending = 0;
}

/*
 * Entry points.
 */

/*
 * TLS: a listener's "tls:" and the top-level "tls:".  The files are read
 * here, in the master, while the configuration is read: `esgate -t` and a
 * reload check exactly what the workers will serve, and a root-only key
 * is read before any privilege is dropped.
 */

static void
config_on_nothing(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	/* read after the walk, from its VALS */
}

/* Something worth saying that is not wrong: "FILE:LINE:COLUMN: warning: ...". */
static void __attribute__((format(printf, 3, 4)))
config_warn(struct config_ctx *ctx, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;
	char *body, *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&body, fmt, ap) < 0)
		body = NULL;
	va_end(ap);
	if (body == NULL)
		return;
	if (asprintf(&msg, "%s:%zu:%zu: warning: %s", ctx->name, mark->line + 1, mark->column + 1, body) < 0)
		msg = NULL;
	free(body);
	config_errors_add(&ctx->cfg->warnings, msg);
}

static void
config_on_tls_version(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_pick(ctx, d, node, (int *)(void *)(ctx->base + d->off), "TLSv1.2", TLS1_2_VERSION, "TLSv1.3",
	            TLS1_3_VERSION);
}

#define CONFIG_HSTS_MAX (2 * 365 * 24 * 3600ULL)

/* "hsts": Strict-Transport-Security's max-age, a duration ("8760h", or
 * seconds); 0 sends none. */
static void
config_on_hsts(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)(ctx->base + d->off), ms;

	if (parse_duration(config_scalar(node), &ms) != 0 || ms / 1000 > CONFIG_HSTS_MAX) {
		config_error(ctx, &node->start_mark,
		             "\"%s\" must be a duration up to two years (e.g. 8760h or 31536000), or 0 for none",
		             d->name);
		return;
	}
	*field = ms / 1000;
}

static void
config_on_client_verify(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_pick(ctx, d, node, (int *)(void *)(ctx->base + d->off), "required", TLS_VERIFY_REQUIRED, "optional",
	            TLS_VERIFY_OPTIONAL);
}

/* A ticket lives two rotations, and TLS 1.3 caps a ticket's life at 7 days. */
static void
config_on_ticket_rotation(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t ms;

	if (parse_duration(config_scalar(node), &ms) != 0 || ms < 1000 || ms > 84 * 3600 * 1000ULL) {
		config_error(ctx, &node->start_mark, "\"%s\" must be a duration from 1s to 84h", d->name);
		return;
	}
	ctx->cfg->tls_ticket_rotation_ms = ms;
}

static void
config_on_tls_global(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_tls_global, NULL);
}

#define CONFIG_CREDS "$CREDENTIALS_DIRECTORY/"
#define CONFIG_CREDS_BRACED "${CREDENTIALS_DIRECTORY}/"

/* A file name as written, with a leading $CREDENTIALS_DIRECTORY (what
 * systemd's LoadCredential= hands the service) replaced by its value.
 * malloc'ed, or NULL after reporting. */
static char *
config_tls_path(struct config_ctx *ctx, const char *key, yaml_node_t *node)
{
	const char *s = config_scalar(node), *rest = NULL, *dir;
	char *out;

	if (s[0] == '\0') {
		config_error(ctx, &node->start_mark, "\"%s\" must not be empty", key);
		return NULL;
	}
	if (strncmp(s, CONFIG_CREDS, strlen(CONFIG_CREDS)) == 0)
		rest = s + strlen(CONFIG_CREDS);
	else if (strncmp(s, CONFIG_CREDS_BRACED, strlen(CONFIG_CREDS_BRACED)) == 0)
		rest = s + strlen(CONFIG_CREDS_BRACED);
	if (rest == NULL) {
		if ((out = strdup(s)) == NULL)
			config_nomem(ctx, node);
		return out;
	}
	if ((dir = getenv("CREDENTIALS_DIRECTORY")) == NULL || dir[0] == '\0') {
		config_error(ctx, &node->start_mark,
		             "\"%s\": $CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with LoadCredential=)",
		             key);
		return NULL;
	}
	if (asprintf(&out, "%s/%s", dir, rest) < 0) {
		config_nomem(ctx, node);
		return NULL;
	}
	return out;
}

/* Reads one certificate and its key (the nodes of "certificate" and
 * "key") into T's list; errors point at the certificate. */
static void
config_tls_cert(struct config_ctx *ctx, const struct parse_listen *l, struct tls_listener *t, yaml_node_t *certn,
                yaml_node_t *keyn)
{
	char *cert = config_tls_path(ctx, "certificate", certn), *key = config_tls_path(ctx, "key", keyn);
	char err[512];
	struct tls_cert *p;
	time_t now = time(NULL);

	if (cert == NULL || key == NULL)
		goto out;
	if ((p = realloc(t->certs, (t->ncerts + 1) * sizeof(*p))) == NULL) {
		config_nomem(ctx, certn);
		goto out;
	}
	t->certs = p;
	if (tls_cert_load(&t->certs[t->ncerts], cert, key, err, sizeof(err)) != 0) {
		config_error(ctx, &certn->start_mark, "listen %s: %s", l->spec, err);
		goto out;
	}
	p = &t->certs[t->ncerts++];
	if (p->not_after <= now)
		config_warn(ctx, &certn->start_mark, "listen %s: the certificate %s has expired", l->spec, cert);
	else if (p->not_after - now < TLS_EXPIRY_WARN_DAYS * 86400)
		config_warn(ctx, &certn->start_mark, "listen %s: the certificate %s expires in %lld day(s)", l->spec,
		            cert, (long long)((p->not_after - now) / 86400));
	if (p->nnames == 0 && t->ncerts > 1)
		config_error(ctx, &certn->start_mark,
		             "listen %s: the certificate %s names no host (no DNS name, no CN) for SNI", l->spec, cert);
out:
	free(cert);
	free(key);
}

/* The listener's "tls:" NODE for L. */
static void
config_listen_tls(struct config_ctx *ctx, yaml_node_t *node, struct parse_listen *l)
{
	yaml_node_t *vals[CONFIG_NELEM(config_tls_dirs)] = {0}, *certn, *keyn, *sni, *ca, *verify;
	struct tls_listener *t = calloc(1, sizeof(*t));
	char *base = ctx->base, err[512];
	size_t nerr = ctx->nerr;

	if (t == NULL) {
		config_nomem(ctx, node);
		return;
	}
	l->tls = t;
	ctx->base = (char *)t;
	config_defaults(ctx, &config_tls);
	config_walk(ctx, node, &config_tls, vals);
	ctx->base = base;
	certn = config_val(&config_tls, vals, "certificate");
	keyn = config_val(&config_tls, vals, "key");
	sni = config_val(&config_tls, vals, "sni");
	ca = config_val(&config_tls, vals, "client_ca");
	verify = config_val(&config_tls, vals, "client_verify");
	if (certn != NULL && keyn != NULL)
		config_tls_cert(ctx, l, t, certn, keyn);
	for (yaml_node_item_t *it = sni != NULL ? sni->data.sequence.items.start : NULL;
	     sni != NULL && it < sni->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(ctx->doc, *it), *svals[CONFIG_NELEM(config_sni_dirs)] = {0};
		if (item == NULL || item->type != YAML_MAPPING_NODE) {
			config_error(ctx, item != NULL ? &item->start_mark : &sni->start_mark,
			             "\"sni\" entries must be mappings with certificate and key");
			continue;
		}
		config_walk(ctx, item, &config_sni, svals);
		if (svals[0] != NULL && svals[1] != NULL)
			config_tls_cert(ctx, l, t, svals[0], svals[1]);
	}
	if (ca != NULL && (t->client_ca = config_tls_path(ctx, "client_ca", ca)) != NULL && verify == NULL)
		t->client_verify = TLS_VERIFY_REQUIRED;
	if (verify != NULL && ca == NULL)
		config_error(ctx, &verify->start_mark, "\"client_verify\" needs \"client_ca\"");
	if (ctx->nerr != nerr || t->ncerts == 0)
		return;
	if (tls_listener_build(t, err, sizeof(err)) != 0)
		config_error(ctx, &(ca != NULL ? ca : node)->start_mark, "listen %s: %s", l->spec, err);
}

/* A listener written as a mapping. */
static void
config_listen_mapping(struct config_ctx *ctx, yaml_node_t *map)
{
	yaml_node_t *vals[CONFIG_NELEM(config_listener_dirs)] = {0}, *addr, *tls;
	size_t before = ctx->cfg->nlisten;

	config_walk(ctx, map, &config_listener, vals);
	addr = config_val(&config_listener, vals, "address");
	tls = config_val(&config_listener, vals, "tls");
	if (addr == NULL)
		return;
	config_listen_item(ctx, addr, 0);
	if (tls != NULL && ctx->cfg->nlisten > before)
		config_listen_tls(ctx, tls, &ctx->cfg->listen[before]);
}

static struct config *
config_new(const char *name)
{
	struct config *cfg;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return NULL;
	if ((cfg->path = strdup(name)) == NULL) {
		free(cfg);
		return NULL;
	}
	auth_config_defaults(&cfg->auth);
	return cfg;
}

/* A second "---" document would be silently ignored by a loader that
 * reads one; an operator appending to the file deserves an error. */
static void
config_rest(struct config_ctx *ctx, yaml_parser_t *parser)
{
	yaml_document_t doc;
	yaml_node_t *root;

	if (!yaml_parser_load(parser, &doc)) {
		config_errorf(ctx->errs, "%s:%zu:%zu: YAML syntax error: %s", ctx->name, parser->problem_mark.line + 1,
		              parser->problem_mark.column + 1,
		              parser->problem != NULL ? parser->problem : "unknown error");
		ctx->nerr++;
		return;
	}
	if ((root = yaml_document_get_root_node(&doc)) != NULL)
		config_error(ctx, &root->start_mark, "only one YAML document is allowed");
	yaml_document_delete(&doc);
}

struct config *
config_parse(const char *name, const char *text, size_t len, struct config_errors *errs)
{
	struct config_ctx ctx = {.name = name, .errs = errs};
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;

	if (!yaml_parser_initialize(&parser)) {
		config_errorf(errs, "%s: out of memory", name);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		config_errorf(errs, "%s:%zu:%zu: YAML syntax error: %s", name, parser.problem_mark.line + 1,
		              parser.problem_mark.column + 1,
		              parser.problem != NULL ? parser.problem : "unknown error");
		yaml_parser_delete(&parser);
		return NULL;
	}
	ctx.doc = &doc;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		config_errorf(errs, "%s: file is empty", name);
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		config_error(&ctx, &root->start_mark, "top level must be a mapping");
		goto out;
	}
	if ((ctx.cfg = config_new(name)) == NULL) {
		config_errorf(errs, "%s: out of memory", name);
		goto out;
	}
	ctx.base = (char *)ctx.cfg;
	/* every scope whose fields live in struct config itself; a route's
	 * are given when each route is read */
	config_defaults(&ctx, &config_top);
	config_defaults(&ctx, &config_log);
	config_defaults(&ctx, &config_upstream);
	config_defaults(&ctx, &config_cache);
	config_defaults(&ctx, &config_metrics);
	config_defaults(&ctx, &config_limits);
	config_defaults(&ctx, &config_access_log);
	config_defaults(&ctx, &config_tls_global);
	config_walk(&ctx, root, &config_top, NULL);
	config_auth_finish(&ctx);
	if (ctx.root_route != NULL && ctx.cfg->cluster_info)
		config_error(&ctx, &ctx.root_route->start_mark,
		             "\"path\": / is taken by the cluster info (set \"cluster_info: false\")");
	if (ctx.cfg->user != NULL && ctx.cfg->group == NULL)
		ctx.cfg->gid = ctx.cfg->user_gid;
	config_rest(&ctx, &parser);
	if (ctx.nerr > 0) {
		config_free(ctx.cfg);
		ctx.cfg = NULL;
	}
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ctx.cfg;
}

/* The whole of file PATH (at most CONFIG_FILE_MAX bytes), malloc'ed and
 * NUL-terminated, its length in *LENP; NULL with ERR saying why. */
static char *
config_read_file(const char *path, size_t *lenp, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return NULL;
	}
	/* a directory opens fine and fails only on read; say so plainly */
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot open: %s", S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
		close(fd);
		return NULL;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		snprintf(err, errlen, "file is too big");
		close(fd);
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	/* st_size may be stale if the file is being rewritten; read what is there */
	while (len < (size_t)st.st_size) {
		r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "cannot read: %s", strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config *cfg;
	char *buf, err[256];
	size_t len;

	if ((buf = config_read_file(path, &len, err, sizeof(err))) == NULL) {
		config_errorf(errs, "%s: %s", path, err);
		return NULL;
	}
	cfg = config_parse(path, buf, len, errs);
	free(buf);
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		tls_listener_free(cfg->listen[i].tls);
		parse_listen_clear(&cfg->listen[i]);
	}
	free(cfg->listen);
	config_errors_free(&cfg->warnings);
	for (size_t i = 0; i < cfg->upstream.nnodes; i++)
		parse_node_clear(&cfg->upstream.nodes[i]);
	free(cfg->upstream.nodes);
	free(cfg->upstream.api_key);
	free(cfg->upstream.username);
	free(cfg->upstream.password);
	free(cfg->upstream.bearer);
	free(cfg->upstream.ca_file);
	free(cfg->upstream.cert_file);
	free(cfg->upstream.key_file);
	for (size_t i = 0; i < cfg->nroutes; i++)
		config_route_clear(&cfg->routes[i]);
	free(cfg->routes);
	free(cfg->trusted_proxies);
	free(cfg->redis.address);
	free(cfg->redis.host);
	free(cfg->redis.unix_path);
	free(cfg->redis.username);
	free(cfg->redis.password);
	free(cfg->redis.prefix);
	auth_config_clear(&cfg->auth);
	free(cfg->pidfile);
	free(cfg->log_file);
	free(cfg->access_log);
	free(cfg->user);
	free(cfg->group);
	free(cfg->path);
	free(cfg);
}
