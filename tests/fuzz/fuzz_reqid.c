/*
 * fuzz_reqid.c - libFuzzer target for reqid_valid (lib/reqid.c): the input
 * is a client's X-Request-Id.  Checked against the rule in reqid.h, written
 * again here, so a change in either shows up as a crash.
 */
#include "lib/reqid.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_reqid_expect(const uint8_t *s, size_t len)
{
	if (len == 0 || len > REQID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (reqid_valid((const char *)data, size) != fuzz_reqid_expect(data, size))
		abort();
	return 0;
}
