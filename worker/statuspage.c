/*
 * statuspage.c - GET /_esgate/: one self-contained HTML page for a person
 * (see statuspage.html), which reads /_esgate/status and /metrics every
 * few seconds.
 *
 * It owns the page's headers.  The Content-Security-Policy allows no
 * source but the page's own inline style and script, each by its SHA-256
 * (computed once per worker from the bytes that are served, so they
 * cannot drift apart), and fetches to this server; nothing may frame it.
 * The builtin stage (worker/stage_builtin.c) answers with it.
 */
#include "worker/statuspage.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

static const char *statuspage_policy; /* built on first use */
static char statuspage_buf[512];

/* The bytes between OPEN and the next CLOSE, if OPEN occurs exactly once. */
static int
statuspage_element(const char *page, size_t len, const char *open, const char *close, const char **body,
                   size_t *body_len)
{
	const char *a = memmem(page, len, open, strlen(open)), *b;

	if (a == NULL || memmem(a + 1, len - (size_t)(a + 1 - page), open, strlen(open)) != NULL)
		return -1;
	a += strlen(open);
	if ((b = memmem(a, len - (size_t)(a - page), close, strlen(close))) == NULL)
		return -1;
	*body = a;
	*body_len = (size_t)(b - a);
	return 0;
}

/* 'sha256-BASE64' of the bytes. */
static void
statuspage_hash(const char *p, size_t n, char *out, size_t outlen)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	unsigned char b64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1];

	SHA256((const unsigned char *)p, n, md);
	EVP_EncodeBlock(b64, md, SHA256_DIGEST_LENGTH);
	snprintf(out, outlen, "'sha256-%s'", (const char *)b64);
}

const char *
statuspage_csp(void)
{
	const char *page = (const char *)statuspage_html, *style, *script;
	size_t len = statuspage_html_len, style_len, script_len;
	char sh[64], sc[64];

	if (statuspage_policy != NULL)
		return statuspage_policy;
	if (statuspage_element(page, len, "<style>", "</style>", &style, &style_len) != 0 ||
	    statuspage_element(page, len, "<script>", "</script>", &script, &script_len) != 0)
		return NULL;
	statuspage_hash(style, style_len, sh, sizeof(sh));
	statuspage_hash(script, script_len, sc, sizeof(sc));
	snprintf(statuspage_buf, sizeof(statuspage_buf),
	         "default-src 'none'; style-src %s; script-src %s; connect-src 'self'; img-src 'self'; "
	         "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	         sh, sc);
	statuspage_policy = statuspage_buf;
	return statuspage_policy;
}

void
statuspage_serve(h2o_req_t *req)
{
	static const char type[] = "text/html; charset=utf-8";
	const char *csp = statuspage_csp();

	if (csp == NULL) { /* a page that breaks the rule above is never served */
		static const char err[] =
		    "{\"error\":{\"type\":\"internal_error\",\"reason\":\"status page unavailable\"},"
		    "\"status\":500}";
		req->res.status = 500;
		req->res.reason = "Internal Server Error";
		req->res.content_length = sizeof(err) - 1;
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
		               H2O_STRLIT("application/json"));
		h2o_send_inline(req, err, sizeof(err) - 1);
		return;
	}
	req->res.status = 200;
	req->res.reason = "OK";
	req->res.content_length = statuspage_html_len;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, sizeof(type) - 1);
	h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL, csp,
	                      strlen(csp));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
	h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
	                      H2O_STRLIT("nosniff"));
	h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
	                      H2O_STRLIT("no-referrer"));
	h2o_send_inline(req, (const char *)statuspage_html, statuspage_html_len);
}
