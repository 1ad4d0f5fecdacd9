/*
 * esdemo.c - a small Elasticsearch look-alike used by `make run` and by the
 * integration tests as a stand-in for a real cluster.
 *
 * One process, one thread, one h2o evloop.  It speaks HTTP/1.1 (keep-alive)
 * and cleartext HTTP/2 (h2o_accept detects the preface), answers a few ES 8
 * endpoints from a built-in document set, and has knobs a test can turn
 * while it runs (latency, forced status, closing without an answer) plus
 * introspection (open connections, request counts, the last request) under
 * /_esdemo/.  Those control endpoints are never delayed, failed, closed,
 * counted or recorded, so a test can always steer and observe the server.
 * The one exception is /_esdemo/big, a streamed body of any size: it
 * stands for a big upstream answer, so it goes through the knobs, the
 * counts and the record like the ES API does.
 *
 * With --tenants it also holds the index "shared" (two tenants'
 * documents) and runs what a document-filtered search sends: bool, ids and
 * terms queries, _count, _msearch, terms aggregations and _source
 * filtering (the document- and field-level security tests).  Without it,
 * it answers as before: other tests count on its 400 for those.
 *
 * Several instances make a "cluster" for sniffing tests: each knows its
 * peers (--peers, or later through /_esdemo/control) and lists them and
 * itself in GET /_nodes/http.  Nothing else is shared between them.
 *
 * Bodies are produced by jansson with JSON_PRESERVE_ORDER | JSON_COMPACT and
 * no volatile fields ("took" is always 1), so the same request always gets
 * the same bytes: tests compare what esgate relays byte for byte.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <jansson.h>
#include <zlib.h>

#include "lib/hex.h"
#include "lib/log.h"
#include "lib/status.h"

#define ESDEMO_CLUSTER_NAME	"esdemo"	/* --cluster-name default */
/* Fixed so GET / is byte-identical across runs; 22 chars like a real one. */
#define ESDEMO_CLUSTER_UUID	"ZXNkZW1vLWNsdXN0ZXIwMQ"
#define ESDEMO_CONTROL_PREFIX	"/_esdemo/"
/* How long a SIGTERM waits for open connections to go before giving up. */
#define ESDEMO_DRAIN_MS		2000
/* /_esdemo/big: bytes per proceed callback, and the largest body. */
#define ESDEMO_BIG_CHUNK	(64 * 1024)
#define ESDEMO_BIG_MIN		16
#define ESDEMO_BIG_MAX		(200 * 1024 * 1024)
/* --peers and peers=: a sniffing test needs a handful, not hundreds. */
#define ESDEMO_MAX_PEERS	64
/* Distinct paths /_esdemo/stats keeps; a scan must not grow it forever. */
#define ESDEMO_MAX_PATHS	1024
/* What ES 8 reports by default (http.max_content_length, 100 MB). */
#define ESDEMO_MAX_CONTENT	104857600
#define ESDEMO_TRANSPORT_PORT	9300

/* The knobs a test can turn; snapshotted per request when it arrives. */
struct knobs {
	uint64_t	 latency_ms;
	int		 status;	/* 0: answer normally */
	int		 close;		/* 1: drop the connection, no answer */
	int		 gzip;		/* 1: gzip GET / and _search if taken */
};

/* A node of the fake cluster, as /_nodes/http shows it. */
struct peer {
	char		 host[256];	/* without brackets for IPv6 */
	unsigned	 port;
	char		 addr[264];	/* host:port, [host]:port for IPv6 */
};

/* One accepted client connection, for GET /_esdemo/connections. */
struct tracked_conn {
	h2o_linklist_t	 link;
	h2o_socket_t	*sock;	/* valid until on_conn_close */
	char		 peer[INET6_ADDRSTRLEN + 8];
};

/*
 * h2o_timeout_t has one fixed duration, and the latency can change at run
 * time, so there is one timeout per latency value ever used.  They live
 * until exit: disposing one while h2o_evloop_run walks its timeout list
 * would be unsafe, and a test uses only a handful of values.
 */
struct latency_timeout {
	h2o_timeout_t		 timeout;
	uint64_t		 ms;
	struct latency_timeout	*next;
};

/*
 * A request waiting out its latency.  Allocated as a shared object of the
 * request's pool, so when h2o disposes of the request early (client reset
 * an HTTP/2 stream) the dispose callback unlinks the timer.
 */
struct delayed_req {
	h2o_timeout_entry_t	 timer;
	h2o_linklist_t		 link;	/* in esdemo.delayed */
	struct esdemo		*ed;
	h2o_req_t		*req;
	struct knobs		 knobs;
};

struct esdemo {
	const char		*host;
	unsigned		 port;
	const char		*name;
	const char		*cluster_name;
	int			 master_only;	/* roles ["master"] */
	struct peer		 self;		/* the address we listen on */
	struct peer		*peers;		/* malloc'd, npeers of them */
	size_t			 npeers;
	const char		*record_path;
	FILE			*record;
	uint64_t		 idle_timeout_ms;
	struct knobs		 knobs;

	h2o_globalconf_t	 config;
	h2o_context_t		 ctx;
	h2o_accept_ctx_t	 accept_ctx;
	h2o_evloop_t		*loop;
	h2o_socket_t		*listener;

	h2o_linklist_t		 conns;		/* struct tracked_conn */
	h2o_linklist_t		 delayed;	/* struct delayed_req */
	struct latency_timeout	*timeouts;
	uint64_t		 total_accepted;
	uint64_t		 requests;
	json_t			*paths;		/* {"raw path": count} */
	int			 tenants;	/* --tenants: the "shared" index */
	json_t			*last;		/* last recorded request, or NULL */

	json_t			*docs;		/* {"index": [{"_id", "_source"}]} */
	char			*info_body;	/* GET / answer, built once */
};

struct esdemo_handler {
	h2o_handler_t	 super;
	struct esdemo	*ed;
};

/* --tenants: besides the "shared" index, the search features filtered
 * searches use (bool, ids, terms queries, _count, _msearch, terms
 * aggregations, _source filtering).  Off, esdemo answers as it always
 * has (an unknown query kind is a 400), which other tests rely on. */
static int esdemo_rich;

/* Only set here; everything else happens in the loop (STYLE.md #4). */
static volatile sig_atomic_t esdemo_stop;

/*
 * The built-in indices.  Small enough to reason about in a test: "Dune" is
 * in both, Tolkien has two books, Ridley Scott two movies.
 */
static const char esdemo_docs_json[] =
    "{"
    "\"books\":["
    "{\"_id\":\"1\",\"_source\":{\"title\":\"The Hobbit\",\"author\":\"J. R. R. Tolkien\",\"year\":1937}},"
    "{\"_id\":\"2\",\"_source\":{\"title\":\"Dune\",\"author\":\"Frank Herbert\",\"year\":1965}},"
    "{\"_id\":\"3\",\"_source\":{\"title\":\"Neuromancer\",\"author\":\"William Gibson\",\"year\":1984}},"
    "{\"_id\":\"4\",\"_source\":{\"title\":\"The Left Hand of Darkness\",\"author\":\"Ursula K. Le Guin\",\"year\":1969}},"
    "{\"_id\":\"5\",\"_source\":{\"title\":\"Foundation\",\"author\":\"Isaac Asimov\",\"year\":1951}},"
    "{\"_id\":\"6\",\"_source\":{\"title\":\"The Lord of the Rings\",\"author\":\"J. R. R. Tolkien\",\"year\":1954}}"
    "],"
    "\"movies\":["
    "{\"_id\":\"1\",\"_source\":{\"title\":\"Blade Runner\",\"director\":\"Ridley Scott\",\"year\":1982}},"
    "{\"_id\":\"2\",\"_source\":{\"title\":\"Dune\",\"director\":\"Denis Villeneuve\",\"year\":2021}},"
    "{\"_id\":\"3\",\"_source\":{\"title\":\"The Matrix\",\"director\":\"Lana Wachowski, Lilly Wachowski\",\"year\":1999}},"
    "{\"_id\":\"4\",\"_source\":{\"title\":\"Alien\",\"director\":\"Ridley Scott\",\"year\":1979}}"
    "]"
    "}";

/*
 * --tenants adds the index "shared": two tenants' documents side by side,
 * a field only some may see ("salary"), for the document- and field-level
 * security tests.
 */
static const char esdemo_tenant_docs_json[] =
    "["
    "{\"_id\":\"a1\",\"_source\":{\"tenant\":\"acme\",\"title\":\"Acme roadmap\",\"salary\":100,\"kind\":\"plan\"}},"
    "{\"_id\":\"a2\",\"_source\":{\"tenant\":\"acme\",\"title\":\"Acme budget\",\"salary\":200,\"kind\":\"money\"}},"
    "{\"_id\":\"a3\",\"_source\":{\"tenant\":\"acme\",\"title\":\"Acme hiring\",\"salary\":300,\"kind\":\"people\"}},"
    "{\"_id\":\"g1\",\"_source\":{\"tenant\":\"globex\",\"title\":\"Globex roadmap\",\"salary\":900,\"kind\":\"plan\"}},"
    "{\"_id\":\"g2\",\"_source\":{\"tenant\":\"globex\",\"title\":\"Globex secret plan\",\"salary\":800,\"kind\":\"secret\"}}"
    "]";

static void
esdemo_on_signal(int signo)
{
	esdemo_stop = 1;
}

static __attribute__((noreturn)) void
usage(void)
{
	fprintf(stderr,
	    "usage: esdemo [--host ADDR] [--port N] [--name NAME] [--latency MS]\n"
	    "              [--status N] [--close] [--record FILE]\n"
	    "              [--idle-timeout MS] [--cluster-name NAME]\n"
	    "              [--peers HOST:PORT,...] [--master-only] [--tenants]\n");
	exit(2);
}

/* Strict unsigned parse: the whole string, base 10, at most max. */
static int
parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

