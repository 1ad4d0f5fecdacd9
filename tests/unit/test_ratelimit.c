/*
 * test_ratelimit.c - lib/ratelimit.c: rate, burst and refill; buckets shared
 * by forked children; eviction when a probe sequence is full; which
 * address X-Forwarded-For may name as the client.
 */
#include "lib/ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const uint8_t key_a[] = {10, 0, 0, 1};
static const uint8_t key_b[] = {10, 0, 0, 2};

Test(ratelimit, burst_then_limited)
{
	struct ratelimit *rl = ratelimit_create(1024);
	double retry = -1;

	cr_assert_not_null(rl);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 5, 1000, &retry), 1, "token %d of the burst", i);
	cr_expect_eq(retry, 0);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 5, 1000, &retry), 0);
	cr_expect_float_eq(retry, 1.0, 1e-6);
	cr_expect_eq(ratelimit_take(rl, key_b, 4, 1, 5, 1000, &retry), 1, "another client has its own bucket");
	ratelimit_destroy(rl);
}

Test(ratelimit, peek_takes_nothing)
{
	struct ratelimit *rl = ratelimit_create(64);
	double retry = -1;

	cr_assert_not_null(rl);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 1000, &retry), 1, "peek %d of a full bucket", i);
	cr_expect_eq(retry, 0);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 1000, NULL), 1);
	cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 1000, NULL), 1, "one token left");
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 1000, NULL), 1);
	cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 1000, &retry), 0, "empty");
	cr_expect_float_eq(retry, 1.0, 1e-6);
	cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 2000, &retry), 1, "refilled after a second");
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 2000, NULL), 1);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 2000, NULL), 0, "the peek took nothing, the refill one token");
	cr_expect_eq(ratelimit_peek(rl, key_a, 0, 1, 2, 2000, NULL), -1);
	/* with the hash found before: the same answers */
	{
		static const uint8_t key_new[] = {10, 0, 0, 99};
		uint64_t h = ratelimit_hash(rl, key_a, 4);

		cr_expect_eq(h, ratelimit_hash(rl, key_a, 4));
		cr_expect_eq(ratelimit_peek_hashed(rl, key_a, 4, h, 1, 2, 2000, &retry), 0, "empty, hashed");
		cr_expect_eq(ratelimit_peek_hashed(rl, key_a, 4, h, 1, 2, 3000, &retry), 1, "refilled, hashed");
		cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 3000, NULL), 1);
		cr_expect_eq(ratelimit_peek_hashed(rl, key_a, 4, h, 1, 2, 3000, &retry), 0, "empty again, hashed");
		cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 3000, NULL), 0);
		/* without the time: asked for it where the refill decides, not
		 * where there is no bucket or a whole token */
		cr_expect_eq(ratelimit_peek_hashed(rl, key_a, 4, h, 1, 2, RATELIMIT_NOW_UNREAD, &retry),
		             RATELIMIT_PEEK_CLOCK, "an empty bucket: the clock decides");
		cr_expect_eq(ratelimit_peek_hashed(rl, key_new, 4, ratelimit_hash(rl, key_new, 4), 1, 2,
		                                   RATELIMIT_NOW_UNREAD, &retry),
		             1, "no bucket: no clock");
		cr_expect_eq(retry, 0);
		cr_expect_eq(ratelimit_peek_hashed(rl, key_a, 4, h, 1, 2, 4000, &retry), 1, "refilled by the clock");
		cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 5000, NULL), 1, "two tokens stored, one taken");
		cr_expect_eq(ratelimit_peek_hashed(rl, key_a, 4, h, 1, 2, RATELIMIT_NOW_UNREAD, &retry), 1,
		             "a whole token stored: no clock");
	}
	ratelimit_destroy(rl);
}

/* Asking writes nothing to the shared table: not a bucket for a new key,
 * not the refill of an old one, not even the lock. */
