/* build-enclave: nitro-cli's command, without Docker. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "nectl/eif_sign.h"
#include "nectl/enclave_image.h"
#include "nectl/kernel.h"
#include "util/fileio.h"

/* nitro-cli's blob cmdlines (reference §6). */
#define CMDLINE_X86_64                                                                         \
	"reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp " \
	"i8042.dumbkbd random.trust_cpu=on"
#define CMDLINE_AARCH64 "reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on root=/dev/ram0"

/* The inits built into nectl (src/cli/meson.build, scripts/embed.sh). Only the
 * build machine's architecture is native; the other is cross-compiled. */
extern const unsigned char nectl_init_start[], nectl_init_end[];
#ifdef NECTL_HAVE_INIT_AARCH64
extern const unsigned char nectl_init_aarch64_start[], nectl_init_aarch64_end[];
#endif

static bool enclave_builtin_init(enum eif_arch arch, const void **data, size_t *len)
{
#if defined(__x86_64__)
	if (arch == EIF_ARCH_X86_64) {
		*data = nectl_init_start;
		*len = (size_t)(nectl_init_end - nectl_init_start);
		return true;
	}
#ifdef NECTL_HAVE_INIT_AARCH64
	if (arch == EIF_ARCH_AARCH64) {
		*data = nectl_init_aarch64_start;
		*len = (size_t)(nectl_init_aarch64_end - nectl_init_aarch64_start);
		return true;
	}
#endif
#elif defined(__aarch64__)
	if (arch == EIF_ARCH_AARCH64) {
		*data = nectl_init_start;
		*len = (size_t)(nectl_init_end - nectl_init_start);
		return true;
	}
#endif
	return false;
}

struct enclave_opts {
	struct enclave_image_spec spec;
	char **cmd, **entrypoint, *env[ARGS_MAX + 1];
	char *custom, *cmdline_buf;
	char kernel[4096], config[4096], nsm[4096], init[4096];
	struct kernel_info k;
};

/* Where a Docker daemon would answer: DOCKER_HOST (unix://) or the default. */
static bool enclave_docker_reachable(char *path, size_t len)
{
	const char *host = getenv("DOCKER_HOST");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc;

	snprintf(path, len, "%s",
		 host && strncmp(host, "unix://", 7) == 0 ? host + 7 : "/var/run/docker.sock");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0;
}

/* A private directory (mkdtemp, 0700) for the exported archive: a fixed name
 * in a shared /tmp could be a symlink another user planted there first. */
static int enclave_docker_tmp(char *archive, size_t len, enum nectl_kind code,
			      struct nectl_err *err)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || tmp[0] != '/')
		tmp = "/tmp";
	if ((size_t)snprintf(archive, len, "%s/nectl-docker-XXXXXX", tmp) >= len - 16 ||
	    strchr(archive, '\'')) {
		archive[0] = '\0';
		return nectl_err_set(err, code, "TMPDIR `%.200s` is too long or holds a quote",
				     tmp);
	}
	if (!mkdtemp(archive)) {
		int e = errno;

		archive[0] = '\0';
		return nectl_err_sys(err, code, e, "%s: cannot create a temporary directory", tmp);
	}
	strcat(archive, "/image.tar");
	return 0;
}

/* Removes the exported archive and its private directory. */
static void enclave_docker_cleanup(char *archive)
{
	char *slash = strrchr(archive, '/');

	if (!archive[0])
		return;
	unlink(archive);
	if (slash) {
		*slash = '\0';
		rmdir(archive);
	}
	archive[0] = '\0';
}

/* With a daemon, `docker save` (after `docker build` for --docker-dir) into a
 * temporary archive; without one, say how to bring an archive instead. */
static int enclave_from_docker(const struct args *args, char *archive, size_t len,
			       struct nectl_err *err)
{
	const char *uri = args_get(args, "docker-uri"), *dir = args_get(args, "docker-dir");
	char sock[256], cmd[8192];
	enum nectl_kind code = dir ? NECTL_ERR_DOCKER_BUILD : NECTL_ERR_DOCKER_PULL;

