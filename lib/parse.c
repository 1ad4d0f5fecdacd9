/*
 * parse.c - the value parsers (see parse.h).  lib/config.c turns their
 * refusals into FILE:LINE:COLUMN messages.
 */
#include "parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* Decimal only: "010" is ten, not eight, and "0x10" is an error. */
int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

int
parse_duration(const char *s, uint64_t *ms)
{
	uint64_t ipart = 0, frac = 0, fscale = 1, mult, v;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1; /* empty, sign, space or ".5" */
	for (; *p >= '0' && *p <= '9'; p++) {
		if (ipart > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		ipart = ipart * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		/* nine digits are finer than a millisecond already; the rest
		 * only has to be digits */
		for (; *p >= '0' && *p <= '9'; p++) {
			if (fscale < 1000000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fscale *= 10;
			}
		}
	}
	if (*p == '\0' || strcmp(p, "s") == 0)
		mult = 1000;
	else if (strcmp(p, "ms") == 0)
		mult = 1;
	else if (strcmp(p, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(p, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return -1;
	if (ipart > UINT64_MAX / mult)
		return -1;
	v = ipart * mult;
	/* frac < 1e9 and mult <= 3.6e6: the product fits in 64 bits */
	if (v > UINT64_MAX - frac * mult / fscale)
		return -1;
	*ms = v + frac * mult / fscale;
	return 0;
}

/* [A-Za-z0-9.-]+; all digits and dots must be a real IPv4 literal, so a
 * typo like "127.0.0.256" is caught here rather than by the resolver. */
static int
parse_valid_hostname(const char *h)
{
	struct in_addr a;
	int alpha = 0;

	if (*h == '\0')
		return 0;
	for (const char *p = h; *p != '\0'; p++) {
		if (isalpha((unsigned char)*p) || *p == '-')
			alpha = 1;
		else if (!isdigit((unsigned char)*p) && *p != '.')
			return 0;
	}
	return alpha || inet_pton(AF_INET, h, &a) == 1;
}

static int
parse_valid_ipv6(const char *h)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, h, &a) == 1;
}

/* PORT must be 1-5 decimal digits... or more, which is out of range, not
 * malformed: "70000" deserves the clearer message. */
static enum parse_error
parse_port(const char *s, unsigned min, uint16_t *out)
{
	uint64_t v;

	if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
		return PARSE_BAD;
	if (parse_uint(s, 65535, &v) != 0 || v < min)
		return PARSE_RANGE;
	*out = (uint16_t)v;
	return PARSE_OK;
}

enum parse_error
parse_listen(const char *s, struct parse_listen *out)
{
	struct sockaddr_un sun;
	const char *colon, *hstart, *hend;
	enum parse_error rc;
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;

		/* bind(2) needs the path and its NUL in sun_path */
		if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path))
			return PARSE_BAD;
		out->kind = PARSE_LISTEN_UNIX;
		out->host = strdup(path);
		out->spec = strdup(s);
		goto done;
	}
	if (s[0] == '[') {
		if ((hend = strchr(s, ']')) == NULL || hend[1] != ':')
			return PARSE_BAD;
		hstart = s + 1;
		colon = hend + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return PARSE_BAD;
		hstart = s;
		hend = colon;
	}
	if ((rc = parse_port(colon + 1, 0, &port)) != PARSE_OK)
		return rc;
	if ((out->host = strndup(hstart, (size_t)(hend - hstart))) == NULL)
		return PARSE_NOMEM;
	if (s[0] == '[' ? !parse_valid_ipv6(out->host)
	                : strcmp(out->host, "*") != 0 && !parse_valid_hostname(out->host)) {
		parse_listen_clear(out);
		return PARSE_BAD;
	}
	out->kind = PARSE_LISTEN_TCP;
	out->port = port;
	out->spec = strdup(s);
done:
	if (out->host == NULL || out->spec == NULL) {
		parse_listen_clear(out);
		return PARSE_NOMEM;
	}
	return PARSE_OK;
}

void
parse_listen_clear(struct parse_listen *l)
{
	if (l == NULL)
		return;
	free(l->spec);
	free(l->host);
	memset(l, 0, sizeof(*l));
}

