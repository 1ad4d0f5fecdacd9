/*
 * hpacksize.h - the decoded size of HTTP/2 header blocks, without decoding
 * them: what SETTINGS_MAX_HEADER_LIST_SIZE counts (RFC 7540 6.5.2: each
 * field's name and value lengths plus 32), from the compressed bytes.
 *
 * HPACK (RFC 7541) lets one byte stand for a whole entry of the dynamic
 * table, so a 410,000-byte header block can decode to 1.6 GB: the size
 * has to be known before anyone decodes it.  This keeps a mirror of the
 * connection's dynamic table that holds only the entries' lengths (what
 * eviction depends on), follows every representation, literal lengths
 * and Huffman strings (counted symbol by symbol through the canonical
 * code, not copied), and adds up.  It is fed the header block fragments
 * of HEADERS and CONTINUATION frames in order, as they arrive, whatever
 * frame boundary cuts a representation.  Pure: no I/O, no allocation.
 */
#ifndef ESGATE_HPACKSIZE_H
#define ESGATE_HPACKSIZE_H

#include <stddef.h>
#include <stdint.h>

#define HPACKSIZE_MAX_ENTRIES 128 /* a 4096-byte table holds at most 4096 / 32 entries */

struct hpacksize {
	/* the dynamic table: entry lengths, newest at ring[head] */
	uint32_t name_len[HPACKSIZE_MAX_ENTRIES];
	uint32_t value_len[HPACKSIZE_MAX_ENTRIES];
	unsigned head, count;
	uint32_t used;      /* sum of (name + value + 32) of the entries */
	uint32_t capacity;  /* now (dynamic table size updates lower it) */
	uint32_t max_capacity; /* SETTINGS_HEADER_TABLE_SIZE we announced (h2o: 4096) */
	/* the current header block */
	uint64_t block;     /* decoded size so far */
	int broken;         /* malformed: counting stopped (h2o refuses the block itself) */
	/* the representation being read */
	uint8_t state, kind, huffman, in_value;
	uint64_t ival;
	unsigned ishift;
	uint32_t name, str_left, syms, code;
	uint8_t code_len;
};

/* A fresh decoder for a connection whose table may hold MAX_CAPACITY
 * bytes (<= 4096; what the server announced, h2o 2.2.5's is 4096). */
void hpacksize_init(struct hpacksize *h, uint32_t max_capacity);
/* Puts an entry of NAME and VALUE bytes in the table, as a literal with
 * incremental indexing does: to start from a table someone else has been
 * keeping (oldest entry first). */
void hpacksize_table_add(struct hpacksize *h, uint32_t name, uint32_t value);
/* Reads N more bytes of the current header block.  Returns the block's
 * decoded size so far, the field being read included as far as it is
 * known (a plain string's declared length counts at once), or UINT64_MAX
 * once the block is malformed.  Stops counting (cheaply) once past
 * STOP_AT. */
uint64_t hpacksize_feed(struct hpacksize *h, const uint8_t *p, size_t n, uint64_t stop_at);
/* The same, a byte at a time throughout: the reference the tests hold
 * hpacksize_feed's one-byte-field loop to. */
uint64_t hpacksize_feed_ref(struct hpacksize *h, const uint8_t *p, size_t n, uint64_t stop_at);
/* The block ended (END_HEADERS): returns its decoded size (UINT64_MAX if
 * malformed or cut in the middle of a representation) and gets ready for
 * the next one.  The table keeps what the block added. */
uint64_t hpacksize_end(struct hpacksize *h);

#endif
