/* `kernel build`: nectl's enclave kernel, compiled from Debian's kernel source
 * with the configuration fragment nectl ships, into a cache entry per (arch,
 * source version, fragment hash), so that a nectl with a changed fragment finds
 * or builds its own entry. The source is unpacked into a scratch tree that is
 * removed afterwards; the entry's files appear whole (written aside, renamed),
 * info.json last, which is what marks an entry complete; a lock on the entry's
 * directory keeps two builds of it from running at once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "image/kernel_apt.h"
#include "image/kernel_build.h"
#include "image/kernel_kconfig.h"
#include "util/fileio.h"

#define KBUILD_WORK_PREFIX "nectl-kernel."
#define KBUILD_INFO_MAX	   (64 * 1024)
#define KBUILD_IMAGE_MAX   (256ULL << 20)
#define KBUILD_LOG_MAX	   (128ULL << 20)
#define KBUILD_JOBS_MAX	   256
#define KBUILD_RELEASE_MAX 127
/* What a build compiles (CC, AS, HOSTCC lines), for the progress estimate:
 * counted in builds of the shipped fragments. */
#define KBUILD_OBJECTS_X86_64  1150
#define KBUILD_OBJECTS_AARCH64 1100

struct kbuild {
	const struct kernel_build_opts *o;
	char cache[4096];
	char hash[65];
	char dest[4096];
	char work[4200];
	char src[4400];
	char log[4400];
	char release[KBUILD_RELEASE_MAX + 1];
	char sha[65];
	int lock_fd;
	int work_fd; /* locked while the work tree is in use */
	int log_fd;
	uint64_t objects;
};

static const char *kbuild_image_name(enum eif_arch arch)
{
	return arch == EIF_ARCH_AARCH64 ? "Image" : "bzImage";
}

static const char *kbuild_image_in_tree(enum eif_arch arch)
{
	return arch == EIF_ARCH_AARCH64 ? "arch/arm64/boot/Image" : "arch/x86/boot/bzImage";
}

static const char *kbuild_fragment_label(enum eif_arch arch)
{
	return arch == EIF_ARCH_AARCH64 ? "nitro-aarch64.config" : "nitro-x86_64.config";
}

int kernel_file_sha256(const char *path, char out[65], struct nectl_err *err)
{
	unsigned char buf[65536], md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *fp = fopen(path, "rbe");
	size_t n;
	int ok = ctx && fp && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

	while (ok && (n = fread(buf, 1, sizeof(buf), fp)) > 0)
		ok = EVP_DigestUpdate(ctx, buf, n);
	ok = ok && !ferror(fp) && EVP_DigestFinal_ex(ctx, md, NULL);
	if (fp)
		fclose(fp);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: cannot read to hash it", path);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* ---- a complete entry: info.json ---- */

static const char *kbuild_json_str(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));

	return s ? s : "";
}

/* The entry in dir when it is complete and is the one asked for. */
static int kbuild_load(const char *dir, enum eif_arch arch, const char *hash, struct kernel_info *k,
		       struct nectl_err *err)
{
	char path[4200], *text;
	json_t *j;
	struct stat st;
	int ok;

	snprintf(path, sizeof(path), "%s/info.json", dir);
	if (file_read_all(path, KBUILD_INFO_MAX, &text, NULL, NECTL_ERR_FILE, err) < 0)
		return -1;
	j = json_loads(text, 0, NULL);
	free(text);
	memset(k, 0, sizeof(*k));
	k->arch = arch;
	snprintf(k->version, sizeof(k->version), "%s", kbuild_json_str(j, "Version"));
	snprintf(k->package, sizeof(k->package), "%s", NECTL_KSRC_PACKAGE);
	snprintf(k->package_version, sizeof(k->package_version), "%s", NECTL_KSRC_VERSION);
	snprintf(k->kernel, sizeof(k->kernel), "%s/%s", dir, kbuild_image_name(arch));
	snprintf(k->config, sizeof(k->config), "%s/config", dir);
	ok = j && strcmp(kbuild_json_str(j, "Arch"), eif_arch_name(arch)) == 0 &&
	     strcmp(kbuild_json_str(j, "SourceVersion"), NECTL_KSRC_VERSION) == 0 &&
	     strcmp(kbuild_json_str(j, "ConfigHash"), hash) == 0 && k->version[0] &&
	     stat(k->kernel, &st) == 0 && S_ISREG(st.st_mode) && stat(k->config, &st) == 0;
	json_decref(j);
	if (!ok)
		return nectl_err_set(err, NECTL_ERR_FILE,
				     "%s: not a complete %s kernel build of this nectl", dir,
				     eif_arch_name(arch));
	return 0;
}