enum parse_error
parse_node(const char *s, struct parse_node *out)
{
	const char *auth, *aend, *hstart, *hend, *path;
	enum parse_error rc;
	size_t len, plen;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(s, "http://", 7) == 0) {
		out->scheme = strdup("http");
		out->port = 80;
		auth = s + 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		out->scheme = strdup("https");
		out->port = 443;
		auth = s + 8;
	} else
		return PARSE_BAD;
	if (out->scheme == NULL)
		return PARSE_NOMEM;

	aend = auth + strcspn(auth, "/");
	path = aend;
	/* no userinfo (there are keys for that), no query, no fragment */
	if (strcspn(auth, "@?# \t") < (size_t)(aend - auth))
		goto bad;
	if (auth[0] == '[') {
		if ((hend = memchr(auth, ']', (size_t)(aend - auth))) == NULL)
			goto bad;
		hstart = auth + 1;
		if (hend + 1 != aend && hend[1] != ':')
			goto bad;
	} else {
		hstart = auth;
		hend = memchr(auth, ':', (size_t)(aend - auth));
		if (hend == NULL)
			hend = aend;
	}
	if ((out->host = strndup(hstart, (size_t)(hend - hstart))) == NULL)
		goto nomem;
	for (char *p = out->host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (auth[0] == '[' ? !parse_valid_ipv6(out->host) : !parse_valid_hostname(out->host))
		goto bad;
	if (auth[0] == '[')
		hend++; /* past ']' */
	if (hend != aend) {
		char *port;

		/* hend points at ':' */
		if ((port = strndup(hend + 1, (size_t)(aend - hend - 1))) == NULL)
			goto nomem;
		rc = parse_port(port, 1, &out->port);
		free(port);
		if (rc != PARSE_OK) {
			parse_node_clear(out);
			return rc;
		}
	}
	if (strcspn(path, "?# \t\r\n") != strlen(path))
		goto bad;

	/* one trailing '/' is how people write a base URL; requests append
	 * a path that starts with '/' */
	len = strlen(s);
	if (len > 0 && s[len - 1] == '/')
		len--;
	if ((out->url = strndup(s, len)) == NULL)
		goto nomem;
	/* path is at most one byte past the shortened URL (a lone "/") */
	plen = len - (size_t)(path - s);
	while (plen > 0 && path[plen - 1] == '/')
		plen--;
	if ((out->path = strndup(path, plen)) == NULL)
		goto nomem;
	return PARSE_OK;
bad:
	parse_node_clear(out);
	return PARSE_BAD;
nomem:
	parse_node_clear(out);
	return PARSE_NOMEM;
}

void
parse_node_clear(struct parse_node *n)
{
	if (n == NULL)
		return;
	free(n->url);
	free(n->scheme);
	free(n->host);
	free(n->path);
	memset(n, 0, sizeof(*n));
}

/* Elasticsearch's ApiKey header takes base64("id:key"). */
static char *
parse_base64(const char *s)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = (const unsigned char *)s;
	size_t len = strlen(s), i;
	char *out, *o;

	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		*o++ = tab[((in[i + 1] & 0x0f) << 2) | (in[i + 2] >> 6)];
		*o++ = tab[in[i + 2] & 0x3f];
	}
	if (len - i == 1) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[(in[i] & 0x03) << 4];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
		*o++ = tab[(in[i + 1] & 0x0f) << 2];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

int
parse_size(const char *s, uint64_t *bytes)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (strcmp(p, "kb") == 0)
		mult = 1024;
	else if (strcmp(p, "mb") == 0)
		mult = 1024 * 1024;
	else if (*p != '\0')
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*bytes = v * mult;
	return 0;
}

/* What a browser sends as Origin: "scheme://host[:port]", nothing after. */
int
parse_origin(const char *s)
{
	struct parse_node n;
	int ok;

	if (strcmp(s, "*") == 0)
		return 1;
	if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		return 0;
	if (s[strlen(s) - 1] == '/' || strchr(strstr(s, "//") + 2, '/') != NULL)
		return 0;
	ok = parse_node(s, &n) == PARSE_OK;
	parse_node_clear(&n);
	return ok;
}

/* An HTTP header name (RFC 9110 token). */
int
parse_header_name(const char *s)
{
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~") == strlen(s);
}

int
parse_rate(const char *s, uint64_t max, double *per_s, uint64_t *n)
{
	const char *slash = strchr(s, '/');
	char num[16];
	uint64_t v;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(num) ||
	    (strcmp(slash, "/s") != 0 && strcmp(slash, "/m") != 0))
		return -1;
	memcpy(num, s, (size_t)(slash - s));
	num[slash - s] = '\0';
	if (parse_uint(num, max, &v) != 0 || v == 0)
		return -1;
	*per_s = slash[1] == 's' ? (double)v : (double)v / 60;
	*n = v;
	return 0;
}

char *
parse_api_key(const char *s)
{
	return strchr(s, ':') != NULL ? parse_base64(s) : strdup(s);
}
