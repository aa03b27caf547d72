/* fuzz_eif_signature.c: the signature section parser and verifier over
 * arbitrary bytes, as eif_read and describe-eif run them on a hostile EIF.
 * The PCR0 is the one fuzz/gen_seeds.c signs, so the valid seed reaches the
 * payload comparison and the certificate checks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nectl/eif_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bytes 0, 1, ..., 47: fuzz/gen_seeds.c GEN_SIG_PCR0. */
static void fuzz_pcr0(uint8_t pcr0[EIF_HASH_SIZE])
{
	for (unsigned i = 0; i < EIF_HASH_SIZE; i++)
		pcr0[i] = (uint8_t)i;
}

/* The certificate the parser hands out is as hostile as the section. */
static void fuzz_cert(const uint8_t *pem, size_t len)
{
	uint8_t pcr8[EIF_HASH_SIZE];
	json_t *desc = NULL;

	eif_cert_pcr8(pem, len, pcr8, NULL);
	if (eif_cert_describe(pem, len, &desc, NULL) == 0 && !desc)
		abort();
	json_decref(desc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pcr0[EIF_HASH_SIZE], *cert, *cose;
	size_t cert_len, cose_len;
	struct eif_sig_check check;
	struct nectl_err err = {0};
	int parsed, verified;

	fuzz_pcr0(pcr0);
	parsed = eif_signature_parse(data, size, &cert, &cert_len, &cose, &cose_len, &err);
	if (parsed == 0) {
		fuzz_cert(cert, cert_len);
		free(cert);
		free(cose);
	} else if (err.kind != NECTL_ERR_EIF || cert || cose) {
		abort();
	}
	verified = eif_signature_verify(data, size, pcr0, &check, &err);
	/* verification needs a parsable section */
	if (verified == 0 && parsed != 0)
		abort();
	if (verified == 0 && memchr(check.reason, '\0', sizeof(check.reason)) == NULL)
		abort();
	if (verified == 0 && check.cose_valid && check.payload_matches && check.cert_time_valid &&
	    check.reason[0] != '\0')
		abort();
	return 0;
}
