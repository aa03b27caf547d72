/* kernel fetch and kernel build: provision a guest kernel for build-enclave,
 * Debian's prebuilt one or nectl's own enclave kernel built from source. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "nectl/kernel.h"

/* What both kernel commands print first: which kernel, and where. */
static json_t *kernel_info_json(const struct kernel_info *k)
{
	json_t *out = json_object();

	json_object_set_new(out, "Version", json_string(k->version));
	json_object_set_new(out, "Arch", json_string(eif_arch_name(k->arch)));
	json_object_set_new(out, "Kernel", json_string(k->kernel));
	json_object_set_new(out, "KernelConfig", json_string(k->config));
	return out;
}

static int kernel_fetch_run(const struct args *args, struct nectl_err *err)
{
	const char *arch_name = args_get(args, "arch"), *abi = args_get(args, "version");
	enum eif_arch arch = EIF_ARCH_X86_64;
	struct nectl_err missing = {0};
	struct kernel_info k;
	json_t *out;

	if (arch_name && eif_arch_parse(arch_name, &arch) < 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "--arch `%s` is not x86_64 or aarch64", arch_name);
	if (kernel_find(arch, abi, &k, &missing) < 0) {
		if (missing.kind == NECTL_ERR_INVALID_ARG)
			return nectl_err_set(err, missing.kind, "--version: %s", missing.msg);
		fprintf(stderr, "Fetching %s with apt (bookworm-backports)...\n", k.package);
		if (kernel_fetch(arch, abi, &k, err) < 0)
			return -1;
	}
	out = kernel_info_json(&k);
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
		"pinned (" NECTL_KERNEL_DEFAULT "); --version takes Debian's spelling only (a\n"
		"digit, then digits, letters, '.', '+', '~', '-'; at most 64 bytes). apt keeps\n"
		"its privilege drop: as root, it downloads as _apt. Prints where the files\n"
		"are, as JSON.\n"
		"\n"
		"Example:\n"
		"  nectl kernel fetch --arch x86_64\n",
	.opts = kernel_fetch_opts,
	.run = kernel_fetch_run,
};

/* A build takes minutes: on a terminal, one line redrawn with the phase, its
 * counts and the elapsed time; otherwise a line per phase. */
struct kernel_progress {
	bool tty;
	bool drawn;
	double start;
	double last;
	char phase[16];
};

static double kernel_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kernel_progress_draw(const struct kernel_progress *kp, uint64_t done, uint64_t total,
				 double now)
{
	unsigned secs = (unsigned)(now - kp->start);

	fprintf(stderr, "\r\033[K[%02u:%02u] kernel build: %s", secs / 60, secs % 60, kp->phase);
	if (strcmp(kp->phase, "unpack") == 0 && total)
		fprintf(stderr, " %llu / %llu MiB (%llu%%)", (unsigned long long)(done >> 20),
			(unsigned long long)(total >> 20),
			(unsigned long long)(done * 100 / total));
	else if ((strcmp(kp->phase, "compile") == 0 || strcmp(kp->phase, "link") == 0) && total)
		fprintf(stderr, " %llu / ~%llu objects (%llu%%)", (unsigned long long)done,
			(unsigned long long)total, (unsigned long long)(done * 100 / total));
}

static void kernel_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct kernel_progress *kp = ctx;
	double now = kernel_now();
	bool changed = strncmp(phase, kp->phase, sizeof(kp->phase)) != 0;

	if (changed)
		snprintf(kp->phase, sizeof(kp->phase), "%s", phase);
	if (!kp->tty) {
		if (changed)
			fprintf(stderr, "nectl: kernel build: %s (after %.0f s)\n", phase,
				now - kp->start);
		return;
	}
	if (!changed && now - kp->last < 0.1)
		return;
	kp->last = now;
	kp->drawn = true;
	kernel_progress_draw(kp, done, total, now);
}

static void kernel_progress_end(const struct kernel_progress *kp, bool built)
{
	double secs = kernel_now() - kp->start;

	if (kp->drawn)
		fputs("\r\033[K", stderr);
	if (kp->phase[0])
		fprintf(stderr, "nectl: kernel build: %s after %.0f s\n",
			built ? "done" : "stopped", secs);
}