static void kbuild_entry_dir(enum eif_arch arch, const char *hash, char *out, size_t len)
{
	char cache[4096], entry[256];

	kernel_cache_dir(cache, sizeof(cache));
	kernel_entry_name(arch, hash, entry, sizeof(entry));
	snprintf(out, len, "%s/%s", cache, entry);
}

int kernel_find_built(enum eif_arch arch, struct kernel_info *info, struct nectl_err *err)
{
	char hash[65], dir[4096 + 300];

	kernel_config_hash(arch, hash);
	kbuild_entry_dir(arch, hash, dir, sizeof(dir));
	if (kbuild_load(dir, arch, hash, info, NULL) == 0)
		return 0;
	return nectl_err_set(err, NECTL_ERR_FILE,
			     "no nectl-built %s kernel in %s (run `nectl kernel build --arch %s`)",
			     eif_arch_name(arch), dir, eif_arch_name(arch));
}

/* ---- publishing files into the entry ---- */

static int kbuild_copy_fd(int fd, struct out_file *f, const char *from, uint64_t max,
			  struct nectl_err *err)
{
	char buf[65536];
	uint64_t total = 0;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot read", from);
		total += (uint64_t)n;
		if (total > max)
			return nectl_err_set(err, NECTL_ERR_FILE, "%s: larger than %llu bytes",
					     from, (unsigned long long)max);
		if (out_file_write(f, buf, (size_t)n, err) < 0)
			return -1;
	}
}