	if (!enclave_docker_reachable(sock, sizeof(sock)))
		return nectl_err_set(err, code,
				     "no Docker daemon at %s: export the image where Docker runs (`docker save %s -o image.tar`, or `skopeo copy docker://%s oci-archive:image.tar`) and pass --image-archive image.tar",
				     sock, uri, uri);
	if (enclave_docker_tmp(archive, len, code, err) < 0)
		return -1;
	if (dir)
		snprintf(cmd, sizeof(cmd), "docker build -q -t '%s' '%s' >&2 && docker save '%s' -o '%s'",
			 uri, dir, uri, archive);
	else
		snprintf(cmd, sizeof(cmd), "docker save '%s' -o '%s'", uri, archive);
	if (strpbrk(uri, "'") || (dir && strchr(dir, '\'')) || system(cmd) != 0) {
		enclave_docker_cleanup(archive);
		return nectl_err_set(err, code, "docker could not export `%s`", uri);
	}
	return 0;
}

static int enclave_source(const struct args *args, struct enclave_opts *o, char *tmp_archive,
			  size_t len, struct nectl_err *err)
{
	static const char *const sources[] = {"docker-uri", "image-archive", "oci-layout", "rootfs"};
	const char *given = NULL;

	for (size_t i = 0; i < 4; i++) {
		if (!args_has(args, sources[i]))
			continue;
		if (given)
			return args_conflict(args, given, sources[i], err);
		given = sources[i];
	}
	if (!given)
		return nectl_err_set(
		    err, NECTL_ERR_MISSING_ARG,
		    "Missing mandatory argument. User did not provide the application: one of "
		    "`--rootfs`, `--oci-layout`, `--image-archive` or `--docker-uri`.");
	if (args_has(args, "docker-dir") && !args_has(args, "docker-uri"))
		return nectl_err_set(err, NECTL_ERR_MISSING_ARG,
				     "--docker-dir needs --docker-uri (the tag to build)");
	if (strcmp(given, "docker-uri") == 0) {
		if (enclave_from_docker(args, tmp_archive, len, err) < 0)
			return -1;
		o->spec.image = tmp_archive;
	} else if (strcmp(given, "rootfs") == 0) {
		o->spec.rootfs = args_get(args, "rootfs");
	} else {
		o->spec.image = args_get(args, given);
	}
	return 0;
}

static int enclave_blobs(const char *blobs, struct enclave_opts *o, struct nectl_err *err)
{
	const char *name = o->spec.arch == EIF_ARCH_AARCH64 ? "Image" : "bzImage";
	char path[4200];
	size_t n;

	snprintf(o->kernel, sizeof(o->kernel), "%s/%s", blobs, name);
	snprintf(o->config, sizeof(o->config), "%s/%s.config", blobs, name);
	snprintf(o->nsm, sizeof(o->nsm), "%s/nsm.ko", blobs);
	snprintf(o->init, sizeof(o->init), "%s/init", blobs);
	snprintf(path, sizeof(path), "%s/cmdline", blobs);
	if (file_read_all(path, 4096, &o->cmdline_buf, &n, NECTL_ERR_FILE, err) < 0)
		return -1;
	while (n > 0 && strchr(" \t\r\n", o->cmdline_buf[n - 1]))
		o->cmdline_buf[--n] = '\0';
	o->spec.kernel = o->kernel;
	o->spec.kernel_config = access(o->config, R_OK) == 0 ? o->config : NULL;
	o->spec.nsm_ko = o->nsm;
	o->spec.init_path = o->init;
	o->spec.cmdline = o->cmdline_buf + strspn(o->cmdline_buf, " \t\r\n");
	return 0;
}

/* Debian's prebuilt cloud kernel and its modules, which nectl's init loads. */
static int enclave_debian_kernel(const struct args *args, struct enclave_opts *o,
				 struct nectl_err *err)
{
	if (kernel_find(o->spec.arch, args_get(args, "kernel-version"), &o->k, err) < 0)
		return -1;
	o->spec.kernel = o->k.kernel;
	o->spec.kernel_config = o->k.config;
	o->spec.modules_dir = o->k.modules_dir;
	return 0;
}

