/* build-eif: eif_build's options, nitro-cli's output. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "nectl/eif_sign.h"
#include "util/fileio.h"

#define CUSTOM_METADATA_MAX 4096

static int build_custom_metadata(const char *path, char **out, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (!path)
		return 0;
	if (file_read_all(path, CUSTOM_METADATA_MAX, out, NULL, NECTL_ERR_SERDE, err) < 0)
		return -1;
	j = json_loads(*out, JSON_DECODE_ANY, &jerr);
	if (!j) {
		free(*out);
		*out = NULL;
		return nectl_err_set(err, NECTL_ERR_SERDE, "%s: not valid JSON: %s (line %d)", path,
				     jerr.text, jerr.line);
	}
	json_decref(j);
	return 0;
}

static int build_check_kernel(const char *kernel, enum eif_arch arch, struct nectl_err *err)
{
	enum eif_arch found;
	int rc = eif_kernel_detect_arch(kernel, &found, err);

	if (rc < 0)
		return -1;
	if (rc == 1 && found != arch)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "%s is an %s kernel but --arch is %s", kernel,
				     eif_arch_name(found), eif_arch_name(arch));
	return 0;
}

/* eif_build names the image after the kernel file when --name is absent. */
static const char *build_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

struct build_opts {
	const char *kernel, *cmdline, *output, *cert, *key;
	const char *ramdisks[EIF_MAX_SECTIONS];
	size_t num_ramdisks;
	enum eif_arch arch;
	struct eif_metadata_fields meta;
	char time[64], os[64], kver[64];
	char *custom;
};

static int build_parse(const struct args *args, struct build_opts *o, struct nectl_err *err)
{
	const char *arch = args_get(args, "arch");
	const char *config = args_get(args, "kernel-config");

	if (args_require(args, "kernel", &o->kernel, err) < 0 ||
	    args_require(args, "cmdline", &o->cmdline, err) < 0 ||
	    args_require(args, "output", &o->output, err) < 0 ||
	    args_require(args, "ramdisk", &o->ramdisks[0], err) < 0)
		return -1;
	o->num_ramdisks = args_all(args, "ramdisk", o->ramdisks, EIF_MAX_SECTIONS);
	o->cert = args_get(args, "signing-certificate");
	o->key = args_get(args, "private-key");
	if (!o->cert != !o->key)
		return nectl_err_set(
		    err, NECTL_ERR_MISSING_ARG,
		    "Missing mandatory argument. User did not provide the `%s` argument "
		    "(--signing-certificate and --private-key go together).",
		    o->cert ? "private-key" : "signing-certificate");
	if (arch && eif_arch_parse(arch, &o->arch) < 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "--arch `%s` is not x86_64 or aarch64", arch);
	if (cli_build_time(args_get(args, "build-time"), o->time, NULL, err) < 0)
		return -1;
	snprintf(o->os, sizeof(o->os), "%s", args_get(args, "img-os") ?: "Unknown");
	snprintf(o->kver, sizeof(o->kver), "%s", args_get(args, "img-kernel") ?: "Unknown");
	if (config && eif_kernel_config_info(config, o->os, o->kver, err) < 0)
		return -1;
	if (build_custom_metadata(args_get(args, "metadata"), &o->custom, err) < 0)
		return -1;
	o->meta = (struct eif_metadata_fields){
		.image_name = args_get(args, "name") ?: build_basename(o->kernel),
		.image_version = args_get(args, "version") ?: "1.0",
		.build_time = o->time,
		.build_tool = args_get(args, "build-tool") ?: "nectl",
		.build_tool_version = args_get(args, "build-tool-version") ?: NECTL_VERSION,
		.operating_system = o->os,
		.kernel_version = o->kver,
		.custom_json = o->custom,
	};
	return 0;
}

