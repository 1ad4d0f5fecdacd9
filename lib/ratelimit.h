/*
 * ratelimit.h - per-client token buckets shared by every worker, and the
 * choice of which address is "the client" behind trusted proxies.
 *
 * One mmap(MAP_SHARED | MAP_ANONYMOUS) region created by the master before
 * the first fork, like metrics and the scoreboard: a fixed open-addressing
 * hash table, so a client is limited the same whichever worker its
 * connections land on, and memory stays bounded however many addresses
 * show up.  Each entry has its own spinlock, held for a few instructions.
 * When every slot of a key's probe sequence is taken, the entry idle the
 * longest is reused: an idle entry has refilled to a full bucket anyway,
 * so forgetting it rarely changes an answer.  The hash is seeded at
 * creation, so a client cannot pick addresses that collide.
 */
#ifndef ESGATE_RATELIMIT_H
#define ESGATE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_KEY_MAX 20	    /* an IPv6 address and a 4-byte route number */
#define RATELIMIT_ENTRIES_DEFAULT 65536
#define RATELIMIT_PROBE 16	    /* slots looked at for one key */
#define RATELIMIT_ADDRSTRLEN 46	    /* INET6_ADDRSTRLEN */

struct ratelimit_entry {
	uint32_t lock;		/* a sequence number: odd while held (ratelimit.c) */
	uint8_t keylen;		/* 0: never used */
	uint8_t key[RATELIMIT_KEY_MAX];
	uint8_t _pad[7];
	int64_t tokens;		/* in millionths of a token */
	uint64_t last_ms;	/* CLOCK_MONOTONIC ms of the last refill */
};

struct ratelimit {
	uint32_t nentries;	/* a power of two */
	uint32_t _pad;
	uint64_t seed;		/* hash key, random, fixed at creation */
	struct ratelimit_entry entries[];
};

/* An IPv4 or IPv6 address; IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4. */
struct ratelimit_addr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t bytes[16];
	size_t len;		/* 4 or 16 */
};

struct ratelimit_cidr {
	struct ratelimit_addr addr; /* bits past prefix are zero */
	unsigned prefix;	/* 0..32 or 0..128 */
};

/* Maps a zeroed table of NENTRIES (rounded up to a power of two, at least
 * RATELIMIT_PROBE); NULL (errno set) on failure.  Call before fork. */
struct ratelimit *ratelimit_create(uint32_t nentries);
void ratelimit_destroy(struct ratelimit *rl);

/*
 * Takes one token from the bucket of KEY (KEYLEN bytes, 1..RATELIMIT_KEY_MAX,
 * e.g. from ratelimit_key()), which refills at RATE_PER_S tokens a second
 * (> 0) up to BURST (>= 1; a new bucket starts full).  NOW_MS is
 * CLOCK_MONOTONIC in ms.  Returns 1 if the request may go, 0 if it is
 * limited, with *RETRY_AFTER_S (if not NULL) the seconds until a token is
 * back (0 when allowed); -1 for a bad KEYLEN.  Safe from any process.
 */
int ratelimit_take(struct ratelimit *rl, const void *key, size_t keylen, double rate_per_s, double burst,
                   uint64_t now_ms, double *retry_after_s);

/*
 * The same for N tokens at once (N >= 1), all or none: what a request that
 * runs N searches costs.  N over BURST can never be had: 0, with
 * *RETRY_AFTER_S infinite.
 */
int ratelimit_take_n(struct ratelimit *rl, const void *key, size_t keylen, double rate_per_s, double burst,
                     uint64_t n, uint64_t now_ms, double *retry_after_s);

/*
 * 1 if ratelimit_take() would let a request go now, 0 (with
 * *RETRY_AFTER_S) if not, -1 for a bad KEYLEN; takes nothing and writes
 * nothing to the table (no lock either: it reads the entry's sequence
 * number, see ratelimit.c), so that workers asking one client's bucket on
 * every request do not pass its cache line between them; a bucket not in
 * the table is a full one.  For a limit on failures (lib/auth.h's failed
 * authentications): asked before the attempt, a token taken only when it
 * fails, so that an exhausted client is refused without its credentials
 * even being checked.
 */