/* A forced status has to leave room for a body; 1xx cannot carry one. */
static int
status_is_valid(uint64_t status)
{
	return status == 0 || (status >= 200 && status <= 599);
}

/* ---- the fake cluster ------------------------------------------------- */

static void
peer_set(struct peer *p, const char *host, size_t hlen, unsigned port)
{
	memcpy(p->host, host, hlen);
	p->host[hlen] = '\0';
	p->port = port;
	snprintf(p->addr, sizeof(p->addr),
	    memchr(host, ':', hlen) != NULL ? "[%s]:%u" : "%s:%u", p->host,
	    port);
}

/*
 * "HOST:PORT,[V6]:PORT,..." into a malloc'd array (NULL when empty).
 * Returns 0, or -1 for anything malformed; an empty list is fine and
 * means no peers.
 */
static int
parse_peers(const char *list, struct peer **out, size_t *nout)
{
	struct peer *peers;
	const char *p = list;
	size_t n = 0;

	*out = NULL;
	*nout = 0;
	if (*list == '\0')
		return 0;
	if ((peers = calloc(ESDEMO_MAX_PEERS, sizeof(*peers))) == NULL)
		return -1;
	while (*p != '\0') {
		size_t len = strcspn(p, ","), hlen;
		const char *host, *colon;
		uint64_t port;

		if (len == 0 || n == ESDEMO_MAX_PEERS)
			goto bad;
		if (*p == '[') {
			const char *rb = memchr(p, ']', len);

			if (rb == NULL || rb + 1 >= p + len || rb[1] != ':')
				goto bad;
			host = p + 1;
			hlen = (size_t)(rb - host);
			colon = rb + 1;
		} else {
			if ((colon = memchr(p, ':', len)) == NULL)
				goto bad;
			host = p;
			hlen = (size_t)(colon - p);
			/* A bare IPv6 address needs its brackets. */
			if (memchr(colon + 1, ':',
			    (size_t)(p + len - colon - 1)) != NULL)
				goto bad;
		}
		if (hlen == 0 || hlen >= sizeof(peers[0].host) ||
		    memchr(host, ' ', hlen) != NULL ||
		    parse_uint(colon + 1, (size_t)(p + len - colon - 1), 65535,
		    &port) != 0 || port == 0)
			goto bad;
		peer_set(&peers[n++], host, hlen, (unsigned)port);
		p += len;
		if (*p == ',' && *++p == '\0')
			goto bad;	/* a trailing comma is a typo */
	}
	*out = peers;
	*nout = n;
	return 0;
bad:
	free(peers);
	return -1;
}

/*
 * A 22-character id like ES's, from the address alone, so every node of
 * a test cluster names the same node the same way and a restarted node
 * keeps its id.  Two FNV-1a 64 hashes give the bits.
 */
static void
node_id(const char *addr, char out[23])
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint64_t h[2] = { 0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL };
	const unsigned char *c;
	int i;

	for (c = (const unsigned char *)addr; *c != '\0'; c++)
		for (i = 0; i < 2; i++) {
			h[i] ^= *c;
			h[i] *= 0x100000001b3ULL;
		}
	for (i = 0; i < 22; i++)
		out[i] = b64[(h[i / 11] >> ((i % 11) * 6)) & 63];
	out[22] = '\0';
}

static json_t *
peers_json(const struct peer *peers, size_t n)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(list, json_string(peers[i].addr));
	return list;
}

/* ---- responses ------------------------------------------------------- */

/*
 * gzip of body into a malloc'd buffer, or NULL.  deflate's own header
 * has no timestamp here, so the same body always compresses to the same
 * bytes, like everything else esdemo sends.
 */
static unsigned char *
gzip_body(const char *body, size_t len, size_t *outlen)
{
	z_stream zs;
	unsigned char *out;
	uLong bound;
	int ret;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
	    16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return NULL;
	/* deflateBound leaves out the gzip header and trailer (18 bytes). */
	bound = deflateBound(&zs, (uLong)len) + 32;
	if ((out = malloc(bound)) == NULL) {
		deflateEnd(&zs);
		return NULL;
	}
	zs.next_in = (Bytef *)(uintptr_t)body;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)bound;
	ret = deflate(&zs, Z_FINISH);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	if (ret != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

static void respond_raw(h2o_req_t *, int, const char *, size_t);

/*
 * respond_raw, gzip-compressed when the gzip knob is on and the client
 * takes gzip (h2o parses Accept-Encoding, q=0 included).  Vary goes out
 * either way while the knob is on, as the answer then depends on it.
 */
static void
respond_raw_enc(h2o_req_t *req, int status, const char *body, size_t len,
    int gzip)
{
	unsigned char *z;
	size_t zlen;

	if (!gzip) {
		respond_raw(req, status, body, len);
		return;
	}
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL,
	    H2O_STRLIT("accept-encoding"));
	if (!(h2o_get_compressible_types(&req->headers) &
	    H2O_COMPRESSIBLE_GZIP) || status == 204 || status == 304 ||
	    (z = gzip_body(body, len, &zlen)) == NULL) {
		respond_raw(req, status, body, len);
		return;
	}
	h2o_add_header(&req->pool, &req->res.headers,
	    H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("gzip"));
	respond_raw(req, status, (const char *)z, zlen);
	free(z);
}

static void
respond_raw(h2o_req_t *req, int status, const char *body, size_t len)
{
	req->res.status = status;
	req->res.reason = status_reason(status);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
	    NULL, H2O_STRLIT("application/json; charset=UTF-8"));
	h2o_add_header_by_str(&req->pool, &req->res.headers,
	    H2O_STRLIT("x-elastic-product"), 0, "X-Elastic-Product",
	    H2O_STRLIT("Elasticsearch"));
	/* 204 and 304 must not have a body, whatever a test forces. */
	if (status == 204 || status == 304)
		len = 0;
	/*
	 * h2o_send_inline sets no Content-Length (HTTP/1.1 would go chunked);
	 * with it set here HEAD also gets the GET length, and h2o_send_inline
	 * leaves the body out for HEAD itself.
	 */
	req->res.content_length = len;
	h2o_send_inline(req, body, len);
}

/* Takes the reference to body. */
static void
respond_json_enc(h2o_req_t *req, int status, json_t *body, int gzip)
{
	char *s;

	s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(body);
	if (s == NULL) {
		static const char oom[] = "{\"error\":\"esdemo: out of memory\",\"status\":500}";

		respond_raw(req, 500, oom, sizeof(oom) - 1);
		return;
	}
	respond_raw_enc(req, status, s, strlen(s), gzip);
	free(s);
}

static void
respond_json(h2o_req_t *req, int status, json_t *body)
{
	respond_json_enc(req, status, body, 0);
}

/*
 * ES-shaped error: {"error":{"root_cause":[{"type","reason"}],"type",
 * "reason"},"status":N}.
 */
static void
respond_es_error(h2o_req_t *req, int status, const char *type,
    const char *reason)
{
	respond_json(req, status, json_pack(
	    "{s:{s:[{s:s, s:s}], s:s, s:s}, s:i}", "error",
	    "root_cause", "type", type, "reason", reason,
	    "type", type, "reason", reason, "status", status));
}

/* index_not_found_exception carries the index in both objects. */
static void
respond_es_error_index(h2o_req_t *req, int status, const char *type,
    const char *reason, const char *index)
{
	json_t *cause, *body;

	cause = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type,
	    "reason", reason, "resource.type", "index_or_alias",
	    "resource.id", index, "index_uuid", "_na_", "index", index);
	body = json_pack("{s:{s:[O], s:s, s:s, s:s, s:s, s:s, s:s}, s:i}",
	    "error", "root_cause", cause, "type", type, "reason", reason,
	    "resource.type", "index_or_alias", "resource.id", index,
	    "index_uuid", "_na_", "index", index, "status", status);
	json_decref(cause);
	respond_json(req, status, body);
}

/* ---- request helpers -------------------------------------------------- */

/*
 * Percent-decodes into a NUL-terminated string from the request pool.
 * plus_is_space for query strings (form encoding), not for paths.
 */
static char *
url_decode(h2o_mem_pool_t *pool, const char *s, size_t len, int plus_is_space)
{
	char *out, *p;
	size_t i;

	out = p = h2o_mem_alloc_pool(pool, len + 1);
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && hex_value((unsigned char)s[i + 1]) >= 0 &&
		    hex_value((unsigned char)s[i + 2]) >= 0) {
			*p++ = (char)(hex_value((unsigned char)s[i + 1]) * 16 + hex_value((unsigned char)s[i + 2]));
			i += 2;
		} else if (s[i] == '+' && plus_is_space)
			*p++ = ' ';
		else
			*p++ = s[i];
	}
	*p = '\0';
	return out;
}

/* The raw path without the query string. */
static h2o_iovec_t
req_path(h2o_req_t *req)
{
	size_t len = req->path.len;

	if (req->query_at != SIZE_MAX)
		len = req->query_at;
	return h2o_iovec_init(req->path.base, len);
}

static h2o_iovec_t
req_query(h2o_req_t *req)
{
	if (req->query_at == SIZE_MAX)
		return h2o_iovec_init("", 0);
	return h2o_iovec_init(req->path.base + req->query_at + 1,
	    req->path.len - req->query_at - 1);
}

/*
 * Calls fn for each key=value of the query string, decoded.  Stops and
 * returns fn's value when it is non-zero.
 */
static int
query_foreach(h2o_req_t *req,
    int (*fn)(void *arg, const char *key, const char *value), void *arg)
{
	h2o_iovec_t q = req_query(req);
	const char *p = q.base, *end = q.base + q.len;

	while (p < end) {
		const char *amp, *eq;
		char *key, *value;
		int ret;

		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		if (amp == p) {
			p++;
			continue;
		}
		if ((eq = memchr(p, '=', (size_t)(amp - p))) == NULL)
			eq = amp;
		key = url_decode(&req->pool, p, (size_t)(eq - p), 1);
		value = eq < amp ?
		    url_decode(&req->pool, eq + 1, (size_t)(amp - eq - 1), 1) :
		    url_decode(&req->pool, "", 0, 1);
		if ((ret = fn(arg, key, value)) != 0)
			return ret;
		p = amp + 1;
	}
	return 0;
}

