/*
 * tls.c - certificates, keys and the listeners' OpenSSL contexts (see tls.h).
 *
 * Files are read with BIOs so that every failure can name the file and
 * OpenSSL's own reason; nothing here ever prints key material.  SNI is
 * served from the certificate callback (SSL_CTX_set_cert_cb), which
 * swaps the default certificate for the one whose names match, on the
 * one SSL_CTX of the listener: every setting stays the listener's own,
 * whichever certificate is sent.
 */
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Mozilla's "intermediate" TLS 1.2 suites (server side TLS v5.7): ECDHE
 * and DHE key exchange, AEAD only.  TLS 1.3's suites are all AEAD and
 * forward-secret; OpenSSL's default list of them is kept. */
#define TLS_CIPHERS                                                                                                    \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                     \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                       \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

/* OpenSSL's first queued reason, or WHY when there is none. */
static const char *
tls_reason(char *buf, size_t len, const char *why)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0) {
		snprintf(buf, len, "%s", why);
	} else {
		const char *r = ERR_reason_error_string(e);
		snprintf(buf, len, "%s", r != NULL ? r : why);
	}
	ERR_clear_error();
	return buf;
}

static int
tls_add_name(struct tls_cert *c, const char *s, size_t len)
{
	char **p, *n;

	if (len == 0 || memchr(s, '\0', len) != NULL)
		return 0; /* not a usable name; ignored */
	if ((p = realloc(c->names, (c->nnames + 1) * sizeof(*p))) == NULL)
		return -1;
	c->names = p;
	if ((n = strndup(s, len)) == NULL)
		return -1;
	for (char *q = n; *q != '\0'; q++)
		*q = (char)tolower((unsigned char)*q);
	c->names[c->nnames++] = n;
	return 0;
}

/* The certificate's DNS names; its subject's CN only when it has none
 * (RFC 6125 6.4.4, as clients check them). */
static int
tls_take_names(struct tls_cert *c)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(c->cert, NID_subject_alt_name, NULL, NULL);
	int rc = 0;

	if (sans != NULL) {
		for (int i = 0; i < sk_GENERAL_NAME_num(sans) && rc == 0; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
			if (g->type == GEN_DNS)
				rc = tls_add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
				                  (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(sans);
	}
	if (rc == 0 && c->nnames == 0) {
		X509_NAME *subj = X509_get_subject_name(c->cert);
		int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		if (i >= 0) {
			ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
			rc = tls_add_name(c, (const char *)ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn));
		}
	}
	return rc;
}

#define TLS_FILE_MAX (1024 * 1024) /* a certificate chain or key is never this big */

/* PATH is a readable regular file of sane size: a device, a FIFO or
 * /dev/zero named by mistake would block or never end. */
static int
tls_check_file(const char *path, const char *what, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "cannot read the %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
		snprintf(err, errlen, "the %s %s is %s", what, path,
		         !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 1 MiB");
		return -1;
	}
	return 0;
}

