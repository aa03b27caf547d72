/* describe-eif, pcr and sign-eif. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "nectl/eif_sign.h"

static json_t *describe_sections(const struct eif_image *img)
{
	json_t *arr = json_array();

	for (unsigned i = 0; i < img->num_sections; i++) {
		json_t *s = json_object();

		json_object_set_new(s, "Type", json_string(eif_section_type_name(img->sections[i].type)));
		json_object_set_new(s, "Offset", json_integer((json_int_t)img->sections[i].offset));
		json_object_set_new(s, "Size", json_integer((json_int_t)img->sections[i].size));
		json_array_append_new(arr, s);
	}
	return arr;
}


static int describe_signature(const struct eif_image *img, json_t *out, struct nectl_err *err)
{
	struct eif_sig_check check;
	uint8_t *cert, *cose;
	size_t cert_len, cose_len;
	json_t *cert_json;
	int rc;

	if (eif_signature_parse(img->signature, img->signature_len, &cert, &cert_len, &cose,
				&cose_len, err) < 0)
		return -1;
	free(cose);
	rc = eif_cert_describe(cert, cert_len, &cert_json, err);
	free(cert);
	if (rc < 0)
		return -1;
	json_object_set_new(out, "SigningCertificate", cert_json);
	if (eif_signature_verify(img->signature, img->signature_len, img->pcrs.pcr0, &check,
				 err) < 0)
		return -1;
	json_object_set_new(out, "CheckCRC", json_boolean(img->crc_stored == img->crc_computed));
	json_object_set_new(out, "SignatureCheck",
			    json_boolean(check.cose_valid && check.payload_matches &&
					 check.cert_time_valid));
	if (check.reason[0])
		json_object_set_new(out, "SignatureError", json_string(check.reason));
	return 0;
}

static int describe_json(const char *path, const struct eif_image *img, json_t *out,
			 struct nectl_err *err)
{
	json_object_set_new(out, "EifVersion", json_integer(img->version));
	json_object_set_new(out, "Measurements", cli_measurements_json(&img->pcrs));
	json_object_set_new(out, "IsSigned", json_boolean(img->signature != NULL));
	if (img->signature) {
		if (describe_signature(img, out, err) < 0) {
			char inner[NECTL_ERR_MSG_MAX];

			memcpy(inner, err->msg, sizeof(inner));
			return nectl_err_set(err, err->kind, "%s: %s", path, inner);
		}
	} else {
		json_object_set_new(out, "CheckCRC",
				    json_boolean(img->crc_stored == img->crc_computed));
	}
	if (img->metadata && eif_metadata_describe(img, out, err) < 0) {
		char inner[NECTL_ERR_MSG_MAX];

		memcpy(inner, err->msg, sizeof(inner));
		return nectl_err_set(err, err->kind, "%s: %s", path, inner);
	}
	json_object_set_new(out, "Arch", json_string(eif_arch_name(img->arch)));
	json_object_set_new(out, "HeaderFlags", json_integer(img->flags));
	json_object_set_new(out, "Sections", describe_sections(img));
	return 0;
}

/* The kernel's release and, when nectl knows its .config, whether it can find
 * the devices the Nitro hypervisor announces. */
static int describe_kernel(const char *path, const struct eif_image *img, json_t *out,
			   struct nectl_err *err)
{
	struct kernel_check_eif k;

	if (kernel_check_eif(path, img, &k, err) < 0)
		return -1;
	if (k.known) {
		char what[256];

		snprintf(what, sizeof(what), "%s in %s", k.release[0] ? k.release : "the kernel",
			 path);
		cli_kernel_warn(what, k.config, &k.check);
	}
	json_object_set_new(out, "Kernel", cli_kernel_json(&k));
	return 0;
}

/* Prints the JSON, then fails as nitro-cli does (E35) when the image is
 * signed and the signature does not verify: scripts gate on the status. */
static int describe_print(const char *path, json_t *out, struct nectl_err *err)
{
	const char *why = json_string_value(json_object_get(out, "SignatureError"));
	bool bad_sig = json_is_false(json_object_get(out, "SignatureCheck"));
	char reason[NECTL_ERR_MSG_MAX / 2];

	snprintf(reason, sizeof(reason), "%s", why ? why : "no reason given");
	if (cli_print_json(out, err) < 0)
		return -1;
	if (bad_sig)
		return nectl_err_set(err, NECTL_ERR_EIF, "%s: the signature does not verify: %s",
				     path, reason);
	return 0;
}

