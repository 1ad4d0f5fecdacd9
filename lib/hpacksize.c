/*
 * hpacksize.c - the decoded size of HTTP/2 header blocks (see hpacksize.h).
 *
 * A byte-at-a-time state machine over RFC 7541's representations, so a
 * frame boundary may fall anywhere.  The static table's lengths and the
 * Huffman code's shape (how many codes of each bit length; the code is
 * canonical, checked against h2o 2.2.5's lib/http2/hpack_huffman_table.h
 * when this was written) are all it needs of HPACK's tables.  A field
 * indexed in one byte, what a client's repeated requests mostly are, is
 * counted in a loop of its own (hpacksize_feed_ref is the same machine
 * without it: the fuzzer and the unit tests hold the two to the same
 * results).
 */
#include "lib/hpacksize.h"

#include <string.h>

/* RFC 7541 Appendix A: name and value lengths of static entries 1..61. */
static const uint8_t hpacksize_static_name[61] = {
    10, 7,  7,  5,  5,  7,  7,  7,  7,  7,  7,  7,  7,  7,  14, 15, 15, 13, 6,  27, 3,
    5,  13, 13, 19, 16, 16, 14, 16, 13, 12, 6,  4,  4,  6,  7,  4,  4,  8,  17, 13, 8,
    19, 13, 4,  8,  12, 18, 19, 5,  7,  7,  11, 6,  10, 25, 17, 10, 4,  3,  16};
static const uint8_t hpacksize_static_value[61] = {0, 3, 4, 1, 11, 4, 5, 3, 3, 3, 3, 3, 3, 3, 0, 13};

/* The canonical Huffman code (RFC 7541 Appendix B): codes of each bit
 * length, and the first code of that length. */
static const uint8_t hpacksize_huff_count[31] = {0, 0,  0, 0, 0,  10, 26, 32, 6, 0,  5,  3,  2,  6,  2, 3,
                                                 0, 0,  0, 3, 8,  13, 26, 29, 12, 4, 15, 19, 29, 0,  4};
static const uint32_t hpacksize_huff_first[31] = {
    0x0,     0x0,      0x0,      0x0,      0x0,      0x0,       0x14,      0x5c,      0xf8,       0x1fc,     0x3f8,
    0x7fa,   0xffa,    0x1ff8,   0x3ffc,   0x7ffc,   0xfffe,    0x1fffc,   0x3fff8,   0x7fff0,    0xfffe6,   0x1fffdc,
    0x3fffd2, 0x7fffd8, 0xffffea, 0x1ffffec, 0x3ffffe0, 0x7ffffde, 0xfffffe2, 0x1ffffffe, 0x3ffffffc};
#define HPACKSIZE_EOS 0x3fffffffu

enum { HS_START, HS_INT, HS_STRLEN, HS_STRLEN_INT, HS_STR };
enum { HK_INDEXED, HK_LITERAL_INDEXED, HK_LITERAL, HK_SIZE };

#define HPACKSIZE_ENTRY_OVERHEAD 32

void
hpacksize_init(struct hpacksize *h, uint32_t max_capacity)
{
	memset(h, 0, sizeof(*h));
	h->capacity = h->max_capacity = max_capacity;
}

static void
hpacksize_evict(struct hpacksize *h, uint32_t room)
{
	while (h->count > 0 && h->used + room > h->capacity) {
		unsigned oldest = (h->head + h->count - 1) % HPACKSIZE_MAX_ENTRIES;
		h->used -= h->name_len[oldest] + h->value_len[oldest] + HPACKSIZE_ENTRY_OVERHEAD;
		h->count--;
	}
}

static void
hpacksize_add(struct hpacksize *h, uint32_t name, uint32_t value)
{
	uint64_t size = (uint64_t)name + value + HPACKSIZE_ENTRY_OVERHEAD;

	if (size > h->capacity) {
		hpacksize_evict(h, h->capacity + 1); /* empties it */
		return;
	}
	hpacksize_evict(h, (uint32_t)size);
	if (h->count == HPACKSIZE_MAX_ENTRIES) /* cannot happen with capacity <= 4096 */
		hpacksize_evict(h, h->capacity + 1);
	h->head = (h->head + HPACKSIZE_MAX_ENTRIES - 1) % HPACKSIZE_MAX_ENTRIES;
	h->name_len[h->head] = name;
	h->value_len[h->head] = value;
	h->count++;
	h->used += (uint32_t)size;
}