static int kernel_build_parse(const struct args *args, struct kernel_build_opts *o,
			      struct nectl_err *err)
{
	const char *arch = args_get(args, "arch"), *jobs = args_get(args, "jobs");
	char *end;
	unsigned long n;

	memset(o, 0, sizeof(*o));
	o->arch = EIF_ARCH_X86_64;
	if (arch && eif_arch_parse(arch, &o->arch) < 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "--arch `%s` is not x86_64 or aarch64", arch);
	if (jobs) {
		errno = 0;
		n = strtoul(jobs, &end, 10);
		if (errno || end == jobs || *end || jobs[0] == '-' || n > 256)
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "--jobs `%s` is not a number from 0 to 256", jobs);
		o->jobs = (unsigned)n;
	}
	o->output_dir = args_get(args, "output-dir");
	o->work_dir = args_get(args, "work-dir");
	o->force = args_has(args, "force");
	return 0;
}

static int kernel_build_run(const struct args *args, struct nectl_err *err)
{
	struct kernel_progress kp = {.tty = isatty(STDERR_FILENO), .start = kernel_now()};
	struct kernel_build_opts o;
	struct kernel_info k;
	char config_hash[65], sha[65];
	json_t *out;
	int rc;

	if (kernel_build_parse(args, &o, err) < 0)
		return -1;
	o.progress = kernel_progress;
	o.ctx = &kp;
	rc = kernel_build(&o, &k, err);
	kernel_progress_end(&kp, rc == 0);
	if (rc < 0 || kernel_file_sha256(k.kernel, sha, err) < 0)
		return -1;
	kernel_config_hash(o.arch, config_hash);
	out = kernel_info_json(&k);
	json_object_set_new(out, "SourcePackage", json_string(k.package));
	json_object_set_new(out, "SourceVersion", json_string(k.package_version));
	json_object_set_new(out, "ConfigHash", json_string(config_hash));
	json_object_set_new(out, "Sha256", json_string(sha));
	return cli_print_json(out, err);
}

static const struct opt_spec kernel_build_opts[] = {
	{"arch", true, false, NULL},	   {"jobs", true, false, NULL},
	{"force", false, false, NULL},	   {"output-dir", true, false, NULL},
	{"work-dir", true, false, NULL},   {0}};

const struct cli_cmd cli_cmd_kernel_build = {
	.name = "kernel build",
	.summary = "Build nectl's enclave kernel (Nitro-ready, reproducible) from Debian's source",
	.help = "Usage: nectl kernel build [--arch x86_64|aarch64] [--jobs N] [--force]\n"
		"                          [--output-dir DIR] [--work-dir DIR]\n"
		"\n"
		"Builds the enclave kernel nectl ships a configuration for, from Debian's\n"
		NECTL_KSRC_PACKAGE " " NECTL_KSRC_VERSION " (downloaded once with apt from the\n"
		"backports suite of this machine's Debian archive, verified by apt, never\n"
		"installed): allnoconfig plus nectl's Nitro fragment (virtio-mmio devices from\n"
		"the command line, MP table, vsock, NSM, 8250 console), every option of it\n"
		"checked, everything built in. x86_64 gives a bzImage; aarch64 an arm64 Image,\n"
		"cross-compiled with gcc-aarch64-linux-gnu. The same source and toolchain give\n"
		"the same bytes on any machine. The result is cached per architecture, source\n"
		"version and fragment (NECTL_CACHE_DIR, /var/cache/nectl as root, else\n"
		"$XDG_CACHE_HOME/nectl); a cached build is printed without building. Prints\n"
		"where the files are, as JSON.\n"
		"\n"
		"  --arch        x86_64 (default) or aarch64\n"
		"  --jobs N      parallel compile jobs (default: the online CPUs)\n"
		"  --force       build even when a cached build exists\n"
		"  --output-dir  write bzImage|Image, config, build.log, info.json there\n"
		"                instead of the cache\n"
		"  --work-dir    unpack and build in a temporary directory under DIR\n"
		"                (default: the cache; about 2 GB, removed afterwards)\n"
		"\n"
		"Example:\n"
		"  nectl kernel build                 # minutes, once; then cached\n"
		"  nectl kernel build --arch aarch64\n",
	.opts = kernel_build_opts,
	.run = kernel_build_run,
};