struct query_lookup {
	const char	*key;
	const char	*value;
};

static int
query_lookup_cb(void *arg, const char *key, const char *value)
{
	struct query_lookup *ql = arg;

	/* The last one wins, like most servers. */
	if (strcmp(key, ql->key) == 0)
		ql->value = value;
	return 0;
}

static const char *
query_get(h2o_req_t *req, const char *key)
{
	struct query_lookup ql = { key, NULL };

	query_foreach(req, query_lookup_cb, &ql);
	return ql.value;
}

static int
method_is(h2o_req_t *req, const char *m)
{
	return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

/*
 * Splits the raw path into at most max decoded segments; returns the count,
 * or -1 when there are more.  "/a/b/" gives "a", "b" (ES ignores a
 * trailing slash too).
 */
static int
path_segments(h2o_req_t *req, char **segs, int max)
{
	h2o_iovec_t path = req_path(req);
	const char *p = path.base, *end = path.base + path.len;
	int n = 0;

	while (p < end) {
		const char *slash;

		if (*p == '/') {
			p++;
			continue;
		}
		if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL)
			slash = end;
		if (n == max)
			return -1;
		segs[n++] = url_decode(&req->pool, p, (size_t)(slash - p), 0);
		p = slash;
	}
	return n;
}

/* ---- --record ---------------------------------------------------------- */

/* jansson refuses invalid UTF-8; keep the line valid JSON regardless. */
static json_t *
json_string_lossy(const char *s, size_t len)
{
	json_t *j;
	char *copy;
	size_t i;

	if ((j = json_stringn(s, len)) != NULL)
		return j;
	copy = malloc(len + 1);
	if (copy == NULL)
		return json_null();
	for (i = 0; i < len; i++)
		copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	j = json_stringn(copy, len);
	free(copy);
	return j != NULL ? j : json_null();
}

/*
 * The request as one JSON object: method, path, query, every header
 * (lower-case names) and the body.  Made before the knobs act, so a
 * request that gets a forced status, a close or a delay is there too.
 */
static json_t *
request_json(h2o_req_t *req)
{
	json_t *line, *headers;
	h2o_iovec_t path, query;
	size_t i;

	headers = json_object();
	/*
	 * h2o keeps Host (HTTP/1 Host or HTTP/2 :authority) and the body
	 * framing headers out of req->headers; put back what a test may check.
	 */
	if (req->input.authority.len != 0)
		json_object_set_new(headers, "host", json_string_lossy(
		    req->input.authority.base, req->input.authority.len));
	for (i = 0; i < req->headers.size; i++) {
		const h2o_header_t *h = req->headers.entries + i;
		char *name;
		json_t *prev;

		name = h2o_mem_alloc_pool(&req->pool, h->name->len + 1);
		memcpy(name, h->name->base, h->name->len);
		name[h->name->len] = '\0';
		h2o_strtolower(name, h->name->len);
		/* Repeated headers are joined like RFC 9110 allows. */
		if ((prev = json_object_get(headers, name)) != NULL &&
		    json_is_string(prev)) {
			size_t plen = json_string_length(prev);
			char *joined = h2o_mem_alloc_pool(&req->pool,
			    plen + 2 + h->value.len);

			memcpy(joined, json_string_value(prev), plen);
			memcpy(joined + plen, ", ", 2);
			memcpy(joined + plen + 2, h->value.base, h->value.len);
			json_object_set_new(headers, name, json_string_lossy(
			    joined, plen + 2 + h->value.len));
		} else
			json_object_set_new(headers, name, json_string_lossy(
			    h->value.base, h->value.len));
	}
	if (req->entity.base != NULL) {
		char cl[24];

		snprintf(cl, sizeof(cl), "%zu", req->entity.len);
		json_object_set_new(headers, "content-length", json_string(cl));
	}

	path = req_path(req);
	query = req_query(req);
	line = json_object();
	json_object_set_new(line, "method",
	    json_string_lossy(req->method.base, req->method.len));
	json_object_set_new(line, "path", json_string_lossy(path.base, path.len));
	json_object_set_new(line, "query",
	    json_string_lossy(query.base, query.len));
	json_object_set_new(line, "headers", headers);
	json_object_set_new(line, "body", req->entity.base == NULL ?
	    json_null() : json_string_lossy(req->entity.base, req->entity.len));
	json_object_set_new(line, "version", json_string(
	    req->version >= 0x200 ? "2" : req->version == 0x100 ? "1.0" : "1.1"));
	return line;
}

/* To --record, and kept for GET /_esdemo/last. */
static void
record_request(struct esdemo *ed, h2o_req_t *req)
{
	json_t *line;
	char *s;

	line = request_json(req);
	json_decref(ed->last);
	ed->last = line;
	if (ed->record == NULL)
		return;
	s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (s == NULL) {
		log_warnx("record: cannot encode request");
		return;
	}
	/* One line, flushed at once, so a test can read it right after. */
	if (fprintf(ed->record, "%s\n", s) < 0 || fflush(ed->record) != 0)
		log_warn("record: %s", ed->record_path);
	free(s);
}

/* For /_esdemo/stats: the raw path, as a valid UTF-8 key. */
static void
count_path(struct esdemo *ed, h2o_req_t *req)
{
	h2o_iovec_t path = req_path(req);
	json_t *n;
	char *key;
	size_t i;

	key = h2o_mem_alloc_pool(&req->pool, path.len + 1);
	for (i = 0; i < path.len; i++)
		key[i] = (unsigned char)path.base[i] < 0x80 &&
		    path.base[i] != '\0' ? path.base[i] : '?';
	key[path.len] = '\0';
	if ((n = json_object_get(ed->paths, key)) != NULL)
		json_integer_set(n, json_integer_value(n) + 1);
	else if (json_object_size(ed->paths) < ESDEMO_MAX_PATHS)
		json_object_set_new(ed->paths, key, json_integer(1));
}

/* ---- /_esdemo/ control ------------------------------------------------ */

static json_t *
knobs_json(const struct knobs *k)
{
	return json_pack("{s:I, s:i, s:b, s:b}", "latency_ms",
	    (json_int_t)k->latency_ms, "status", k->status, "close", k->close,
	    "gzip", k->gzip);
}

struct control_args {
	struct knobs	 next;
	int		 set_peers;
	struct peer	*peers;		/* parsed peers=, owned until applied */
	size_t		 npeers;
	const char	*bad;
};

static int
parse_bool(const char *value, int *out)
{
	if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0)
		*out = 0;
	else if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0)
		*out = 1;
	else
		return -1;
	return 0;
}

static int
control_arg_cb(void *arg, const char *key, const char *value)
{
	struct control_args *ca = arg;
	uint64_t v;

	if (strcmp(key, "latency_ms") == 0) {
		if (parse_uint(value, strlen(value), 3600000, &v) != 0)
			goto bad;
		ca->next.latency_ms = v;
	} else if (strcmp(key, "status") == 0) {
		if (parse_uint(value, strlen(value), 999, &v) != 0 ||
		    !status_is_valid(v))
			goto bad;
		ca->next.status = (int)v;
	} else if (strcmp(key, "close") == 0) {
		if (parse_bool(value, &ca->next.close) != 0)
			goto bad;
	} else if (strcmp(key, "gzip") == 0) {
		if (parse_bool(value, &ca->next.gzip) != 0)
			goto bad;
	} else if (strcmp(key, "peers") == 0) {
		/* Given twice, the last one wins like for the other keys. */
		free(ca->peers);
		ca->set_peers = 1;
		if (parse_peers(value, &ca->peers, &ca->npeers) != 0)
			goto bad;
	} else
		goto bad;
	return 0;
bad:
	ca->bad = key;
	return 1;
}

static void
control_knobs(struct esdemo *ed, h2o_req_t *req)
{
	struct control_args ca;
	char reason[256];
	json_t *b;

	memset(&ca, 0, sizeof(ca));
	ca.next = ed->knobs;
	/* All or nothing: a typo must not leave half the knobs changed. */
	if (query_foreach(req, control_arg_cb, &ca) != 0) {
		free(ca.peers);
		snprintf(reason, sizeof(reason),
		    "bad control parameter [%s]: want latency_ms=0..3600000, "
		    "status=0|200..599, close=0|1, gzip=0|1, "
		    "peers=HOST:PORT,...", ca.bad);
		respond_es_error(req, 400, "illegal_argument_exception", reason);
		return;
	}
	if (memcmp(&ca.next, &ed->knobs, sizeof(ca.next)) != 0)
		log_info("knobs: latency_ms=%llu status=%d close=%d gzip=%d",
		    (unsigned long long)ca.next.latency_ms, ca.next.status,
		    ca.next.close, ca.next.gzip);
	ed->knobs = ca.next;
	if (ca.set_peers) {
		free(ed->peers);
		ed->peers = ca.peers;
		ed->npeers = ca.npeers;
		log_info("peers: %zu", ed->npeers);
	}
	b = knobs_json(&ed->knobs);
	json_object_set_new(b, "peers", peers_json(ed->peers, ed->npeers));
	respond_json(req, 200, b);
}

static void
control_connections(struct esdemo *ed, h2o_req_t *req)
{
	h2o_linklist_t *node;
	json_t *list;

	list = json_array();
	for (node = ed->conns.next; node != &ed->conns; node = node->next) {
		struct tracked_conn *tc = H2O_STRUCT_FROM_MEMBER(
		    struct tracked_conn, link, node);

		json_array_append_new(list, json_pack("{s:s}", "peer", tc->peer));
	}
	respond_json(req, 200, json_pack("{s:o, s:I}", "connections", list,
	    "total_accepted", (json_int_t)ed->total_accepted));
}

