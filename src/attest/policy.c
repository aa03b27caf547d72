/* What a verifier is told to expect: PCRs from build-enclave's or
 * describe-eif's Measurements JSON, hex-given nonce and user data, and AWS's
 * public Nitro Enclaves root certificate (G1), which nectl carries as data
 * (src/attest/aws-nitro-root-g1.pem, embedded by scripts/embed.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "nectl/attest.h"

extern const char nectl_aws_root_g1_start[];

X509 *attest_aws_root(void)
{
	BIO *bio = BIO_new_mem_buf(nectl_aws_root_g1_start, -1);
	X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	ERR_clear_error();
	return cert;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int attest_hex_decode(const char *hex, uint8_t *out, size_t cap, size_t *len, struct nectl_err *err)
{
	size_t n = strlen(hex);

	if (n % 2)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "'%.40s': hex must have an even number of digits", hex);
	if (n / 2 > cap)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "'%.40s...': more than %zu bytes of hex", hex, cap);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "'%.40s': not hex (at digit %zu)", hex,
					     2 * i + (hi < 0 ? 0 : 1));
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

/* "PCR<n>" with n in 0..31; other keys (HashAlgorithm) are not PCRs. */
static int pcr_index(const char *key)
{
	char *end;
	long n;

	if (strncmp(key, "PCR", 3) != 0 || key[3] < '0' || key[3] > '9')
		return -1;
	n = strtol(key + 3, &end, 10);
	return *end == '\0' && n >= 0 && n < (long)ATTEST_PCR_COUNT ? (int)n : -1;
}

static int pcr_value(const char *key, const json_t *val, struct attest_pcr_expect *e,
		     struct nectl_err *err)
{
	size_t len;

	if (!json_is_string(val) ||
	    attest_hex_decode(json_string_value(val), e->value, ATTEST_PCR_LEN, &len, err) < 0 ||
	    len != ATTEST_PCR_LEN)
		return nectl_err_set(err, NECTL_ERR_SERDE, "%s: not %u bytes of hex", key,
				     ATTEST_PCR_LEN);
	return 0;
}

int attest_pcrs_from_json(const json_t *j, struct attest_pcr_expect **out, size_t *n,
			  struct nectl_err *err)
{
	const json_t *m = json_object_get(j, "Measurements");
	struct attest_pcr_expect *e;
	const char *key;
	json_t *val;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	m = m ? m : j;
	if (!json_is_object(m))
		return nectl_err_set(err, NECTL_ERR_SERDE, "PCR expectations: not a JSON object");
	e = calloc(ATTEST_PCR_COUNT, sizeof(*e));
	if (!e)
		return nectl_err_set(err, NECTL_ERR_SERDE, "PCR expectations: out of memory");
	json_object_foreach((json_t *)m, key, val)
	{
		int idx = pcr_index(key);

		if (idx < 0)
			continue;
		e[k].index = (unsigned)idx;
		if (pcr_value(key, val, &e[k], err) < 0) {
			free(e);
			return -1;
		}
		k++;
	}
	if (k == 0) {
		free(e);
		return nectl_err_set(err, NECTL_ERR_SERDE, "PCR expectations: no PCR<n> keys");
	}
	*out = e;
	*n = k;
	return 0;
}
