/*
 * tlsticket.h - TLS session ticket keys, made by the master and shared by
 * every worker, so that a client resumes its session whichever worker
 * takes its next connection, and across reloads.
 *
 * One mmap(MAP_SHARED | MAP_ANONYMOUS) region, created by the master
 * before its first fork and kept for its whole life (a reload does not
 * touch it; a binary upgrade starts a new one).  The keys are random
 * (OpenSSL's RAND_bytes) and never written anywhere else.  The master
 * makes a new encryption key every "tls.ticket_rotation"; the previous
 * TLSTICKET_KEYS - 1 stay for decryption, so a ticket, which lives two
 * rotations, always finds its key.  A ticket made with an older key is
 * accepted and replaced by one made with the current key; a TLS 1.3
 * resumption always gets a new ticket, as clients use each one once
 * (tickets go with the first answer where the worker defers them:
 * tlsticket_defer).
 *
 * Workers read the keys from OpenSSL 3's ticket callback
 * (SSL_CTX_set_tlsext_ticket_key_evp_cb: AES-256-CBC and HMAC-SHA256, as
 * OpenSSL's own ticket format) while the master may be writing a new one:
 * each key has a sequence number, odd while it is written, checked before
 * and after it is copied (a seqlock); a key caught mid-write is not used.
 */
#ifndef ESGATE_TLSTICKET_H
#define ESGATE_TLSTICKET_H

#include <stdint.h>

#include <openssl/ssl.h>

#define TLSTICKET_KEYS 4

struct tlsticket_key {
	uint32_t seq;     /* even: stable; odd: being written; 0: never made */
	uint8_t name[16]; /* sent in the ticket, picks the key to decrypt it */
	uint8_t aes[32];  /* AES-256-CBC */
	uint8_t hmac[32]; /* HMAC-SHA256 */
};

struct tlsticket {
	uint32_t current; /* index in keys[] of the encryption key */
	uint32_t made;    /* keys made so far */
	struct tlsticket_key keys[TLSTICKET_KEYS];
};

/* Maps the region and makes the first key; NULL on failure. */
struct tlsticket *tlsticket_create(void);
void tlsticket_destroy(struct tlsticket *t);
/* The master: a new encryption key, in place of the oldest.  0, or -1 if
 * no random bytes could be had (the current key stays). */
int tlsticket_rotate(struct tlsticket *t);
/* A worker: CTX's tickets are made and read with T's keys, and live
 * LIFETIME_S seconds (at most the TLS 1.3 maximum of 7 days). */
void tlsticket_use(struct tlsticket *t, SSL_CTX *ctx, uint64_t lifetime_s);
/* A worker whose every TLS write passes tlsticket_send_owed() first (1),
 * before its first tlsticket_use(): TLS 1.3 tickets are then sent with
 * the connection's first answer, in the same write, instead of in a
 * write of their own right after the handshake (two after a full
 * handshake, one after a resumption, as OpenSSL's default).  0 (the
 * default): OpenSSL sends them at once. */
void tlsticket_defer(int on);
/* Before SSL's first write of application data: queues the tickets that
 * the handshake of SSL left owed (tlsticket_defer), if any, so the
 * SSL_write() that follows sends them ahead of the data. */
void tlsticket_send_owed(SSL *ssl);

#endif
