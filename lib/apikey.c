/*
 * apikey.c - API keys: hashes, ids, expiry, verification, the cache of
 * verified credentials, new keys (see apikey.h).
 */
#include "apikey.h"
#include "sha256.h"
#include "siphash.h"
#include "base64.h"
#include "hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
apikey_id_valid(const char *s, size_t len)
{
	if (len == 0 || len > APIKEY_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
apikey_hash_parse(const char *s, uint8_t out[APIKEY_HASH_LEN])
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 2 * APIKEY_HASH_LEN)
		return -1;
	s += 7;
	for (size_t i = 0; i < APIKEY_HASH_LEN; i++) {
		int hi = hex_value((unsigned char)s[2 * i]), lo = hex_value((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
apikey_hash_format(const uint8_t hash[APIKEY_HASH_LEN], char out[APIKEY_HASH_STRLEN])
{
	static const char digits[] = "0123456789abcdef";

	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < APIKEY_HASH_LEN; i++) {
		out[7 + 2 * i] = digits[hash[i] >> 4];
		out[7 + 2 * i + 1] = digits[hash[i] & 0xf];
	}
	out[7 + 2 * APIKEY_HASH_LEN] = '\0';
}

/* N decimal digits at S into *OUT; 0 or -1. */
static int
apikey_digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
apikey_time_parse(const char *s, int64_t *out)
{
	struct tm tm = {0}, back;
	int y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
	size_t len = strlen(s);
	time_t t;

	if (len < 10 || apikey_digits(s, 4, &y) != 0 || s[4] != '-' || apikey_digits(s + 5, 2, &mo) != 0 ||
	    s[7] != '-' || apikey_digits(s + 8, 2, &d) != 0)
		return -1;
	if (len > 10) {
		const char *z = s + 19;

		if (len < 20 || (s[10] != 'T' && s[10] != 't') || apikey_digits(s + 11, 2, &h) != 0 || s[13] != ':' ||
		    apikey_digits(s + 14, 2, &mi) != 0 || s[16] != ':' || apikey_digits(s + 17, 2, &se) != 0)
			return -1;
		if ((z[0] == 'Z' || z[0] == 'z') && z[1] == '\0')
			sign = 0;
		else if ((z[0] == '+' || z[0] == '-') && strlen(z) == 6 && apikey_digits(z + 1, 2, &oh) == 0 &&
		         z[3] == ':' && apikey_digits(z + 4, 2, &om) == 0 && oh < 24 && om < 60)
			sign = z[0] == '+' ? 1 : -1;
		else
			return -1;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	if ((t = timegm(&tm)) == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != d ||
	    back.tm_mon != mo - 1)
		return -1; /* February 30th */
	*out = (int64_t)t - sign * (oh * 3600 + om * 60);
	return 0;
}

static int
apikey_cmp(const void *a, const void *b)
{
	return strcmp(((const struct apikey *)a)->id, ((const struct apikey *)b)->id);
}

long
apikey_set_sort(struct apikey_set *set)
{
	if (set->n > 1)
		qsort(set->keys, set->n, sizeof(*set->keys), apikey_cmp);
	for (size_t i = 1; i < set->n; i++)
		if (strcmp(set->keys[i - 1].id, set->keys[i].id) == 0)
			return (long)i;
	return -1;
}

const struct apikey *
apikey_find(const struct apikey_set *set, const char *id, size_t len)
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *k = set->keys[mid].id;
		int c = strncmp(k, id, len);

		if (c == 0 && k[len] != '\0')
			c = 1; /* K is longer: after ID */
		if (c == 0)
			return &set->keys[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void
apikey_clear(struct apikey *k)
{
	if (k == NULL)
		return;
	free(k->id);
	for (size_t i = 0; i < k->ngroups; i++)
		free(k->groups[i]);
	free(k->groups);
	memset(k, 0, sizeof(*k));
}

void
apikey_set_clear(struct apikey_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		apikey_clear(&set->keys[i]);
	free(set->keys);
	set->keys = NULL;
	set->n = 0;
}

static int
apikey_sha256(const void *data, size_t len, uint8_t out[APIKEY_HASH_LEN])
{
	_Static_assert(APIKEY_HASH_LEN == SHA256_LEN, "an API key hash is a SHA-256");
	return sha256(data, len, out);
}

enum apikey_result
apikey_verify(const struct apikey_set *set, const char *id, size_t idlen, const char *key, size_t keylen, int64_t now,
              const struct apikey **out)
{
	static const uint8_t nothing[APIKEY_HASH_LEN];
	const struct apikey *k = apikey_find(set, id, idlen);
	uint8_t h[APIKEY_HASH_LEN];
	int same;

	if (apikey_sha256(key, keylen, h) != 0)
		return APIKEY_BAD;
	/* an unknown id is compared with a hash no key has (all zero: a
	 * preimage of it is not known), the same work as a known one */
	same = CRYPTO_memcmp(h, k != NULL ? k->hash : nothing, APIKEY_HASH_LEN) == 0;
	OPENSSL_cleanse(h, sizeof(h));
	if (k == NULL || !same)
		return APIKEY_BAD;
	if (out != NULL)
		*out = k;
	if (k->expires != 0 && now >= k->expires)
		return APIKEY_EXPIRED;
	return APIKEY_OK;
}

struct apikey_cache_entry {
	uint8_t tag[SIPHASH128_LEN];
	const struct apikey *key; /* NULL: free */
	uint64_t used;            /* c->sets.tick at the last hit or store */
};

struct apikey_cache {
	struct siphash_sets sets;
	struct apikey_cache_entry entries[];
};

struct apikey_cache *
apikey_cache_new(size_t entries)
{
	struct apikey_cache *c;
	size_t nsets = siphash_sets_count(entries);

	if ((c = calloc(1, sizeof(*c) + nsets * SIPHASH_SETS_WAYS * sizeof(c->entries[0]))) == NULL)
		return NULL;
	if (siphash_sets_init(&c->sets, nsets) != 0) {
		free(c);
		return NULL;
	}
	return c;
}

void
apikey_cache_free(struct apikey_cache *c)
{
	if (c == NULL)
		return;
	OPENSSL_cleanse(c, sizeof(*c) + c->sets.nsets * SIPHASH_SETS_WAYS * sizeof(c->entries[0]));
	free(c);
}

const struct apikey *
apikey_cache_get(struct apikey_cache *c, const char *cred, size_t len)
{
	uint8_t tag[SIPHASH128_LEN];
	struct apikey_cache_entry *e;

	if (c == NULL)
		return NULL;
	e = &c->entries[siphash_sets_find(&c->sets, cred, len, tag)];
	for (int i = 0; i < SIPHASH_SETS_WAYS; i++)
		if (e[i].key != NULL && CRYPTO_memcmp(e[i].tag, tag, SIPHASH128_LEN) == 0) {
			c->sets.hits++;
			e[i].used = ++c->sets.tick;
			return e[i].key;
		}
	c->sets.misses++;
	return NULL;
}

void
apikey_cache_put(struct apikey_cache *c, const char *cred, size_t len, const struct apikey *k)
{
	uint8_t tag[SIPHASH128_LEN];
	struct apikey_cache_entry *e, *victim;

	if (c == NULL || k == NULL)
		return;
	e = &c->entries[siphash_sets_find(&c->sets, cred, len, tag)];
	victim = &e[0];
	for (int i = 0; i < SIPHASH_SETS_WAYS; i++) {
		if (e[i].key == NULL || CRYPTO_memcmp(e[i].tag, tag, SIPHASH128_LEN) == 0) {
			victim = &e[i];
			break;
		}
		if (e[i].used < victim->used)
			victim = &e[i];
	}
	memcpy(victim->tag, tag, SIPHASH128_LEN);
	victim->key = k;
	victim->used = ++c->sets.tick;
}

void
apikey_cache_stats(const struct apikey_cache *c, uint64_t *hits, uint64_t *misses)
{
	*hits = c != NULL ? c->sets.hits : 0;
	*misses = c != NULL ? c->sets.misses : 0;
}

int
apikey_generate(const char *id, struct apikey_new *out)
{
	unsigned char raw[APIKEY_RANDOM_BYTES];
	char pair[APIKEY_ID_MAX + 1 + APIKEY_KEY_STRLEN];
	uint8_t h[APIKEY_HASH_LEN];
	int n, rc = -1;

	memset(out, 0, sizeof(*out));
	if (!apikey_id_valid(id, strlen(id)))
		return -1;
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		goto out;
	if (base64_encode(raw, sizeof(raw), 1, out->key, sizeof(out->key)) < 0)
		goto out;
	n = snprintf(pair, sizeof(pair), "%s:%s", id, out->key);
	if (n < 0 || (size_t)n >= sizeof(pair) ||
	    base64_encode((const unsigned char *)pair, (size_t)n, 0, out->credential, sizeof(out->credential)) < 0)
		goto out;
	if (apikey_sha256(out->key, strlen(out->key), h) != 0)
		goto out;
	apikey_hash_format(h, out->hash);
	rc = 0;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(pair, sizeof(pair));
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}
