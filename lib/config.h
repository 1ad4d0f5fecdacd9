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

enum config_listen_kind {
	CONFIG_LISTEN_TCP,  /* host:port or [v6]:port */
	CONFIG_LISTEN_UNIX, /* unix:/path */
};

struct config_listen {
	char *spec;	/* as written, e.g. "127.0.0.1:8080"; identifies the socket across reloads */
	enum config_listen_kind kind;
	char *host;	/* TCP: host as written without brackets ("127.0.0.1", "::1", "*", "localhost");
			 * UNIX: the path */
	uint16_t port;	/* TCP only; 0 asks the kernel for a free port */
};

struct config_node {
	char *url;	/* as written, trailing '/' removed: "http://127.0.0.1:9200" */
	char *scheme;	/* "http" or "https" */
	char *host;	/* without brackets */
	uint16_t port;	/* default 80 / 443 from the scheme */
	char *path;	/* path prefix, "" when none (no trailing '/') */
};

struct config_upstream {
	struct config_node *nodes;
	size_t nnodes;
	char *api_key;	/* the value for "Authorization: ApiKey <api_key>": "id:key" in the file is
			 * base64-encoded here; an already encoded key is kept as is. NULL if unset */
	char *username; /* basic auth; both or neither */
	char *password;
	uint64_t request_timeout_ms; /* default 10s */
	uint64_t connect_timeout_ms; /* default 1s */
	unsigned max_connections_per_node; /* default 64 */
};

struct config {
	char *path;		 /* the file it came from */
	struct config_listen *listen;
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
};

/* A list of "FILE:LINE:COLUMN: message" strings (or "FILE: message" when no
 * position applies, e.g. the file cannot be opened). */
struct config_errors {
	char **msgs;
	size_t n;
};

/* Reads and validates PATH.  Returns a new config, or NULL with every
 * problem appended to ERRS (which the caller frees with config_errors_free). */
struct config *config_load(const char *path, struct config_errors *errs);
/* Same, from a string already in memory; NAME is used in the messages. */
struct config *config_parse(const char *name, const char *text, size_t len, struct config_errors *errs);
void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);

/* Helpers, exported for the tests and for other parsers of outside input.
 * Each returns 0 on success, -1 on a malformed value. */

/* "250ms", "30s", "2m", "1h", or a bare non-negative number of seconds ("5", "1.5"). */
int config_parse_duration(const char *s, uint64_t *ms);
/* "host:port", "[v6]:port", "*:port", "unix:/path". */
int config_parse_listen(const char *s, struct config_listen *out);
/* "http[s]://host[:port][/prefix]". */
int config_parse_node(const char *s, struct config_node *out);
void config_listen_clear(struct config_listen *l);
void config_node_clear(struct config_node *n);

#endif