Test(ratelimit, peek_writes_nothing)
{
	struct ratelimit *rl = ratelimit_create(64);
	size_t size = offsetof(struct ratelimit, entries) + (size_t)rl->nentries * sizeof(struct ratelimit_entry);
	unsigned char *before = malloc(size);
	double retry = -1;

	cr_assert_not_null(rl);
	cr_assert_not_null(before);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 1000, NULL), 1);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 1000, NULL), 1);
	memcpy(before, rl, size);
	cr_expect_eq(ratelimit_peek(rl, key_b, 4, 1, 2, 1000, &retry), 1, "no bucket: a full one");
	cr_expect_eq(retry, 0);
	cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 1500, &retry), 0, "half a token back");
	cr_expect_float_eq(retry, 0.5, 1e-6);
	cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 2000, &retry), 1, "one token back");
	cr_expect_eq(ratelimit_peek(rl, key_a, 4, 1, 2, 9000, &retry), 1, "full");
	cr_expect(memcmp(before, rl, size) == 0, "the table is as it was");
	/* and the takes that follow see the refill from where it was */
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 2000, NULL), 1);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 2, 2000, NULL), 0);
	free(before);
	ratelimit_destroy(rl);
}

/* A peek in one process while another takes and refills the same bucket
 * (the seqlock): every answer is one a consistent bucket would give. */
Test(ratelimit, peek_while_another_process_takes)
{
	struct ratelimit *rl = ratelimit_create(64);
	pid_t pid;
	int status;

	cr_assert_not_null(rl);
	/* rate 0: the bucket only ever empties; burst 1000 */
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 0.001, 1000, 1000, NULL), 1);
	if ((pid = fork()) == 0) {
		for (int i = 0; i < 999; i++)
			if (ratelimit_take(rl, key_a, 4, 0.001, 1000, 1000, NULL) != 1)
				_exit(1);
		_exit(ratelimit_take(rl, key_a, 4, 0.001, 1000, 1000, NULL) == 0 ? 0 : 2);
	}
	cr_assert(pid > 0);
	{
		int last = 1, flips = 0;

		for (int i = 0; i < 200000; i++) {
			double retry = -1;
			int r = ratelimit_peek(rl, key_a, 4, 0.001, 1000, 1000, &retry);

			cr_assert(r == 0 || r == 1);
			cr_assert(r == 1 ? retry == 0 : retry > 0);
			flips += r != last;
			last = r;
		}
		cr_expect(flips <= 1, "allowed, then refused for good: %d changes", flips);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's takes: %d", status);
	cr_expect_eq(ratelimit_peek(rl, key_a, 4, 0.001, 1000, 1000, NULL), 0);
	ratelimit_destroy(rl);
}

Test(ratelimit, refill_at_rate)
{
	struct ratelimit *rl = ratelimit_create(64);
	double retry;

	cr_assert_not_null(rl);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 0, &retry), 1);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 0, &retry), 1);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 0, &retry), 0);
	cr_expect_float_eq(retry, 0.1, 1e-6);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 50, &retry), 0, "half a token after 50ms");
	cr_expect_float_eq(retry, 0.05, 1e-6);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 100, &retry), 1, "one token after 100ms");
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 100, &retry), 0);
	/* a long pause refills to the burst, not beyond */
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 1000000, &retry), 1);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 1000000, &retry), 1);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 1000000, &retry), 0);
	/* a clock read earlier by another process never takes tokens back */
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 10, 2, 999000, &retry), 0);
	ratelimit_destroy(rl);
}

Test(ratelimit, slow_rate_and_bad_key)
{
	struct ratelimit *rl = ratelimit_create(64);
	double retry;

	cr_assert_not_null(rl);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 0.5, 1, 0, &retry), 1, "30/m");
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 0.5, 1, 0, &retry), 0);
	cr_expect_float_eq(retry, 2.0, 1e-6);
	cr_expect_eq(ratelimit_take(rl, key_a, 0, 1, 1, 0, &retry), -1);
	cr_expect_eq(ratelimit_take(rl, key_a, RATELIMIT_KEY_MAX + 1, 1, 1, 0, &retry), -1);
	ratelimit_destroy(rl);
}