int ratelimit_peek(struct ratelimit *rl, const void *key, size_t keylen, double rate_per_s, double burst,
                   uint64_t now_ms, double *retry_after_s);
/* The table's hash of KEY (KEYLEN bytes), the same for the table's life,
 * and ratelimit_peek() with it found before (a caller asking one key
 * again and again: the auth stage, once a connection). */
uint64_t ratelimit_hash(const struct ratelimit *rl, const void *key, size_t keylen);
int ratelimit_peek_hashed(struct ratelimit *rl, const void *key, size_t keylen, uint64_t hash, double rate_per_s,
                          double burst, uint64_t now_ms, double *retry_after_s);
/* NOW_MS for ratelimit_peek_hashed() when the caller has not read the
 * clock: the answer is then RATELIMIT_PEEK_CLOCK if it depends on the
 * time (KEY's bucket holds less than a token, its refill decides), and
 * the caller asks again with the time; the usual answer otherwise (no
 * bucket, or a whole token in it). */
#define RATELIMIT_NOW_UNREAD UINT64_MAX
#define RATELIMIT_PEEK_CLOCK 2

/* The bucket key for client A and route ROUTE: an IPv4 address whole, an
 * IPv6 address by its /64 (one host usually has a whole /64, and would
 * otherwise get 2^64 buckets), then the route number, so routes with
 * different limits do not share buckets.  Returns the key length. */
size_t ratelimit_key(const struct ratelimit_addr *a, uint32_t route, uint8_t key[RATELIMIT_KEY_MAX]);

/*
 * Open connections per client address (limits.max_connections_per_address),
 * in the same table, shared by every worker.  Enter counts one more
 * connection from A unless MAX are open: 1 counted, 0 refused (nothing
 * counted), 2 let through uncounted (every slot of A's probe sequence
 * counts other addresses' connections; do not call leave then).  Leave
 * takes one back.  An IPv6 address counts by its /64, as buckets do.
 */
int ratelimit_conn_enter(struct ratelimit *rl, const struct ratelimit_addr *a, uint64_t max, uint64_t now_ms);
void ratelimit_conn_leave(struct ratelimit *rl, const struct ratelimit_addr *a, uint64_t now_ms);
/* The address of SA (AF_INET or AF_INET6; an IPv4-mapped IPv6 address is
 * IPv4), without going through text.  0, or -1 for another family. */
int ratelimit_addr_from_sockaddr(const void *sa, struct ratelimit_addr *out);

/* "1.2.3.4", "::1", "::ffff:1.2.3.4"; also "1.2.3.4:80" and "[::1]:80"
 * (X-Forwarded-For entries written with ports).  S is LEN bytes, with no
 * surrounding space.  0 or -1. */
int ratelimit_addr_parse(const char *s, size_t len, struct ratelimit_addr *out);
/* "10.0.0.0/8", "fd00::/8", or an address alone (a /32 or /128).  Host
 * bits past the prefix are an error, as a likely typo.  0 or -1. */
int ratelimit_cidr_parse(const char *s, struct ratelimit_cidr *out);
/* 1 if A is inside one of the N entries of LIST. */
int ratelimit_cidr_match(const struct ratelimit_cidr *list, size_t n, const struct ratelimit_addr *a);

/*
 * The client a request is from.  PEER is the connection's address (text,
 * as from inet_ntop).  XFF is the X-Forwarded-For header (XFFLEN bytes,
 * several headers joined with ","; NULL if absent).  The header is believed
 * only when PEER is in TRUSTED; then it is read right to left, skipping
 * trusted addresses, and the first one that is not trusted is the client.
 * A malformed entry stops the walk: the trusted hop that wrote it is the
 * client then.  If every entry is trusted, the left-most is the client.
 *
 * Writes the client's address, normalised, into BUF (BUFLEN >=
 * RATELIMIT_ADDRSTRLEN) and OUT (if not NULL) and returns BUF; NULL if
 * PEER itself is not an address (a Unix socket): such a client is not
 * limited.
 */
const char *ratelimit_client(const char *peer, const char *xff, size_t xfflen, const struct ratelimit_cidr *trusted,
                             size_t ntrusted, struct ratelimit_addr *out, char *buf, size_t buflen);

#endif