/* Copies rather than renames: the work tree may be on another filesystem. */
static int kbuild_copy(const char *from, const char *to, uint64_t max, struct nectl_err *err)
{
	struct out_file f;
	int fd = open(from, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", from);
	if (out_file_open(&f, to, err) < 0) {
		close(fd);
		return -1;
	}
	rc = kbuild_copy_fd(fd, &f, from, max, err);
	close(fd);
	if (rc == 0)
		rc = out_file_commit(&f, err);
	out_file_abort(&f);
	return rc;
}

static int kbuild_write_info(const struct kbuild *b, struct nectl_err *err)
{
	json_t *j = json_object();
	char path[4200], *text;
	struct out_file f;
	int rc = -1;

	json_object_set_new(j, "Version", json_string(b->release));
	json_object_set_new(j, "Arch", json_string(eif_arch_name(b->o->arch)));
	json_object_set_new(j, "Kernel", json_string(kbuild_image_name(b->o->arch)));
	json_object_set_new(j, "KernelConfig", json_string("config"));
	json_object_set_new(j, "BuildLog", json_string("build.log"));
	json_object_set_new(j, "SourcePackage", json_string(NECTL_KSRC_PACKAGE));
	json_object_set_new(j, "SourceVersion", json_string(NECTL_KSRC_VERSION));
	json_object_set_new(j, "ConfigHash", json_string(b->hash));
	json_object_set_new(j, "Sha256", json_string(b->sha));
	json_object_set_new(j, "Objects", json_integer((json_int_t)b->objects));
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	snprintf(path, sizeof(path), "%s/info.json", b->dest);
	if (!text)
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: out of memory", path);
	if (out_file_open(&f, path, err) == 0) {
		if (out_file_write(&f, text, strlen(text), err) == 0 &&
		    out_file_write(&f, "\n", 1, err) == 0)
			rc = out_file_commit(&f, err);
		out_file_abort(&f);
	}
	free(text);
	return rc;
}

static int kbuild_publish(struct kbuild *b, struct nectl_err *err)
{
	char from[4600], to[4200];

	snprintf(from, sizeof(from), "%s/%s", b->src, kbuild_image_in_tree(b->o->arch));
	snprintf(to, sizeof(to), "%s/%s", b->dest, kbuild_image_name(b->o->arch));
	if (kbuild_copy(from, to, KBUILD_IMAGE_MAX, err) < 0 ||
	    kernel_file_sha256(to, b->sha, err) < 0)
		return -1;
	snprintf(from, sizeof(from), "%s/.config", b->src);
	snprintf(to, sizeof(to), "%s/config", b->dest);
	return kbuild_copy(from, to, KCONFIG_CONFIG_MAX, err);
}

/* ---- the build itself ---- */

/* Work trees of builds that were killed (1.6 GB each) are removed: a tree
 * whose lock nobody holds belongs to no running build. */
static void kbuild_sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;
	char path[4400];

	while (d && (e = readdir(d))) {
		int fd;

		if (strncmp(e->d_name, KBUILD_WORK_PREFIX, strlen(KBUILD_WORK_PREFIX)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
			kernel_rmtree(path, NULL);
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
}

static int kbuild_start(struct kbuild *b, struct nectl_err *err)
{
	const char *base = b->o->work_dir ? b->o->work_dir : b->cache;

	if (kernel_mkdirs(base, err) < 0)
		return -1;
	kbuild_sweep(base);
	if (snprintf(b->work, sizeof(b->work), "%s/" KBUILD_WORK_PREFIX "XXXXXX", base) >=
	    (int)sizeof(b->work) - 64)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "%.200s: work directory path too long", base);
	if (!mkdtemp(b->work)) {
		b->work[0] = '\0';
		return nectl_err_sys(err, NECTL_ERR_FILE, errno,
				     "%s: cannot create a work directory", base);
	}
	b->work_fd = open(b->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->work_fd < 0 || flock(b->work_fd, LOCK_EX | LOCK_NB) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot lock", b->work);
	snprintf(b->log, sizeof(b->log), "%s/build.log", b->work);
	b->log_fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (b->log_fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", b->log);
	dprintf(b->log_fd, "nectl kernel build: %s %s, %s, fragment sha256 %s\n",
		NECTL_KSRC_PACKAGE, NECTL_KSRC_VERSION, eif_arch_name(b->o->arch), b->hash);
	return 0;
}

static int kbuild_write_fragment(const struct kbuild *b, char *path, size_t len,
				 struct nectl_err *err)
{
	const char *text = kernel_config_fragment(b->o->arch);
	struct out_file f;
	int rc;

	snprintf(path, len, "%s/%s", b->work, kbuild_fragment_label(b->o->arch));
	if (out_file_open(&f, path, err) < 0)
		return -1;
	rc = out_file_write(&f, text, strlen(text), err);
	if (rc == 0)
		rc = out_file_commit(&f, err);
	out_file_abort(&f);
	return rc;
}

static int kbuild_make_failed(const struct kbuild *b, const struct kernel_make *m,
			      const char *target, int status, struct nectl_err *err)
{
	return nectl_err_set(err, NECTL_ERR_BUILD,
			     "make %s failed (status %d)%s%.240s; see %s/build.log", target, status,
			     m->last_error[0] ? ": " : "", m->last_error, b->dest);
}

static int kbuild_configure(struct kbuild *b, struct kernel_make *m, struct nectl_err *err)
{
	char fragment[4400], extra[4500], path[4500], *config;
	size_t len;
	int rc;

	if (kbuild_write_fragment(b, fragment, sizeof(fragment), err) < 0)
		return -1;
	snprintf(extra, sizeof(extra), "KCONFIG_ALLCONFIG=%s", fragment);
	m->phase = "configure";
	rc = kernel_make_run(m, extra, "allnoconfig", 0, err);
	if (rc != 0)
		return rc < 0 ? -1 : kbuild_make_failed(b, m, "allnoconfig", rc, err);
	snprintf(path, sizeof(path), "%s/.config", b->src);
	if (file_read_all(path, KCONFIG_CONFIG_MAX, &config, &len, NECTL_ERR_BUILD, err) < 0)
		return -1;
	rc = kconfig_verify(kernel_config_fragment(b->o->arch), kbuild_fragment_label(b->o->arch),
			    config, len, err);
	free(config);
	return rc;
}

static int kbuild_release(struct kbuild *b, struct nectl_err *err)
{
	char path[4500], *text;
	size_t n;

	snprintf(path, sizeof(path), "%s/include/config/kernel.release", b->src);
	if (file_read_all(path, KBUILD_RELEASE_MAX, &text, NULL, NECTL_ERR_BUILD, err) < 0)
		return -1;
	n = strcspn(text, "\n");
	text[n] = '\0';
	snprintf(b->release, sizeof(b->release), "%s", text);
	free(text);
	if (n == 0 || strspn(b->release, "0123456789abcdefghijklmnopqrstuvwxyz.-+_~") != n)
		return nectl_err_set(err, NECTL_ERR_BUILD, "%s: not a kernel release", path);
	return 0;
}

static int kbuild_compile(struct kbuild *b, struct nectl_err *err)
{
	struct kernel_make m = {.src = b->src, .log_fd = b->log_fd, .o = b->o};
	const char *target = kbuild_image_name(b->o->arch);
	unsigned jobs = b->o->jobs ? b->o->jobs : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	int rc;

	m.objects_est =
	    b->o->arch == EIF_ARCH_AARCH64 ? KBUILD_OBJECTS_AARCH64 : KBUILD_OBJECTS_X86_64;
	if (kbuild_configure(b, &m, err) < 0)
		return -1;
	m.phase = "compile";
	rc = kernel_make_run(&m, NULL, target, jobs ? jobs : 1, err);
	b->objects = m.objects;
	if (rc != 0)
		return rc < 0 ? -1 : kbuild_make_failed(b, &m, target, rc, err);
	return kbuild_release(b, err);
}

static int kbuild_steps(struct kbuild *b, struct nectl_err *err)
{
	char tarball[4200], info[4200];

	if (kbuild_start(b, err) < 0)
		return -1;
	/* From here on the entry is incomplete until its new info.json. */
	snprintf(info, sizeof(info), "%s/info.json", b->dest);
	if (unlink(info) < 0 && errno != ENOENT)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot remove", info);
	if (kernel_source_fetch(b->cache, b->o, err) < 0)
		return -1;
	kernel_source_path(b->cache, tarball, sizeof(tarball));
	if (kernel_source_unpack(tarball, b->work, b->o, b->src, sizeof(b->src), err) < 0 ||
	    kbuild_compile(b, err) < 0)
		return -1;
	return kbuild_publish(b, err);
}

/* The log goes into the entry whatever happened, then the tree goes. */
static void kbuild_finish(struct kbuild *b, struct nectl_err *err, int rc)
{
	char log[4200];
	struct nectl_err ignored;

	if (b->log_fd >= 0) {
		if (rc < 0)
			dprintf(b->log_fd, "\nnectl: %s\n", err ? err->msg : "failed");
		close(b->log_fd);
		snprintf(log, sizeof(log), "%s/build.log", b->dest);
		kbuild_copy(b->log, log, KBUILD_LOG_MAX, &ignored);
	}
	if (b->work[0]) {
		kernel_build_report(b->o, "cleanup", 0, 0);
		kernel_rmtree(b->work, &ignored);
	}
	if (b->work_fd >= 0)
		close(b->work_fd);
}

static int kbuild_lock(struct kbuild *b, struct nectl_err *err)
{
	if (kernel_mkdirs(b->dest, err) < 0)
		return -1;
	b->lock_fd = open(b->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->lock_fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", b->dest);
	if (flock(b->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	kernel_build_report(b->o, "wait", 0, 0);
	while (flock(b->lock_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot lock",
					     b->dest);
	return 0;
}

static int kbuild_init(struct kbuild *b, const struct kernel_build_opts *o, struct nectl_err *err)
{
	char cwd[2048];

	memset(b, 0, sizeof(*b));
	b->o = o;
	b->lock_fd = b->work_fd = b->log_fd = -1;
	if (o->arch != EIF_ARCH_X86_64 && o->arch != EIF_ARCH_AARCH64)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "kernel build: unknown architecture");
	if (o->jobs > KBUILD_JOBS_MAX)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "kernel build: more than %d jobs",
				     KBUILD_JOBS_MAX);
	if ((o->output_dir && !o->output_dir[0]) || (o->work_dir && !o->work_dir[0]))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "kernel build: empty output or work directory");
	kernel_cache_dir(b->cache, sizeof(b->cache));
	kernel_config_hash(o->arch, b->hash);
	if (o->output_dir && o->output_dir[0] == '/')
		snprintf(b->dest, sizeof(b->dest), "%s", o->output_dir);
	else if (o->output_dir && getcwd(cwd, sizeof(cwd)))
		snprintf(b->dest, sizeof(b->dest), "%s/%s", cwd, o->output_dir);
	else if (o->output_dir)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno,
				     "cannot tell the current directory");
	else
		kbuild_entry_dir(o->arch, b->hash, b->dest, sizeof(b->dest));
	if (strlen(b->dest) > 3800)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "%.200s...: path too long",
				     b->dest);
	return 0;
}

int kernel_build(const struct kernel_build_opts *o, struct kernel_info *info, struct nectl_err *err)
{
	struct kbuild b;
	int rc;

	if (kbuild_init(&b, o, err) < 0)
		return -1;
	if (!o->force && kbuild_load(b.dest, o->arch, b.hash, info, NULL) == 0)
		return 0;
	if (kernel_build_check_tools(o->arch, err) < 0 || kbuild_lock(&b, err) < 0) {
		if (b.lock_fd >= 0)
			close(b.lock_fd);
		return -1;
	}
	/* Another build of this entry may have finished while we waited. */
	if (!o->force && kbuild_load(b.dest, o->arch, b.hash, info, NULL) == 0) {
		close(b.lock_fd);
		return 0;
	}
	rc = kbuild_steps(&b, err);
	kbuild_finish(&b, err, rc);
	/* info.json last: only now is the entry complete. */
	if (rc == 0)
		rc = kbuild_write_info(&b, err);
	if (rc == 0)
		rc = kbuild_load(b.dest, o->arch, b.hash, info, err);
	close(b.lock_fd);
	return rc < 0 ? -1 : 0;
}