static int build_write(struct build_opts *o, struct eif_pcrs *pcrs, struct nectl_err *err)
{
	struct eif_input ramdisks[EIF_MAX_SECTIONS];
	struct eif_signer *signer = NULL;
	struct cli_progress cp;
	char *meta;
	size_t meta_len;
	int rc;

	if (o->cert && eif_signer_load(&signer, o->cert, o->key, err) < 0)
		return -1;
	if (eif_metadata_build(&o->meta, &meta, &meta_len, err) < 0) {
		eif_signer_free(signer);
		return -1;
	}
	for (size_t i = 0; i < o->num_ramdisks; i++)
		ramdisks[i] = (struct eif_input){.path = o->ramdisks[i]};
	cli_progress_init(&cp, "building");
	rc = eif_build(&(struct eif_build_spec){.kernel = {.path = o->kernel},
						.cmdline = o->cmdline,
						.ramdisks = ramdisks,
						.num_ramdisks = o->num_ramdisks,
						.metadata = meta,
						.metadata_len = meta_len,
						.arch = o->arch,
						.signer = signer,
						.output_path = o->output,
						.progress = &cp.p},
		       pcrs, err);
	cli_progress_done(&cp);
	free(meta);
	eif_signer_free(signer);
	return rc;
}

static int build_run(const struct args *args, struct nectl_err *err)
{
	struct build_opts o = {0};
	struct eif_pcrs pcrs;
	json_t *out;
	int rc;

	rc = build_parse(args, &o, err);
	if (rc == 0)
		rc = build_check_kernel(o.kernel, o.arch, err);
	if (rc == 0)
		rc = build_write(&o, &pcrs, err);
	free(o.custom);
	if (rc < 0)
		return -1;
	fprintf(stderr, "Output file: %s\n", o.output);
	out = json_object();
	json_object_set_new(out, "Measurements", cli_measurements_json(&pcrs));
	return cli_print_json(out, err);
}

static const struct opt_spec build_opts_spec[] = {
	{"kernel", true, false, NULL},
	{"kernel-config", true, false, "kernel_config"},
	{"cmdline", true, false, NULL},
	{"ramdisk", true, true, NULL},
	{"output", true, false, NULL},
	{"arch", true, false, NULL},
	{"name", true, false, NULL},
	{"version", true, false, NULL},
	{"metadata", true, false, NULL},
	{"build-time", true, false, NULL},
	{"build-tool", true, false, NULL},
	{"build-tool-version", true, false, NULL},
	{"img-os", true, false, NULL},
	{"img-kernel", true, false, NULL},
	{"signing-certificate", true, false, NULL},
	{"private-key", true, false, NULL},
	{0},
};

const struct cli_cmd cli_cmd_build_eif = {
	.name = "build-eif",
	.summary = "Build an EIF from a kernel, a cmdline and ramdisks",
	.help = "Usage: nectl build-eif --kernel FILE --cmdline TEXT --ramdisk FILE [--ramdisk FILE...]\n"
		"                       --output FILE [options]\n"
		"\n"
		"Options (eif_build's):\n"
		"  --kernel FILE               bzImage (x86_64) or Image (aarch64)\n"
		"  --kernel-config FILE        kernel .config: sets OperatingSystem and KernelVersion\n"
		"                              (also spelled --kernel_config)\n"
		"  --cmdline TEXT              kernel command line, written verbatim\n"
		"  --ramdisk FILE              repeatable; the first is measured into PCR1, the rest\n"
		"                              into PCR2\n"
		"  --output FILE               written atomically; never left half-written\n"
		"  --arch x86_64|aarch64       header arch flag (default x86_64)\n"
		"  --name NAME                 ImageName (default: the kernel file name)\n"
		"  --version VERSION           ImageVersion (default 1.0)\n"
		"  --metadata FILE             custom JSON metadata, at most 4096 bytes\n"
		"  --build-time TIME           Unix seconds or RFC 3339; default SOURCE_DATE_EPOCH,\n"
		"                              else now. Pin it for byte-for-byte reproducible images\n"
		"  --build-tool NAME, --build-tool-version V, --img-os OS, --img-kernel VERSION\n"
		"                              override the BuildMetadata fields\n"
		"  --signing-certificate CERT.pem --private-key KEY.pem\n"
		"                              sign PCR0 (ECDSA P-256/P-384/P-521)\n"
		"\n"
		"Prints {\"Measurements\": {...}} on stdout.\n"
		"\n"
		"Example:\n"
		"  nectl build-eif --kernel bzImage --cmdline 'console=ttyS0' --ramdisk init.cpio \\\n"
		"      --ramdisk app.cpio --output app.eif --build-time 1700000000\n",
	.opts = build_opts_spec,
	.run = build_run,
};
