/* X.509 signing certificates: PCR8 (the measurement of the certificate's DER,
 * from PEM or DER input), validity checks, and describe-eif's view of them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "nectl/eif_sign.h"

#include "cert_internal.h"

static int cert_read_fd(int fd, size_t max, uint8_t *buf, size_t *used)
{
	ssize_t n;

	*used = 0;
	for (;;) {
		n = read(fd, buf + *used, max + 1 - *used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return 0;
		*used += (size_t)n;
		if (*used > max)
			return EFBIG;
	}
}

int cert_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf;
	size_t used;
	int e;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return errno;
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return ENOMEM;
	}
	e = cert_read_fd(fd, max, buf, &used);
	close(fd);
	if (e) {
		free(buf);
		return e;
	}
	*out = buf;
	*len = used;
	return 0;
}

int cert_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

X509 *cert_from_pem(const uint8_t *pem, size_t len)
{
	X509 *cert;
	BIO *bio;

	if (!pem || len == 0 || len > INT_MAX)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	cert = bio ? PEM_read_bio_X509(bio, NULL, cert_no_passphrase, NULL) : NULL;
	BIO_free(bio);
	return cert;
}

int cert_to_der(X509 *cert, uint8_t **der, size_t *len)
{
	unsigned char *buf = NULL;
	int n = i2d_X509(cert, &buf);

	if (n <= 0)
		return -1;
	*der = buf;
	*len = (size_t)n;
	return 0;
}

int cert_der_pcr8(const uint8_t *der, size_t len, uint8_t pcr8[EIF_HASH_SIZE])
{
	uint8_t digest[EIF_HASH_SIZE];

	if (!EVP_Digest(der, len, digest, NULL, EVP_sha384(), NULL))
		return -1;
	return eif_pcr_from_digest(pcr8, digest, NULL);
}

/* OpenSSL's text form ("Jan  1 00:00:00 2024 GMT") is what nitro-cli shows. */
static int cert_time_text(const ASN1_TIME *t, char *out, size_t out_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int n = -1;

	if (bio && ASN1_TIME_print(bio, t))
		n = BIO_read(bio, out, (int)out_len - 1);
	BIO_free(bio);
	if (n < 0) {
		snprintf(out, out_len, "(invalid time)");
		return -1;
	}
	out[n] = '\0';
	return 0;
}

bool cert_time_valid(const X509 *cert, char *why, size_t why_len)
{
	const ASN1_TIME *not_before = X509_get0_notBefore(cert);
	const ASN1_TIME *not_after = X509_get0_notAfter(cert);
	int before = X509_cmp_current_time(not_before);
	int after = X509_cmp_current_time(not_after);
	char when[64];

	if (before == 0 || after == 0) {
		snprintf(why, why_len, "certificate has a malformed validity period");
		return false;
	}
	if (before > 0) {
		cert_time_text(not_before, when, sizeof(when));
		snprintf(why, why_len, "certificate not valid before %s", when);
		return false;
	}
	if (after < 0) {
		cert_time_text(not_after, when, sizeof(when));
		snprintf(why, why_len, "certificate expired on %s", when);
		return false;
	}
	return true;
}

static int cert_pcr8_named(const uint8_t *pem, size_t len, const char *name,
			   uint8_t pcr8[EIF_HASH_SIZE], struct nectl_err *err)
{
	X509 *cert = cert_from_pem(pem, len);
	uint8_t *der = NULL;
	size_t der_len;
	int rc;

	if (!cert)
		return nectl_err_ssl(err, NECTL_ERR_HASH, "%s: not a PEM X.509 certificate", name);
	rc = cert_to_der(cert, &der, &der_len);
	if (!rc)
		rc = cert_der_pcr8(der, der_len, pcr8);
	OPENSSL_free(der);
	X509_free(cert);
	if (rc)
		return nectl_err_ssl(err, NECTL_ERR_HASH, "%s: cannot hash the certificate", name);
	return 0;
}

int eif_cert_pcr8(const uint8_t *pem, size_t len, uint8_t pcr8[EIF_HASH_SIZE],
		  struct nectl_err *err)
{
	return cert_pcr8_named(pem, len, "certificate", pcr8, err);
}