static int describe_run(const struct args *args, struct nectl_err *err)
{
	struct cli_progress cp;
	struct eif_image img;
	const char *path;
	json_t *out;
	int rc;

	if (args_require(args, "eif-path", &path, err) < 0)
		return -1;
	cli_progress_init(&cp, "reading");
	rc = eif_read_file(path, &img, &cp.p, err);
	cli_progress_done(&cp);
	if (rc < 0)
		return -1;
	if (img.unknown_flags)
		fprintf(stderr, "warning: %s: header flags 0x%04x have unknown bits 0x%04x\n", path,
			img.flags, img.unknown_flags);
	if (img.crc_stored != img.crc_computed)
		fprintf(stderr, "warning: %s: CRC mismatch (header 0x%08x, computed 0x%08x)\n",
			path, img.crc_stored, img.crc_computed);
	out = json_object();
	rc = describe_json(path, &img, out, err);
	if (rc == 0)
		rc = describe_kernel(path, &img, out, err);
	eif_image_free(&img);
	if (rc < 0) {
		json_decref(out);
		return -1;
	}
	return describe_print(path, out, err);
}

static const struct opt_spec describe_opts[] = {{"eif-path", true, false, NULL}, {0}};

const struct cli_cmd cli_cmd_describe_eif = {
	.name = "describe-eif",
	.summary = "Show an EIF's measurements, signature, metadata and layout",
	.help = "Usage: nectl describe-eif --eif-path FILE\n"
		"\n"
		"Validates the image (header, section table, CRC), recomputes PCR0, PCR1, PCR2\n"
		"(and PCR8 when signed), verifies the signature and prints nitro-cli's JSON,\n"
		"plus \"Arch\", \"HeaderFlags\", \"Sections\" (type, offset, size of each) and\n"
		"\"Kernel\": the release an x86 kernel names in its header and, when the kernel\n"
		"is one whose configuration nectl has (its own builds and Debian's kernels in\n"
		"the kernel cache, nitro-cli's blobs), whether it is Nitro-ready: it must take\n"
		"the devices the Nitro hypervisor announces on the kernel command line. What\n"
		"it lacks is listed in \"Problems\" and warned about on stderr; NitroReady is\n"
		"null when the configuration is unknown.\n"
		"\n"
		"A signed image whose signature does not verify (SignatureCheck false) exits\n"
		"with E35, as nitro-cli does, after printing the JSON with its SignatureError.\n"
		"\n"
		"Example:\n"
		"  nectl describe-eif --eif-path app.eif\n",
	.opts = describe_opts,
	.run = describe_run,
};

static int pcr_run(const struct args *args, struct nectl_err *err)
{
	const char *input = args_get(args, "input");
	const char *cert = args_get(args, "signing-certificate");
	uint8_t pcr[EIF_HASH_SIZE];
	char hex[2 * EIF_HASH_SIZE + 1];
	json_t *out;

	if (args_conflict(args, "input", "signing-certificate", err) < 0)
		return -1;
	if (!input && !cert)
		return nectl_err_set(err, NECTL_ERR_MISSING_ARG,
				     "Missing mandatory argument. User did not provide the `input` "
				     "or `signing-certificate` argument.");
	if (input ? eif_pcr_file(input, pcr, err) < 0 : eif_cert_pcr8_file(cert, pcr, err) < 0)
		return -1;
	eif_hex(pcr, sizeof(pcr), hex);
	out = json_object();
	json_object_set_new(out, input ? "PCR" : "PCR8", json_string(hex));
	return cli_print_json(out, err);
}

static const struct opt_spec pcr_opts[] = {
	{"input", true, false, NULL}, {"signing-certificate", true, false, NULL}, {0}};

const struct cli_cmd cli_cmd_pcr = {
	.name = "pcr",
	.summary = "Compute the PCR of a file or the PCR8 of a signing certificate",
	.help = "Usage: nectl pcr --input FILE\n"
		"       nectl pcr --signing-certificate CERT.pem\n"
		"\n"
		"--input prints {\"PCR\": SHA384(0^48 || SHA384(file))}.\n"
		"--signing-certificate prints {\"PCR8\": ...}, the same over the certificate's DER.\n"
		"\n"
		"Example:\n"
		"  nectl pcr --signing-certificate cert.pem\n",
	.opts = pcr_opts,
	.run = pcr_run,
};

static int sign_run(const struct args *args, struct nectl_err *err)
{
	const char *path, *cert = args_get(args, "signing-certificate");
	const char *key = args_get(args, "private-key");
	struct eif_signer *signer;
	struct cli_progress cp;
	struct eif_pcrs pcrs;
	json_t *out;
	int rc;

	if (args_require(args, "eif-path", &path, err) < 0)
		return -1;
	if (!cert || !key)
		return nectl_err_set(err, NECTL_ERR_SIGN,
				     "Failed to create EifSigner: both --signing-certificate and "
				     "--private-key are required");
	if (eif_signer_load(&signer, cert, key, err) < 0)
		return -1;
	cli_progress_init(&cp, "signing");
	rc = eif_sign_file(path, signer, &pcrs, &cp.p, err);
	cli_progress_done(&cp);
	eif_signer_free(signer);
	if (rc < 0)
		return -1;
	fprintf(stderr, "Enclave Image successfully signed.\n");
	out = json_object();
	json_object_set_new(out, "Measurements", cli_measurements_json(&pcrs));
	return cli_print_json(out, err);
}