void
hpacksize_table_add(struct hpacksize *h, uint32_t name, uint32_t value)
{
	hpacksize_add(h, name, value);
}

/* Entry INDEX (1-based, static then dynamic): its lengths; -1 if none.
 * Inlined: hpacksize_feed_with's loop for fields indexed in one byte asks
 * it once a byte. */
static inline __attribute__((always_inline)) int
hpacksize_entry(const struct hpacksize *h, uint64_t index, uint32_t *name, uint32_t *value)
{
	if (index >= 1 && index <= 61) {
		*name = hpacksize_static_name[index - 1];
		*value = hpacksize_static_value[index - 1];
		return 0;
	}
	if (index < 62 || index - 62 >= h->count)
		return -1;
	unsigned i = (h->head + (unsigned)(index - 62)) % HPACKSIZE_MAX_ENTRIES;
	*name = h->name_len[i];
	*value = h->value_len[i];
	return 0;
}

static void
hpacksize_field(struct hpacksize *h, uint32_t name, uint32_t value)
{
	h->block += (uint64_t)name + value + HPACKSIZE_ENTRY_OVERHEAD;
	if (h->kind == HK_LITERAL_INDEXED)
		hpacksize_add(h, name, value);
	h->state = HS_START;
}

/* A string (a name or a value) has been read: SYMS decoded bytes. */
static void
hpacksize_string_done(struct hpacksize *h)
{
	if (!h->in_value) {
		h->name = h->syms;
		h->in_value = 1;
		h->state = HS_STRLEN;
		return;
	}
	hpacksize_field(h, h->name, h->syms);
}

/* The integer of a representation's first byte is complete. */
static void
hpacksize_int_done(struct hpacksize *h)
{
	uint32_t name, value;

	switch (h->kind) {
	case HK_INDEXED:
		if (hpacksize_entry(h, h->ival, &name, &value) != 0) {
			h->broken = 1;
			return;
		}
		hpacksize_field(h, name, value);
		return;
	case HK_SIZE:
		if (h->ival > h->max_capacity) {
			h->broken = 1;
			return;
		}
		h->capacity = (uint32_t)h->ival;
		hpacksize_evict(h, 0);
		h->state = HS_START;
		return;
	default: /* a literal: a new name (0) or an indexed one */
		if (h->ival == 0) {
			h->in_value = 0;
		} else {
			if (hpacksize_entry(h, h->ival, &name, &value) != 0) {
				h->broken = 1;
				return;
			}
			h->name = name;
			h->in_value = 1;
		}
		h->state = HS_STRLEN;
		return;
	}
}

static void
hpacksize_strlen_done(struct hpacksize *h)
{
	h->str_left = (uint32_t)h->ival;
	h->syms = 0;
	h->code = 0;
	h->code_len = 0;
	if (h->str_left == 0)
		hpacksize_string_done(h);
	else
		h->state = HS_STR;
}

/* One more byte of an integer's continuation; 1 when it is complete. */
static int
hpacksize_int_byte(struct hpacksize *h, uint8_t b)
{
	if (h->ishift > 28) {
		h->broken = 1;
		return 0;
	}
	h->ival += (uint64_t)(b & 0x7f) << h->ishift;
	h->ishift += 7;
	return (b & 0x80) == 0;
}

static void
hpacksize_huffman_byte(struct hpacksize *h, uint8_t b)
{
	for (int bit = 7; bit >= 0; bit--) {
		h->code = (h->code << 1) | ((b >> bit) & 1);
		h->code_len++;
		if (h->code_len > 30) {
			h->broken = 1;
			return;
		}
		if (h->code - hpacksize_huff_first[h->code_len] < hpacksize_huff_count[h->code_len] &&
		    h->code >= hpacksize_huff_first[h->code_len]) {
			if (h->code == HPACKSIZE_EOS) {
				h->broken = 1;
				return;
			}
			h->syms++;
			h->code = 0;
			h->code_len = 0;
		}
	}
}