/* nitro-cli's default: its blob directory when it exists on this host (AWS's
 * kernels boot on Nitro by definition); else nectl's own Nitro-ready build. */
static int enclave_default_kernel(struct enclave_opts *o, struct nectl_err *err)
{
	const char *env = getenv("NITRO_CLI_BLOBS");
	struct stat st;

	/* A blob directory named in the environment must be there, as for nitro-cli. */
	if ((env && *env) || (stat(kernel_blobs_dir(), &st) == 0 && S_ISDIR(st.st_mode)))
		return enclave_blobs(kernel_blobs_dir(), o, err);
	if (kernel_find_built(o->spec.arch, &o->k, err) < 0)
		return -1;
	o->spec.kernel = o->k.kernel;
	o->spec.kernel_config = o->k.config;
	return 0;
}

static int enclave_kernel_choice(const struct args *args, struct enclave_opts *o,
				 struct nectl_err *err)
{
	static const char *const choices[] = {"blobs", "kernel", "debian-kernel", "kernel-version"};
	const char *given = NULL;

	for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++) {
		if (!args_has(args, choices[i]))
			continue;
		/* --kernel-version picks which Debian kernel: it goes with --debian-kernel. */
		if (given && !(strcmp(given, "debian-kernel") == 0 &&
			       strcmp(choices[i], "kernel-version") == 0))
			return args_conflict(args, given, choices[i], err);
		if (!given)
			given = choices[i];
	}
	if ((args_has(args, "kernel-config") || args_has(args, "modules-dir")) &&
	    (!given || strcmp(given, "kernel") != 0))
		return nectl_err_set(
		    err, NECTL_ERR_MISSING_ARG,
		    "--kernel-config and --modules-dir describe the kernel given with "
		    "--kernel FILE: give --kernel too");
	if (!given)
		return enclave_default_kernel(o, err);
	if (strcmp(given, "blobs") == 0)
		return enclave_blobs(args_get(args, "blobs"), o, err);
	if (strcmp(given, "kernel") == 0) {
		o->spec.kernel = args_get(args, "kernel");
		o->spec.kernel_config = args_get(args, "kernel-config");
		o->spec.modules_dir = args_get(args, "modules-dir");
		return 0;
	}
	return enclave_debian_kernel(args, o, err);
}

static int enclave_kernel(const struct args *args, struct enclave_opts *o, struct nectl_err *err)
{
	enum eif_arch found;
	int rc;

	if (enclave_kernel_choice(args, o, err) < 0)
		return -1;
	rc = eif_kernel_detect_arch(o->spec.kernel, &found, err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "%s is neither an x86 bzImage nor an arm64 Image",
				     o->spec.kernel);
	if (found != o->spec.arch)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "%s is an %s kernel but --arch is %s", o->spec.kernel,
				     eif_arch_name(found), eif_arch_name(o->spec.arch));
	return 0;
}

/* Warns, before anything is built, when the kernel cannot find the devices
 * the Nitro hypervisor announces. Without a .config (given, or known for
 * this very kernel file) there is nothing to check. */
