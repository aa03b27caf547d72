/* kernel fetch: provision a guest kernel for build-enclave. */
#include <stdio.h>

#include "cli/cli.h"
#include "nectl/kernel.h"

static int kernel_fetch_run(const struct args *args, struct nectl_err *err)
{
	const char *arch_name = args_get(args, "arch");
	enum eif_arch arch = EIF_ARCH_X86_64;
	struct kernel_info k;
	json_t *out;

	if (arch_name && eif_arch_parse(arch_name, &arch) < 0)
		return nectl_err_set(err, NECTL_E_INVALID_ARG,
				     "--arch `%s` is not x86_64 or aarch64", arch_name);
	if (kernel_find(arch, args_get(args, "version"), &k, NULL) < 0) {
		fprintf(stderr, "Fetching %s with apt (bookworm-backports)...\n", k.package);
		if (kernel_fetch(arch, args_get(args, "version"), &k, err) < 0)
			return -1;
	}
	out = json_object();
	json_object_set_new(out, "Version", json_string(k.version));
	json_object_set_new(out, "Arch", json_string(eif_arch_name(k.arch)));
	json_object_set_new(out, "Kernel", json_string(k.kernel));
	json_object_set_new(out, "KernelConfig", json_string(k.config));
	json_object_set_new(out, "ModulesDir", json_string(k.modules_dir));
	return cli_print_json(out, err);
}

static const struct opt_spec kernel_fetch_opts[] = {
	{"arch", true, false, NULL}, {"version", true, false, NULL}, {0}};

const struct cli_cmd cli_cmd_kernel_fetch = {
	.name = "kernel fetch",
	.summary = "Download and cache a Debian cloud kernel for enclaves",
	.help = "Usage: nectl kernel fetch [--arch x86_64|aarch64] [--version ABI]\n"
		"\n"
		"Downloads linux-image-<ABI>-cloud-<amd64|arm64> from the backports suite of\n"
		"this machine's Debian archive with apt-get (verified by apt, never installed),\n"
		"and unpacks kernel, config and modules into the cache (NECTL_CACHE_DIR,\n"
		"/var/cache/nectl as root, else $XDG_CACHE_HOME/nectl). The default ABI is\n"
		"pinned (" NECTL_KERNEL_DEFAULT "). Prints where the files are, as JSON.\n"
		"\n"
		"Example:\n"
		"  nectl kernel fetch --arch x86_64\n",
	.opts = kernel_fetch_opts,
	.run = kernel_fetch_run,
};
