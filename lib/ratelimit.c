/*
 * ratelimit.c - shared token buckets and client addresses (see
 * ratelimit.h).
 *
 * Tokens are integers (millionths), not doubles, so that what one process
 * writes another reads exactly.  A lookup locks one entry at a time and
 * never two, so no two processes can deadlock; the price is that two
 * processes adding the same new key at the same moment while evicting may
 * create it twice, which only lets that one client have a little more than
 * its burst, once.  ratelimit_peek() takes no lock and writes nothing:
 * it reads an entry between two equal even values of its sequence number.
 */
#include "ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "lib/hash.h"

#define RATELIMIT_ONE 1000000 /* one token */

_Static_assert(sizeof(struct ratelimit_entry) == 48, "compact entries");

static size_t
ratelimit_size(uint32_t n)
{
	return offsetof(struct ratelimit, entries) + (size_t)n * sizeof(struct ratelimit_entry);
}

struct ratelimit *
ratelimit_create(uint32_t nentries)
{
	struct ratelimit *rl;
	uint32_t n = RATELIMIT_PROBE;
	uint64_t seed;

	while (n < nentries && n < (1U << 30))
		n <<= 1;
	rl = mmap(NULL, ratelimit_size(n), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rl == MAP_FAILED)
		return NULL;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
		struct timespec ts;

		/* no entropy yet at early boot: worse, but still not a constant */
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
	}
	rl->nentries = n;
	rl->seed = seed;
	return rl;
}

void
ratelimit_destroy(struct ratelimit *rl)
{
	if (rl != NULL)
		munmap(rl, ratelimit_size(rl->nentries));
}

static inline void
ratelimit_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * An entry's lock is a sequence number (a seqlock): odd while a process
 * holds it, made even again, one higher, when it lets go.  Writers
 * exclude each other by taking it from even to odd; ratelimit_peek() only
 * reads, and retries when the number was odd or moved meanwhile, so
 * asking a bucket writes nothing to the shared line (two workers asking
 * the same client's bucket on every request do not pass it between their
 * CPUs).
 */