int eif_cert_pcr8_file(const char *path, uint8_t pcr8[EIF_HASH_SIZE], struct nectl_err *err)
{
	uint8_t *pem;
	size_t len;
	int e = cert_read_file(path, CERT_FILE_MAX, &pem, &len);
	int rc;

	if (e)
		return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s: cannot read", path);
	rc = cert_pcr8_named(pem, len, path, pcr8, err);
	free(pem);
	return rc;
}

static int cert_put_rdn(json_t *obj, const X509_NAME_ENTRY *entry)
{
	unsigned char *utf8 = NULL;
	char key[128];
	int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
	int rc = -1;

	if (n >= 0 && OBJ_obj2txt(key, sizeof(key), X509_NAME_ENTRY_get_object(entry), 0) > 0)
		rc = json_object_set_new(obj, key, json_stringn((const char *)utf8, (size_t)n));
	OPENSSL_free(utf8);
	return rc;
}

/* Long names ("commonName"), in the order the issuer lists them. */
static json_t *cert_issuer_json(const X509 *cert)
{
	const X509_NAME *name = X509_get_issuer_name(cert);
	json_t *obj = json_object();

	for (int i = 0; obj && i < X509_NAME_entry_count(name); i++) {
		if (cert_put_rdn(obj, X509_NAME_get_entry(name, i))) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}

static json_t *cert_algorithm_json(const X509 *cert)
{
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	const ASN1_OBJECT *oid;
	char name[128];

	X509_get0_signature(&sig, &alg, cert);
	X509_ALGOR_get0(&oid, NULL, NULL, alg);
	if (OBJ_obj2txt(name, sizeof(name), oid, 0) <= 0)
		return NULL;
	return json_string(name);
}

static json_t *cert_time_json(const ASN1_TIME *t)
{
	char text[64];

	if (cert_time_text(t, text, sizeof(text)))
		return NULL;
	return json_string(text);
}

/* "AB:CD:..." as nitro-cli prints the signature value. */
static json_t *cert_signature_json(const X509 *cert)
{
	static const char digits[] = "0123456789ABCDEF";
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	const unsigned char *data;
	json_t *str;
	char *text;
	size_t n;

	X509_get0_signature(&sig, &alg, cert);
	n = (size_t)ASN1_STRING_length(sig);
	data = ASN1_STRING_get0_data(sig);
	text = malloc(n ? 3 * n : 1);
	if (!text)
		return NULL;
	text[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		text[3 * i] = digits[data[i] >> 4];
		text[3 * i + 1] = digits[data[i] & 0xf];
		text[3 * i + 2] = i + 1 < n ? ':' : '\0';
	}
	str = json_string(text);
	free(text);
	return str;
}

static json_t *cert_describe_x509(const X509 *cert)
{
	json_t *obj = json_object();

	/* json_object_set_new drops a NULL value and fails, so one check at
	 * the end covers every allocation. */
	if (json_object_set_new(obj, "IssuerName", cert_issuer_json(cert)) ||
	    json_object_set_new(obj, "Algorithm", cert_algorithm_json(cert)) ||
	    json_object_set_new(obj, "NotBefore", cert_time_json(X509_get0_notBefore(cert))) ||
	    json_object_set_new(obj, "NotAfter", cert_time_json(X509_get0_notAfter(cert))) ||
	    json_object_set_new(obj, "Signature", cert_signature_json(cert))) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

int eif_cert_describe(const uint8_t *pem, size_t len, json_t **out, struct nectl_err *err)
{
	X509 *cert = cert_from_pem(pem, len);

	*out = NULL;
	if (!cert)
		return nectl_err_ssl(err, NECTL_ERR_EIF,
				     "signing certificate: not a PEM X.509 certificate");
	*out = cert_describe_x509(cert);
	X509_free(cert);
	if (!*out)
		return nectl_err_ssl(err, NECTL_ERR_EIF,
				     "signing certificate: cannot describe (unreadable issuer, "
				     "algorithm or validity)");
	return 0;
}
