/*
 * khash.h - just enough of klib's khash.h for <h2o/http2_internal.h>.
 *
 * libh2o 2.2.5's http2_internal.h includes "khash.h", which Debian's
 * libh2o-evloop-dev does not ship.  worker/guard.c and worker/h2drain.c
 * read fields of h2o_http2_conn_t before and after its stream table, never the table
 * itself (worker/h2ohpack.c uses only the header's hpack types): it only needs the table to be a pointer to some struct, and
 * the one inline lookup in the header (h2o_http2_conn_get_stream) to
 * compile; it is never called, so the khash functions it names are never
 * linked.  Only guard.c's, h2drain.c's and h2ohpack.c's include paths
 * have this directory (Makefile).
 */
#ifndef ESGATE_COMPAT_KHASH_H
#define ESGATE_COMPAT_KHASH_H

#include <stdint.h>

typedef uint32_t khint_t;
typedef khint_t khiter_t;

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                            \
	typedef struct kh_##name##_s kh_##name##_t;                                                                    \
	khint_t kh_get_##name(const kh_##name##_t *h, int64_t key);                                                    \
	khint_t kh_end_##name(const kh_##name##_t *h);                                                                 \
	khval_t kh_val_##name(const kh_##name##_t *h, khint_t i);

#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) kh_get_##name(h, k)
#define kh_end(h) kh_end_h2o_http2_stream_t(h)
#define kh_val(h, x) kh_val_h2o_http2_stream_t(h, x)

#endif