static void
ratelimit_lock(struct ratelimit_entry *e)
{
	uint32_t v = __atomic_load_n(&e->lock, __ATOMIC_RELAXED);

	for (;;) {
		if (v & 1) {
			ratelimit_relax();
			v = __atomic_load_n(&e->lock, __ATOMIC_RELAXED);
		} else if (__atomic_compare_exchange_n(&e->lock, &v, v + 1, 1, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			/* the odd number is seen before any store that follows
			 * (a seqlock writer's fence; nothing on x86) */
			__atomic_thread_fence(__ATOMIC_RELEASE);
			return;
		}
	}
}

static void
ratelimit_unlock(struct ratelimit_entry *e)
{
	__atomic_store_n(&e->lock, __atomic_load_n(&e->lock, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
}

/* What a reader needs of an entry, read consistently (see ratelimit_lock). */
struct ratelimit_view {
	uint8_t keylen;
	uint8_t key[RATELIMIT_KEY_MAX];
	int64_t tokens;
	uint64_t last_ms;
};

static void
ratelimit_read(const struct ratelimit_entry *e, struct ratelimit_view *v)
{
	uint32_t s1, s2;

	for (;;) {
		if ((s1 = __atomic_load_n(&e->lock, __ATOMIC_ACQUIRE)) & 1) {
			ratelimit_relax();
			continue;
		}
		v->keylen = __atomic_load_n(&e->keylen, __ATOMIC_RELAXED);
		memcpy(v->key, e->key, RATELIMIT_KEY_MAX); /* may be torn: then the number moved */
		v->tokens = __atomic_load_n(&e->tokens, __ATOMIC_RELAXED);
		v->last_ms = __atomic_load_n(&e->last_ms, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&e->lock, __ATOMIC_RELAXED);
		if (s1 == s2)
			return;
	}
}

int
ratelimit_take(struct ratelimit *rl, const void *key, size_t keylen, double rate_per_s, double burst, uint64_t now_ms,
               double *retry_after_s)
{
	return ratelimit_take_n(rl, key, keylen, rate_per_s, burst, 1, now_ms, retry_after_s);
}

int
ratelimit_take_n(struct ratelimit *rl, const void *key, size_t keylen, double rate_per_s, double burst, uint64_t n,
                 uint64_t now_ms, double *retry_after_s)
{
	struct ratelimit_entry *e = NULL, *oldest = NULL;
	uint64_t h, oldest_ms = UINT64_MAX;
	int64_t cap, tokens, add, need;
	uint32_t mask = rl->nentries - 1;
	int allowed;

	if (keylen == 0 || keylen > RATELIMIT_KEY_MAX || n == 0)
		return -1;
	if (burst < 1)
		burst = 1;
	cap = (int64_t)(burst * RATELIMIT_ONE);
	if (n > (uint64_t)burst) {
		/* more than a full bucket: never, and no token taken */
		if (retry_after_s != NULL)
			*retry_after_s = INFINITY;
		return 0;
	}
	need = (int64_t)n * RATELIMIT_ONE;
	h = hash_bytes(rl->seed, key, keylen);
	for (uint32_t i = 0; i < RATELIMIT_PROBE; i++) {
		struct ratelimit_entry *c = &rl->entries[(h + i) & mask];

		ratelimit_lock(c);
		if (c->keylen == 0) {
			/* a new bucket, full */
			c->keylen = (uint8_t)keylen;
			memcpy(c->key, key, keylen);
			c->tokens = cap;
			c->last_ms = now_ms;
			e = c;
			break;
		}
		if (c->keylen == keylen && memcmp(c->key, key, keylen) == 0) {
			e = c;
			break;
		}
		if (c->last_ms < oldest_ms) {
			oldest_ms = c->last_ms;
			oldest = c;
		}
		ratelimit_unlock(c);
	}
	if (e == NULL && oldest == NULL) {
		/* every slot holds a connection count (ratelimit_conn_enter):
		 * nothing to reuse, the request goes unlimited */
		if (retry_after_s != NULL)
			*retry_after_s = 0;
		return 1;
	}
	if (e == NULL) {
		/* every slot taken: reuse the one idle longest (it may have
		 * been used since we looked; it is still an old entry) */
		e = oldest;
		ratelimit_lock(e);
		e->keylen = (uint8_t)keylen;
		memcpy(e->key, key, keylen);
		e->tokens = cap;
		e->last_ms = now_ms;
	}
	/* e is locked */
	tokens = e->tokens;
	if (now_ms > e->last_ms) {
		double d = (double)(now_ms - e->last_ms) * rate_per_s * (RATELIMIT_ONE / 1000.0);

		add = d >= (double)cap ? cap : (int64_t)d;
		tokens = tokens + add > cap ? cap : tokens + add;
		e->last_ms = now_ms;
	}
	if (tokens > cap)
		tokens = cap; /* the burst was lowered by a reload */
	allowed = tokens >= need;
	if (allowed)
		tokens -= need;
	e->tokens = tokens;
	ratelimit_unlock(e);
	if (retry_after_s != NULL) {
		if (allowed)
			*retry_after_s = 0;
		else if (rate_per_s > 0)
			*retry_after_s = (double)(need - tokens) / (rate_per_s * RATELIMIT_ONE);
		else
			*retry_after_s = INFINITY;
	}
	return allowed;
}

uint64_t
ratelimit_hash(const struct ratelimit *rl, const void *key, size_t keylen)
{
	return hash_bytes(rl->seed, key, keylen);
}

int
ratelimit_peek(struct ratelimit *rl, const void *key, size_t keylen, double rate_per_s, double burst, uint64_t now_ms,
               double *retry_after_s)
{
	return ratelimit_peek_hashed(rl, key, keylen, hash_bytes(rl->seed, key, keylen), rate_per_s, burst, now_ms,
	                             retry_after_s);
}

int
ratelimit_peek_hashed(struct ratelimit *rl, const void *key, size_t keylen, uint64_t h, double rate_per_s,
                      double burst, uint64_t now_ms, double *retry_after_s)
{
	struct ratelimit_view v;
	uint32_t mask = rl->nentries - 1;
	int64_t cap, tokens;

	if (keylen == 0 || keylen > RATELIMIT_KEY_MAX)
		return -1;
	if (burst < 1)
		burst = 1;
	cap = (int64_t)(burst * RATELIMIT_ONE);
	for (uint32_t i = 0; i < RATELIMIT_PROBE; i++) {
		ratelimit_read(&rl->entries[(h + i) & mask], &v);
		if (v.keylen == 0)
			break; /* where take would start a full bucket */
		if (v.keylen != keylen || memcmp(v.key, key, keylen) != 0)
			continue;
		/* a whole token stored: there whatever the refill adds */
		if (v.tokens >= RATELIMIT_ONE)
			break;
		if (now_ms == RATELIMIT_NOW_UNREAD)
			return RATELIMIT_PEEK_CLOCK;
		/* ratelimit_take_n's refill, computed and not stored */
		tokens = v.tokens;
		if (now_ms > v.last_ms) {
			double d = (double)(now_ms - v.last_ms) * rate_per_s * (RATELIMIT_ONE / 1000.0);
			int64_t add = d >= (double)cap ? cap : (int64_t)d;

			tokens = tokens + add > cap ? cap : tokens + add;
		}
		if (tokens > cap)
			tokens = cap;
		if (tokens >= RATELIMIT_ONE)
			break;
		if (retry_after_s != NULL)
			*retry_after_s = rate_per_s > 0 ? (double)(RATELIMIT_ONE - tokens) / (rate_per_s * RATELIMIT_ONE)
			                                : INFINITY;
		return 0;
	}
	/* no bucket (take would make a full one, or find none to use) or
	 * one with a token */
	if (retry_after_s != NULL)
		*retry_after_s = 0;
	return 1;
}

size_t
ratelimit_key(const struct ratelimit_addr *a, uint32_t route, uint8_t key[RATELIMIT_KEY_MAX])
{
	size_t n = a->len == 4 ? 4 : 8;

	memcpy(key, a->bytes, n);
	memcpy(key + n, &route, sizeof(route));
	return n + sizeof(route);
}

static void
ratelimit_addr_set(struct ratelimit_addr *out, int family, const void *b)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET6 && memcmp(b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		/* a dual-stack socket's view of an IPv4 client */
		family = AF_INET;
		b = (const uint8_t *)b + 12;
	}
	out->family = family;
	out->len = family == AF_INET ? 4 : 16;
	memcpy(out->bytes, b, out->len);
}

int
ratelimit_addr_from_sockaddr(const void *sa, struct ratelimit_addr *out)
{
	const struct sockaddr *s = sa;

	if (s->sa_family == AF_INET)
		ratelimit_addr_set(out, AF_INET, &((const struct sockaddr_in *)sa)->sin_addr);
	else if (s->sa_family == AF_INET6)
		ratelimit_addr_set(out, AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr);
	else
		return -1;
	return 0;
}

int
ratelimit_addr_parse(const char *s, size_t len, struct ratelimit_addr *out)
{
	char buf[RATELIMIT_ADDRSTRLEN + 8];
	uint8_t b[16];
	const char *colon;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	if (s[0] == '[') {
		const char *end = memchr(s, ']', len);

		if (end == NULL || (end + 1 != s + len && end[1] != ':'))
			return -1;
		memcpy(buf, s + 1, (size_t)(end - s - 1));
		buf[end - s - 1] = '\0';
		if (inet_pton(AF_INET6, buf, b) != 1)
			return -1;
		ratelimit_addr_set(out, AF_INET6, b);
		return 0;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, b) == 1) {
		ratelimit_addr_set(out, AF_INET6, b);
		return 0;
	}
	/* "1.2.3.4:port": one ':' only, or it would be IPv6 */
	if ((colon = strchr(buf, ':')) != NULL && strchr(colon + 1, ':') == NULL)
		buf[colon - buf] = '\0';
	if (inet_pton(AF_INET, buf, b) != 1)
		return -1;
	ratelimit_addr_set(out, AF_INET, b);
	return 0;
}

int
ratelimit_cidr_parse(const char *s, struct ratelimit_cidr *out)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	char buf[RATELIMIT_ADDRSTRLEN];
	unsigned long prefix;
	uint8_t b[16];
	char *end;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	/* plain addresses only: no brackets, no ports */
	if (inet_pton(AF_INET6, buf, b) == 1) {
		out->addr.family = AF_INET6;
		out->addr.len = 16;
	} else if (inet_pton(AF_INET, buf, b) == 1) {
		out->addr.family = AF_INET;
		out->addr.len = 4;
	} else
		return -1;
	memcpy(out->addr.bytes, b, out->addr.len);
	if (slash == NULL) {
		out->prefix = (unsigned)out->addr.len * 8;
		return 0;
	}
	if (slash[1] < '0' || slash[1] > '9')
		return -1;
	errno = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (errno != 0 || *end != '\0' || prefix > out->addr.len * 8)
		return -1;
	out->prefix = (unsigned)prefix;
	for (size_t bit = prefix; bit < out->addr.len * 8; bit++)
		if (out->addr.bytes[bit / 8] & (0x80 >> (bit % 8)))
			return -1;
	return 0;
}

