/*
 * fuzz_hpacksize.c - libFuzzer target for lib/hpacksize.c: the input is a
 * client's HTTP/2 header block, hostile.  Fed whole to one counter and cut
 * into pieces (sizes drawn from the first byte) to another, both must
 * agree on the decoded size and on the table they keep (frame boundaries
 * may fall anywhere), and the table must stay within its capacity.  The
 * reference (hpacksize_feed_ref, a byte at a time) must agree with both.
 */
#include "lib/hpacksize.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_hpacksize_check(const struct hpacksize *h)
{
	if (h->used > h->capacity || h->capacity > h->max_capacity || h->count > HPACKSIZE_MAX_ENTRIES)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hpacksize whole, cut, ref, stop_fast, stop_ref;
	uint32_t seed;
	uint64_t a, b, r, stop;
	size_t pos = 0;

	if (size < 1)
		return 0;
	seed = data[0] * 2654435761u + 1;
	data++;
	size--;
	hpacksize_init(&whole, 4096);
	hpacksize_init(&cut, 4096);
	a = hpacksize_feed(&whole, data, size, UINT64_MAX);
	b = 0;
	while (pos < size) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 17;
		if (n > size - pos)
			n = size - pos;
		b = hpacksize_feed(&cut, data + pos, n, UINT64_MAX);
		fuzz_hpacksize_check(&cut);
		pos += n;
	}
	if (size > 0 && a != b)
		abort();
	/* the one-byte-field loop against the byte-at-a-time reference:
	 * whole, and stopped early at a bound drawn from the seed */
	hpacksize_init(&ref, 4096);
	r = hpacksize_feed_ref(&ref, data, size, UINT64_MAX);
	if (r != a || ref.used != whole.used || ref.count != whole.count || ref.head != whole.head)
		abort();
	stop = (seed >> 8) % 8192;
	hpacksize_init(&stop_fast, 4096);
	hpacksize_init(&stop_ref, 4096);
	if (hpacksize_feed(&stop_fast, data, size, stop) != hpacksize_feed_ref(&stop_ref, data, size, stop))
		abort();
	fuzz_hpacksize_check(&whole);
	if (hpacksize_end(&whole) != hpacksize_end(&cut) || whole.used != cut.used || whole.count != cut.count)
		abort();
	return 0;
}
