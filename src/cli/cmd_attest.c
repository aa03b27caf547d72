/* nectl ca init|show|export (the local attestation CA) and
 * verify-attestation (a JSON verdict on a document, local or AWS's). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/sha.h>

#include "cli/cli.h"
#include "nectl/attest.h"
#include "util/fileio.h"

static int ca_open(struct attest_ca **ca, char *dir, size_t cap, bool *created,
		   struct nectl_err *err)
{
	if (attest_ca_default_dir(dir, cap, err) < 0)
		return -1;
	return attest_ca_load_or_init(dir, ca, created, err);
}

static json_t *x509_name_json(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char text[512];
	int n = -1;

	if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(bio, text, sizeof(text) - 1);
	BIO_free(bio);
	if (n < 0)
		return NULL;
	text[n] = '\0';
	return json_string(text);
}

static json_t *x509_time_json(const ASN1_TIME *t)
{
	struct tm tm;
	char text[32];

	if (!ASN1_TIME_to_tm(t, &tm) || !strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return json_string(text);
}

static json_t *x509_fingerprint_json(X509 *cert)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	unsigned int len;

	if (!X509_digest(cert, EVP_sha256(), md, &len))
		return NULL;
	eif_hex(md, len, hex);
	return json_string(hex);
}

/* Public facts only: never a key. */
static json_t *ca_cert_json(X509 *cert)
{
	json_t *o = json_object();

	if (json_object_set_new(o, "Subject", x509_name_json(X509_get_subject_name(cert))) ||
	    json_object_set_new(o, "Issuer", x509_name_json(X509_get_issuer_name(cert))) ||
	    json_object_set_new(o, "NotBefore", x509_time_json(X509_get0_notBefore(cert))) ||
	    json_object_set_new(o, "NotAfter", x509_time_json(X509_get0_notAfter(cert))) ||
	    json_object_set_new(o, "SHA256", x509_fingerprint_json(cert))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int ca_print(const char *dir, const struct attest_ca *ca, json_t *o, struct nectl_err *err)
{
	json_object_set_new(o, "Directory", json_string(dir));
	if (json_object_set_new(o, "Root", ca_cert_json(ca->root)) ||
	    json_object_set_new(o, "Intermediate", ca_cert_json(ca->inter))) {
		json_decref(o);
		return nectl_err_set(err, NECTL_ERR_SERDE, "cannot describe the local CA");
	}
	return cli_print_json(o, err);
}

static int ca_show_or_init(bool init, struct nectl_err *err)
{
	struct attest_ca *ca;
	char dir[PATH_MAX];
	bool created;
	json_t *o;
	int rc;

	if (ca_open(&ca, dir, sizeof(dir), &created, err) < 0)
		return -1;
	o = json_object();
	if (init)
		json_object_set_new(o, "Created", json_boolean(created));
	rc = ca_print(dir, ca, o, err);
	attest_ca_free(ca);
	return rc;
}

static int ca_init_run(const struct args *args, struct nectl_err *err)
{
	return ca_show_or_init(true, err);
}

static int ca_show_run(const struct args *args, struct nectl_err *err)
{
	return ca_show_or_init(false, err);
}

static int ca_export_run(const struct args *args, struct nectl_err *err)
{
	struct attest_ca *ca;
	char dir[PATH_MAX];
	int ok;

	if (ca_open(&ca, dir, sizeof(dir), NULL, err) < 0)
		return -1;
	ok = PEM_write_X509(stdout, ca->root) && fflush(stdout) == 0;
	attest_ca_free(ca);
	if (!ok)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "stdout: cannot write");
	return 0;
}

static const struct opt_spec ca_opts[] = {{0}};

#define CA_HELP_DIR                                                                                \
	"The CA lives in $NECTL_STATE_DIR/ca, else /var/lib/nectl/ca as root, else\n"              \
	"$XDG_STATE_HOME/nectl/ca or ~/.local/state/nectl/ca (directories 0700, private\n"         \
	"keys 0600; a key readable by others is refused). It is created on first need.\n"

const struct cli_cmd cli_cmd_ca_init = {
    .name = "ca init",
    .summary = "Create (or load) the local attestation CA",
    .help = "Usage: nectl ca init\n"
	    "\n"
	    "Creates the local CA that signs emulated enclaves' attestation documents: a\n"
	    "P-384 root (30 years) and intermediate, unless they exist. Prints the CA as\n"
	    "JSON, with \"Created\" telling whether this call made it.\n" CA_HELP_DIR "\n"
	    "Example:\n"
	    "  NECTL_STATE_DIR=/tmp/st nectl ca init\n",
    .opts = ca_opts,
    .run = ca_init_run,
};

const struct cli_cmd cli_cmd_ca_show = {
    .name = "ca show",
    .summary = "Describe the local attestation CA (never its keys)",
    .help = "Usage: nectl ca show\n"
	    "\n"
	    "Prints the root's and the intermediate's subject, issuer, validity and SHA-256\n"
	    "fingerprint as JSON.\n" CA_HELP_DIR "\n"
	    "Example:\n"
	    "  nectl ca show\n",
    .opts = ca_opts,
    .run = ca_show_run,
};

const struct cli_cmd cli_cmd_ca_export = {
    .name = "ca export",
    .summary = "Print the local CA's root certificate (PEM)",
    .help = "Usage: nectl ca export\n"
	    "\n"
	    "Prints the root certificate in PEM on stdout: what a verifier trusts to accept\n"
	    "documents from emulated enclaves.\n" CA_HELP_DIR "\n"
	    "Example:\n"
	    "  nectl ca export > local-root.pem\n",
    .opts = ca_opts,
    .run = ca_export_run,
};

/* Everything verify-attestation was told, owned. */
struct va_opts {
	struct attest_policy p;
	struct attest_pcr_expect *pcrs;
	uint8_t nonce[ATTEST_BLOB_MAX], user_data[ATTEST_BLOB_MAX];
	X509 *root;
};

static int va_read_root(const char *path, X509 **root, struct nectl_err *err)
{
	char *pem;
	size_t len;
	BIO *bio;

	if (file_read_all(path, 65536, &pem, &len, NECTL_ERR_FILE, err) < 0)
		return -1;
	bio = BIO_new_mem_buf(pem, (int)len);
	*root = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	free(pem);
	if (!*root)
		return nectl_err_ssl(err, NECTL_ERR_INVALID_ARG, "%s: not a PEM certificate", path);
	return 0;
}

static int va_local_root(X509 **root, struct nectl_err *err)
{
	struct attest_ca *ca;
	char dir[PATH_MAX];

	if (ca_open(&ca, dir, sizeof(dir), NULL, err) < 0)
		return -1;
	*root = ca->root;
	ca->root = NULL;
	attest_ca_free(ca);
	return 0;
}

/* --root PEM, --aws-root, or the local CA's root. */
static int va_root(const struct args *a, X509 **root, struct nectl_err *err)
{
	if (args_conflict(a, "root", "aws-root", err) < 0)
		return -1;
	if (args_has(a, "root"))
		return va_read_root(args_get(a, "root"), root, err);
	if (!args_has(a, "aws-root"))
		return va_local_root(root, err);
	*root = attest_aws_root();
	return *root ? 0 : nectl_err_set(err, NECTL_ERR_FILE, "AWS root: unreadable");
}

static int va_pcrs(const char *path, struct va_opts *o, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	int rc;

	if (!j)
		return nectl_err_set(err, NECTL_ERR_SERDE, "%s: %s (line %d)", path, jerr.text,
				     jerr.line);
	rc = attest_pcrs_from_json(j, &o->pcrs, &o->p.n_pcrs, err);
	json_decref(j);
	if (rc < 0) {
		char inner[NECTL_ERR_MSG_MAX];

		memcpy(inner, err->msg, sizeof(inner));
		return nectl_err_set(err, err->kind, "%s: %s", path, inner);
	}
	o->p.pcrs = o->pcrs;
	return 0;
}

static int va_hex(const struct args *a, const char *name, uint8_t *buf, const uint8_t **out,
		  size_t *len, struct nectl_err *err)
{
	const char *hex = args_get(a, name);

	if (!hex)
		return 0;
	if (attest_hex_decode(hex, buf, ATTEST_BLOB_MAX, len, err) < 0) {
		char inner[NECTL_ERR_MSG_MAX];

		memcpy(inner, err->msg, sizeof(inner));
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "--%s: %s", name, inner);
	}
	*out = buf;
	return 0;
}

