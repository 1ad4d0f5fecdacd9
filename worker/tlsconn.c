/*
 * tlsconn.c - the client certificate of a request's connection (see
 * tlsconn.h).
 *
 * libh2o 2.2.5 has no accessor for a socket's SSL object: its
 * struct st_h2o_socket_ssl_t (lib/common/socket.c) is private, and opens
 * with { SSL_CTX *ssl_ctx; SSL *ossl; }.  Reading those two fields is a
 * fenced risk, like worker/bridge.c's epoll fd: the build refuses any
 * other libh2o version, and at run time the SSL must belong to the very
 * SSL_CTX the first field names (esgate never swaps a connection's
 * context: SNI swaps certificates, lib/tls.c), or nothing is read and the
 * worker says so once.  The subject is computed on a connection's first
 * request and kept in the SSL's ex_data, freed with it.
 * worker/tlswrite.c gets a socket's SSL here too (tlsconn_socket_ssl).
 */
#include "worker/tlsconn.h"

#include <stdlib.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/log.h"
#include "lib/tls.h"

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/tlsconn.c reads a private field of libh2o 0.13.5 (h2o 2.2.5); check struct st_h2o_socket_ssl_t"
#endif

/* The opening of libh2o 2.2.5's struct st_h2o_socket_ssl_t. */
struct tlsconn_h2o_ssl {
	SSL_CTX *ssl_ctx;
	SSL *ossl;
};

static int tlsconn_index = -1;	/* SSL: the subject */
static int tlsconn_counted = -1; /* SSL: set once its handshake is counted */
static int tlsconn_metrics = -1; /* SSL_CTX: the worker's struct metrics_shard */
static const char tlsconn_none[] = ""; /* computed: no verified certificate */

static void
tlsconn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	if (ptr != NULL && ptr != tlsconn_none)
		free(ptr);
}

SSL *
tlsconn_socket_ssl(h2o_socket_t *sock)
{
	static int warned;
	const struct tlsconn_h2o_ssl *s;

	if (sock->ssl == NULL)
		return NULL;
	s = (const struct tlsconn_h2o_ssl *)(const void *)sock->ssl;
	if (s->ossl == NULL || SSL_get_SSL_CTX(s->ossl) != s->ssl_ctx) {
		if (!warned++)
			log_errorx("libh2o's TLS socket does not have the expected layout: client certificates are "
			           "not read");
		return NULL;
	}
	return s->ossl;
}

static SSL *
tlsconn_ssl(h2o_conn_t *conn)
{
	h2o_socket_t *sock;

	if (conn->callbacks->get_socket == NULL || (sock = conn->callbacks->get_socket(conn)) == NULL)
		return NULL;
	return tlsconn_socket_ssl(sock);
}

/* OpenSSL's info callback: a finished handshake (TLS 1.3 says so again
 * after each ticket it sends, hence the mark), or a fatal alert esgate
 * sends before it is finished (an old protocol, no common suite, a bad
 * client certificate, a renegotiation). */
static void
tlsconn_on_info(const SSL *ssl, int where, int ret)
{
	struct metrics_shard *m;
	enum metrics_tls_result result;
	enum metrics_tls_version version;

	if (!(where & SSL_CB_HANDSHAKE_DONE) && !((where & SSL_CB_WRITE_ALERT) == SSL_CB_WRITE_ALERT &&
	                                          (ret >> 8) == SSL3_AL_FATAL && !SSL_is_init_finished(ssl)))
		return;
	if (SSL_get_ex_data(ssl, tlsconn_counted) != NULL ||
	    (m = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tlsconn_metrics)) == NULL)
		return;
	SSL_set_ex_data((SSL *)(uintptr_t)ssl, tlsconn_counted, (void *)(uintptr_t)tlsconn_none);
	result = (where & SSL_CB_HANDSHAKE_DONE) ? (SSL_session_reused(ssl) ? METRICS_TLS_RESUMED : METRICS_TLS_FULL)
	                                         : METRICS_TLS_FAILED;
	switch (SSL_version(ssl)) {
	case TLS1_2_VERSION: version = METRICS_TLS_12; break;
	case TLS1_3_VERSION: version = METRICS_TLS_13; break;
	default: version = METRICS_TLS_OTHER; break;
	}
	if (result != METRICS_TLS_FAILED && version == METRICS_TLS_OTHER)
		return; /* cannot be: only 1.2 and 1.3 are accepted */
	metrics_inc(&m->tls_handshakes[result][version]);
}

void
tlsconn_count(SSL_CTX *ctx, struct metrics_shard *m)
{
	if (tlsconn_counted < 0 && (tlsconn_counted = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
		return;
	if (tlsconn_metrics < 0 && (tlsconn_metrics = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
		return;
	SSL_CTX_set_ex_data(ctx, tlsconn_metrics, m);
	SSL_CTX_set_info_callback(ctx, tlsconn_on_info);
}

const char *
tlsconn_subject(h2o_conn_t *conn)
{
	SSL *ssl = tlsconn_ssl(conn);
	X509 *cert;
	char *subject;

	if (ssl == NULL)
		return NULL;
	if (tlsconn_index < 0 && (tlsconn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tlsconn_free)) < 0)
		return NULL;
	if ((subject = SSL_get_ex_data(ssl, tlsconn_index)) != NULL)
		return subject == tlsconn_none ? NULL : subject;
	/* Only what the handshake verified against the listener's client_ca:
	 * with client_verify: optional a certificate that fails is refused
	 * by the handshake, so one present here has verified. */
	subject = NULL;
	if ((cert = SSL_get0_peer_certificate(ssl)) != NULL && SSL_get_verify_result(ssl) == X509_V_OK &&
	    (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER))
		subject = tls_subject(cert);
	SSL_set_ex_data(ssl, tlsconn_index, subject != NULL ? subject : (char *)(uintptr_t)tlsconn_none);
	return subject;
}
