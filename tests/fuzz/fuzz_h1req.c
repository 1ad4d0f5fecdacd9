/*
 * fuzz_h1req.c - libFuzzer target for lib/h1req.c against libh2o's own
 * picohttpparser (this binary defines no phr_parse_request, so the call
 * below is libh2o's): the input is a client's request head.  The first
 * byte picks the header limit (0-15) and LAST_LEN's rule; the rest is the
 * buffer.  Whenever h1req_parse_plain() answers (and worker/h2oparse.c
 * would answer with it: LAST_LEN at most the head's length), libh2o's
 * parser must answer the same, field by field; h1req must never read
 * outside the buffer (ASan) and never answer what libh2o refuses.
 */
#include "lib/h1req.h"
#include "worker/h2oparse.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h1req_header h[16];
	struct phr_header p[16];
	struct h1req_line l;
	const char *m, *path;
	size_t max, n, used, last_len, nh, mlen, plen;
	int minor, ret;
	char *buf;

	if (size < 1)
		return 0;
	max = data[0] & 15;
	buf = malloc(size - 1 ? size - 1 : 1); /* exactly the input: ASan sees a read past it */
	memcpy(buf, data + 1, size - 1);
	used = h1req_parse_plain(buf, size - 1, &l, h, max, &n);
	if (used > 0) {
		if (used > size - 1 || n > max)
			abort();
		last_len = data[0] & 16 ? used - (data[0] >> 5) % (used + 1) : 0;
		nh = max;
		ret = phr_parse_request(buf, size - 1, &m, &mlen, &path, &plen, &minor, p, &nh, last_len);
		if (ret != (int)used || m != l.method || mlen != l.method_len || path != l.path || plen != l.path_len ||
		    minor != l.minor_version || nh != n)
			abort();
		for (size_t i = 0; i < n; i++)
			if (p[i].name != h[i].name || p[i].name_len != h[i].name_len || p[i].value != h[i].value ||
			    p[i].value_len != h[i].value_len)
				abort();
	}
	free(buf);
	return 0;
}
