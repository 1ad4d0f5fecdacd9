/*
 * tlsconn.h - what a request's TLS connection says about its client: the
 * verified subject of its client certificate (mutual TLS, a listener's
 * tls.client_ca).
 *
 * The subject is the connection's principal: the access log shows it and
 * the authentication stage (worker/stage_auth.c, the "client_cert"
 * scheme) reads it through tlsconn_subject(), the one accessor.  Nothing
 * of the certificate is ever sent upstream.
 */
#ifndef ESGATE_TLSCONN_H
#define ESGATE_TLSCONN_H

#include <h2o.h>

#include "lib/metrics.h"

/* The subject ("CN=app,O=Example", RFC 2253) of the client certificate
 * that CONN's TLS handshake verified against its listener's client_ca, or
 * NULL: clear text, no certificate, or not verified.  Computed once per
 * connection and kept with it; valid while the connection is. */
const char *tlsconn_subject(h2o_conn_t *conn);

/* The OpenSSL object of a TLS socket (read from libh2o's private
 * struct, checked: see tlsconn.c), or NULL: clear text, or not the layout
 * expected (logged once). */
SSL *tlsconn_socket_ssl(h2o_socket_t *sock);

/* Counts CTX's handshakes in M (esgate_tls_handshakes_total): by result
 * and version, each connection once.  A worker, on its copy of a
 * listener's SSL_CTX. */
void tlsconn_count(SSL_CTX *ctx, struct metrics_shard *m);

#endif