static void
hpacksize_start(struct hpacksize *h, uint8_t b)
{
	uint8_t mask;

	if (b & 0x80) {
		h->kind = HK_INDEXED;
		mask = 0x7f;
	} else if (b & 0x40) {
		h->kind = HK_LITERAL_INDEXED;
		mask = 0x3f;
	} else if (b & 0x20) {
		h->kind = HK_SIZE;
		mask = 0x1f;
	} else {
		h->kind = HK_LITERAL; /* without indexing, or never indexed */
		mask = 0x0f;
	}
	h->ival = b & mask;
	h->ishift = 0;
	if (h->ival < mask)
		hpacksize_int_done(h);
	else
		h->state = HS_INT;
}

/* What the field being read will add at least: its name and the value so
 * far, a plain string's whole declared length (it decodes to exactly
 * that), a Huffman one's symbols so far.  So a header that never ends is
 * counted while it arrives, and one declared too long at once. */
static uint64_t
hpacksize_partial(const struct hpacksize *h)
{
	uint64_t n;

	if (h->state != HS_STR && h->state != HS_STRLEN && h->state != HS_STRLEN_INT)
		return 0;
	n = HPACKSIZE_ENTRY_OVERHEAD + (h->in_value ? h->name : 0);
	if (h->state == HS_STR)
		n += h->huffman ? h->syms : (uint64_t)h->syms + h->str_left;
	return n;
}

static uint64_t
hpacksize_feed_with(struct hpacksize *h, const uint8_t *p, size_t n, uint64_t stop_at, int fast)
{
	const uint8_t *end = p + n;

	while (p < end && !h->broken && h->block + hpacksize_partial(h) <= stop_at) {
		uint8_t b = *p;

		/* the usual byte of a request's block: a whole field indexed in
		 * one byte (an index of 1..126: static, or dynamic and present),
		 * as hpacksize_start and hpacksize_int_done count it, in a loop of
		 * its own; anything else (and a bad index, which breaks) below */
		if (fast && h->state == HS_START) {
			while ((b & 0x80) && b != 0xff && h->block <= stop_at) {
				uint32_t name, value;

				if (hpacksize_entry(h, b & 0x7f, &name, &value) != 0)
					break;
				h->block += (uint64_t)name + value + HPACKSIZE_ENTRY_OVERHEAD;
				if (++p == end)
					return h->block;
				b = *p;
			}
			if (h->block > stop_at)
				break;
		}

		switch (h->state) {
		case HS_START:
			hpacksize_start(h, b);
			p++;
			break;
		case HS_INT:
			if (hpacksize_int_byte(h, b))
				hpacksize_int_done(h);
			p++;
			break;
		case HS_STRLEN:
			h->huffman = (b & 0x80) != 0;
			h->ival = b & 0x7f;
			h->ishift = 0;
			p++;
			if (h->ival < 0x7f)
				hpacksize_strlen_done(h);
			else
				h->state = HS_STRLEN_INT;
			break;
		case HS_STRLEN_INT:
			if (hpacksize_int_byte(h, b))
				hpacksize_strlen_done(h);
			p++;
			break;
		case HS_STR: {
			size_t take = (size_t)(end - p) < h->str_left ? (size_t)(end - p) : h->str_left;

			if (h->huffman) {
				for (size_t i = 0; i < take && !h->broken; i++)
					hpacksize_huffman_byte(h, p[i]);
			} else {
				h->syms += (uint32_t)take;
			}
			p += take;
			h->str_left -= (uint32_t)take;
			if (h->str_left == 0 && !h->broken)
				hpacksize_string_done(h);
			break;
		}
		}
	}
	return h->broken ? UINT64_MAX : h->block + hpacksize_partial(h);
}

uint64_t
hpacksize_feed(struct hpacksize *h, const uint8_t *p, size_t n, uint64_t stop_at)
{
	return hpacksize_feed_with(h, p, n, stop_at, 1);
}

uint64_t
hpacksize_feed_ref(struct hpacksize *h, const uint8_t *p, size_t n, uint64_t stop_at)
{
	return hpacksize_feed_with(h, p, n, stop_at, 0);
}

uint64_t
hpacksize_end(struct hpacksize *h)
{
	uint64_t size = h->broken || h->state != HS_START ? UINT64_MAX : h->block;

	h->block = 0;
	h->state = HS_START;
	/* a malformed block ends the connection (h2o's COMPRESSION_ERROR):
	 * the table is not worth keeping in step any more */
	return size;
}