int
ratelimit_cidr_match(const struct ratelimit_cidr *list, size_t n, const struct ratelimit_addr *a)
{
	for (size_t i = 0; i < n; i++) {
		const struct ratelimit_cidr *c = &list[i];
		unsigned full = c->prefix / 8, rest = c->prefix % 8;

		if (c->addr.family != a->family)
			continue;
		if (memcmp(c->addr.bytes, a->bytes, full) != 0)
			continue;
		if (rest != 0 && ((c->addr.bytes[full] ^ a->bytes[full]) & (0xff00 >> rest) & 0xff) != 0)
			continue;
		return 1;
	}
	return 0;
}

static const char *
ratelimit_text(const struct ratelimit_addr *a, struct ratelimit_addr *out, char *buf, size_t buflen)
{
	if (inet_ntop(a->family, a->bytes, buf, (socklen_t)buflen) == NULL)
		return NULL;
	if (out != NULL)
		*out = *a;
	return buf;
}

const char *
ratelimit_client(const char *peer, const char *xff, size_t xfflen, const struct ratelimit_cidr *trusted,
                 size_t ntrusted, struct ratelimit_addr *out, char *buf, size_t buflen)
{
	struct ratelimit_addr client, a;
	size_t end, start, s, e;

	if (peer == NULL || ratelimit_addr_parse(peer, strlen(peer), &client) != 0)
		return NULL;
	if (xff == NULL || !ratelimit_cidr_match(trusted, ntrusted, &client))
		return ratelimit_text(&client, out, buf, buflen);
	/* right to left: each hop appends what it saw */
	end = xfflen;
	for (;;) {
		start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		for (s = start; s < end && (xff[s] == ' ' || xff[s] == '\t'); s++)
			;
		for (e = end; e > s && (xff[e - 1] == ' ' || xff[e - 1] == '\t'); e--)
			;
		if (e > s) {
			if (ratelimit_addr_parse(xff + s, e - s, &a) != 0)
				break; /* garbage: the hop that passed it on is the client */
			client = a;
			if (!ratelimit_cidr_match(trusted, ntrusted, &a))
				break;
		}
		if (start == 0)
			break;
		end = start - 1;
	}
	return ratelimit_text(&client, out, buf, buflen);
}