/* An _msearch of N searches takes N tokens, all or none. */
Test(ratelimit, take_n)
{
	struct ratelimit *rl = ratelimit_create(64);
	double retry;

	cr_assert_not_null(rl);
	cr_expect_eq(ratelimit_take_n(rl, key_a, 4, 1, 5, 3, 0, &retry), 1);
	cr_expect_eq(retry, 0);
	cr_expect_eq(ratelimit_take_n(rl, key_a, 4, 1, 5, 3, 0, &retry), 0, "two left, three wanted");
	cr_expect_float_eq(retry, 1.0, 1e-6, "one more second for the third");
	cr_expect_eq(ratelimit_take_n(rl, key_a, 4, 1, 5, 2, 0, &retry), 1, "none taken by the refusal");
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 5, 0, &retry), 0);
	cr_expect_eq(ratelimit_take_n(rl, key_b, 4, 1, 5, 6, 0, &retry), 0, "more than the burst: never");
	cr_expect(isinf(retry));
	cr_expect_eq(ratelimit_take_n(rl, key_b, 4, 1, 5, 5, 0, &retry), 1, "and nothing taken");
	cr_expect_eq(ratelimit_take_n(rl, key_b, 4, 1, 5, 0, 0, &retry), -1);
	ratelimit_destroy(rl);
}

/* Workers are forked children: all take from the same buckets. */
Test(ratelimit, shared_by_fork_children)
{
	struct ratelimit *rl = ratelimit_create(1024);
	int allowed = 0, status;
	pid_t pids[4];

	cr_assert_not_null(rl);
	for (int c = 0; c < 4; c++) {
		if ((pids[c] = fork()) == 0) {
			int n = 0;

			for (int i = 0; i < 50; i++)
				n += ratelimit_take(rl, key_a, 4, 0.001, 100, 5000, NULL);
			_exit(n);
		}
		cr_assert_gt(pids[c], 0);
	}
	for (int c = 0; c < 4; c++) {
		cr_assert_eq(waitpid(pids[c], &status, 0), pids[c]);
		cr_assert(WIFEXITED(status));
		allowed += WEXITSTATUS(status);
	}
	cr_expect_eq(allowed, 100, "exactly the burst across 4 processes x 50 tries");
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 0.001, 100, 5000, NULL), 0, "the parent sees the empty bucket");
	ratelimit_destroy(rl);
}

/* A table smaller than its clients keeps working: the entry idle longest
 * goes, and a recent client keeps its (empty) bucket. */
Test(ratelimit, eviction)
{
	struct ratelimit *rl = ratelimit_create(16);
	uint8_t k[4] = {192, 168, 0, 0};

	cr_assert_not_null(rl);
	cr_assert_eq(rl->nentries, RATELIMIT_PROBE);
	for (int i = 0; i < 3; i++)
		ratelimit_take(rl, key_a, 4, 1, 3, 100000, NULL);
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 3, 100000, NULL), 0);
	for (int i = 0; i < 200; i++) {
		k[3] = (uint8_t)i;
		k[2] = (uint8_t)(i >> 8);
		cr_expect_eq(ratelimit_take(rl, k, 4, 1, 3, (uint64_t)i, NULL), 1, "new client %d", i);
	}
	/* key_a was used last, at 100000: it must have survived */
	cr_expect_eq(ratelimit_take(rl, key_a, 4, 1, 3, 100000, NULL), 0);
	ratelimit_destroy(rl);
}