static void enclave_check_kernel(const struct enclave_opts *o, bool builtin_init)
{
	const struct kernel_check_image img = {
	    .modules_loaded = o->spec.modules_dir && builtin_init,
	    .nsm_module = o->spec.nsm_ko != NULL,
	};
	const char *config = o->spec.kernel_config;
	char found[4096];
	struct kernel_check c;
	struct stat st;
	int fd;

	if (!config) {
		fd = open(o->spec.kernel, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		if (fstat(fd, &st) == 0 &&
		    kernel_check_find_config(fd, 0, (uint64_t)st.st_size, o->spec.arch, found,
					     sizeof(found)) == 1)
			config = found;
		close(fd);
	}
	if (config && kernel_check_config(config, o->spec.arch, &img, &c, NULL) == 0)
		cli_kernel_warn(o->spec.kernel, config, &c);
}

static enum eif_arch enclave_host_arch(void)
{
	struct utsname u;

	return uname(&u) == 0 && strcmp(u.machine, "aarch64") == 0 ? EIF_ARCH_AARCH64
								    : EIF_ARCH_X86_64;
}

/* The --help text states the defaults. */
_Static_assert(IMAGE_MAX_BYTES_DEFAULT == 4ull << 30 && IMAGE_MAX_ENTRIES_DEFAULT == 250000,
	       "build-enclave --help gives the limits' defaults");

/* A count or a size: digits, and for a size an optional K, M, G or T
 * (binary multiples). Zero and overflow are refused. */
static int enclave_limit(const struct args *args, const char *opt, bool size, uint64_t *out,
			 struct nectl_err *err)
{
	static const char units[] = "KMGT";
	const char *text = args_get(args, opt), *unit = NULL;
	unsigned shift = 0;
	uint64_t v = 0;
	char *end = NULL;

	if (!text)
		return 0;
	errno = 0;
	if (text[0] >= '0' && text[0] <= '9')
		v = strtoull(text, &end, 10);
	if (end && *end && size && (unit = strchr(units, *end & ~0x20)) && *unit && !end[1])
		shift = 10 * (unsigned)(unit - units + 1);
	if (!end || errno || v == 0 || (*end && !shift) || v > UINT64_MAX >> shift)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "--%s `%s` is not a positive %s",
				     opt, text,
				     size ? "size (bytes, or with K, M, G or T)" : "integer");
	*out = v << shift;
	return 0;
}

static int enclave_app(const struct args *args, struct enclave_opts *o, struct nectl_err *err)
{
	const char *cmd = args_get(args, "cmd"), *ep = args_get(args, "entrypoint");
	const char *meta = args_get(args, "metadata");
	const char *envs[ARGS_MAX];
	size_t n = args_all(args, "env", envs, ARGS_MAX);

	if (enclave_limit(args, "max-file-data", true, &o->spec.limits.max_bytes, err) < 0 ||
	    enclave_limit(args, "max-entries", false, &o->spec.limits.max_entries, err) < 0)
		return -1;
	if (cmd && !(o->cmd = argv_split(cmd, "cmd", err)))
		return -1;
	if (ep && !(o->entrypoint = argv_split(ep, "entrypoint", err)))
		return -1;
	for (size_t i = 0; i < n; i++)
		o->env[i] = (char *)envs[i];
	o->spec.cmd = o->cmd;
	o->spec.entrypoint = o->entrypoint;
	o->spec.env = n ? o->env : NULL;
	if (meta && file_read_all(meta, 4096, &o->custom, NULL, NECTL_ERR_SERDE, err) < 0)
		return -1;
	o->spec.custom_metadata = o->custom;
	return 0;
}

static int enclave_parse(const struct args *args, struct enclave_opts *o, char *tmp_archive,
			 size_t len, struct nectl_err *err)
{
	const char *arch = args_get(args, "arch"), *init = args_get(args, "init");
	char when[64];

	o->spec.arch = enclave_host_arch();
	if (args_require(args, "output-file", &o->spec.output, err) < 0)
		return -1;
	if (arch && eif_arch_parse(arch, &o->spec.arch) < 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "--arch `%s` is not x86_64 or aarch64", arch);
	if (cli_build_time(args_get(args, "build-time"), when, &o->spec.build_time, err) < 0 ||
	    enclave_kernel(args, o, err) < 0 || enclave_app(args, o, err) < 0 ||
	    enclave_source(args, o, tmp_archive, len, err) < 0)
		return -1;
	if (init)
		o->spec.init_path = init;
	if (!o->spec.init_path &&
	    !enclave_builtin_init(o->spec.arch, &o->spec.init_data, &o->spec.init_len))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "this nectl carries no %s init (it was built without a cross "
				     "compiler): give --init with a static %s init",
				     eif_arch_name(o->spec.arch), eif_arch_name(o->spec.arch));
	enclave_check_kernel(o, !init && !o->spec.init_path);
	if (!o->spec.cmdline)
		o->spec.cmdline = args_get(args, "cmdline");
	if (!o->spec.cmdline)
		o->spec.cmdline = o->spec.arch == EIF_ARCH_AARCH64 ? CMDLINE_AARCH64 : CMDLINE_X86_64;
	o->spec.name = args_get(args, "name");
	o->spec.version = args_get(args, "version");
	return 0;
}