static void
handle_control(struct esdemo *ed, h2o_req_t *req)
{
	h2o_iovec_t path = req_path(req);
	const char *what = path.base + strlen(ESDEMO_CONTROL_PREFIX);
	size_t wlen = path.len - strlen(ESDEMO_CONTROL_PREFIX);

	if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
		respond_es_error(req, 405, "method_not_allowed",
		    "esdemo control endpoints take GET");
		return;
	}
	if (h2o_memis(what, wlen, H2O_STRLIT("control")))
		control_knobs(ed, req);
	else if (h2o_memis(what, wlen, H2O_STRLIT("connections")))
		control_connections(ed, req);
	else if (h2o_memis(what, wlen, H2O_STRLIT("stats")))
		respond_json(req, 200, json_pack("{s:I, s:O}", "requests",
		    (json_int_t)ed->requests, "paths", ed->paths));
	else if (h2o_memis(what, wlen, H2O_STRLIT("last"))) {
		if (ed->last != NULL)
			respond_json(req, 200, json_incref(ed->last));
		else
			respond_es_error(req, 404,
			    "resource_not_found_exception",
			    "no request recorded yet");
	} else
		respond_es_error(req, 404, "resource_not_found_exception",
		    "unknown esdemo control endpoint");
}

/* ---- search ----------------------------------------------------------- */

enum query_kind {
	QUERY_MATCH_ALL,
	QUERY_MATCH,	/* case-insensitive substring on a field */
	QUERY_TERM,	/* exact value */
	QUERY_QSTRING,	/* ?q=[field:]text, like match; no field = any */
};

struct query {
	enum query_kind	 kind;
	const char	*field;		/* NULL for any field */
	json_t		*value;		/* borrowed */
	const char	*text;		/* QSTRING */
};

static int
number_equals_text(json_t *num, const char *text)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0)
		return 0;
	return json_number_value(num) == d;
}

/* match semantics for one field value: substring for text, equality else. */
static int
value_matches(json_t *docval, json_t *want)
{
	if (json_is_string(want)) {
		if (json_is_string(docval))
			return strcasestr(json_string_value(docval),
			    json_string_value(want)) != NULL;
		if (json_is_number(docval))
			return number_equals_text(docval,
			    json_string_value(want));
		return 0;
	}
	if (json_is_number(want) && json_is_number(docval))
		return json_number_value(want) == json_number_value(docval);
	return json_equal(docval, want);
}

static int
term_matches(json_t *docval, json_t *want)
{
	if (json_is_number(want) && json_is_number(docval))
		return json_number_value(want) == json_number_value(docval);
	if (json_is_string(want) && json_is_number(docval))
		return number_equals_text(docval, json_string_value(want));
	return json_equal(docval, want);
}

static int
doc_matches(json_t *source, const struct query *q)
{
	const char *key;
	json_t *v, *want;
	int hit = 0;

	switch (q->kind) {
	case QUERY_MATCH_ALL:
		return 1;
	case QUERY_MATCH:
		v = json_object_get(source, q->field);
		return v != NULL && value_matches(v, q->value);
	case QUERY_TERM:
		v = json_object_get(source, q->field);
		return v != NULL && term_matches(v, q->value);
	case QUERY_QSTRING:
		want = json_string(q->text);
		if (want == NULL)
			return 0;
		if (q->field != NULL) {
			v = json_object_get(source, q->field);
			hit = v != NULL && value_matches(v, want);
		} else {
			json_object_foreach(source, key, v) {
				if (value_matches(v, want)) {
					hit = 1;
					break;
				}
			}
		}
		json_decref(want);
		return hit;
	}
	return 0;
}

/*
 * {"FIELD": value} or {"FIELD": {"query"|"value": value}}.  Returns 0, or
 * -1 with reason filled.
 */
static int
parse_field_query(json_t *spec, const char *inner_key, struct query *q,
    const char *qname, char *reason, size_t rlen)
{
	const char *field;
	json_t *v;

	if (!json_is_object(spec) || json_object_size(spec) != 1) {
		snprintf(reason, rlen, "[%s] query malformed, expected one field",
		    qname);
		return -1;
	}
	json_object_foreach(spec, field, v) {
		q->field = field;
		if (json_is_object(v)) {
			if ((v = json_object_get(v, inner_key)) == NULL) {
				snprintf(reason, rlen,
				    "[%s] query on [%s] needs [%s]", qname,
				    field, inner_key);
				return -1;
			}
		}
		if (!json_is_string(v) && !json_is_number(v) &&
		    !json_is_boolean(v)) {
			snprintf(reason, rlen,
			    "[%s] query on [%s] wants a string, number or "
			    "boolean", qname, field);
			return -1;
		}
		q->value = v;
	}
	return 0;
}

static int
parse_query(json_t *query, struct query *q, char *reason, size_t rlen)
{
	const char *kind;
	json_t *spec;

	if (!json_is_object(query) || json_object_size(query) != 1) {
		snprintf(reason, rlen,
		    "[query] malformed, expected one query type");
		return -1;
	}
	json_object_foreach(query, kind, spec) {
		if (strcmp(kind, "match_all") == 0) {
			q->kind = QUERY_MATCH_ALL;
			return 0;
		}
		if (strcmp(kind, "match") == 0) {
			q->kind = QUERY_MATCH;
			return parse_field_query(spec, "query", q, kind, reason,
			    rlen);
		}
		if (strcmp(kind, "term") == 0) {
			q->kind = QUERY_TERM;
			return parse_field_query(spec, "value", q, kind, reason,
			    rlen);
		}
		snprintf(reason, rlen, "unknown query [%s]", kind);
	}
	return -1;
}

static int
index_known(struct esdemo *ed, const char *name)
{
	return json_is_array(json_object_get(ed->docs, name));
}

/*
 * "books", "books,movies", "_all", "*" or no index at all (/_search).
 * Fills names (pool strings) and returns the count, or -1 with *missing set.
 */
static int
resolve_indices(struct esdemo *ed, h2o_req_t *req, const char *spec,
    const char **names, int max, const char **missing)
{
	const char *key, *p;
	json_t *v;
	int n = 0;

	if (spec == NULL || strcmp(spec, "_all") == 0 || strcmp(spec, "*") == 0) {
		json_object_foreach(ed->docs, key, v) {
			if (n < max)
				names[n++] = key;
		}
		return n;
	}
	for (p = spec; *p != '\0';) {
		size_t len = strcspn(p, ",");
		char *name;

		name = h2o_mem_alloc_pool(&req->pool, len + 1);
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		if (*p == ',')
			p++;
		if (len == 0)
			continue;
		if (!index_known(ed, name)) {
			*missing = name;
			return -1;
		}
		if (n < max)
			names[n++] = name;
	}
	return n;
}

static int
body_or_param_uint(h2o_req_t *req, json_t *body, const char *name,
    uint64_t def, uint64_t *out, char *reason, size_t rlen)
{
	const char *param;
	json_t *v;

	*out = def;
	if (body != NULL && (v = json_object_get(body, name)) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(reason, rlen,
			    "[%s] must be a non-negative integer", name);
			return -1;
		}
		*out = (uint64_t)json_integer_value(v);
	}
	if (req != NULL && (param = query_get(req, name)) != NULL &&
	    parse_uint(param, strlen(param), 1000000, out) != 0) {
		snprintf(reason, rlen,
		    "[%s] must be a non-negative integer", name);
		return -1;
	}
	return 0;
}

/*
 * A query as a tree, for what a filtered search sends (esgate's document
 * filter AND-ed into the client's query): bool (must, filter, should,
 * must_not, each a clause or an array), ids, terms, and the one-field
 * kinds parse_query() knows.  1 if DOC matches, 0 if not, -1 with REASON.
 */
static int
eval_query(json_t *query, json_t *doc, char *reason, size_t rlen)
{
	static const char *const occurs[] = { "must", "filter", "should",
	    "must_not" };
	json_t *source = json_object_get(doc, "_source"), *spec, *c, *v;
	const char *kind, *field;
	struct query q;
	size_t i, k;
	int r, any_should, should_hit, required;

	if (!esdemo_rich || !json_is_object(query) ||
	    json_object_size(query) != 1) {
		if (parse_query(query, &q, reason, rlen) != 0)
			return -1;
		return doc_matches(source, &q);
	}
	json_object_foreach(query, kind, spec) {
		if (strcmp(kind, "ids") == 0) {
			v = json_object_get(spec, "values");
			json_array_foreach(v, i, c)
				if (json_equal(c, json_object_get(doc, "_id")))
					return 1;
			return 0;
		}
		if (strcmp(kind, "terms") == 0) {
			if (!json_is_object(spec) || json_object_size(spec) != 1) {
				snprintf(reason, rlen, "[terms] query malformed");
				return -1;
			}
			json_object_foreach(spec, field, v) {
				json_t *dv = json_object_get(source, field);

				json_array_foreach(v, i, c)
					if (dv != NULL && term_matches(dv, c))
						return 1;
			}
			return 0;
		}
		if (strcmp(kind, "bool") != 0)
			break;
		if (!json_is_object(spec)) {
			snprintf(reason, rlen, "[bool] query malformed");
			return -1;
		}
		any_should = should_hit = required = 0;
		for (k = 0; k < sizeof(occurs) / sizeof(occurs[0]); k++) {
			json_t *list = json_object_get(spec, occurs[k]), *one;

			if (list == NULL)
				continue;
			if (k < 2)
				required = 1;
			one = json_is_array(list) ? NULL : list;
			for (i = 0; one != NULL ? i < 1 : i < json_array_size(list);
			    i++) {
				c = one != NULL ? one : json_array_get(list, i);
				if ((r = eval_query(c, doc, reason, rlen)) < 0)
					return -1;
				if (k < 2 && !r)
					return 0;
				if (k == 2) {
					any_should = 1;
					should_hit |= r;
				}
				if (k == 3 && r)
					return 0;
			}
		}
		return !any_should || should_hit || required;
	}
	if (parse_query(query, &q, reason, rlen) != 0)
		return -1;
	return doc_matches(source, &q);
}