Test(ratelimit, key)
{
	struct ratelimit_addr a;
	uint8_t k1[RATELIMIT_KEY_MAX], k2[RATELIMIT_KEY_MAX];
	size_t n1, n2;

	cr_assert_eq(ratelimit_addr_parse("2001:db8::1", 11, &a), 0);
	n1 = ratelimit_key(&a, 3, k1);
	cr_assert_eq(ratelimit_addr_parse("2001:db8::ffff:2", 16, &a), 0);
	n2 = ratelimit_key(&a, 3, k2);
	cr_expect_eq(n1, 12);
	cr_expect(n1 == n2 && memcmp(k1, k2, n1) == 0, "one /64, one bucket");
	n2 = ratelimit_key(&a, 4, k2);
	cr_expect(memcmp(k1, k2, n1) != 0, "another route, another bucket");
	cr_assert_eq(ratelimit_addr_parse("1.2.3.4", 7, &a), 0);
	cr_expect_eq(ratelimit_key(&a, 0, k1), 8);
}

Test(ratelimit, addr_and_cidr_parse)
{
	struct ratelimit_addr a;
	struct ratelimit_cidr c[3];

	cr_expect_eq(ratelimit_addr_parse("::ffff:10.1.2.3", 15, &a), 0);
	cr_expect_eq(a.family, AF_INET, "mapped IPv4 is IPv4");
	cr_expect_eq(a.bytes[0], 10);
	cr_expect_eq(ratelimit_addr_parse("1.2.3.4:8080", 12, &a), 0);
	cr_expect_eq(ratelimit_addr_parse("[::1]:80", 8, &a), 0);
	cr_expect_eq(a.family, AF_INET6);
	cr_expect_eq(ratelimit_addr_parse("unknown", 7, &a), -1);
	cr_expect_eq(ratelimit_addr_parse("1.2.3", 5, &a), -1);
	cr_expect_eq(ratelimit_addr_parse("", 0, &a), -1);
	cr_expect_eq(ratelimit_cidr_parse("10.0.0.0/8", &c[0]), 0);
	cr_expect_eq(c[0].prefix, 8);
	cr_expect_eq(ratelimit_cidr_parse("fd00::/8", &c[1]), 0);
	cr_expect_eq(ratelimit_cidr_parse("192.168.1.7", &c[2]), 0);
	cr_expect_eq(c[2].prefix, 32);
	cr_expect_eq(ratelimit_cidr_parse("10.0.0.1/8", &c[0]), -1, "host bits set");
	cr_expect_eq(ratelimit_cidr_parse("10.0.0.0/33", &c[0]), -1);
	cr_expect_eq(ratelimit_cidr_parse("10.0.0.0/", &c[0]), -1);
	cr_expect_eq(ratelimit_cidr_parse("1.2.3.4:80", &c[0]), -1);
	cr_expect_eq(ratelimit_cidr_parse("x/8", &c[0]), -1);
	cr_expect_eq(ratelimit_cidr_parse("0.0.0.0/0", &c[0]), 0);
	cr_expect_eq(ratelimit_cidr_parse("10.0.0.0/8", &c[0]), 0);
	cr_assert_eq(ratelimit_addr_parse("10.200.1.1", 10, &a), 0);
	cr_expect(ratelimit_cidr_match(c, 3, &a));
	cr_assert_eq(ratelimit_addr_parse("11.0.0.1", 8, &a), 0);
	cr_expect(!ratelimit_cidr_match(c, 3, &a));
	cr_assert_eq(ratelimit_addr_parse("fdaa::1", 7, &a), 0);
	cr_expect(ratelimit_cidr_match(c, 3, &a));
	cr_assert_eq(ratelimit_addr_parse("192.168.1.8", 11, &a), 0);
	cr_expect(!ratelimit_cidr_match(c, 3, &a));
}

static const char *
client(const char *peer, const char *xff, const struct ratelimit_cidr *t, size_t nt, char *buf)
{
	return ratelimit_client(peer, xff, xff != NULL ? strlen(xff) : 0, t, nt, NULL, buf, RATELIMIT_ADDRSTRLEN);
}