/*
 * Connections per address live in the same table as the buckets, under the
 * route number RATELIMIT_CONN_ROUTE: tokens is the count, and last_ms is
 * UINT64_MAX while it is above zero, so that no bucket takes the slot over
 * (the idle-longest reuse compares last_ms); back at zero, the slot is an
 * old entry like any other.
 */
#define RATELIMIT_CONN_ROUTE 0xffffffffu

int
ratelimit_conn_enter(struct ratelimit *rl, const struct ratelimit_addr *a, uint64_t max, uint64_t now_ms)
{
	uint8_t key[RATELIMIT_KEY_MAX];
	size_t keylen = ratelimit_key(a, RATELIMIT_CONN_ROUTE, key);
	uint64_t h = hash_bytes(rl->seed, key, keylen);
	uint32_t mask = rl->nentries - 1;
	struct ratelimit_entry *e = NULL, *oldest = NULL;
	uint64_t oldest_ms = UINT64_MAX;
	int ret;

	for (uint32_t i = 0; i < RATELIMIT_PROBE; i++) {
		struct ratelimit_entry *c = &rl->entries[(h + i) & mask];

		ratelimit_lock(c);
		if (c->keylen == 0 || (c->keylen == keylen && memcmp(c->key, key, keylen) == 0)) {
			e = c;
			break;
		}
		if (c->last_ms < oldest_ms) {
			oldest_ms = c->last_ms;
			oldest = c;
		}
		ratelimit_unlock(c);
	}
	if (e == NULL) {
		if (oldest == NULL)
			return 2; /* every slot counts connections: not counted */
		e = oldest;
		ratelimit_lock(e);
		if (e->last_ms == UINT64_MAX) { /* taken meanwhile */
			ratelimit_unlock(e);
			return 2;
		}
	}
	if (e->keylen != keylen || memcmp(e->key, key, keylen) != 0) {
		e->keylen = (uint8_t)keylen;
		memcpy(e->key, key, keylen);
		e->tokens = 0;
	}
	if ((uint64_t)e->tokens >= max) {
		ret = 0;
	} else {
		e->tokens++;
		ret = 1;
	}
	e->last_ms = e->tokens > 0 ? UINT64_MAX : now_ms;
	ratelimit_unlock(e);
	return ret;
}

void
ratelimit_conn_leave(struct ratelimit *rl, const struct ratelimit_addr *a, uint64_t now_ms)
{
	uint8_t key[RATELIMIT_KEY_MAX];
	size_t keylen = ratelimit_key(a, RATELIMIT_CONN_ROUTE, key);
	uint64_t h = hash_bytes(rl->seed, key, keylen);
	uint32_t mask = rl->nentries - 1;

	for (uint32_t i = 0; i < RATELIMIT_PROBE; i++) {
		struct ratelimit_entry *c = &rl->entries[(h + i) & mask];

		ratelimit_lock(c);
		if (c->keylen == keylen && memcmp(c->key, key, keylen) == 0) {
			if (c->tokens > 0)
				c->tokens--;
			if (c->tokens == 0)
				c->last_ms = now_ms;
			ratelimit_unlock(c);
			return;
		}
		ratelimit_unlock(c);
	}
}