/* 1 if field NAME is covered by PATTERN ("a", "a*", "a.*"): the name
 * itself, a prefix before a '*', or a parent object. */
static int
source_pattern_hit(const char *pattern, const char *name)
{
	size_t pl = strlen(pattern);

	if (pl > 0 && pattern[pl - 1] == '*')
		return strncmp(name, pattern, pl - 1) == 0;
	return strcmp(name, pattern) == 0 ||
	    (strncmp(name, pattern, pl) == 0 && name[pl] == '.');
}

static int
source_list_hit(json_t *list, const char *name)
{
	json_t *p;
	size_t i;

	if (json_is_string(list))
		return source_pattern_hit(json_string_value(list), name);
	json_array_foreach(list, i, p)
		if (json_is_string(p) &&
		    source_pattern_hit(json_string_value(p), name))
			return 1;
	return 0;
}

/* SRC narrowed by a search's "_source" (false, a list of includes, or
 * {"includes", "excludes"}), as Elasticsearch does for top-level fields;
 * a new reference, or NULL for none at all. */
static json_t *
source_filter(json_t *src, json_t *spec)
{
	json_t *inc = NULL, *exc = NULL, *out, *v;
	const char *k;

	if (spec == NULL || json_is_true(spec))
		return json_incref(src);
	if (json_is_false(spec))
		return NULL;
	if (json_is_object(spec)) {
		inc = json_object_get(spec, "includes");
		exc = json_object_get(spec, "excludes");
		if (json_is_array(inc) && json_array_size(inc) == 0)
			inc = NULL;
	} else
		inc = spec;
	out = json_object();
	json_object_foreach(src, k, v) {
		if (inc != NULL && !source_list_hit(inc, k))
			continue;
		if (exc != NULL && source_list_hit(exc, k))
			continue;
		json_object_set(out, k, v);
	}
	return out;
}

/* A "terms" aggregation's buckets over the matching documents (the only
 * kind esdemo runs; others answer no buckets). */
static json_t *
run_aggs(json_t *aggs, json_t *matched)
{
	json_t *out = json_object(), *spec, *doc;
	const char *name;

	json_object_foreach(aggs, name, spec) {
		json_t *terms = json_object_get(spec, "terms"), *counts, *buckets;
		const char *field, *key;
		char base[256];
		size_t i, len;
		json_t *n;

		buckets = json_array();
		if (json_is_object(terms) &&
		    json_is_string(json_object_get(terms, "field"))) {
			field = json_string_value(json_object_get(terms, "field"));
			len = strlen(field);
			if (len > 8 && strcmp(field + len - 8, ".keyword") == 0)
				len -= 8;
			snprintf(base, sizeof(base), "%.*s", (int)len, field);
			counts = json_object();
			json_array_foreach(matched, i, doc) {
				json_t *v = json_object_get(
				    json_object_get(doc, "_source"), base);
				char kb[64];

				if (json_is_string(v))
					key = json_string_value(v);
				else if (json_is_integer(v)) {
					snprintf(kb, sizeof(kb), "%lld",
					    (long long)json_integer_value(v));
					key = kb;
				} else
					continue;
				n = json_object_get(counts, key);
				json_object_set_new(counts, key, json_integer(
				    n != NULL ? json_integer_value(n) + 1 : 1));
			}
			json_object_foreach(counts, key, n)
				json_array_append_new(buckets, json_pack(
				    "{s:s, s:O}", "key", key, "doc_count", n));
			json_decref(counts);
		}
		json_object_set_new(out, name, json_pack("{s:i, s:i, s:o}",
		    "doc_count_error_upper_bound", 0, "sum_other_doc_count", 0,
		    "buckets", buckets));
	}
	return out;
}

/*
 * One search of INDEX_SPEC with BODY (may be NULL) and, with REQ, the
 * request's q, from and size parameters.  The answer, or NULL with
 * *STATUS, REASON and (for a missing index) *MISSING.  COUNT: only the
 * number of hits, as _count answers.
 */
static json_t *
run_search(struct esdemo *ed, h2o_req_t *req, h2o_req_t *pool_req,
    const char *index_spec, json_t *body, int count, int *status,
    const char **missing, char *reason, size_t rlen)
{
	const char *names[8], *q = NULL;
	json_t *hits, *body_query = NULL, *matched, *res, *aggs;
	struct query query = { QUERY_MATCH_ALL, NULL, NULL, NULL };
	uint64_t from = 0, size = 10, total = 0;
	int nidx, i, r;

	*status = 400;
	nidx = resolve_indices(ed, pool_req, index_spec, names, 8, missing);
	if (nidx < 0) {
		*status = 404;
		snprintf(reason, rlen, "no such index [%s]", *missing);
		return NULL;
	}
	if (body != NULL && (body_query = json_object_get(body, "query")) != NULL) {
		/* checked once, on no document: an unknown kind is an error
		 * even when nothing would be compared with it */
		json_t *none = json_pack("{s:{}}", "_source");

		r = eval_query(body_query, none, reason, rlen);
		json_decref(none);
		if (r < 0)
			return NULL;
	}
	if (req != NULL && (q = query_get(req, "q")) != NULL) {
		const char *colon = strchr(q, ':');

		query.kind = QUERY_QSTRING;
		query.text = q;
		if (colon != NULL) {
			char *field = h2o_mem_alloc_pool(&req->pool,
			    (size_t)(colon - q) + 1);

			memcpy(field, q, (size_t)(colon - q));
			field[colon - q] = '\0';
			query.field = field;
			query.text = colon + 1;
		}
	}
	if (!count && (body_or_param_uint(req, body, "from", 0, &from, reason,
	    rlen) != 0 || body_or_param_uint(req, body, "size", 10, &size,
	    reason, rlen) != 0))
		return NULL;

	hits = json_array();
	matched = json_array();
	for (i = 0; i < nidx; i++) {
		json_t *docs = json_object_get(ed->docs, names[i]), *doc;
		size_t j;

		json_array_foreach(docs, j, doc) {
			json_t *src = json_object_get(doc, "_source");

			if (q != NULL || body_query == NULL) {
				if (!doc_matches(src, &query))
					continue;
			} else if (eval_query(body_query, doc, reason, rlen) != 1)
				continue;
			json_array_append(matched, doc);
			if (total >= from && total - from < size) {
				json_t *hit = json_pack("{s:s, s:O, s:f}",
				    "_index", names[i], "_id",
				    json_object_get(doc, "_id"), "_score", 1.0),
				    *shown = source_filter(src, body != NULL &&
				    esdemo_rich ?
				    json_object_get(body, "_source") : NULL);

				if (shown != NULL)
					json_object_set_new(hit, "_source", shown);
				json_array_append_new(hits, hit);
			}
			total++;
		}
	}
	if (count) {
		json_decref(hits);
		json_decref(matched);
		return json_pack("{s:I, s:{s:i, s:i, s:i, s:i}}",
		    "count", (json_int_t)total, "_shards", "total", nidx,
		    "successful", nidx, "skipped", 0, "failed", 0);
	}
	res = json_pack(
	    "{s:i, s:b, s:{s:i, s:i, s:i, s:i},"
	    " s:{s:{s:I, s:s}, s:o, s:o}}",
	    "took", 1, "timed_out", 0,
	    "_shards", "total", nidx, "successful", nidx, "skipped", 0,
	    "failed", 0,
	    "hits", "total", "value", (json_int_t)total, "relation", "eq",
	    "max_score", total > 0 ? json_real(1.0) : json_null(),
	    "hits", hits);
	if (esdemo_rich && body != NULL &&
	    ((aggs = json_object_get(body, "aggs")) != NULL ||
	    (aggs = json_object_get(body, "aggregations")) != NULL) &&
	    json_is_object(aggs))
		json_object_set_new(res, "aggregations", run_aggs(aggs, matched));
	json_decref(matched);
	return res;
}

/* The request's body as a JSON object, or NULL for none; -1 after
 * answering 400. */
static int
load_body(h2o_req_t *req, json_t **out)
{
	char reason[512];
	json_error_t jerr;
	json_t *body;

	*out = NULL;
	if (req->entity.base == NULL || req->entity.len == 0)
		return 0;
	body = json_loadb(req->entity.base, req->entity.len, 0, &jerr);
	if (body == NULL || !json_is_object(body)) {
		if (body == NULL)
			snprintf(reason, sizeof(reason),
			    "request body is not valid JSON: %s "
			    "(line %d, column %d)", jerr.text,
			    jerr.line, jerr.column);
		else
			snprintf(reason, sizeof(reason),
			    "request body must be a JSON object");
		json_decref(body);
		respond_es_error(req, 400, "parsing_exception", reason);
		return -1;
	}
	*out = body;
	return 0;
}

static void
handle_search(struct esdemo *ed, h2o_req_t *req, const char *index_spec,
    int gzip, int count)
{
	const char *missing = NULL;
	char reason[512];
	json_t *body, *res;
	int status;

	if (load_body(req, &body) != 0)
		return;
	res = run_search(ed, req, req, index_spec, body, count, &status,
	    &missing, reason, sizeof(reason));
	json_decref(body);
	if (res == NULL && status == 404)
		respond_es_error_index(req, 404, "index_not_found_exception",
		    reason, missing);
	else if (res == NULL)
		respond_es_error(req, 400, "parsing_exception", reason);
	else
		respond_json_enc(req, 200, res, gzip);
}

