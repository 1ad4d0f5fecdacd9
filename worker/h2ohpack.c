/*
 * h2ohpack.c - the HPACK encoding of HTTP/2 answer heads, esgate's instead
 * of libh2o's (see h2ohpack.h).
 *
 * libh2o 2.2.5's HTTP/2 code calls h2o_hpack_flatten_response() through
 * the dynamic linker (lib/http2/connection.c); the executable's definition
 * below comes first in the search order, so every answer head is encoded
 * here.  It writes the same header list in the same order into the same
 * connection state (the output h2o_hpack_header_table_t, whose entries
 * libh2o's h2o_hpack_dispose_header_table() frees: they are made the way
 * libh2o makes them), with one policy of its own about which fields enter
 * the connection's dynamic table:
 *
 *   - libh2o adds every field (but a few short never-indexed ones) to the
 *     table.  A field whose value changes with every answer -- esgate's
 *     x-request-id -- then fills the table (at most 32 entries) with values
 *     never used again: every answer is Huffman-encoded in full, allocates
 *     and frees two table entries, and each of its fields is looked for
 *     among 32 entries.  That was about 5,000 of the 17,000 user-space
 *     instructions of an HTTP/2 request (bench/PROFILE.md, issue 21).
 *   - Here x-request-id goes out as a literal without indexing (RFC 7541
 *     6.2.2), its name pre-encoded, its value as is (32 hex digits gain
 *     little from Huffman coding), and date as a literal without indexing
 *     with the static table's name, its Huffman form computed once per
 *     second.  The table then holds what repeats (server, content-type,
 *     x-elastic-product...), a few entries, found in a few comparisons.
 *   - Everything else is encoded exactly as libh2o does: :status, the
 *     other fields (looked up in the table, else added to it, with libh2o's
 *     limits), content-length, the HEADERS/CONTINUATION framing.
 *
 * What a client decodes is the same list of fields; only the bytes that
 * carry them differ.  Relying on libh2o's hpack internals (the table's
 * entry layout, its constants, the frame fixup) is the risk bridge.c and
 * h2oepoll.c take too: the build refuses any other libh2o version, and
 * each worker checks at start that libh2o's call reaches this definition
 * (h2ohpack_check).  doc/DESIGN.md, section 2.
 */
#include "worker/h2ohpack.h"
#include "worker/h2ofmt.h"

#include <assert.h>
#include <dlfcn.h>
#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <stdlib.h>
#include <string.h>

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/h2ohpack.c replaces libh2o 0.13.5 (h2o 2.2.5)'s h2o_hpack_flatten_response; check lib/http2/hpack.c before changing versions"
#endif

/* lib/http2/hpack.c's constants. */
#define HPACK_TABLE_OFFSET 62     /* the first dynamic table index */
#define HPACK_ENTRY_OVERHEAD 32   /* RFC 7541 4.1 */
#define HPACK_MAX_ENTRIES 32      /* libh2o's cap on its output table */
#define HPACK_STATUS_MAX 5        /* :status */
#define HPACK_CONTENT_LENGTH_MAX (3 + sizeof(H2O_UINT64_LONGEST_STR) - 1)
#define HPACK_DATE_NAME_INDEX 33  /* "date" in the static table */
#define HPACK_DATE_MAX (2 + 1 + H2O_TIMESTR_RFC1123_LEN)

/* "x-request-id", Huffman-coded (RFC 7541 appendix B), with its length
 * prefix: what h2o_hpack_encode_string writes for it. */
static uint8_t h2ohpack_rid_name[16];
static size_t h2ohpack_rid_name_len;

static struct {
	char raw[H2O_TIMESTR_RFC1123_LEN];
	uint8_t enc[H2O_TIMESTR_RFC1123_LEN + 2];
	size_t len; /* 0: nothing cached */
} h2ohpack_date;

static uint64_t h2ohpack_calls;

static int
h2ohpack_is_token(const h2o_iovec_t *name)
{
	return &h2o__tokens[0].buf <= name && name <= &h2o__tokens[H2O_MAX_TOKENS - 1].buf;
}

static int
h2ohpack_is_unique(const h2o_iovec_t *name)
{
	return name->len == 12 && memcmp(name->base, "x-request-id", 12) == 0;
}

