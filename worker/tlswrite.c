/*
 * tlswrite.c - a small answer over TLS goes out as one TLS record.
 *
 * libh2o 2.2.5's h2o_socket_write() (lib/common/socket.c) encrypts each
 * buffer it is given with its own SSL_write(), and cuts every buffer into
 * records of 1400 bytes less the record's overhead for the first 200 KiB
 * of a connection (unless its HTTP/2 latency optimisation has measured an
 * RTT of 50 ms or more and chosen a size itself).  An HTTP/1.1 answer's
 * head and body are two buffers, so two records; a 5 KiB HTTP/2 write
 * (ten small answers) is four.  Each record costs the server an AEAD
 * encryption and the client a decryption and two read()s (OpenSSL clients
 * read a record's header, then its body); nginx (ssl_buffer_size 16k) and
 * HAProxy send the same answers as one record each.
 *
 * This file defines h2o_socket_write().  The executable's definition comes
 * first in the dynamic linker's search order, so libh2o's own calls (its
 * PLT slot, checked at start-up by tlswrite_check()) land here; we pass
 * them on to libh2o's through dlsym(RTLD_NEXT), as worker/h2oepoll.c does
 * for epoll.  On a TLS socket, when the whole write is at most one full
 * record (16 KiB) and h2o has not chosen a record size from a measured
 * RTT (its state is "to be decided" or "disabled"), the buffers are
 * copied into one and h2o is told, for this call only, to make records of
 * up to 16 KiB: one record.  A write of 16 KiB or less fits in TCP's
 * initial window (10 segments), so the small first records buy a client
 * nothing there; larger writes keep h2o's rule.  The copy can be reused at
 * once: SSL_write() has encrypted it into h2o's own buffers before
 * h2o_socket_write() returns, and h2o calls the write callback later, from
 * its loop, never from inside h2o_socket_write().  Clear-text sockets go
 * straight through.
 *
 * It also sends TLS 1.3 tickets with the connection's first answer
 * (lib/tlsticket.h, tlsticket_defer: the worker turns that on only when
 * tlswrite_check() finds this definition in use): the ticket records go
 * ahead of the answer's in the same write, where OpenSSL would have had
 * libh2o write them alone right after the handshake.
 */
#include "worker/tlswrite.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/tlsticket.h"
#include "worker/h2oparse.h"
#include "worker/tlsconn.h"

#if H2O_LIBRARY_VERSION_MAJOR != 0 || H2O_LIBRARY_VERSION_MINOR != 13 || H2O_LIBRARY_VERSION_PATCH != 5
#error "worker/tlswrite.c relies on libh2o 0.13.5's (h2o 2.2.5) h2o_socket_write: check lib/common/socket.c"
#endif

#define TLSWRITE_RECORD 16384 /* TLS's largest record payload */

typedef void (*tlswrite_fn)(h2o_socket_t *, h2o_iovec_t *, size_t, h2o_socket_cb);

static tlswrite_fn tlswrite_real;
static char tlswrite_buf[TLSWRITE_RECORD]; /* the worker's one thread writes */

static tlswrite_fn
tlswrite_next(void)
{
	if (tlswrite_real == NULL && (tlswrite_real = (tlswrite_fn)dlsym(RTLD_NEXT, "h2o_socket_write")) == NULL) {
		log_errorx("h2o_socket_write: no definition after esgate's (dlsym RTLD_NEXT)");
		abort();
	}
	return tlswrite_real;
}

int
tlswrite_check(void)
{
	void *first = dlsym(RTLD_DEFAULT, "h2o_socket_write");

	tlswrite_next();
	if (first != (void *)h2o_socket_write) {
		log_warnx("libh2o does not call esgate's h2o_socket_write: small answers over TLS take a record per "
		          "buffer");
		return -1;
	}
	return 0;
}

void
h2o_socket_write(h2o_socket_t *sock, h2o_iovec_t *bufs, size_t bufcnt, h2o_socket_cb cb)
{
	tlswrite_fn real = tlswrite_next();
	SSL *ossl;
	h2o_iovec_t one;
	size_t total = 0;
	uint8_t state;
	uint16_t payload;
	const h2o_iovec_t *json;
	h2o_iovec_t json_copy; /* libh2o's writer may move a buffer's start: not the static one */

	/* libh2o's text/plain 400 to a head it refused: esgate's JSON (worker/h2oparse.c) */
	if (bufcnt == 1 && (json = h2oparse_bad_request(bufs)) != NULL) {
		json_copy = *json;
		bufs = &json_copy;
		h2oparse_refused(sock, json->len); /* the access log and the metrics */
	}
	if (sock->ssl == NULL || bufcnt == 0) {
		real(sock, bufs, bufcnt, cb);
		return;
	}
	for (size_t i = 0; i < bufcnt && total <= TLSWRITE_RECORD; i++)
		total += bufs[i].len;
	/* TLS 1.3 tickets, ahead of the first answer; only with bytes to
	 * write: tickets queued by a write that makes no SSL_write would go
	 * out from the next SSL_read, which libh2o 2.2.5 takes for a
	 * renegotiation (decode_ssl_input) and closes the connection */
	if (total != 0 && (ossl = tlsconn_socket_ssl(sock)) != NULL)
		tlsticket_send_owed(ossl);
	state = sock->_latency_optimization.state;
	if (total == 0 || total > TLSWRITE_RECORD || (state != H2O_SOCKET_LATENCY_OPTIMIZATION_STATE_TBD &&
	                                              state != H2O_SOCKET_LATENCY_OPTIMIZATION_STATE_DISABLED)) {
		real(sock, bufs, bufcnt, cb);
		return;
	}
	if (bufcnt > 1) {
		size_t off = 0;
		for (size_t i = 0; i < bufcnt; i++) {
			if (bufs[i].len == 0)
				continue; /* its base may be NULL */
			memcpy(tlswrite_buf + off, bufs[i].base, bufs[i].len);
			off += bufs[i].len;
		}
		one = h2o_iovec_init(tlswrite_buf, total);
		bufs = &one;
		bufcnt = 1;
	}
	/* "needs update" makes h2o_socket_write() take suggested_tls_payload_size
	 * as the record size; both are put back before anything else (HTTP/2's
	 * h2o_socket_prepare_for_latency_optimized_write) reads them. */
	payload = sock->_latency_optimization.suggested_tls_payload_size;
	sock->_latency_optimization.state = H2O_SOCKET_LATENCY_OPTIMIZATION_STATE_NEEDS_UPDATE;
	sock->_latency_optimization.suggested_tls_payload_size = TLSWRITE_RECORD;
	real(sock, bufs, bufcnt, cb);
	sock->_latency_optimization.state = state;
	sock->_latency_optimization.suggested_tls_payload_size = payload;
}