static int va_max_age(const char *text, uint64_t *ms, struct nectl_err *err)
{
	unsigned long long s;
	char *end;

	errno = 0;
	s = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
	if (s == 0 || errno || *end || s > UINT64_MAX / 1000)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "--max-age: '%s' is not a positive number of seconds", text);
	*ms = s * 1000;
	return 0;
}

static int va_policy(const struct args *a, struct va_opts *o, struct nectl_err *err)
{
	if (va_hex(a, "nonce", o->nonce, &o->p.nonce, &o->p.nonce_len, err) < 0 ||
	    va_hex(a, "user-data", o->user_data, &o->p.user_data, &o->p.user_data_len, err) < 0)
		return -1;
	if (args_has(a, "max-age") && va_max_age(args_get(a, "max-age"), &o->p.max_age_ms, err))
		return -1;
	if (args_has(a, "expect-pcrs") && va_pcrs(args_get(a, "expect-pcrs"), o, err) < 0)
		return -1;
	o->p.allow_debug = args_has(a, "allow-debug");
	if (va_root(a, &o->root, err) < 0)
		return -1;
	o->p.root = o->root;
	return 0;
}

static json_t *hex_json(const uint8_t *bytes, size_t len)
{
	char *hex;
	json_t *s;

	if (!bytes)
		return json_null();
	hex = malloc(2 * len + 1);
	if (!hex)
		return NULL;
	eif_hex(bytes, len, hex);
	s = json_string(hex);
	free(hex);
	return s;
}