static int enclave_pcrs_out(const char *path, const struct eif_pcrs *pcrs, struct nectl_err *err)
{
	json_t *j = json_object();
	struct out_file f;
	char *text;
	int rc = -1;

	json_object_set_new(j, "Measurements", cli_measurements_json(pcrs));
	text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	if (text && out_file_open(&f, path, err) == 0) {
		if (out_file_write(&f, text, strlen(text), err) == 0 &&
		    out_file_write(&f, "\n", 1, err) == 0 && out_file_commit(&f, err) == 0)
			rc = 0;
		out_file_abort(&f);
	}
	free(text);
	return rc;
}

static int enclave_run(const struct args *args, struct nectl_err *err)
{
	const char *cert = args_get(args, "signing-certificate");
	const char *key = args_get(args, "private-key");
	struct enclave_opts o = {0};
	struct image_notes notes = {0};
	struct cli_progress cp;
	struct eif_signer *signer = NULL;
	char archive[4200] = "";
	uint64_t entries_done = 0, entries_total = 0;
	struct eif_pcrs pcrs;
	json_t *out;
	int rc = -1;

	if (!cert != !key) {
		nectl_err_set(err, NECTL_ERR_MISSING_ARG,
			      "Missing mandatory argument. User did not provide the `%s` argument "
			      "(--signing-certificate and --private-key go together).",
			      cert ? "private-key" : "signing-certificate");
		goto out;
	}
	if (enclave_parse(args, &o, archive, sizeof(archive), err) < 0 ||
	    (cert && eif_signer_load(&signer, cert, key, err) < 0))
		goto out;
	o.spec.signer = signer;
	fprintf(stderr, "Start building the Enclave Image...\n");
	cli_progress_init(&cp, "building");
	cp.items_done = o.spec.entries_done = &entries_done;
	cp.items_total = o.spec.entries_total = &entries_total;
	cp.items_name = "files";
	o.spec.progress = &cp.p;
	rc = enclave_image_build(&o.spec, &pcrs, &notes, err);
	cli_progress_done(&cp);
	for (size_t i = 0; i < notes.count; i++)
		fprintf(stderr, "note: %s\n", notes.lines[i]);
	if (rc == 0 && args_has(args, "pcrs-out"))
		rc = enclave_pcrs_out(args_get(args, "pcrs-out"), &pcrs, err);
	if (rc == 0) {
		fprintf(stderr, "Enclave Image successfully created (%llu files in 2 ramdisks).\n",
			(unsigned long long)entries_total);
		out = json_object();
		json_object_set_new(out, "Measurements", cli_measurements_json(&pcrs));
		rc = cli_print_json(out, err);
	}
out:
	enclave_docker_cleanup(archive);
	image_notes_free(&notes);
	eif_signer_free(signer);
	argv_free(o.cmd);
	argv_free(o.entrypoint);
	free(o.custom);
	free(o.cmdline_buf);
	return rc;
}

static const struct opt_spec enclave_opts_spec[] = {
	{"output-file", true, false, NULL},
	{"rootfs", true, false, NULL},
	{"oci-layout", true, false, NULL},
	{"image-archive", true, false, NULL},
	{"docker-uri", true, false, NULL},
	{"docker-dir", true, false, NULL},
	{"arch", true, false, NULL},
	{"cmd", true, false, NULL},
	{"entrypoint", true, false, NULL},
	{"env", true, true, NULL},
	{"kernel", true, false, NULL},
	{"kernel-config", true, false, "kernel_config"},
	{"kernel-version", true, false, NULL},
	{"debian-kernel", false, false, NULL},
	{"modules-dir", true, false, NULL},
	{"blobs", true, false, NULL},
	{"init", true, false, NULL},
	{"cmdline", true, false, NULL},
	{"name", true, false, NULL},
	{"version", true, false, NULL},
	{"metadata", true, false, NULL},
	{"build-time", true, false, NULL},
	{"signing-certificate", true, false, NULL},
	{"private-key", true, false, NULL},
	{"pcrs-out", true, false, NULL},
	{"max-file-data", true, false, NULL},
	{"max-entries", true, false, NULL},
	{0},
};