Test(ratelimit, client_xff_trust)
{
	struct ratelimit_cidr t[2];
	char buf[RATELIMIT_ADDRSTRLEN];
	struct ratelimit_addr a;

	cr_assert_eq(ratelimit_cidr_parse("10.0.0.0/8", &t[0]), 0);
	cr_assert_eq(ratelimit_cidr_parse("fd00::/8", &t[1]), 0);
	/* an untrusted peer's header is ignored */
	cr_expect_str_eq(client("203.0.113.9", "1.1.1.1", t, 2, buf), "203.0.113.9");
	cr_expect_str_eq(client("203.0.113.9", "1.1.1.1", NULL, 0, buf), "203.0.113.9");
	/* a trusted peer: right-most untrusted entry */
	cr_expect_str_eq(client("10.0.0.5", "1.1.1.1", t, 2, buf), "1.1.1.1");
	cr_expect_str_eq(client("10.0.0.5", "6.6.6.6, 1.1.1.1, 10.0.0.7", t, 2, buf), "1.1.1.1",
	                 "the client-written left part is not believed");
	cr_expect_str_eq(client("10.0.0.5", " 6.6.6.6 ,1.1.1.1 ,10.1.1.1,fd00::3 ", t, 2, buf), "1.1.1.1");
	/* all trusted: the left-most */
	cr_expect_str_eq(client("10.0.0.5", "10.9.9.9, 10.0.0.7", t, 2, buf), "10.9.9.9");
	/* garbage stops the walk at the hop that wrote it */
	cr_expect_str_eq(client("10.0.0.5", "1.1.1.1, nonsense, 10.0.0.7", t, 2, buf), "10.0.0.7");
	cr_expect_str_eq(client("10.0.0.5", "nonsense", t, 2, buf), "10.0.0.5");
	cr_expect_str_eq(client("10.0.0.5", "", t, 2, buf), "10.0.0.5");
	cr_expect_str_eq(client("10.0.0.5", ",,", t, 2, buf), "10.0.0.5");
	/* no header */
	cr_expect_str_eq(client("10.0.0.5", NULL, t, 2, buf), "10.0.0.5");
	/* ports, brackets and mapped addresses are normalised */
	cr_expect_str_eq(client("::ffff:10.0.0.5", "[2001:db8::1]:443", t, 2, buf), "2001:db8::1");
	cr_expect_str_eq(client("::ffff:203.0.113.9", NULL, t, 2, buf), "203.0.113.9");
	cr_expect_str_eq(client("10.0.0.5", "1.2.3.4:5678", t, 2, buf), "1.2.3.4");
	/* not an IP peer (a Unix socket) */
	cr_expect_null(client("/run/esgate.sock", "1.1.1.1", t, 2, buf));
	cr_expect_null(client(NULL, NULL, t, 2, buf));
	cr_assert_not_null(ratelimit_client("10.0.0.5", "9.9.9.9", 7, t, 2, &a, buf, sizeof(buf)));
	cr_expect_eq(a.family, AF_INET);
	cr_expect_eq(a.bytes[0], 9);
}

/* The fast path of the rate-limit stage: the peer's sockaddr gives the same
 * address as its text would. */
Test(ratelimit, addr_from_sockaddr)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6}, mapped = {.sin6_family = AF_INET6};
	struct sockaddr un = {.sa_family = AF_UNIX};
	struct ratelimit_addr a, b;

	inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
	cr_assert_eq(ratelimit_addr_from_sockaddr(&v4, &a), 0);
	cr_assert_eq(ratelimit_addr_parse("192.0.2.7", 9, &b), 0);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
	inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
	cr_assert_eq(ratelimit_addr_from_sockaddr(&v6, &a), 0);
	cr_assert_eq(ratelimit_addr_parse("2001:db8::1", 11, &b), 0);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &mapped.sin6_addr);
	cr_assert_eq(ratelimit_addr_from_sockaddr(&mapped, &a), 0);
	cr_expect_eq(a.family, AF_INET, "an IPv4-mapped peer is IPv4");
	cr_assert_eq(ratelimit_addr_parse("192.0.2.7", 9, &b), 0);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
	cr_expect_eq(ratelimit_addr_from_sockaddr(&un, &a), -1);
}
