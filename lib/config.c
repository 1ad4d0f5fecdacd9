/*
 * config.c - reads the YAML configuration into a struct config.
 *
 * libyaml's document API gives a node tree whose nodes carry their start
 * mark, so every message can point at the offending node.  Each mapping
 * level (top, "log:", "upstream:") is a static table of directives, as in
 * h2o's configurator: the walker checks key names, duplicates, node types
 * and required keys, and the handlers only check values.  Nothing stops at
 * the first error: an operator fixing a file wants to see every problem in
 * one run.  The struct config is filled as the walk goes and thrown away if
 * anything was wrong, so a reload never sees half a configuration.
 */
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
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
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_WORKERS_MAX 1024
#define CONFIG_MAXCONN_MAX 100000
#define CONFIG_FILE_MAX (16 * 1024 * 1024) /* a config is never this big */

/* Node types a directive accepts; a directive may accept several. */
#define CONFIG_T_SCALAR 0x1
#define CONFIG_T_SEQUENCE 0x2
#define CONFIG_T_MAPPING 0x4

/* Directive flags. */
#define CONFIG_F_REQUIRED 0x1
#define CONFIG_F_POSITIVE 0x2 /* durations: 0 is not allowed */

/* Why a listen address or node URL was refused: the messages differ. */
enum config_perr {
	CONFIG_PERR_OK = 0,
	CONFIG_PERR_BAD,
	CONFIG_PERR_PORT,
	CONFIG_PERR_NOMEM,
};

struct config_ctx {
	const char *name; /* file name for the messages */
	yaml_document_t *doc;
	struct config_errors *errs;
	size_t nerr; /* counted here too: a message may fail to allocate */
	struct config *cfg;
	/* upstream auth keys, kept for the checks across keys */
	yaml_node_t *api_key_node;
	yaml_node_t *username_node;
	yaml_node_t *password_node;
};

struct config_directive;
typedef void config_handler(struct config_ctx *, const struct config_directive *, yaml_node_t *);

struct config_directive {
	const char *name;
	unsigned types; /* CONFIG_T_* */
	unsigned flags; /* CONFIG_F_* */
	config_handler *handler;
	size_t off; /* field in struct config, for the generic handlers */
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
 * Value parsers.
 */

/* Decimal only: "010" is ten, not eight, and "0x10" is an error. */
static int
config_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int
config_parse_duration(const char *s, uint64_t *ms)
{
	uint64_t ipart = 0, frac = 0, fscale = 1, mult, v;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1; /* empty, sign, space or ".5" */
	for (; *p >= '0' && *p <= '9'; p++) {
		if (ipart > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		ipart = ipart * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		/* nine digits are finer than a millisecond already; the rest
		 * only has to be digits */
		for (; *p >= '0' && *p <= '9'; p++) {
			if (fscale < 1000000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fscale *= 10;
			}
		}
	}
	if (*p == '\0' || strcmp(p, "s") == 0)
		mult = 1000;
	else if (strcmp(p, "ms") == 0)
		mult = 1;
	else if (strcmp(p, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return -1;
	if (ipart > UINT64_MAX / mult)
		return -1;
	v = ipart * mult;
	/* frac < 1e9 and mult <= 3.6e6: the product fits in 64 bits */
	if (v > UINT64_MAX - frac * mult / fscale)
		return -1;
	*ms = v + frac * mult / fscale;
	return 0;
}

/* [A-Za-z0-9.-]+; all digits and dots must be a real IPv4 literal, so a
 * typo like "127.0.0.256" is caught here rather than by the resolver. */
static int
config_valid_hostname(const char *h)
{
	struct in_addr a;
	int alpha = 0;

	if (*h == '\0')
		return 0;
	for (const char *p = h; *p != '\0'; p++) {
		if (isalpha((unsigned char)*p) || *p == '-')
			alpha = 1;
		else if (!isdigit((unsigned char)*p) && *p != '.')
			return 0;
	}
	return alpha || inet_pton(AF_INET, h, &a) == 1;
}

static int
config_valid_ipv6(const char *h)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, h, &a) == 1;
}

/* PORT must be 1-5 decimal digits... or more, which is out of range, not
 * malformed: "70000" deserves the clearer message. */
static enum config_perr
config_parse_port(const char *s, unsigned min, uint16_t *out)
{
	uint64_t v;

	if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
		return CONFIG_PERR_BAD;
	if (config_parse_uint(s, 65535, &v) != 0 || v < min)
		return CONFIG_PERR_PORT;
	*out = (uint16_t)v;
	return CONFIG_PERR_OK;
}

static enum config_perr
config_listen_parse(const char *s, struct config_listen *out)
{
	struct sockaddr_un sun;
	const char *colon, *hstart, *hend;
	enum config_perr rc;
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;

		/* bind(2) needs the path and its NUL in sun_path */
		if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path))
			return CONFIG_PERR_BAD;
		out->kind = CONFIG_LISTEN_UNIX;
		out->host = strdup(path);
		out->spec = strdup(s);
		goto done;
	}
	if (s[0] == '[') {
		if ((hend = strchr(s, ']')) == NULL || hend[1] != ':')
			return CONFIG_PERR_BAD;
		hstart = s + 1;
		colon = hend + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return CONFIG_PERR_BAD;
		hstart = s;
		hend = colon;
	}
	if ((rc = config_parse_port(colon + 1, 0, &port)) != CONFIG_PERR_OK)
		return rc;
	if ((out->host = strndup(hstart, (size_t)(hend - hstart))) == NULL)
		return CONFIG_PERR_NOMEM;
	if (s[0] == '[' ? !config_valid_ipv6(out->host)
	                : strcmp(out->host, "*") != 0 && !config_valid_hostname(out->host)) {
		config_listen_clear(out);
		return CONFIG_PERR_BAD;
	}
	out->kind = CONFIG_LISTEN_TCP;
	out->port = port;
	out->spec = strdup(s);