static json_t *va_pcrs_json(const struct attest_doc *d)
{
	json_t *o = json_object();
	char key[8];

	for (unsigned i = 0; i < ATTEST_PCR_COUNT; i++) {
		if (!(d->pcr_present & (1u << i)))
			continue;
		snprintf(key, sizeof(key), "PCR%u", i);
		json_object_set_new(o, key, hex_json(d->pcrs[i], ATTEST_PCR_LEN));
	}
	return o;
}

static json_t *va_verdict_json(const struct attest_verdict *v)
{
	json_t *o = json_object(), *reasons = json_array();
	const struct attest_doc *d = &v->doc;

	for (size_t i = 0; i < v->n_reasons; i++)
		json_array_append_new(reasons, json_string(v->reasons[i]));
	json_object_set_new(o, "Valid", json_boolean(v->valid));
	json_object_set_new(o, "Reasons", reasons);
	if (!v->parsed)
		return o;
	json_object_set_new(o, "ModuleId", json_string(d->module_id));
	json_object_set_new(o, "Timestamp", json_integer((json_int_t)d->timestamp_ms));
	json_object_set_new(o, "Digest", json_string("SHA384"));
	json_object_set_new(o, "PCRs", va_pcrs_json(d));
	json_object_set_new(o, "PublicKey", hex_json(d->public_key, d->public_key_len));
	json_object_set_new(o, "UserData", hex_json(d->user_data, d->user_data_len));
	json_object_set_new(o, "Nonce", hex_json(d->nonce, d->nonce_len));
	return o;
}

static int va_check(const char *path, const struct attest_policy *p, struct nectl_err *err)
{
	struct attest_verdict v;
	char *doc;
	size_t len;
	int rc;

	if (file_read_all(path, ATTEST_DOC_MAX, &doc, &len, NECTL_ERR_INVALID_ARG, err) < 0)
		return -1;
	rc = attest_verify((const uint8_t *)doc, len, p, &v, err);
	free(doc);
	if (rc < 0)
		return -1;
	rc = cli_print_json(va_verdict_json(&v), err);
	if (rc == 0 && !v.valid)
		rc = nectl_err_set(err, NECTL_ERR_SIGCHECK, "%s: not valid: %s", path,
				   v.n_reasons ? v.reasons[0] : "no reason");
	attest_verdict_free(&v);
	return rc;
}

static int va_run(const struct args *args, struct nectl_err *err)
{
	struct va_opts o = {0};
	const char *path;
	int rc = -1;

	if (args_require(args, "document", &path, err) == 0 && va_policy(args, &o, err) == 0)
		rc = va_check(path, &o.p, err);
	free(o.pcrs);
	X509_free(o.root);
	return rc;
}

static const struct opt_spec va_opts_spec[] = {{"document", true, false, NULL},
					       {"root", true, false, NULL},
					       {"aws-root", false, false, NULL},
					       {"expect-pcrs", true, false, NULL},
					       {"nonce", true, false, NULL},
					       {"user-data", true, false, NULL},
					       {"max-age", true, false, NULL},
					       {"allow-debug", false, false, NULL},
					       {0}};

const struct cli_cmd cli_cmd_verify_attestation = {
    .name = "verify-attestation",
    .summary = "Verify an attestation document (local CA or AWS)",
    .help =
	"Usage: nectl verify-attestation --document FILE [--root PEM | --aws-root]\n"
	"       [--expect-pcrs PCRS.json] [--nonce HEX] [--user-data HEX]\n"
	"       [--max-age SECONDS] [--allow-debug]\n"
	"\n"
	"Checks a raw attestation document (COSE_Sign1, ES384): its payload, its\n"
	"signature with the enclave's leaf certificate, the chain leaf -> cabundle ->\n"
	"root at the document's own timestamp, then what you expect of it. The root is\n"
	"--root, AWS's Nitro Enclaves root G1 with --aws-root (carried in nectl), or the\n"
	"local CA's (nectl ca export). --expect-pcrs takes build-enclave --pcrs-out's or\n"
	"describe-eif's JSON. Zero PCR0..2 (a debug-mode enclave) are refused unless\n"
	"--allow-debug. Prints {\"Valid\", \"Reasons\", \"ModuleId\", \"Timestamp\", \"PCRs\",\n"
	"...}; exits 0 when valid, 59 when not, other codes for bad input.\n"
	"\n"
	"Example:\n"
	"  nectl verify-attestation --document att.bin --expect-pcrs pcrs.json \\\n"
	"      --nonce 00112233 --max-age 300\n",
    .opts = va_opts_spec,
    .run = va_run,
};