int
tls_cert_load(struct tls_cert *c, const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	char why[160];
	BIO *bio = NULL;
	X509 *x;
	struct tm tm;

	memset(c, 0, sizeof(*c));
	ERR_clear_error();
	if ((c->cert_file = strdup(cert_file)) == NULL || (c->key_file = strdup(key_file)) == NULL ||
	    (c->chain = sk_X509_new_null()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (tls_check_file(cert_file, "certificate", err, errlen) != 0)
		goto fail;
	if ((bio = BIO_new_file(cert_file, "r")) == NULL) {
		snprintf(err, errlen, "cannot read the certificate %s: %s", cert_file, strerror(errno));
		goto fail;
	}
	if ((c->cert = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "no certificate in %s (%s)", cert_file,
		         tls_reason(why, sizeof(why), "expected a PEM certificate"));
		goto fail;
	}
	/* The chain: every further certificate up to the end of the file;
	 * anything that does not parse as one is an error, not the end. */
	for (;;) {
		if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
			unsigned long e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			snprintf(err, errlen, "certificate %d of the chain in %s does not parse (%s)",
			         sk_X509_num(c->chain) + 2, cert_file, tls_reason(why, sizeof(why), "bad PEM"));
			goto fail;
		}
		if (sk_X509_push(c->chain, x) <= 0) {
			X509_free(x);
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	BIO_free(bio);
	bio = NULL;
	if (tls_check_file(key_file, "key", err, errlen) != 0)
		goto fail;
	if ((bio = BIO_new_file(key_file, "r")) == NULL) {
		snprintf(err, errlen, "cannot read the key %s: %s", key_file, strerror(errno));
		goto fail;
	}
	if ((c->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		snprintf(err, errlen, "no private key in %s (%s)", key_file,
		         tls_reason(why, sizeof(why), "expected a PEM private key"));
		goto fail;
	}
	BIO_free(bio);
	bio = NULL;
	if (X509_check_private_key(c->cert, c->key) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "the key %s does not match the certificate %s", key_file, cert_file);
		goto fail;
	}
	if (ASN1_TIME_to_tm(X509_get0_notAfter(c->cert), &tm) != 1) {
		snprintf(err, errlen, "the certificate %s has an unreadable expiry date", cert_file);
		goto fail;
	}
	c->not_after = timegm(&tm);
	if (tls_take_names(c) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	BIO_free(bio);
	ERR_clear_error();
	tls_cert_clear(c);
	return -1;
}

void
tls_cert_clear(struct tls_cert *c)
{
	if (c == NULL)
		return;
	free(c->cert_file);
	free(c->key_file);
	X509_free(c->cert);
	if (c->chain != NULL)
		sk_X509_pop_free(c->chain, X509_free);
	EVP_PKEY_free(c->key);
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

int
tls_cert_matches(const struct tls_cert *c, const char *name)
{
	const char *dot = strchr(name, '.');

	for (size_t i = 0; i < c->nnames; i++) {
		const char *n = c->names[i];
		if (strcasecmp(n, name) == 0)
			return 1;
		/* "*.example.com" covers exactly one label: "a.example.com" */
		if (n[0] == '*' && n[1] == '.' && dot != NULL && dot != name && strcasecmp(n + 1, dot) == 0)
			return 1;
	}
	return 0;
}

/* SNI: the first certificate whose names match the client's server name;
 * the default (already on the context) when none does or none was sent. */
static int
tls_on_cert(SSL *ssl, void *arg)
{
	const struct tls_listener *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name == NULL || t->ncerts < 2)
		return 1;
	for (size_t i = 0; i < t->ncerts; i++) {
		const struct tls_cert *c = &t->certs[i];
		if (!tls_cert_matches(c, name))
			continue;
		if (i == 0)
			return 1;
		return SSL_use_cert_and_key(ssl, c->cert, c->key, c->chain, 1) == 1 ? 1 : 0;
	}
	return 1;
}

int
tls_listener_build(struct tls_listener *t, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "esgate";
	char why[160];
	SSL_CTX *ctx;

	ERR_clear_error();
	if (t->ncerts == 0) {
		snprintf(err, errlen, "no certificate");
		return -1;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context (%s)", tls_reason(why, sizeof(why), "?"));
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, t->min_version ? t->min_version : TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, 0); /* the highest the library has, TLS 1.3 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION | SSL_OP_SINGLE_ECDH_USE |
	                             SSL_OP_SINGLE_DH_USE);
	/* OpenSSL's read and write buffers (about 17 KiB each) are freed while
	 * a connection has nothing in them, as nginx and HAProxy set it: an
	 * idle keep-alive connection took 23 KiB of a worker's RSS with them
	 * kept, nginx's and HAProxy's 10 KiB. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Mozilla's intermediate profile lets the client choose among suites
	 * that are all good. */
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Resumption by tickets only: a session cached in one worker's memory
	 * would resume on that worker alone. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != 1 || SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
	    SSL_CTX_set_dh_auto(ctx, 1) != 1) {
		snprintf(err, errlen, "cannot set the cipher suites (%s)", tls_reason(why, sizeof(why), "?"));
		goto fail;
	}
	if (SSL_CTX_use_cert_and_key(ctx, t->certs[0].cert, t->certs[0].key, t->certs[0].chain, 1) != 1) {
		snprintf(err, errlen, "cannot use the certificate %s (%s)", t->certs[0].cert_file,
		         tls_reason(why, sizeof(why), "?"));
		goto fail;
	}
	SSL_CTX_set_cert_cb(ctx, tls_on_cert, t);
	if (t->client_ca != NULL && t->client_verify != TLS_VERIFY_NONE) {
		STACK_OF(X509_NAME) * names;
		if (tls_check_file(t->client_ca, "client CA bundle", err, errlen) != 0)
			goto fail;
		if (SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL) != 1 ||
		    (names = SSL_load_client_CA_file(t->client_ca)) == NULL) {
			snprintf(err, errlen, "cannot read the client CA bundle %s (%s)", t->client_ca,
			         tls_reason(why, sizeof(why), "no certificate in it"));
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx,
		                   SSL_VERIFY_PEER |
		                       (t->client_verify == TLS_VERIFY_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
		                   NULL);
		SSL_CTX_set_verify_depth(ctx, 8);
	}
	t->ctx = ctx;
	ERR_clear_error();
	return 0;
fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return -1;
}

void
tls_listener_free(struct tls_listener *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ncerts; i++)
		tls_cert_clear(&t->certs[i]);
	free(t->certs);
	free(t->client_ca);
	SSL_CTX_free(t->ctx);
	free(t);
}

char *
tls_subject(X509 *cert)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	long len;

	if (bio == NULL)
		return NULL;
	if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0 &&
	    (len = BIO_get_mem_data(bio, &p)) >= 0)
		out = strndup(p, (size_t)len);
	BIO_free(bio);
	return out;
}
