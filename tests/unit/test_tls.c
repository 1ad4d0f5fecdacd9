/*
 * test_tls.c - lib/tls.c and lib/tlsticket.c without files: which server
 * names a certificate's names cover (SNI), a certificate and key made in
 * memory through the PEM reader (match, mismatch, chain, names, expiry),
 * and the ticket keys' rotation.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "lib/tls.h"
#include "lib/tlsticket.h"

Test(tls, sni_names_and_one_label_wildcards)
{
	char *names[] = {"a.example", "*.b.example"};
	struct tls_cert c = {.names = names, .nnames = 2};

	cr_expect(tls_cert_matches(&c, "a.example"));
	cr_expect(tls_cert_matches(&c, "A.Example"));
	cr_expect(tls_cert_matches(&c, "x.b.example"));
	cr_expect_not(tls_cert_matches(&c, "b.example"));
	cr_expect_not(tls_cert_matches(&c, "y.x.b.example"));
	cr_expect_not(tls_cert_matches(&c, ".b.example"));
	cr_expect_not(tls_cert_matches(&c, "c.example"));
	cr_expect_not(tls_cert_matches(&c, "xa.example"));
}

/* A self-signed P-256 certificate for NAME, valid DAYS, and its key, as
 * PEM files in DIR; returns the key. */
static EVP_PKEY *
make_pair(const char *dir, const char *name, long days, char *cert_path, char *key_path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	char san[128];
	FILE *f;

	cr_assert(key != NULL && x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Example", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	snprintf(san, sizeof(san), "DNS:%s,DNS:www.%s", name, name);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
	sprintf(cert_path, "%s/%s.pem", dir, name);
	sprintf(key_path, "%s/%s.key", dir, name);
	cr_assert((f = fopen(cert_path, "w")) != NULL);
	PEM_write_X509(f, x);
	fclose(f);
	cr_assert((f = fopen(key_path, "w")) != NULL);
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	return key;
}

Test(tls, load_checks_the_key_and_takes_names_and_expiry)
{
	char dir[] = "/tmp/esgate-unit-tls-XXXXXX", a_crt[256], a_key[256], b_crt[256], b_key[256], err[512];
	struct tls_cert c;
	struct tls_listener *t;
	EVP_PKEY *ka, *kb;

	cr_assert(mkdtemp(dir) != NULL);
	ka = make_pair(dir, "a.example", 10, a_crt, a_key);
	kb = make_pair(dir, "b.example", 100, b_crt, b_key);
	cr_assert_eq(tls_cert_load(&c, a_crt, a_key, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(c.nnames, 2);
	cr_expect_str_eq(c.names[0], "a.example");
	cr_expect_str_eq(c.names[1], "www.a.example");
	cr_expect(c.not_after > time(NULL) + 9 * 86400 && c.not_after <= time(NULL) + 10 * 86400 + 60);
	cr_expect_eq(sk_X509_num(c.chain), 0);
	{
		char *subject = tls_subject(c.cert);
		cr_expect_str_eq(subject, "CN=a.example,O=Example");
		free(subject);
	}
	/* the listener's context, with the certificate as its default */
	t = calloc(1, sizeof(*t));
	t->certs = calloc(1, sizeof(*t->certs));
	t->certs[0] = c;
	t->ncerts = 1;
	cr_expect_eq(tls_listener_build(t, err, sizeof(err)), 0, "%s", err);
	cr_expect(t->ctx != NULL);
	cr_expect_eq(SSL_CTX_get_min_proto_version(t->ctx), TLS1_2_VERSION);
	cr_expect(SSL_CTX_get_options(t->ctx) & SSL_OP_NO_RENEGOTIATION);
	cr_expect(SSL_CTX_get_options(t->ctx) & SSL_OP_NO_COMPRESSION);
	tls_listener_free(t);
	/* another certificate's key */
	cr_expect_eq(tls_cert_load(&c, a_crt, b_key, err, sizeof(err)), -1);
	cr_expect(strstr(err, "does not match") != NULL, "%s", err);
	/* no key file at all (after the certificate has been read) */
	cr_expect_eq(tls_cert_load(&c, a_crt, "/nonexistent/key.pem", err, sizeof(err)), -1);
	cr_expect(strstr(err, "cannot read the key /nonexistent/key.pem") != NULL, "%s", err);
	/* a device named by mistake */
	cr_expect_eq(tls_cert_load(&c, "/dev/zero", a_key, err, sizeof(err)), -1);
	cr_expect(strstr(err, "not a regular file") != NULL, "%s", err);
	/* a key where the certificate should be */
	cr_expect_eq(tls_cert_load(&c, a_key, a_key, err, sizeof(err)), -1);
	cr_expect(strstr(err, "no certificate in") != NULL, "%s", err);
	/* a chain: the leaf, then b */
	{
		char chain[300], cmd[1024];
		snprintf(chain, sizeof(chain), "%s/chain.pem", dir);
		snprintf(cmd, sizeof(cmd), "cat %s %s > %s", a_crt, b_crt, chain);
		cr_assert_eq(system(cmd), 0);
		cr_expect_eq(tls_cert_load(&c, chain, a_key, err, sizeof(err)), 0, "%s", err);
		cr_expect_eq(sk_X509_num(c.chain), 1);
		tls_cert_clear(&c);
		snprintf(cmd, sizeof(cmd),
		         "printf -- '-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n' >> %s", chain);
		cr_assert_eq(system(cmd), 0);
		cr_expect_eq(tls_cert_load(&c, chain, a_key, err, sizeof(err)), -1);
		cr_expect(strstr(err, "certificate 3 of the chain") != NULL, "%s", err);
	}
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		cr_expect_eq(system(cmd), 0);
	}
}

Test(tlsticket, rotation_keeps_the_older_keys)
{
	struct tlsticket *t = tlsticket_create();
	uint8_t first[16];

	cr_assert(t != NULL);
	cr_expect_eq(t->current, 0);
	cr_expect_eq(t->made, 1);
	cr_expect_eq(t->keys[0].seq % 2, 0);
	cr_expect_neq(t->keys[0].seq, 0);
	memcpy(first, t->keys[0].name, sizeof(first));
	for (int i = 1; i < TLSTICKET_KEYS; i++) {
		cr_assert_eq(tlsticket_rotate(t), 0);
		cr_expect_eq(t->current, (uint32_t)i);
		cr_expect(memcmp(t->keys[0].name, first, sizeof(first)) == 0, "the first key is still there");
	}
	cr_assert_eq(tlsticket_rotate(t), 0);
	cr_expect_eq(t->current, 0);
	cr_expect_eq(t->made, TLSTICKET_KEYS + 1);
	cr_expect(memcmp(t->keys[0].name, first, sizeof(first)) != 0, "the oldest key was replaced");
	tlsticket_destroy(t);
}