static const struct opt_spec sign_opts[] = {{"eif-path", true, false, NULL},
					    {"signing-certificate", true, false, NULL},
					    {"private-key", true, false, NULL},
					    {0}};

const struct cli_cmd cli_cmd_sign_eif = {
	.name = "sign-eif",
	.summary = "Add or replace an EIF's signature",
	.help = "Usage: nectl sign-eif --eif-path FILE --signing-certificate CERT.pem\n"
		"                      --private-key KEY.pem\n"
		"\n"
		"Signs PCR0 with an ECDSA key (P-256, P-384 or P-521; ES256/ES384/ES512 chosen\n"
		"from the curve) as a COSE_Sign1, adding the signature section or replacing an\n"
		"existing one. The file is rewritten atomically: on failure it is unchanged.\n"
		"\n"
		"Example:\n"
		"  openssl ecparam -name secp384r1 -genkey -noout -out key.pem\n"
		"  openssl req -new -x509 -sha384 -key key.pem -subj /CN=me -days 365 -out cert.pem\n"
		"  nectl sign-eif --eif-path app.eif --signing-certificate cert.pem --private-key key.pem\n",
	.opts = sign_opts,
	.run = sign_run,
};

static int extract_part(const struct eif_source *src, const struct eif_image *img,
			const char *dir, const char *name, unsigned type, int index,
			json_t *out, struct nectl_err *err)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (eif_extract(src, img, type, index, path, err) < 0)
		return -1;
	json_object_set_new(out, name, json_string(path));
	return 0;
}

static int extract_all(const struct eif_source *src, const struct eif_image *img,
		       const char *dir, json_t *out, struct nectl_err *err)
{
	int n = 0;

	if (extract_part(src, img, dir, "kernel", EIF_SECTION_KERNEL, 0, out, err) < 0 ||
	    extract_part(src, img, dir, "cmdline", EIF_SECTION_CMDLINE, 0, out, err) < 0 ||
	    extract_part(src, img, dir, "initrd", EIF_SECTION_RAMDISK, -1, out, err) < 0)
		return -1;
	for (unsigned i = 0; i < img->num_sections; i++) {
		char name[32];

		if (img->sections[i].type != EIF_SECTION_RAMDISK)
			continue;
		snprintf(name, sizeof(name), "ramdisk%d", n);
		if (extract_part(src, img, dir, name, EIF_SECTION_RAMDISK, n, out, err) < 0)
			return -1;
		n++;
	}
	if (img->metadata &&
	    extract_part(src, img, dir, "metadata.json", EIF_SECTION_METADATA, 0, out, err) < 0)
		return -1;
	return 0;
}

static int extract_run(const struct args *args, struct nectl_err *err)
{
	const char *path, *dir;
	struct eif_source src;
	struct eif_image img;
	json_t *out;
	int rc;

	if (args_require(args, "eif-path", &path, err) < 0 ||
	    args_require(args, "output-dir", &dir, err) < 0)
		return -1;
	if (eif_source_open_file(&src, path, err) < 0)
		return -1;
	rc = eif_read(&src, &img, NULL, err);
	out = json_object();
	if (rc == 0) {
		rc = extract_all(&src, &img, dir, out, err);
		eif_image_free(&img);
	}
	eif_source_close(&src);
	if (rc < 0) {
		json_decref(out);
		return -1;
	}
	return cli_print_json(out, err);
}

static const struct opt_spec extract_opts[] = {
	{"eif-path", true, false, NULL}, {"output-dir", true, false, NULL}, {0}};

const struct cli_cmd cli_cmd_extract_eif = {
	.name = "extract-eif",
	.summary = "Write an EIF's kernel, cmdline and ramdisks to files",
	.help = "Usage: nectl extract-eif --eif-path FILE --output-dir DIR\n"
		"\n"
		"Validates the image, then writes DIR/kernel, DIR/cmdline, DIR/initrd (all\n"
		"ramdisks concatenated, as the enclave kernel sees them), DIR/ramdisk0...\n"
		"and DIR/metadata.json. Useful to inspect an image (cpio -itv < DIR/ramdisk1)\n"
		"or to boot it in another VMM.\n"
		"\n"
		"Example:\n"
		"  mkdir out && nectl extract-eif --eif-path app.eif --output-dir out\n",
	.opts = extract_opts,
	.run = extract_run,
};