done:
	if (out->host == NULL || out->spec == NULL) {
		config_listen_clear(out);
		return CONFIG_PERR_NOMEM;
	}
	return CONFIG_PERR_OK;
}

int
config_parse_listen(const char *s, struct config_listen *out)
{
	return config_listen_parse(s, out) == CONFIG_PERR_OK ? 0 : -1;
}

void
config_listen_clear(struct config_listen *l)
{
	if (l == NULL)
		return;
	free(l->spec);
	free(l->host);
	memset(l, 0, sizeof(*l));
}

static enum config_perr
config_node_parse(const char *s, struct config_node *out)
{
	const char *auth, *aend, *hstart, *hend, *path;
	enum config_perr rc;
	size_t len, plen;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(s, "http://", 7) == 0) {
		out->scheme = strdup("http");
		out->port = 80;
		auth = s + 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		out->scheme = strdup("https");
		out->port = 443;
		auth = s + 8;
	} else
		return CONFIG_PERR_BAD;
	if (out->scheme == NULL)
		return CONFIG_PERR_NOMEM;

	aend = auth + strcspn(auth, "/");
	path = aend;
	/* no userinfo (there are keys for that), no query, no fragment */
	if (strcspn(auth, "@?# \t") < (size_t)(aend - auth))
		goto bad;
	if (auth[0] == '[') {
		if ((hend = memchr(auth, ']', (size_t)(aend - auth))) == NULL)
			goto bad;
		hstart = auth + 1;
		if (hend + 1 != aend && hend[1] != ':')
			goto bad;
	} else {
		hstart = auth;
		hend = memchr(auth, ':', (size_t)(aend - auth));
		if (hend == NULL)
			hend = aend;
	}
	if ((out->host = strndup(hstart, (size_t)(hend - hstart))) == NULL)
		goto nomem;
	for (char *p = out->host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (auth[0] == '[' ? !config_valid_ipv6(out->host) : !config_valid_hostname(out->host))
		goto bad;
	if (auth[0] == '[')
		hend++; /* past ']' */
	if (hend != aend) {
		char *port;

		/* hend points at ':' */
		if ((port = strndup(hend + 1, (size_t)(aend - hend - 1))) == NULL)
			goto nomem;
		rc = config_parse_port(port, 1, &out->port);
		free(port);
		if (rc != CONFIG_PERR_OK) {
			config_node_clear(out);
			return rc;
		}
	}
	if (strcspn(path, "?# \t\r\n") != strlen(path))
		goto bad;

	/* one trailing '/' is how people write a base URL; requests append
	 * a path that starts with '/' */
	len = strlen(s);
	if (len > 0 && s[len - 1] == '/')
		len--;
	if ((out->url = strndup(s, len)) == NULL)
		goto nomem;
	/* path is at most one byte past the shortened URL (a lone "/") */
	plen = len - (size_t)(path - s);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	if ((out->path = strndup(path, plen)) == NULL)
		goto nomem;
	return CONFIG_PERR_OK;
bad:
	config_node_clear(out);
	return CONFIG_PERR_BAD;
nomem:
	config_node_clear(out);
	return CONFIG_PERR_NOMEM;
}