/* _msearch: NDJSON header and body lines; one answer per pair. */
static void
handle_msearch(struct esdemo *ed, h2o_req_t *req, const char *index_spec)
{
	const char *p = req->entity.base, *end, *missing;
	json_t *responses = json_array(), *header = NULL, *line, *res;
	char reason[512];
	int status;

	if (p == NULL || req->entity.len == 0) {
		json_decref(responses);
		respond_es_error(req, 400, "action_request_validation_exception",
		    "msearch request must have a body");
		return;
	}
	end = p + req->entity.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (n == 0) {
			p = nl != NULL ? nl + 1 : end;
			continue;
		}
		line = json_loadb(p, n, 0, NULL);
		p = nl != NULL ? nl + 1 : end;
		if (!json_is_object(line)) {
			json_decref(line);
			json_decref(header);
			json_decref(responses);
			respond_es_error(req, 400, "parsing_exception",
			    "an msearch line is not a JSON object");
			return;
		}
		if (header == NULL) {
			header = line;
			continue;
		}
		missing = NULL;
		res = run_search(ed, NULL, req,
		    json_is_string(json_object_get(header, "index")) ?
		    json_string_value(json_object_get(header, "index")) :
		    index_spec, line, 0, &status, &missing, reason,
		    sizeof(reason));
		if (res == NULL)
			res = json_pack("{s:{s:s, s:s}, s:i}", "error", "type",
			    status == 404 ? "index_not_found_exception" :
			    "parsing_exception", "reason", reason, "status",
			    status);
		else
			json_object_set_new(res, "status", json_integer(200));
		json_array_append_new(responses, res);
		json_decref(line);
		json_decref(header);
		header = NULL;
	}
	json_decref(header);
	respond_json(req, 200, json_pack("{s:i, s:o}", "took", 1, "responses",
	    responses));
}

static void
handle_doc(struct esdemo *ed, h2o_req_t *req, const char *index,
    const char *id)
{
	json_t *docs, *doc;
	char reason[512];
	size_t i;

	if (!index_known(ed, index)) {
		snprintf(reason, sizeof(reason), "no such index [%s]", index);
		respond_es_error_index(req, 404, "index_not_found_exception",
		    reason, index);
		return;
	}
	docs = json_object_get(ed->docs, index);
	json_array_foreach(docs, i, doc) {
		if (strcmp(json_string_value(json_object_get(doc, "_id")),
		    id) != 0)
			continue;
		respond_json(req, 200, json_pack(
		    "{s:s, s:s, s:i, s:I, s:i, s:b, s:O}", "_index", index,
		    "_id", id, "_version", 1, "_seq_no", (json_int_t)i,
		    "_primary_term", 1, "found", 1,
		    "_source", json_object_get(doc, "_source")));
		return;
	}
	respond_json(req, 404, json_pack("{s:s, s:s, s:b}", "_index", index,
	    "_id", id, "found", 0));
}

static void
handle_health(struct esdemo *ed, h2o_req_t *req)
{
	json_t *b;

	b = json_pack("{s:s, s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i}",
	    "cluster_name", ed->cluster_name, "status", "green",
	    "timed_out", 0, "number_of_nodes", 1, "number_of_data_nodes", 1,
	    "active_primary_shards", (int)json_object_size(ed->docs),
	    "active_shards", (int)json_object_size(ed->docs),
	    "relocating_shards", 0, "initializing_shards", 0);
	json_object_set_new(b, "unassigned_shards", json_integer(0));
	json_object_set_new(b, "delayed_unassigned_shards", json_integer(0));
	json_object_set_new(b, "number_of_pending_tasks", json_integer(0));
	json_object_set_new(b, "number_of_in_flight_fetch", json_integer(0));
	json_object_set_new(b, "task_max_waiting_in_queue_millis",
	    json_integer(0));
	json_object_set_new(b, "active_shards_percent_as_number",
	    json_real(100.0));
	respond_json(req, 200, b);
}

static json_t *
node_json(const char *name, const struct peer *p, int master, int data)
{
	json_t *roles;
	char transport[sizeof(p->addr)];

	roles = json_array();
	if (data) {
		json_array_append_new(roles, json_string("data"));
		/* A real data+master node is an ingest node too by default. */
		if (master)
			json_array_append_new(roles, json_string("ingest"));
	}
	if (master)
		json_array_append_new(roles, json_string("master"));
	snprintf(transport, sizeof(transport),
	    strchr(p->host, ':') != NULL ? "[%s]:%u" : "%s:%u", p->host,
	    ESDEMO_TRANSPORT_PORT);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:[s], s:s, s:I}}",
	    "name", name, "transport_address", transport, "host", p->host,
	    "ip", p->host, "version", "8.11.0", "roles", roles,
	    "http", "bound_address", p->addr, "publish_address", p->addr,
	    "max_content_length_in_bytes", (json_int_t)ESDEMO_MAX_CONTENT);
}

/*
 * GET /_nodes/http, what a sniffing client asks: this node and every
 * peer.  filter_path and the like are ignored; clients read the same keys
 * either way.  A peer given twice (or equal to us) is one node, as its id
 * is.
 */
static void
handle_nodes(struct esdemo *ed, h2o_req_t *req)
{
	json_t *nodes;
	char id[23], name[32];
	size_t i, total;

	nodes = json_object();
	node_id(ed->self.addr, id);
	json_object_set_new(nodes, id,
	    node_json(ed->name, &ed->self, 1, !ed->master_only));
	for (i = 0; i < ed->npeers; i++) {
		snprintf(name, sizeof(name), "peer-%zu", i + 1);
		node_id(ed->peers[i].addr, id);
		if (json_object_get(nodes, id) == NULL)
			json_object_set_new(nodes, id,
			    node_json(name, &ed->peers[i], 0, 1));
	}
	total = json_object_size(nodes);
	respond_json(req, 200, json_pack("{s:{s:I, s:I, s:i}, s:s, s:o}",
	    "_nodes", "total", (json_int_t)total, "successful",
	    (json_int_t)total, "failed", 0, "cluster_name", ed->cluster_name,
	    "nodes", nodes));
}

/* ---- /_esdemo/big ------------------------------------------------------- */

/*
 * {"data":"0123456789abcdef0123..."} of exactly N bytes: the padding
 * repeats a 16-byte pattern from its first byte, so a test can rebuild the
 * body (and its hash) from N alone.  Streamed from one shared buffer of the
 * pattern; nothing of size N is ever allocated.
 */
static const char big_prefix[] = "{\"data\":\"";
static const char big_suffix[] = "\"}";
static const char big_pattern[] = "0123456789abcdef";
#define BIG_PATTERN_LEN		(sizeof(big_pattern) - 1)

/* ESDEMO_BIG_CHUNK of padding starting at any phase of the pattern. */
static char big_padding[ESDEMO_BIG_CHUNK + BIG_PATTERN_LEN];

struct big_gen {
	h2o_generator_t	 super;
	uint64_t	 total;
	uint64_t	 sent;
	h2o_iovec_t	 bufs[3];	/* prefix, padding, suffix at most */
};

static void
big_padding_init(void)
{
	size_t i;

	for (i = 0; i < sizeof(big_padding); i++)
		big_padding[i] = big_pattern[i % BIG_PATTERN_LEN];
}

/*
 * Called once to start and then by h2o each time the previous chunk is
 * out; every buffer points at static data, so it outlives the send.
 */
static void
big_proceed(h2o_generator_t *self, h2o_req_t *req)
{
	struct big_gen *bg = (struct big_gen *)self;
	uint64_t pre = sizeof(big_prefix) - 1, suf = sizeof(big_suffix) - 1;
	uint64_t pad_end = bg->total - suf, room = ESDEMO_BIG_CHUNK, len;
	size_t n = 0;

	while (room > 0 && bg->sent < bg->total) {
		uint64_t off = bg->sent;

		if (off < pre) {
			len = pre - off;
			bg->bufs[n].base = (char *)(uintptr_t)(big_prefix + off);
		} else if (off < pad_end) {
			len = pad_end - off;
			bg->bufs[n].base = big_padding +
			    (off - pre) % BIG_PATTERN_LEN;
		} else {
			len = bg->total - off;
			bg->bufs[n].base = (char *)(uintptr_t)(big_suffix +
			    (off - pad_end));
		}
		if (len > room)
			len = room;
		bg->bufs[n++].len = (size_t)len;
		bg->sent += len;
		room -= len;
	}
	h2o_send(req, bg->bufs, n, bg->sent == bg->total ?
	    H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* The client went away mid-body: the pool frees bg, nothing else to do. */
static void
big_stop(h2o_generator_t *self, h2o_req_t *req)
{
}

static void
handle_big(struct esdemo *ed, h2o_req_t *req)
{
	const char *param;
	struct big_gen *bg;
	uint64_t n;
	char reason[256];

	if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
		respond_es_error(req, 405, "method_not_allowed",
		    "/_esdemo/big takes GET");
		return;
	}
	if ((param = query_get(req, "bytes")) == NULL ||
	    parse_uint(param, strlen(param), ESDEMO_BIG_MAX, &n) != 0 ||
	    n < ESDEMO_BIG_MIN) {
		snprintf(reason, sizeof(reason), "want bytes=%d..%d",
		    ESDEMO_BIG_MIN, ESDEMO_BIG_MAX);
		respond_es_error(req, 400, "illegal_argument_exception", reason);
		return;
	}
	bg = h2o_mem_alloc_pool(&req->pool, sizeof(*bg));
	memset(bg, 0, sizeof(*bg));
	bg->super.proceed = big_proceed;
	bg->super.stop = big_stop;
	bg->total = n;
	req->res.status = 200;
	req->res.reason = status_reason(200);
	req->res.content_length = (size_t)n;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
	    NULL, H2O_STRLIT("application/json; charset=UTF-8"));
	h2o_add_header_by_str(&req->pool, &req->res.headers,
	    H2O_STRLIT("x-elastic-product"), 0, "X-Elastic-Product",
	    H2O_STRLIT("Elasticsearch"));
	h2o_start_response(req, &bg->super);
	if (method_is(req, "HEAD"))
		h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
	else
		big_proceed(&bg->super, req);
}

