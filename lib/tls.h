/*
 * tls.h - a listener's TLS: its certificates and keys, read from PEM files,
 * and the OpenSSL server context built from them.
 *
 * Everything here happens in the master, while the configuration is read
 * (lib/config.c calls tls_listener_load()), before anything is forked or
 * any privilege dropped: a private key may be readable by root alone, and
 * `esgate -t` checks exactly what the server will load.  The SSL_CTX is
 * neither loop- nor socket-bound: workers inherit it across fork, as h2o's
 * own server does (src/main.c builds its contexts while reading its
 * configuration), and libh2o only runs the handshake on it
 * (h2o_accept_ctx_t.ssl_ctx).  A reload reads every file again into a new
 * configuration, so renewed certificates reach the new generation of
 * workers and a broken one fails the reload as any bad configuration does.
 *
 * The policy is fixed and written once here: TLS 1.2 and 1.3 only,
 * forward-secret AEAD suites only (Mozilla's "intermediate" profile), no
 * renegotiation, no compression, no per-process session cache (tickets
 * only, so a resumption works whichever worker takes the connection).
 * Several certificates are chosen by the client's server name (SNI)
 * against each certificate's own DNS names; the first is the default.
 */
#ifndef ESGATE_TLS_H
#define ESGATE_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#define TLS_VERIFY_NONE 0     /* no client certificate asked for */
#define TLS_VERIFY_OPTIONAL 1 /* asked for; a connection without one is accepted, a bad one is not */
#define TLS_VERIFY_REQUIRED 2 /* a connection without a valid one is refused */

/* Days before expiry from which `esgate -t` and a (re)load warn. */
#define TLS_EXPIRY_WARN_DAYS 14

/* One certificate chain and its key. */
struct tls_cert {
	char *cert_file; /* as given (after $CREDENTIALS_DIRECTORY expansion) */
	char *key_file;
	X509 *cert;             /* the leaf */
	STACK_OF(X509) * chain; /* the rest of the file, in order; may be empty */
	EVP_PKEY *key;
	char **names; /* DNS names it is chosen for (SAN, else CN), lower case; "*.a.b" wildcards */
	size_t nnames;
	time_t not_after;
};

/* A listener's "tls:". */
struct tls_listener {
	struct tls_cert *certs; /* [0] is the default */
	size_t ncerts;
	int min_version;         /* TLS1_2_VERSION (default) or TLS1_3_VERSION */
	uint64_t hsts_max_age_s; /* Strict-Transport-Security: max-age=N on every answer; 0 = none */
	char *client_ca;         /* PEM CA bundle for client certificates; NULL = none asked for */
	int client_verify;       /* TLS_VERIFY_*; NONE without client_ca */
	SSL_CTX *ctx;            /* built by tls_listener_build() */
};

/* Reads CERT_FILE (the leaf first, then its chain) and KEY_FILE, checks
 * that the key is the certificate's and takes its names and expiry.
 * 0, or -1 with a message in ERR (which names the file, never key bytes). */
int tls_cert_load(struct tls_cert *c, const char *cert_file, const char *key_file, char *err, size_t errlen);
void tls_cert_clear(struct tls_cert *c);

/* Builds T->ctx from T's certificates and settings.  0, or -1 with ERR. */
int tls_listener_build(struct tls_listener *t, char *err, size_t errlen);
void tls_listener_free(struct tls_listener *t);

/* 1 if NAME (a host name from SNI) is one of C's names. */
int tls_cert_matches(const struct tls_cert *c, const char *name);

/* "CN=app,O=Example" (RFC 2253 order and escaping) of a certificate's
 * subject, malloc'ed; NULL on failure. */
char *tls_subject(X509 *cert);

#endif