const struct cli_cmd cli_cmd_build_enclave = {
	.name = "build-enclave",
	.summary = "Build an EIF from a rootfs or container image, without Docker",
	.help =
		"Usage: nectl build-enclave --output-file FILE.eif\n"
		"         (--rootfs DIR|TAR | --oci-layout DIR | --image-archive FILE | --docker-uri URI)\n"
		"         [options]\n"
		"\n"
		"The application:\n"
		"  --rootfs DIR|TAR            a root filesystem: a directory or a tar (gz, zstd, xz)\n"
		"  --oci-layout DIR            an OCI image layout directory\n"
		"  --image-archive FILE        an OCI archive or a `docker save` archive\n"
		"  --docker-uri URI            export URI through a local Docker daemon (nitro-cli's\n"
		"                              option; with --docker-dir DIR, build it first)\n"
		"  --arch x86_64|aarch64       picks the image from multi-arch indexes (default: host)\n"
		"  --cmd \"prog arg...\"         the command: shell-like words or a JSON array\n"
		"  --entrypoint \"prog...\"      with --cmd, the command is entrypoint + cmd\n"
		"  --env KEY=VALUE             repeatable; adds to or replaces the image's Env\n"
		"  --max-file-data SIZE        the most file data the application may hold, sparse\n"
		"                              holes included (default 4G; K, M, G, T suffixes)\n"
		"  --max-entries N             the most entries it may hold (default 250000)\n"
		"  Without --cmd/--entrypoint the image config decides, by nitro-cli's rule:\n"
		"  Cmd if set, else Entrypoint (Entrypoint is not prepended to Cmd).\n"
		"\n"
		"The kernel. Default, as nitro-cli: AWS's blobs when nitro-cli's blob directory\n"
		"exists ($NITRO_CLI_BLOBS, else /usr/share/nitro_enclaves/blobs); otherwise\n"
		"nectl's own Nitro-ready kernel (`nectl kernel build`, once). Either boots on\n"
		"Nitro. A kernel whose .config lacks what Nitro needs (virtio-mmio devices from\n"
		"the command line, vsock) is warned about: it would fail its heartbeat (E36).\n"
		"  --blobs DIR                 nitro-cli's blob directory (bzImage or Image and its\n"
		"                              .config, init, nsm.ko, cmdline)\n"
		"  --debian-kernel             Debian's cloud kernel (`nectl kernel fetch`) and its\n"
		"                              modules; it does not boot on Nitro (no virtio-mmio\n"
		"                              command-line devices): emulation with --machine-acpi\n"
		"  --kernel-version ABI        another cached Debian kernel (implies --debian-kernel)\n"
		"  --kernel FILE --kernel-config FILE --modules-dir DIR  any other kernel; modules\n"
		"                              the guest needs are taken from DIR when present\n"
		"  --init FILE                 another init (default: nectl's, built in)\n"
		"  --cmdline TEXT              kernel command line (default: nitro-cli's)\n"
		"\n"
		"The image: --name, --version, --metadata FILE (JSON, <= 4096 bytes),\n"
		"  --build-time (Unix seconds or RFC 3339; default SOURCE_DATE_EPOCH, else now),\n"
		"  --signing-certificate CERT --private-key KEY, --pcrs-out FILE (the JSON, too).\n"
		"\n"
		"Builds are reproducible: entries sorted, owned by root, mtime 0, inode numbers\n"
		"sequential, so PCR0/1/2 depend only on the files' contents, modes and names,\n"
		"never on when or where the image was built (--build-time only stamps the\n"
		"unmeasured metadata). Device nodes and FIFOs are kept; sockets are dropped with\n"
		"a note; setuid/setgid bits are kept.\n"
		"\n"
		"Example:\n"
		"  nectl kernel build\n"
		"  nectl build-enclave --rootfs rootfs/ --cmd /bin/hello --env GREETING=hi \\\n"
		"      --output-file hello.eif --build-time 1700000000\n",
	.opts = enclave_opts_spec,
	.run = enclave_run,
};
