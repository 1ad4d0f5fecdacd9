/*
 * config.h - esgate's configuration: the YAML file, parsed and validated
 * into one immutable struct config.
 *
 * A reload builds a complete new struct config and swaps it in only when
 * config_load() succeeded (nginx's "cycle"); the old one keeps running
 * otherwise.  Every error names FILE:LINE:COLUMN (1-based, libyaml's mark
 * of the offending node) and every error found is reported, not just the
 * first.
 */
#ifndef ESGATE_CONFIG_H
#define ESGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "dsl.h"
#include "parse.h"
#include "ratelimit.h"
#include "route.h"
#include "tls.h"

struct config_upstream {
	struct parse_node *nodes;
	size_t nnodes;
	char *api_key;	/* the value for "Authorization: ApiKey <api_key>": "id:key" in the file is
			 * base64-encoded here; an already encoded key is kept as is. NULL if unset */
	char *username; /* basic auth; both or neither */
	char *password;
	char *bearer;	/* the token for "Authorization: Bearer <bearer>"; NULL if unset.  At most
			 * one of api_key, username/password and bearer is set */
	uint64_t request_timeout_ms; /* default 10s */
	uint64_t connect_timeout_ms; /* default 1s */
	unsigned max_connections_per_node; /* default 64 */
	unsigned pipeline_depth;           /* idempotent requests a native connection carries at once, 1..16;
	                                    * default 1 (no pipelining) */
	unsigned max_retries;	/* other nodes tried after a failed attempt, 0..100; default 3 */
	int retry_on_timeout;	/* a timed-out attempt is retried too (it may have run); default 0 */
	uint64_t node_backoff_ms;     /* a failed node is skipped for this long, default 1s ... */
	uint64_t node_backoff_max_ms; /* ... doubling up to this, default 30s; >= node_backoff_ms */
	char *ca_file;		/* PEM CA bundle for https nodes; NULL = the system's */
	char *cert_file;	/* client certificate (PEM); both or neither with key_file */
	char *key_file;
	int verify;		/* verify the nodes' TLS certificates and host names; default 1 */
	int sniff_on_start;	/* ask the cluster for its nodes at start; default 0 */
	uint64_t sniff_interval_ms; /* and again this often; 0 (default) = never */
	int http_client;	/* for http:// nodes: CONFIG_HTTP_CLIENT_NATIVE (default) or _CURL;
				 * https:// nodes always go through libcurl */
};

#define CONFIG_HTTP_CLIENT_NATIVE 0
#define CONFIG_HTTP_CLIENT_CURL 1

/* HTTP methods a route takes, as bits. */
#define CONFIG_METHOD_GET 0x1
#define CONFIG_METHOD_HEAD 0x2
#define CONFIG_METHOD_POST 0x4

/* A route's "rate_limit:": token buckets per client address (see
 * lib/ratelimit.h), filled at RATE a second up to BURST. */
struct config_rate_limit {
	double rate;	/* tokens per second ("10/s", "30/m" = 0.5); 0 = no limit (default) */
	double burst;	/* bucket size; default: the rate's N ("10/s" -> 10) */
};

/* "rate_limit: {redis: ...}": the store every limit's buckets are kept
 * in across a fleet of instances (worker/limiter.h); without it (address
 * NULL, the default) they stay in this machine's shared memory. */
struct config_redis {
	char *address;		/* as written: "host:port", "[v6]:port" or a unix socket path */
	char *host;		/* resolved by each worker at start; NULL for a unix socket */
	unsigned port;
	char *unix_path;	/* NULL for TCP */
	char *username;		/* ACL user (Redis 6+), with password; NULL if unset */
	char *password;		/* AUTH; NULL if unset */
	unsigned database;	/* SELECT; default 0 */
	uint64_t timeout_ms;	/* connect and command timeout; default 250ms */
	char *prefix;		/* key prefix; default "esgate:rl:" */
	int fail_closed;	/* Redis unreachable: 1 = 503, 0 (default) = the local limit */
	uint64_t sync_ms;	/* local buckets are reconciled this often; default 5ms */
};

/* A route's "cors:".  Without it (origins NULL, the default) esgate sends
 * no CORS headers and answers no preflight. */