static uint8_t *
h2ohpack_int(uint8_t *dst, uint32_t value, unsigned prefix_bits)
{
	uint32_t max = (1u << prefix_bits) - 1;

	if (value < max) {
		*dst++ |= (uint8_t)value;
		return dst;
	}
	*dst++ |= (uint8_t)max;
	for (value -= max; value >= 128; value >>= 7)
		*dst++ = (uint8_t)(0x80 | value);
	*dst++ = (uint8_t)value;
	return dst;
}

/* A string as is (H bit 0). */
static uint8_t *
h2ohpack_raw(uint8_t *dst, const char *s, size_t len)
{
	*dst = 0;
	dst = h2ohpack_int(dst, (uint32_t)len, 7);
	memcpy(dst, s, len);
	return dst + len;
}

static h2o_iovec_t *
h2ohpack_alloc_buf(size_t len)
{
	h2o_iovec_t *buf = h2o_mem_alloc_shared(NULL, sizeof(h2o_iovec_t) + len + 1, NULL);

	buf->base = (char *)buf + sizeof(h2o_iovec_t);
	buf->len = len;
	return buf;
}

/* lib/http2/hpack.c's header_table_evict_one and header_table_add (the
 * encoder never puts static-table values in its table). */
static void
h2ohpack_evict_one(h2o_hpack_header_table_t *table)
{
	h2o_hpack_header_table_entry_t *entry = h2o_hpack_header_table_get(table, --table->num_entries);

	table->hpack_size -= entry->name->len + entry->value->len + HPACK_ENTRY_OVERHEAD;
	if (!h2ohpack_is_token(entry->name))
		h2o_mem_release_shared(entry->name);
	h2o_mem_release_shared(entry->value);
	memset(entry, 0, sizeof(*entry));
}

static h2o_hpack_header_table_entry_t *
h2ohpack_table_add(h2o_hpack_header_table_t *table, size_t size_add)
{
	while (table->num_entries != 0 && table->hpack_size + size_add > table->hpack_capacity)
		h2ohpack_evict_one(table);
	while (HPACK_MAX_ENTRIES <= table->num_entries)
		h2ohpack_evict_one(table);
	if (table->num_entries == 0 && size_add > table->hpack_capacity)
		return NULL;
	table->hpack_size += size_add;
	if (table->num_entries == table->entry_capacity) {
		size_t cap = table->num_entries * 2 < 16 ? 16 : table->num_entries * 2, src, dst;
		h2o_hpack_header_table_entry_t *entries = h2o_mem_alloc(cap * sizeof(*entries));
		if (table->num_entries != 0) {
			for (src = table->entry_start_index, dst = 0; dst != table->num_entries; dst++) {
				entries[dst] = table->entries[src];
				src = (src + 1) % table->entry_capacity;
			}
		}
		memset(entries + table->num_entries, 0, sizeof(*entries) * (cap - table->num_entries));
		free(table->entries);
		table->entries = entries;
		table->entry_capacity = cap;
		table->entry_start_index = 0;
	}
	table->num_entries++;
	table->entry_start_index = (table->entry_start_index + table->entry_capacity - 1) % table->entry_capacity;
	return table->entries + table->entry_start_index;
}

/* lib/http2/hpack.c's encode_header: indexed if the table has the field,
 * else a literal with incremental indexing (or never indexed, for libh2o's
 * dont_compress tokens). */