int
config_parse_node(const char *s, struct config_node *out)
{
	return config_node_parse(s, out) == CONFIG_PERR_OK ? 0 : -1;
}

void
config_node_clear(struct config_node *n)
{
	if (n == NULL)
		return;
	free(n->url);
	free(n->scheme);
	free(n->host);
	free(n->path);
	memset(n, 0, sizeof(*n));
}

/* Elasticsearch's ApiKey header takes base64("id:key"). */
static char *
config_base64(const char *s)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = (const unsigned char *)s;
	size_t len = strlen(s), i;
	char *out, *o;

	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		*o++ = tab[((in[i + 1] & 0x0f) << 2) | (in[i + 2] >> 6)];
		*o++ = tab[in[i + 2] & 0x3f];
	}
	if (len - i == 1) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[(in[i] & 0x03) << 4];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		*o++ = tab[(in[i + 1] & 0x0f) << 2];
		*o++ = '=';
	}
	*o = '\0';
	return out;
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
	char **field = (char **)((char *)ctx->cfg + d->off);

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
	uint64_t *field = (uint64_t *)(void *)((char *)ctx->cfg + d->off);
	uint64_t ms;

	if (config_parse_duration(config_scalar(node), &ms) != 0) {
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
	if (config_parse_uint(s, CONFIG_WORKERS_MAX, &v) != 0 || v < 1) {
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

static void
config_on_maxconn(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t v;

	if (config_parse_uint(config_scalar(node), CONFIG_MAXCONN_MAX, &v) != 0 || v < 1) {
		config_error(ctx, &node->start_mark, "\"%s\" must be an integer from 1 to %d", d->name,
		             CONFIG_MAXCONN_MAX);
		return;
	}
	ctx->cfg->upstream.max_connections_per_node = (unsigned)v;
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

static void
config_on_listen(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	struct config *cfg = ctx->cfg;
	yaml_node_item_t *items;
	yaml_node_t *item;
	struct config_listen l;
	size_t n, i, j;

	if (config_string_list(ctx, d, node, &items, &n, "address") != 0)
		return;
	if ((cfg->listen = calloc(n, sizeof(*cfg->listen))) == NULL) {
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
		switch (config_listen_parse(config_scalar(item), &l)) {
		case CONFIG_PERR_OK: break;
		case CONFIG_PERR_PORT:
			config_error(ctx, &item->start_mark, "\"%s\": port out of range in \"%s\"", d->name,
			             config_scalar(item));
			continue;
		case CONFIG_PERR_NOMEM: config_nomem(ctx, item); continue;
		default:
			config_error(ctx, &item->start_mark,
			             "\"%s\": bad address \"%s\" (use host:port, [v6]:port or unix:/path)", d->name,
			             config_scalar(item));
			continue;
		}
		/* Two sockets on one address cannot both bind; port 0 would
		 * bind twice but the spec names a socket across reloads. */
		for (j = 0; j < cfg->nlisten; j++)
			if (cfg->listen[j].kind == l.kind && cfg->listen[j].port == l.port &&
			    (l.kind == CONFIG_LISTEN_UNIX ? strcmp(cfg->listen[j].host, l.host)
			                                  : strcasecmp(cfg->listen[j].host, l.host)) == 0)
				break;
		if (j < cfg->nlisten) {
			config_error(ctx, &item->start_mark, "duplicate listen address \"%s\"", config_scalar(item));
			config_listen_clear(&l);
			continue;
		}
		cfg->listen[cfg->nlisten++] = l;
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
		switch (config_node_parse(config_scalar(item), &up->nodes[up->nnodes])) {
		case CONFIG_PERR_OK: up->nnodes++; break;
		case CONFIG_PERR_PORT:
			config_error(ctx, &item->start_mark, "\"%s\": port out of range in \"%s\"", d->name,
			             config_scalar(item));
			break;
		case CONFIG_PERR_NOMEM: config_nomem(ctx, item); break;
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

	ctx->api_key_node = node;
	if (s[0] == '\0') {
		config_error(ctx, &node->start_mark, "\"%s\" must not be empty", d->name);
		return;
	}
	/* "id:key" as Kibana shows it; an encoded key has no ':' */
	ctx->cfg->upstream.api_key = strchr(s, ':') != NULL ? config_base64(s) : strdup(s);
	if (ctx->cfg->upstream.api_key == NULL)
		config_nomem(ctx, node);
}

static void
config_on_username(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	ctx->username_node = node;
	config_on_string(ctx, d, node);
}

static void
config_on_password(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	ctx->password_node = node;
	config_on_string(ctx, d, node);
}

static void
config_on_count(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	uint64_t *field = (uint64_t *)(void *)((char *)ctx->cfg + d->off);

	if (config_parse_uint(config_scalar(node), UINT32_MAX, field) != 0)
		config_error(ctx, &node->start_mark, "\"%s\" must be an integer from 0 to %u", d->name, UINT32_MAX);
}

static void
config_on_bool(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	int *field = (int *)(void *)((char *)ctx->cfg + d->off);
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
static void config_on_upstream(struct config_ctx *, const struct config_directive *, yaml_node_t *);

#define CONFIG_OFF(field) offsetof(struct config, field)
#define CONFIG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct config_directive config_top_dirs[] = {
    {"listen", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, CONFIG_F_REQUIRED, config_on_listen, 0},
    {"workers", CONFIG_T_SCALAR, 0, config_on_workers, 0},
    {"graceful_timeout", CONFIG_T_SCALAR, 0, config_on_duration, CONFIG_OFF(graceful_timeout_ms)},
    {"keepalive_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_OFF(keepalive_timeout_ms)},
    {"pidfile", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(pidfile)},
    {"timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration, CONFIG_OFF(timeout_ms)},
    {"max_requests", CONFIG_T_SCALAR, 0, config_on_count, CONFIG_OFF(max_requests)},
    {"max_requests_jitter", CONFIG_T_SCALAR, 0, config_on_count, CONFIG_OFF(max_requests_jitter)},
    {"user", CONFIG_T_SCALAR, 0, config_on_user, CONFIG_OFF(user)},
    {"group", CONFIG_T_SCALAR, 0, config_on_group, CONFIG_OFF(group)},
    {"allow_root", CONFIG_T_SCALAR, 0, config_on_bool, CONFIG_OFF(allow_root)},
    {"log", CONFIG_T_MAPPING, 0, config_on_log, 0},
    {"upstream", CONFIG_T_MAPPING, CONFIG_F_REQUIRED, config_on_upstream, 0},
};

static const struct config_directive config_log_dirs[] = {
    {"level", CONFIG_T_SCALAR, 0, config_on_level, 0},
    {"file", CONFIG_T_SCALAR, 0, config_on_string, CONFIG_OFF(log_file)},
};

static const struct config_directive config_upstream_dirs[] = {
    {"nodes", CONFIG_T_SCALAR | CONFIG_T_SEQUENCE, CONFIG_F_REQUIRED, config_on_nodes, 0},
    {"api_key", CONFIG_T_SCALAR, 0, config_on_api_key, 0},
    {"username", CONFIG_T_SCALAR, 0, config_on_username, CONFIG_OFF(upstream.username)},
    {"password", CONFIG_T_SCALAR, 0, config_on_password, CONFIG_OFF(upstream.password)},
    {"request_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration,
     CONFIG_OFF(upstream.request_timeout_ms)},
    {"connect_timeout", CONFIG_T_SCALAR, CONFIG_F_POSITIVE, config_on_duration,
     CONFIG_OFF(upstream.connect_timeout_ms)},
    {"max_connections_per_node", CONFIG_T_SCALAR, 0, config_on_maxconn, 0},
};

static const struct config_scope config_top = {config_top_dirs, CONFIG_NELEM(config_top_dirs), ""};
static const struct config_scope config_log = {config_log_dirs, CONFIG_NELEM(config_log_dirs), " in log"};
static const struct config_scope config_upstream = {config_upstream_dirs, CONFIG_NELEM(config_upstream_dirs),
                                                    " in upstream"};

static const char *
config_type_msg(unsigned types)
{
	switch (types) {
	case CONFIG_T_SCALAR: return "must be a scalar";
	case CONFIG_T_SCALAR | CONFIG_T_SEQUENCE: return "must be a string or a sequence of strings";
	case CONFIG_T_MAPPING: return "must be a mapping";
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
 * unknown, duplicate, mistyped and missing keys. */
static void
config_walk(struct config_ctx *ctx, yaml_node_t *map, const struct config_scope *scope)
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
		d->handler(ctx, d, v);
	}
	for (i = 0; i < scope->ndirs; i++)
		if ((scope->dirs[i].flags & CONFIG_F_REQUIRED) && !(seen & (1UL << i)))
			config_error(ctx, &map->start_mark, "missing required key \"%s\"%s", scope->dirs[i].name,
			             scope->suffix);
}

static void
config_on_log(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_log);
}

static void
config_on_upstream(struct config_ctx *ctx, const struct config_directive *d, yaml_node_t *node)
{
	config_walk(ctx, node, &config_upstream);
	if (ctx->api_key_node != NULL && ctx->username_node != NULL)
		config_error(ctx, &ctx->username_node->start_mark,
		             "\"api_key\" and \"username\" cannot be used together");
	if (ctx->username_node != NULL && ctx->password_node == NULL)
		config_error(ctx, &ctx->username_node->start_mark, "\"username\" needs \"password\"");
	if (ctx->password_node != NULL && ctx->username_node == NULL)
		config_error(ctx, &ctx->password_node->start_mark, "\"password\" needs \"username\"");
}

/*
 * Entry points.
 */

static struct config *
config_new(const char *name)
{
	struct config *cfg;
	long n;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return NULL;
	if ((cfg->path = strdup(name)) == NULL) {
		free(cfg);
		return NULL;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN);
	cfg->workers = n < 1 ? 1 : n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (unsigned)n;
	cfg->workers_auto = 1;
	cfg->graceful_timeout_ms = 30 * 1000;
	cfg->keepalive_timeout_ms = 10 * 1000;
	cfg->timeout_ms = 30 * 1000;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->upstream.request_timeout_ms = 10 * 1000;
	cfg->upstream.connect_timeout_ms = 1000;
	cfg->upstream.max_connections_per_node = 64;
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
	config_walk(&ctx, root, &config_top);
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

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config *cfg;
	struct stat st;
	char *buf;
	size_t len = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		config_errorf(errs, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	/* a directory opens fine and fails only on read; say so plainly */
	if (fstat(fd, &st) != 0) {
		config_errorf(errs, "%s: cannot open: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		config_errorf(errs, "%s: cannot open: %s", path,
		              S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
		close(fd);
		return NULL;
	}
	if (st.st_size > CONFIG_FILE_MAX) {
		config_errorf(errs, "%s: file is too big", path);
		close(fd);
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		config_errorf(errs, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	/* st_size may be stale if the file is being rewritten; read what is there */
	while (len < (size_t)st.st_size) {
		r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			config_errorf(errs, "%s: cannot read: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	cfg = config_parse(path, buf, len, errs);
	free(buf);
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nlisten; i++)
		config_listen_clear(&cfg->listen[i]);
	free(cfg->listen);
	for (size_t i = 0; i < cfg->upstream.nnodes; i++)
		config_node_clear(&cfg->upstream.nodes[i]);
	free(cfg->upstream.nodes);
	free(cfg->upstream.api_key);
	free(cfg->upstream.username);
	free(cfg->upstream.password);
	free(cfg->pidfile);
	free(cfg->log_file);
	free(cfg->user);
	free(cfg->group);
	free(cfg->path);
	free(cfg);
}