struct config_cors {
	char **origins;	/* "https://a.example" (scheme://host[:port], as browsers send
			 * Origin) or "*" */
	size_t norigins;
	char **headers;	/* request headers a preflight may allow; none by default */
	size_t nheaders;
	uint64_t max_age_ms; /* Access-Control-Max-Age; 0 (default) = not sent */
};

/* One "routes:" entry: a public path mapped to one upstream request. */
struct config_route {
	char *path;			/* public path template as written, "/search/{index}" */
	struct route_template *path_tmpl;
	unsigned methods;		/* CONFIG_METHOD_* accepted from clients */
	unsigned upstream_method;	/* one CONFIG_METHOD_* */
	char *upstream_path;		/* upstream path template as written, "/{index}/_search" */
	struct route_template *upstream_tmpl; /* uses only placeholders path_tmpl has */
	char **indices;			/* allow-list for {index}: names or "prefix*"; set (>= 1) exactly
					 * when the path has {index} */
	size_t nindices;
	char **params;			/* query parameter names allowed; none by default */
	size_t nparams;
	uint64_t max_body;		/* bytes; 0 = no body allowed; default 1 MiB */
	int json;			/* request bodies must be valid JSON; default 1 */
	int search;			/* DSL_BODY_SEARCH, DSL_BODY_COUNT or DSL_BODY_MSEARCH when the
					 * upstream path's last segment is _search, _count or _msearch
					 * (bodies and parameters then go through lib/dsl.h); -1 otherwise */
	struct dsl_policy policy;	/* "policy:"; the defaults for every route, only search
					 * routes may set it */
	struct config_rate_limit rate_limit;
	struct config_cors cors;
	int errors_detail;		/* "errors: {detail: true}": upstream 4xx/5xx bodies are passed
					 * on; default 0: replaced by a generic JSON error */
	uint64_t cache_ttl_ms;		/* "cache_ttl": 200 answers to GETs kept this long in the
					 * worker's micro-cache; 0 (default) = not cached.  Only on
					 * routes whose upstream method is GET */
	int coalesce;			/* identical GETs in flight share one upstream request;
					 * resolved: "coalesce" if written, else 1 with a cache_ttl */
	struct auth_rule auth;		/* "auth:"; not enabled (the default): the route is open */
	char *auth_index;		/* auth_upstream_index() of upstream_path, found once at load
					 * for the auth stage's index grant (a route without {index}
					 * reads this literal index); NULL if none */
};

/* "limits:": what one client may make a worker hold (worker/guard.h
 * enforces them).  Defaults are nginx's and HAProxy's where they have one. */
struct config_limits {
	uint64_t max_header_size;   /* request line + header fields (HTTP/1.1); the decoded header list
				     * of an HTTP/2 request (SETTINGS_MAX_HEADER_LIST_SIZE); 1kb..1mb,
				     * default 32kb (nginx: large_client_header_buffers 4 8k) */
	uint64_t header_timeout_ms; /* a request head must be complete this long after it began (after
				     * the connection, for the first); default 10s */
	uint64_t max_connections;   /* per worker: past it the worker stops accepting; default 4096 */
	uint64_t max_connections_per_address; /* per client address, all workers together; 0 (default)
					       * = no limit.  Refused with a 503 */
	uint64_t h2_max_streams;    /* HTTP/2 concurrent streams per connection, 1..100; default 100 */
	uint64_t h2_max_resets;     /* RST_STREAM frames a client may send per h2_reset_interval; past it:
				     * GOAWAY ENHANCE_YOUR_CALM.  0 = no limit; default 100 */
	uint64_t h2_reset_interval_ms; /* default 10s */
	uint64_t h2_body_buffer;    /* request-body bytes one HTTP/2 connection's streams may hold
				     * (h2o holds each whole body before the handler runs and until
				     * the stream closes); past it: GOAWAY ENHANCE_YOUR_CALM.
				     * Never below h2o's per-stream cap (2 x the largest max_body);
				     * 0 = no limit; default 32mb */
};

/* A list of "FILE:LINE:COLUMN: message" strings (or "FILE: message" when no
 * position applies, e.g. the file cannot be opened). */
