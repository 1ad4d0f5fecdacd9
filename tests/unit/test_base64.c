/*
 * test_base64.c - lib/base64.c: RFC 4648's vectors both ways, and every
 * non-canonical spelling refused, so one credential has one encoding.
 */
#include "lib/base64.h"

#include <criterion/criterion.h>
#include <string.h>

static const struct {
	const char *plain, *std, *url;
} vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

Test(base64, rfc4648_vectors)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		unsigned char out[16];
		char enc[16];
		size_t n = strlen(vectors[i].plain);

		cr_expect_eq(base64_encode((const unsigned char *)vectors[i].plain, n, 0, enc, sizeof(enc)),
		             (ssize_t)strlen(vectors[i].std));
		cr_expect_str_eq(enc, vectors[i].std);
		cr_expect_eq(base64_encode((const unsigned char *)vectors[i].plain, n, 1, enc, sizeof(enc)),
		             (ssize_t)strlen(vectors[i].url));
		cr_expect_str_eq(enc, vectors[i].url);
		cr_expect_eq(base64_decode(vectors[i].std, strlen(vectors[i].std), out, sizeof(out)), (ssize_t)n);
		cr_expect(memcmp(out, vectors[i].plain, n) == 0);
		/* padding is optional in the standard form, as in Elasticsearch */
		cr_expect_eq(base64_decode(vectors[i].url, strlen(vectors[i].url), out, sizeof(out)), (ssize_t)n);
		cr_expect_eq(base64url_decode(vectors[i].url, strlen(vectors[i].url), out, sizeof(out)), (ssize_t)n);
		cr_expect(memcmp(out, vectors[i].plain, n) == 0);
	}
}

Test(base64, alphabets)
{
	static const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
	unsigned char out[4];
	char enc[8];

	base64_encode(bytes, 3, 0, enc, sizeof(enc));
	cr_expect_str_eq(enc, "+/+/");
	base64_encode(bytes, 3, 1, enc, sizeof(enc));
	cr_expect_str_eq(enc, "-_-_");
	cr_expect_eq(base64_decode("+/+/", 4, out, sizeof(out)), 3);
	cr_expect_eq(base64url_decode("-_-_", 4, out, sizeof(out)), 3);
	cr_expect(memcmp(out, bytes, 3) == 0);
	cr_expect_eq(base64_decode("-_-_", 4, out, sizeof(out)), -1, "url alphabet in a standard value");
	cr_expect_eq(base64url_decode("+/+/", 4, out, sizeof(out)), -1, "standard alphabet in a url value");
}

Test(base64, refused)
{
	static const char *const std_bad[] = {
	    "Zg=", "Zg===", "Z===", "Zm9v=", "=Zm9",     "Zm=v",   "Zm9v\n", " Zm9v", "Zm 9v",
	    "Z",   "Zh==",  "Zm9=", "Zm9vY", "Zg==Zg==", "Zm9v\0", "====",   "Zm8==", "Zg=\0",
	};
	static const char *const url_bad[] = {"Zg==", "Zg=", "Zh", "Zm9", "Z", "Zm9vY", "Zm9v.", "Zm9v="};
	unsigned char out[64];

	for (size_t i = 0; i < sizeof(std_bad) / sizeof(std_bad[0]); i++)
		cr_expect_eq(
		    base64_decode(std_bad[i], strlen(std_bad[i]) + (strcmp(std_bad[i], "Zm9v") == 0), out, sizeof(out)),
		    -1, "accepted \"%s\"", std_bad[i]);
	for (size_t i = 0; i < sizeof(url_bad) / sizeof(url_bad[0]); i++)
		cr_expect_eq(base64url_decode(url_bad[i], strlen(url_bad[i]), out, sizeof(out)), -1, "accepted \"%s\"",
		             url_bad[i]);
	/* a NUL inside the given length */
	cr_expect_eq(base64_decode("Zm\0v", 4, out, sizeof(out)), -1);
	cr_expect_eq(base64url_decode("Zm\0v", 4, out, sizeof(out)), -1);
}

Test(base64, buffer_bounds)
{
	unsigned char out[3];
	char enc[5];

	cr_expect_eq(base64_decode("Zm9vYg", 6, out, sizeof(out)), -1, "4 bytes into 3");
	cr_expect_eq(base64_decode("Zm9v", 4, out, sizeof(out)), 3);
	cr_expect_eq(base64_encode((const unsigned char *)"foo", 3, 0, enc, 4), -1, "no room for the NUL");
	cr_expect_eq(base64_encode((const unsigned char *)"foo", 3, 0, enc, 5), 4);
	cr_expect_eq(BASE64_DECODED_MAX(8), 6);
	cr_expect_eq(BASE64_ENCODED_LEN(4), 8);
}