static uint8_t *
h2ohpack_header(h2o_hpack_header_table_t *table, uint8_t *dst, h2o_iovec_t *name, const h2o_iovec_t *value)
{
	int name_index = 0, dont_compress = 0, name_is_token = h2ohpack_is_token(name);
	size_t i = table->entry_start_index, n;

	for (n = table->num_entries; n != 0; --n) {
		h2o_hpack_header_table_entry_t *entry = table->entries + i;
		if (name_is_token ? name == entry->name : h2o_memis(name->base, name->len, entry->name->base, entry->name->len)) {
			if (!name_is_token && name_index == 0)
				name_index = (int)(table->num_entries - n + HPACK_TABLE_OFFSET);
			if (h2o_memis(value->base, value->len, entry->value->base, entry->value->len)) {
				*dst = 0x80;
				return h2ohpack_int(dst, (uint32_t)(table->num_entries - n + HPACK_TABLE_OFFSET), 7);
			}
		}
		if (++i == table->entry_capacity)
			i = 0;
	}
	if (name_is_token) {
		const h2o_token_t *token = H2O_STRUCT_FROM_MEMBER(h2o_token_t, buf, name);
		name_index = token->http2_static_table_name_index;
		dont_compress = token->dont_compress == 1 && value->len < 20;
	}
	if (name_index != 0) {
		if (dont_compress) {
			*dst = 0x10;
			dst = h2ohpack_int(dst, (uint32_t)name_index, 4);
		} else {
			*dst = 0x40;
			dst = h2ohpack_int(dst, (uint32_t)name_index, 6);
		}
	} else {
		*dst++ = 0x40;
		dst += h2o_hpack_encode_string(dst, name->base, name->len);
	}
	if (dont_compress)
		return h2ohpack_raw(dst, value->base, value->len);
	dst += h2o_hpack_encode_string(dst, value->base, value->len);
	h2o_hpack_header_table_entry_t *entry = h2ohpack_table_add(table, name->len + value->len + HPACK_ENTRY_OVERHEAD);
	if (entry != NULL) {
		if (name_is_token) {
			entry->name = name;
		} else {
			entry->name = h2ohpack_alloc_buf(name->len);
			memcpy(entry->name->base, name->base, name->len);
			entry->name->base[name->len] = '\0';
		}
		entry->value = h2ohpack_alloc_buf(value->len);
		memcpy(entry->value->base, value->base, value->len);
		entry->value->base[value->len] = '\0';
	}
	return dst;
}

/* A field whose value is new with every answer: literal without indexing,
 * the name Huffman-coded once, the value as is. */
static uint8_t *
h2ohpack_unique(uint8_t *dst, const h2o_iovec_t *value)
{
	if (h2ohpack_rid_name_len == 0)
		h2ohpack_rid_name_len = h2o_hpack_encode_string(h2ohpack_rid_name, "x-request-id", 12);
	*dst++ = 0x00;
	memcpy(dst, h2ohpack_rid_name, h2ohpack_rid_name_len);
	dst += h2ohpack_rid_name_len;
	return h2ohpack_raw(dst, value->base, value->len);
}

/* date: literal without indexing, the static table's name, the value's
 * encoding kept until the second changes. */
static uint8_t *
h2ohpack_date_field(uint8_t *dst, const char *date)
{
	if (h2ohpack_date.len == 0 || memcmp(h2ohpack_date.raw, date, H2O_TIMESTR_RFC1123_LEN) != 0) {
		memcpy(h2ohpack_date.raw, date, H2O_TIMESTR_RFC1123_LEN);
		h2ohpack_date.len = h2o_hpack_encode_string(h2ohpack_date.enc, date, H2O_TIMESTR_RFC1123_LEN);
	}
	*dst = 0x00;
	dst = h2ohpack_int(dst, HPACK_DATE_NAME_INDEX, 4);
	memcpy(dst, h2ohpack_date.enc, h2ohpack_date.len);
	return dst + h2ohpack_date.len;
}

/* lib/http2/hpack.c's encode_status. */
static uint8_t *
h2ohpack_status(uint8_t *dst, int status)
{
	switch (status) {
	case 200: *dst++ = 0x80 | 8; break;
	case 204: *dst++ = 0x80 | 9; break;
	case 206: *dst++ = 0x80 | 10; break;
	case 304: *dst++ = 0x80 | 11; break;
	case 400: *dst++ = 0x80 | 12; break;
	case 404: *dst++ = 0x80 | 13; break;
	case 500: *dst++ = 0x80 | 14; break;
	default:
		/* literal without indexing, indexed name :status */
		*dst++ = 8;
		*dst++ = 3;
		*dst++ = (uint8_t)('0' + status / 100);
		*dst++ = (uint8_t)('0' + status / 10 % 10);
		*dst++ = (uint8_t)('0' + status % 10);
		break;
	}
	return dst;
}

/* lib/http2/hpack.c's encode_content_length: the digits (at most 20)
 * after the 3 bytes that announce them, their count in the third. */
static uint8_t *
h2ohpack_content_length(uint8_t *dst, size_t value)
{
	uint8_t *end = (uint8_t *)h2ofmt_uint((char *)dst + 3, value);

	dst[0] = 0x0f;
	dst[1] = 0x0d;
	dst[2] = (uint8_t)(end - dst - 3);
	return end;
}

