/*
 * tlsticket.c - session ticket keys in shared memory (see tlsticket.h).
 */
#include "tlsticket.h"

#include <string.h>
#include <sys/mman.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define TLSTICKET_LIFETIME_MAX (7 * 24 * 3600) /* RFC 8446 4.6.1 */

static int tlsticket_index = -1; /* SSL_CTX ex_data: the struct tlsticket */
static int tlsticket_owed_index = -1; /* SSL ex_data: a TLS 1.3 resumption's new ticket is owed */
static int tlsticket_deferred;	      /* this process sends owed tickets with the first write */
static const char tlsticket_owed_mark;
/* AES-256-CBC fetched once: EVP_aes_256_cbc() is OpenSSL 3's legacy
 * handle, which each EVP_EncryptInit_ex/EVP_DecryptInit_ex fetches again
 * from the provider (a name lookup under a lock), twice a resumption */
static EVP_CIPHER *tlsticket_aes;

static const EVP_CIPHER *
tlsticket_cipher(void)
{
	return tlsticket_aes != NULL ? tlsticket_aes : EVP_aes_256_cbc();
}

static int
tlsticket_make(struct tlsticket_key *k)
{
	struct tlsticket_key fresh;
	uint32_t seq = __atomic_load_n(&k->seq, __ATOMIC_RELAXED);

	if (RAND_bytes(fresh.name, sizeof(fresh.name)) != 1 || RAND_bytes(fresh.aes, sizeof(fresh.aes)) != 1 ||
	    RAND_bytes(fresh.hmac, sizeof(fresh.hmac)) != 1)
		return -1;
	__atomic_store_n(&k->seq, seq | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(k->name, fresh.name, sizeof(k->name));
	memcpy(k->aes, fresh.aes, sizeof(k->aes));
	memcpy(k->hmac, fresh.hmac, sizeof(k->hmac));
	__atomic_store_n(&k->seq, (seq | 1) + 1, __ATOMIC_RELEASE);
	OPENSSL_cleanse(&fresh, sizeof(fresh));
	return 0;
}

/* A stable copy of K into OUT: 0, or -1 if it was being written or was
 * never made. */
static int
tlsticket_read(const struct tlsticket_key *k, struct tlsticket_key *out)
{
	uint32_t before = __atomic_load_n(&k->seq, __ATOMIC_ACQUIRE);

	if (before == 0 || (before & 1))
		return -1;
	memcpy(out, k, sizeof(*out));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&k->seq, __ATOMIC_RELAXED) == before ? 0 : -1;
}

struct tlsticket *
tlsticket_create(void)
{
	struct tlsticket *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (t == MAP_FAILED)
		return NULL;
	if (tlsticket_make(&t->keys[0]) != 0) {
		munmap(t, sizeof(*t));
		return NULL;
	}
	t->made = 1;
	return t;
}

void
tlsticket_destroy(struct tlsticket *t)
{
	if (t == NULL)
		return;
	OPENSSL_cleanse(t, sizeof(*t));
	munmap(t, sizeof(*t));
}

int
tlsticket_rotate(struct tlsticket *t)
{
	uint32_t next = (__atomic_load_n(&t->current, __ATOMIC_RELAXED) + 1) % TLSTICKET_KEYS;

	if (tlsticket_make(&t->keys[next]) != 0)
		return -1;
	__atomic_store_n(&t->current, next, __ATOMIC_RELEASE);
	t->made++;
	return 0;
}

static int
tlsticket_hmac(EVP_MAC_CTX *hctx, uint8_t *key, size_t len)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, len),
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t) "SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};

	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: ENC 1 makes a ticket (name, IV, keys), 0
 * opens one by its name.  Returns 1 (done), 2 (opened: send a new
 * ticket), 0 (no ticket / unknown key: a full handshake), -1.
 *
 * Opening, 2 whenever the handshake is TLS 1.3 or the key is an older
 * one.  TLS 1.3 clients use a ticket once (RFC 8446 C.4; OpenSSL's client
 * keeps only the session of the last connection, browsers likewise), and
 * OpenSSL sends a TLS 1.3 resumption a new ticket only for 2: with 1, the
 * client's next connection had no ticket left and made a full handshake,
 * so a client reconnecting resumed every other time (measured with wrk,
 * which reuses its last session: 138 resumed and 140 full handshakes in a
 * second; nginx and HAProxy send the new ticket).  TLS 1.2 tickets may be
 * reused: a new one only when the key has aged.
 *
 * Where the worker has said so (tlsticket_defer), TLS 1.3 tickets are
 * not sent right after the client's Finished but with the connection's
 * first answer (tlsticket_send_owed): see tlsticket_on_hello. */