struct config_errors {
	char **msgs;
	size_t n;
};

struct config {
	char *path;		 /* the file it came from */
	struct parse_listen *listen;
	size_t nlisten;		 /* >= 1 */
	unsigned workers;	 /* resolved: "auto" becomes the online CPU count */
	int workers_auto;	 /* 1 if the file said "auto" */
	uint64_t graceful_timeout_ms; /* default 30s */
	uint64_t keepalive_timeout_ms; /* idle HTTP/1.1 keep-alive and header read timeout, default 10s */
	char *pidfile;		 /* NULL if unset */
	int log_level;		 /* enum log_level; default info */
	char *log_file;		 /* error log file; NULL = stderr.  Reopened on USR1 */
	uint64_t timeout_ms;	 /* a worker whose loop has not ticked for this long is killed; default 30s */
	uint64_t max_requests;	 /* a worker retires gracefully after this many requests; 0 = never */
	uint64_t max_requests_jitter; /* plus a random 0..jitter, so workers do not retire together */
	char *user;		 /* workers run as this user when the master is root; NULL if unset */
	unsigned uid, user_gid;	 /* resolved from user at load time */
	char *group;		 /* overrides the user's primary group; NULL if unset */
	unsigned gid;		 /* resolved from group (or the user's group) */
	int allow_root;		 /* workers may run as root (no user while root) */
	struct config_upstream upstream;
	int cluster_info;	 /* the built-in "GET /" (cluster info) route; default 1 */
	uint64_t cluster_info_cache_ttl_ms; /* cluster_info: {cache_ttl: D}: as a route's; default 0 */
	int cluster_info_coalesce; /* cluster_info: {coalesce: B}: as a route's */
	uint64_t cache_max_size;  /* "cache: {max_size}": bytes of answers a worker's micro-cache
				   * keeps, and may collect in flight; default 1 MiB */
	uint64_t cache_max_entry; /* "cache: {max_entry_size}": a larger answer is neither cached
				   * nor shared; default 256 KiB, at most max_size */
	char *access_log;	 /* access log file, "-" for stderr; NULL (default) = none */
	int access_log_json;	 /* format: json (1) or combined (0, default) */
	int metrics;		 /* GET /metrics and /_esgate/status; default 1 */
	int metrics_listen;	 /* 1: served on the listen[] entries marked metrics_only, and not on the
				  * loopback public listeners */
	int metrics_public;	 /* metrics.public: served on every public listener too; default 0:
				  * only on loopback ones (and metrics.listen) */
	struct config_limits limits;
	struct config_redis redis; /* "rate_limit: {redis}": the shared store of every limit */
	struct ratelimit_cidr *trusted_proxies; /* peers whose X-Forwarded-For is believed */
	size_t ntrusted_proxies;
	struct config_route *routes; /* in file order: the first match wins */
	size_t nroutes;
	struct auth_config auth; /* "auth:": API keys, JWT, grants (lib/auth.h) */
	uint64_t tls_handshake_timeout_ms; /* "tls: {handshake_timeout}": a TLS connection that has not
					    * finished its handshake by then is closed; default 10s */
	uint64_t tls_ticket_rotation_ms; /* "tls: {ticket_rotation}": a new session ticket key this often
					  * (lib/tlsticket.h); tickets live twice as long; default 1h */
	struct config_errors warnings; /* what is worth saying but not wrong (a certificate expiring
					* within TLS_EXPIRY_WARN_DAYS): printed by -t, logged at (re)load */
};

/* Reads and validates PATH.  Returns a new config, or NULL with every
 * problem appended to ERRS (which the caller frees with config_errors_free). */
struct config *config_load(const char *path, struct config_errors *errs);
/* Same, from a string already in memory; NAME is used in the messages. */
struct config *config_parse(const char *name, const char *text, size_t len, struct config_errors *errs);
void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);

/* "GET", "HEAD" or "POST" (exactly: methods are case-sensitive) to a
 * CONFIG_METHOD_* bit; 0 for anything else. */
unsigned config_method_parse(const char *s, size_t len);
void config_route_clear(struct config_route *r);

#endif