static void
respond_no_handler(h2o_req_t *req)
{
	h2o_iovec_t path = req_path(req);
	char reason[512];

	snprintf(reason, sizeof(reason),
	    "no handler found for uri [%.*s] and method [%.*s]",
	    (int)(path.len > 300 ? 300 : path.len), path.base,
	    (int)(req->method.len > 32 ? 32 : req->method.len),
	    req->method.base);
	respond_es_error(req, 404, "resource_not_found_exception", reason);
}

/* The ES API proper, once the knobs have had their say. */
static void
handle_es(struct esdemo *ed, h2o_req_t *req, const struct knobs *k)
{
	char *segs[4];
	int n;

	if (!method_is(req, "GET") && !method_is(req, "HEAD") &&
	    !method_is(req, "POST")) {
		h2o_iovec_t path = req_path(req);
		char reason[512];
		json_t *b;

		snprintf(reason, sizeof(reason),
		    "Incorrect HTTP method for uri [%.*s] and method [%.*s], "
		    "allowed: [GET, HEAD, POST]",
		    (int)(path.len > 300 ? 300 : path.len), path.base,
		    (int)(req->method.len > 32 ? 32 : req->method.len),
		    req->method.base);
		/* ES 8 answers 405 with this flat shape. */
		b = json_pack("{s:s, s:i}", "error", reason, "status", 405);
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW,
		    NULL, H2O_STRLIT("GET, HEAD, POST"));
		respond_json(req, 405, b);
		return;
	}
	n = path_segments(req, segs, 4);
	if (n == 0 && !method_is(req, "POST")) {
		respond_raw_enc(req, 200, ed->info_body, strlen(ed->info_body),
		    k->gzip);
	} else if (((n == 2 && strcmp(segs[1], "http") == 0) ||
	    (n == 3 && strcmp(segs[1], "_all") == 0 &&
	    strcmp(segs[2], "http") == 0)) && strcmp(segs[0], "_nodes") == 0 &&
	    !method_is(req, "POST")) {
		handle_nodes(ed, req);
	} else if (n == 2 && strcmp(segs[0], "_cluster") == 0 &&
	    strcmp(segs[1], "health") == 0 && !method_is(req, "POST")) {
		handle_health(ed, req);
	} else if (n == 1 && strcmp(segs[0], "_search") == 0) {
		handle_search(ed, req, NULL, k->gzip, 0);
	} else if (n == 2 && strcmp(segs[1], "_search") == 0 &&
	    segs[0][0] != '_') {
		handle_search(ed, req, segs[0], k->gzip, 0);
	} else if (esdemo_rich && n == 2 && strcmp(segs[1], "_count") == 0 &&
	    segs[0][0] != '_') {
		handle_search(ed, req, segs[0], k->gzip, 1);
	} else if (esdemo_rich && n == 2 && strcmp(segs[1], "_msearch") == 0 &&
	    segs[0][0] != '_' && method_is(req, "POST")) {
		handle_msearch(ed, req, segs[0]);
	} else if (n == 3 && strcmp(segs[1], "_doc") == 0 &&
	    segs[0][0] != '_' && !method_is(req, "POST")) {
		handle_doc(ed, req, segs[0], segs[2]);
	} else
		respond_no_handler(req);
}

/*
 * --close: the client must see the connection end with no response byte.
 * h2o has no public "abort this connection", so shut the socket down under
 * it, then answer normally: the write fails (EPIPE, SIGPIPE is ignored)
 * and h2o closes and frees the connection through its usual error path.
 * For HTTP/2 this ends every stream on the connection, as a real dropped
 * connection would.
 */
static void
drop_connection(h2o_req_t *req)
{
	h2o_socket_t *sock = NULL;

	if (req->conn->callbacks->get_socket != NULL)
		sock = req->conn->callbacks->get_socket(req->conn);
	if (sock != NULL)
		shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
	else
		log_warnx("close: request has no socket, answering instead");
	req->http1_is_persistent = 0;
	respond_es_error(req, 500, "esdemo_close", "connection dropped");
}

static int
is_big(h2o_req_t *req)
{
	h2o_iovec_t path = req_path(req);

	return h2o_memis(path.base, path.len,
	    H2O_STRLIT(ESDEMO_CONTROL_PREFIX "big"));
}

static void
answer(struct esdemo *ed, h2o_req_t *req, const struct knobs *k)
{
	char reason[128];

	if (k->close) {
		drop_connection(req);
		return;
	}
	if (k->status != 0) {
		snprintf(reason, sizeof(reason), "esdemo forced status %d",
		    k->status);
		respond_es_error(req, k->status, "esdemo_forced_status_exception",
		    reason);
		return;
	}
	if (is_big(req))
		handle_big(ed, req);
	else
		handle_es(ed, req, k);
}

/* ---- latency ---------------------------------------------------------- */

static h2o_timeout_t *
latency_timeout_get(struct esdemo *ed, uint64_t ms)
{
	struct latency_timeout *lt;

	for (lt = ed->timeouts; lt != NULL; lt = lt->next)
		if (lt->ms == ms)
			return &lt->timeout;
	if ((lt = calloc(1, sizeof(*lt))) == NULL)
		return NULL;
	lt->ms = ms;
	h2o_timeout_init(&ed->ctx.loop[0], &lt->timeout, ms);
	lt->next = ed->timeouts;
	ed->timeouts = lt;
	return &lt->timeout;
}

static void
delayed_unlink(struct delayed_req *dr)
{
	if (h2o_timeout_is_linked(&dr->timer))
		h2o_timeout_unlink(&dr->timer);
	if (h2o_linklist_is_linked(&dr->link))
		h2o_linklist_unlink(&dr->link);
}

/* The request's pool is going away; make sure the timer cannot fire. */
static void
delayed_dispose(void *p)
{
	delayed_unlink(p);
}

static void
delayed_fire(struct delayed_req *dr)
{
	delayed_unlink(dr);
	answer(dr->ed, dr->req, &dr->knobs);
}

static void
on_latency_timeout(h2o_timeout_entry_t *entry)
{
	delayed_fire(H2O_STRUCT_FROM_MEMBER(struct delayed_req, timer, entry));
}

/* ---- the one handler ------------------------------------------------- */

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct esdemo *ed = ((struct esdemo_handler *)self)->ed;
	h2o_iovec_t path = req_path(req);
	struct delayed_req *dr;
	h2o_timeout_t *to;

	if (path.len >= strlen(ESDEMO_CONTROL_PREFIX) &&
	    memcmp(path.base, ESDEMO_CONTROL_PREFIX,
	    strlen(ESDEMO_CONTROL_PREFIX)) == 0 && !is_big(req)) {
		handle_control(ed, req);
		return 0;
	}

	ed->requests++;
	count_path(ed, req);
	record_request(ed, req);
	if (ed->knobs.latency_ms == 0 ||
	    (to = latency_timeout_get(ed, ed->knobs.latency_ms)) == NULL) {
		answer(ed, req, &ed->knobs);
		return 0;
	}
	dr = h2o_mem_alloc_shared(&req->pool, sizeof(*dr), delayed_dispose);
	memset(dr, 0, sizeof(*dr));
	dr->ed = ed;
	dr->req = req;
	dr->knobs = ed->knobs;
	dr->timer.cb = on_latency_timeout;
	h2o_linklist_insert(&ed->delayed, &dr->link);
	h2o_timeout_link(ed->loop, to, &dr->timer);
	return 0;
}

/* ---- connections ------------------------------------------------------ */

static void
on_conn_close(void *p)
{
	struct tracked_conn *tc = p;

	h2o_linklist_unlink(&tc->link);
	free(tc);
}

static void
format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else
		snprintf(buf, len, "unknown");
}

static void
on_accept(h2o_socket_t *listener, const char *err)
{
	struct esdemo *ed = listener->data;
	struct sockaddr_storage ss;
	struct tracked_conn *tc;
	h2o_socket_t *sock;

	if (err != NULL)
		return;
	if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
		return;
	ed->total_accepted++;
	/*
	 * h2o's server side never uses on_close (only the client socket pool
	 * does), and it fires from the one place every socket is disposed, so
	 * it is exactly "this connection is gone" for HTTP/1 and HTTP/2.
	 */
	if ((tc = calloc(1, sizeof(*tc))) != NULL) {
		tc->sock = sock;
		memset(&ss, 0, sizeof(ss));
		if (h2o_socket_getpeername(sock, (struct sockaddr *)&ss) == 0)
			snprintf(tc->peer, sizeof(tc->peer), "unknown");
		else
			format_addr((struct sockaddr *)&ss, tc->peer,
			    sizeof(tc->peer));
		h2o_linklist_insert(&ed->conns, &tc->link);
		sock->on_close.cb = on_conn_close;
		sock->on_close.data = tc;
	}
	h2o_accept(&ed->accept_ctx, sock);
}

/*
 * What /_nodes/http publishes for us.  A wildcard address cannot be
 * connected to, so publish loopback then, as a test client runs here.
 */
static void
set_self(struct esdemo *ed, const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			snprintf(host, sizeof(host), "::1");
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			snprintf(host, sizeof(host), "127.0.0.1");
		else
			inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	}
	peer_set(&ed->self, host, strlen(host), port);
}

static void
listen_or_die(struct esdemo *ed)
{
	struct addrinfo hints, *res;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char portstr[16], addr[INET6_ADDRSTRLEN + 8];
	int fd, on = 1, gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", ed->port);
	if ((gai = getaddrinfo(ed->host, portstr, &hints, &res)) != 0)
		log_fatalx("bad --host %s: %s", ed->host, gai_strerror(gai));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		log_fatal("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0)
		log_fatal("setsockopt SO_REUSEADDR");
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0)
		log_fatal("bind %s port %u", ed->host, ed->port);
	freeaddrinfo(res);
	if (listen(fd, SOMAXCONN) != 0)
		log_fatal("listen");
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0)
		log_fatal("getsockname");
	format_addr((struct sockaddr *)&ss, addr, sizeof(addr));
	set_self(ed, &ss);

	ed->listener = h2o_evloop_socket_create(ed->loop, fd,
	    H2O_SOCKET_FLAG_DONT_READ);
	ed->listener->data = ed;
	h2o_socket_read_start(ed->listener, on_accept);

	/* Tests read this line to learn the port picked for --port 0. */
	printf("esdemo listening on %s\n", addr);
	fflush(stdout);
	log_info("listening on %s", addr);
}