static int
tlsticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tlsticket *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tlsticket_index);
	struct tlsticket_key k;
	int rc = -1;

	if (t == NULL)
		return enc ? -1 : 0;
	if (enc) {
		if (tlsticket_read(&t->keys[__atomic_load_n(&t->current, __ATOMIC_ACQUIRE)], &k) != 0)
			return 0; /* being rotated this very moment: no ticket this time */
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(tlsticket_cipher())) == 1 &&
		    EVP_EncryptInit_ex(cctx, tlsticket_cipher(), NULL, k.aes, iv) == 1 &&
		    tlsticket_hmac(hctx, k.hmac, sizeof(k.hmac)) == 0) {
			memcpy(name, k.name, sizeof(k.name));
			rc = 1;
		}
	} else {
		uint32_t cur = __atomic_load_n(&t->current, __ATOMIC_ACQUIRE);
		rc = 0;
		for (uint32_t i = 0; i < TLSTICKET_KEYS; i++) {
			if (tlsticket_read(&t->keys[i], &k) != 0 || memcmp(k.name, name, sizeof(k.name)) != 0)
				continue;
			if (tlsticket_hmac(hctx, k.hmac, sizeof(k.hmac)) != 0 ||
			    EVP_DecryptInit_ex(cctx, tlsticket_cipher(), NULL, k.aes, iv) != 1)
				rc = -1;
			else
				rc = i == cur && SSL_version(ssl) != TLS1_3_VERSION ? 1 : 2;
			break;
		}
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

/* Deferred tickets (tlsticket_defer).  OpenSSL sends TLS 1.3 tickets
 * right after the client's Finished (two after a full handshake, one after
 * a resumption), and libh2o writes out what the handshake left in its
 * buffer at once: one more write, TCP segment and wake-up of the client,
 * just before the first answer, which comes a request (and an upstream
 * round trip) later.  With num_tickets 0 OpenSSL sends none by itself;
 * tlsticket_send_owed() asks for the same number with
 * SSL_new_session_ticket() just before the connection's first SSL_write,
 * which writes them ahead of the answer into the same buffer: one write.
 * OpenSSL would send none to a client that offers no PSK mode with
 * (EC)DHE (psk_kex_modes, RFC 8446 4.2.9): this client-hello callback
 * marks the connections that offer it, and only those are owed tickets. */
static int
tlsticket_on_hello(SSL *ssl, int *alert, void *arg)
{
	const unsigned char *p;
	size_t len;

	(void)alert;
	(void)arg;
	/* the extension: a one-byte length, then one byte a mode (RFC 8446 4.2.9) */
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk_kex_modes, &p, &len) == 1 && len >= 1 &&
	    memchr(p + 1, 1 /* psk_dhe_ke */, p[0] < len - 1 ? p[0] : len - 1) != NULL)
		SSL_set_ex_data(ssl, tlsticket_owed_index, (void *)(uintptr_t)&tlsticket_owed_mark);
	return SSL_CLIENT_HELLO_SUCCESS;
}

void
tlsticket_use(struct tlsticket *t, SSL_CTX *ctx, uint64_t lifetime_s)
{
	if (t == NULL)
		return;
	if (tlsticket_index < 0 && (tlsticket_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
		return;
	if (tlsticket_deferred && tlsticket_owed_index < 0)
		tlsticket_owed_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (tlsticket_deferred && tlsticket_owed_index >= 0) {
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_client_hello_cb(ctx, tlsticket_on_hello, NULL);
	}
	if (tlsticket_aes == NULL)
		tlsticket_aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL); /* NULL: the legacy handle, as before */
	SSL_CTX_set_ex_data(ctx, tlsticket_index, t);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tlsticket_cb);
	SSL_CTX_set_timeout(ctx, (long)(lifetime_s < TLSTICKET_LIFETIME_MAX ? lifetime_s : TLSTICKET_LIFETIME_MAX));
}

void
tlsticket_defer(int on)
{
	tlsticket_deferred = on;
}

void
tlsticket_send_owed(SSL *ssl)
{
	if (tlsticket_owed_index < 0 || SSL_get_ex_data(ssl, tlsticket_owed_index) == NULL)
		return;
	SSL_set_ex_data(ssl, tlsticket_owed_index, NULL);
	if (SSL_version(ssl) != TLS1_3_VERSION)
		return; /* TLS 1.2: the ticket was in the handshake */
	/* queued: the SSL_write() that follows writes them first, into the
	 * same buffer as the answer; as many as OpenSSL's default would */
	for (int n = SSL_session_reused(ssl) ? 1 : 2; n > 0; n--)
		if (SSL_new_session_ticket(ssl) != 1)
			break;
}
