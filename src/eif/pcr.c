/* PCR arithmetic: extend (SHA-384 over the old value and the data), PCRs of
 * files and digests, hex output. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "nectl/eif.h"

int eif_pcr_extend(uint8_t pcr[EIF_HASH_SIZE], const void *data, size_t len, struct nectl_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t out[EIF_HASH_SIZE];
	int ok;

	/* A failed step would leave a register that looks measured but is not:
	 * the new value is kept only when every step worked. */
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha384(), NULL) &&
	     EVP_DigestUpdate(ctx, pcr, EIF_HASH_SIZE) && EVP_DigestUpdate(ctx, data, len) &&
	     EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return nectl_err_ssl(err, NECTL_ERR_HASH, "SHA-384 unavailable");
	memcpy(pcr, out, EIF_HASH_SIZE);
	return 0;
}

int eif_pcr_from_digest(uint8_t pcr[EIF_HASH_SIZE], const uint8_t digest[EIF_HASH_SIZE],
			struct nectl_err *err)
{
	uint8_t zero[EIF_HASH_SIZE] = {0};

	if (eif_pcr_extend(zero, digest, EIF_HASH_SIZE, err) < 0)
		return -1;
	memcpy(pcr, zero, EIF_HASH_SIZE);
	return 0;
}

int eif_pcr_file(const char *path, uint8_t pcr[EIF_HASH_SIZE], struct nectl_err *err)
{
	uint8_t buf[1 << 16];
	uint8_t digest[EIF_HASH_SIZE];
	EVP_MD_CTX *ctx;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
	ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha384(), NULL)) {
		close(fd);
		EVP_MD_CTX_free(ctx);
		return nectl_err_ssl(err, NECTL_ERR_HASH, "SHA-384 unavailable");
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	if (n < 0) {
		int e = errno;

		close(fd);
		EVP_MD_CTX_free(ctx);
		return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s: read failed", path);
	}
	close(fd);
	EVP_DigestFinal_ex(ctx, digest, NULL);
	EVP_MD_CTX_free(ctx);
	return eif_pcr_from_digest(pcr, digest, err);
}

void eif_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	out[2 * len] = '\0';
}