/* ---- setup and teardown ---------------------------------------------- */

static void
build_info(struct esdemo *ed)
{
	json_t *info;

	H2O_BUILD_ASSERT(sizeof(ESDEMO_CLUSTER_UUID) - 1 == 22);
	info = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:b,"
	    " s:s, s:s, s:s}, s:s}",
	    "name", ed->name, "cluster_name", ed->cluster_name,
	    "cluster_uuid", ESDEMO_CLUSTER_UUID,
	    "version",
	    "number", "8.11.0", "build_flavor", "default", "build_type", "deb",
	    "build_hash", "76013fa76dcbf144c886990c6290715f5dc2ae20",
	    "build_date", "2023-11-08T10:05:56.292914697Z",
	    "build_snapshot", 0, "lucene_version", "9.8.0",
	    "minimum_wire_compatibility_version", "7.17.0",
	    "minimum_index_compatibility_version", "7.0.0",
	    "tagline", "You Know, for Search");
	if (info == NULL)
		log_fatalx("cannot build the info document (bad --name?)");
	ed->info_body = json_dumps(info, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(info);
	if (ed->info_body == NULL)
		log_fatalx("out of memory");
}

static void
parse_args(struct esdemo *ed, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host",		required_argument,	NULL, 'H' },
		{ "port",		required_argument,	NULL, 'p' },
		{ "name",		required_argument,	NULL, 'n' },
		{ "latency",		required_argument,	NULL, 'l' },
		{ "status",		required_argument,	NULL, 's' },
		{ "close",		no_argument,		NULL, 'c' },
		{ "record",		required_argument,	NULL, 'r' },
		{ "idle-timeout",	required_argument,	NULL, 'i' },
		{ "cluster-name",	required_argument,	NULL, 'C' },
		{ "peers",		required_argument,	NULL, 'P' },
		{ "master-only",	no_argument,		NULL, 'M' },
		{ "tenants",		no_argument,		NULL, 'T' },
		{ "help",		no_argument,		NULL, 'h' },
		{ NULL,			0,			NULL, 0 },
	};
	uint64_t v;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			ed->host = optarg;
			break;
		case 'p':
			if (parse_uint(optarg, strlen(optarg), 65535, &v) != 0)
				log_fatalx("bad --port %s", optarg);
			ed->port = (unsigned)v;
			break;
		case 'n':
			ed->name = optarg;
			break;
		case 'l':
			if (parse_uint(optarg, strlen(optarg), 3600000, &v) != 0)
				log_fatalx("bad --latency %s (ms, max 3600000)",
				    optarg);
			ed->knobs.latency_ms = v;
			break;
		case 's':
			if (parse_uint(optarg, strlen(optarg), 999, &v) != 0 ||
			    !status_is_valid(v))
				log_fatalx("bad --status %s (0 or 200..599)",
				    optarg);
			ed->knobs.status = (int)v;
			break;
		case 'c':
			ed->knobs.close = 1;
			break;
		case 'T':
			ed->tenants = esdemo_rich = 1;
			break;
		case 'r':
			ed->record_path = optarg;
			break;
		case 'i':
			if (parse_uint(optarg, strlen(optarg), 86400000, &v) != 0 ||
			    v == 0)
				log_fatalx("bad --idle-timeout %s (ms, > 0)",
				    optarg);
			ed->idle_timeout_ms = v;
			break;
		case 'C':
			ed->cluster_name = optarg;
			break;
		case 'P':
			free(ed->peers);
			if (parse_peers(optarg, &ed->peers, &ed->npeers) != 0)
				log_fatalx("bad --peers %s (HOST:PORT,...; at "
				    "most %d)", optarg, ESDEMO_MAX_PEERS);
			break;
		case 'M':
			ed->master_only = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
}

/*
 * Ends every connection so h2o's own timeouts are empty, which
 * h2o_context_dispose asserts.  Waiting requests are answered at once
 * (the writes fail on the shut-down sockets), then the loop runs until the
 * on_close callbacks have emptied the list.  Returns 0 when all are gone.
 */
static int
drain(struct esdemo *ed)
{
	h2o_linklist_t *node;
	struct timespec start, now;
	long elapsed_ms;

	h2o_socket_read_stop(ed->listener);
	h2o_socket_close(ed->listener);
	ed->listener = NULL;

	/*
	 * Shutting the sockets down makes h2o see EOF (idle connections) or
	 * a failed write (busy ones) and close them the normal way; nobody is
	 * left waiting for a graceful HTTP/2 GOAWAY round trip.
	 */
	for (node = ed->conns.next; node != &ed->conns; node = node->next) {
		struct tracked_conn *tc = H2O_STRUCT_FROM_MEMBER(
		    struct tracked_conn, link, node);

		shutdown(h2o_socket_get_fd(tc->sock), SHUT_RDWR);
	}
	while (!h2o_linklist_is_empty(&ed->delayed)) {
		struct delayed_req *dr = H2O_STRUCT_FROM_MEMBER(
		    struct delayed_req, link, ed->delayed.next);

		delayed_fire(dr);
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (h2o_linklist_is_empty(&ed->conns))
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed_ms >= ESDEMO_DRAIN_MS)
			break;
		h2o_evloop_run(ed->loop, 50);
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct esdemo ed;
	struct esdemo_handler *handler;
	h2o_hostconf_t *hostconf;
	h2o_pathconf_t *pathconf;
	struct sigaction sa;
	json_error_t jerr;
	int clean;

	log_init("esdemo");
	memset(&ed, 0, sizeof(ed));
	ed.host = "127.0.0.1";
	ed.port = 9200;
	ed.name = "esdemo-1";
	ed.cluster_name = ESDEMO_CLUSTER_NAME;
	/* ES keeps idle connections open; h2o's 10 s default would not. */
	ed.idle_timeout_ms = 60000;
	parse_args(&ed, argc, argv);
	log_info("esdemo starting: libh2o %s, jansson %s", H2O_VERSION,
	    JANSSON_VERSION);

	/* No SA_RESTART: epoll_wait returns early and the flag is seen. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = esdemo_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((ed.docs = json_loads(esdemo_docs_json, 0, &jerr)) == NULL)
		log_fatalx("built-in documents: %s", jerr.text);
	if (ed.tenants) {
		json_t *t = json_loads(esdemo_tenant_docs_json, 0, &jerr);

		if (t == NULL)
			log_fatalx("tenant documents: %s", jerr.text);
		json_object_set_new(ed.docs, "shared", t);
	}
	build_info(&ed);
	big_padding_init();
	if ((ed.paths = json_object()) == NULL)
		log_fatalx("out of memory");
	if (ed.record_path != NULL &&
	    (ed.record = fopen(ed.record_path, "a")) == NULL)
		log_fatal("--record %s", ed.record_path);
	h2o_linklist_init_anchor(&ed.conns);
	h2o_linklist_init_anchor(&ed.delayed);

	h2o_config_init(&ed.config);
	ed.config.server_name = h2o_iovec_init(H2O_STRLIT("esdemo"));
	ed.config.http1.req_timeout = ed.idle_timeout_ms;
	ed.config.http2.idle_timeout = ed.idle_timeout_ms;
	hostconf = h2o_config_register_host(&ed.config,
	    h2o_iovec_init(H2O_STRLIT("default")), 65535);
	pathconf = h2o_config_register_path(hostconf, "/", 0);
	handler = (struct esdemo_handler *)h2o_create_handler(pathconf,
	    sizeof(*handler));
	handler->super.on_req = on_req;
	handler->ed = &ed;

	ed.loop = h2o_evloop_create();
	h2o_context_init(&ed.ctx, ed.loop, &ed.config);
	ed.accept_ctx.ctx = &ed.ctx;
	ed.accept_ctx.hosts = ed.config.hosts;
	listen_or_die(&ed);
	if (ed.npeers != 0 || ed.master_only)
		log_info("cluster %s: %zu peers%s", ed.cluster_name, ed.npeers,
		    ed.master_only ? ", master-only" : "");
	if (ed.knobs.latency_ms != 0 || ed.knobs.status != 0 || ed.knobs.close)
		log_info("knobs: latency_ms=%llu status=%d close=%d",
		    (unsigned long long)ed.knobs.latency_ms, ed.knobs.status,
		    ed.knobs.close);

	/* A bounded wait so the stop flag is seen even without EINTR. */
	while (!esdemo_stop)
		h2o_evloop_run(ed.loop, 100);

	log_info("stopping");
	clean = drain(&ed) == 0;
	if (clean) {
		struct latency_timeout *lt;
		/*
		 * h2o 2.2.5's h2o_multithread_destroy_queue closes the
		 * queue's pipe but never frees the queue itself; free it
		 * here, once the context is done with it.
		 */
		h2o_multithread_queue_t *queue = ed.ctx.queue;

		h2o_context_dispose(&ed.ctx);
		while ((lt = ed.timeouts) != NULL) {
			ed.timeouts = lt->next;
			h2o_timeout_dispose(ed.loop, &lt->timeout);
			free(lt);
		}
		h2o_evloop_destroy(ed.loop);
		h2o_config_dispose(&ed.config);
		free(queue);
	} else {
		/*
		 * Some connection would not go: h2o_context_dispose would
		 * assert on its still-linked timeouts, so leave the h2o state
		 * to the exit.
		 */
		log_warnx("connections still open after %d ms, exiting anyway",
		    ESDEMO_DRAIN_MS);
	}
	if (ed.record != NULL)
		fclose(ed.record);
	json_decref(ed.docs);
	json_decref(ed.paths);
	json_decref(ed.last);
	free(ed.peers);
	free(ed.info_body);
	log_info("stopped");
	return 0;
}