/* lib/http2/hpack.c's fixup_frame_headers. */
static void
h2ohpack_frames(h2o_buffer_t **buf, size_t start_at, uint8_t type, uint32_t stream_id, size_t max_frame_size)
{
	size_t payload = (*buf)->size - start_at - H2O_HTTP2_FRAME_HEADER_SIZE, off;

	if (payload <= max_frame_size) {
		h2o_http2_encode_frame_header((uint8_t *)((*buf)->bytes + start_at), payload, type,
		                              H2O_HTTP2_FRAME_FLAG_END_HEADERS, (int32_t)stream_id);
		return;
	}
	h2o_http2_encode_frame_header((uint8_t *)((*buf)->bytes + start_at), max_frame_size, type, 0, (int32_t)stream_id);
	off = start_at + H2O_HTTP2_FRAME_HEADER_SIZE + max_frame_size;
	for (;;) {
		size_t left = (*buf)->size - off;
		h2o_buffer_reserve(buf, H2O_HTTP2_FRAME_HEADER_SIZE);
		memmove((*buf)->bytes + off + H2O_HTTP2_FRAME_HEADER_SIZE, (*buf)->bytes + off, left);
		(*buf)->size += H2O_HTTP2_FRAME_HEADER_SIZE;
		if (left <= max_frame_size) {
			h2o_http2_encode_frame_header((uint8_t *)((*buf)->bytes + off), left, H2O_HTTP2_FRAME_TYPE_CONTINUATION,
			                              H2O_HTTP2_FRAME_FLAG_END_HEADERS, (int32_t)stream_id);
			return;
		}
		h2o_http2_encode_frame_header((uint8_t *)((*buf)->bytes + off), max_frame_size,
		                              H2O_HTTP2_FRAME_TYPE_CONTINUATION, 0, (int32_t)stream_id);
		off += H2O_HTTP2_FRAME_HEADER_SIZE + max_frame_size;
	}
}

void
h2o_hpack_flatten_response(h2o_buffer_t **buf, h2o_hpack_header_table_t *header_table, uint32_t stream_id,
                           size_t max_frame_size, h2o_res_t *res, h2o_timestamp_t *ts, const h2o_iovec_t *server_name,
                           size_t content_length)
{
	size_t capacity = H2O_HTTP2_FRAME_HEADER_SIZE + HPACK_STATUS_MAX + HPACK_DATE_MAX, start_at, i;
	uint8_t *dst;

	h2ohpack_calls++;
	for (i = 0; i != res->headers.size; ++i)
		capacity += res->headers.entries[i].name->len + res->headers.entries[i].value.len + 1 +
		            H2O_HTTP2_ENCODE_INT_MAX_LENGTH * 2;
	if (server_name->len)
		capacity += 5 + server_name->len;
	if (content_length != SIZE_MAX)
		capacity += HPACK_CONTENT_LENGTH_MAX;

	start_at = (*buf)->size;
	dst = (uint8_t *)h2o_buffer_reserve(buf, capacity).base + H2O_HTTP2_FRAME_HEADER_SIZE;
	assert(100 <= res->status && res->status <= 999);
	dst = h2ohpack_status(dst, res->status);
	if (server_name->len)
		dst = h2ohpack_header(header_table, dst, &H2O_TOKEN_SERVER->buf, server_name);
	dst = h2ohpack_date_field(dst, ts->str->rfc1123);
	for (i = 0; i != res->headers.size; ++i) {
		const h2o_header_t *h = res->headers.entries + i;
		if (!h2ohpack_is_token(h->name) && h2ohpack_is_unique(h->name))
			dst = h2ohpack_unique(dst, &h->value);
		else
			dst = h2ohpack_header(header_table, dst, h->name, &h->value);
	}
	if (content_length != SIZE_MAX)
		dst = h2ohpack_content_length(dst, content_length);
	(*buf)->size = (char *)dst - (*buf)->bytes;
	h2ohpack_frames(buf, start_at, H2O_HTTP2_FRAME_TYPE_HEADERS, stream_id, max_frame_size);
}

uint64_t
h2ohpack_answers(void)
{
	return h2ohpack_calls;
}

int
h2ohpack_check(void)
{
	/* libh2o's HTTP/2 code calls it through the dynamic linker: the
	 * definition found there must be this one. */
	return dlsym(RTLD_DEFAULT, "h2o_hpack_flatten_response") == (void *)h2o_hpack_flatten_response ? 0 : -1;
}
