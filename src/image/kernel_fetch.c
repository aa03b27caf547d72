/* `kernel fetch`: Debian's prebuilt cloud kernel (kernel, config, modules) from
 * <codename>-backports, downloaded with nectl's private apt configuration
 * (kernel_apt.c) and unpacked into the cache, never installed on the host. */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/kernel_apt.h"
#include "nectl/kernel.h"

/* $HOME, else the account's home: never a shared directory such as /tmp,
 * where another user could have planted the cache first. */
static const char *kernel_home(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && *home == '/')
		return home;
	pw = getpwuid(geteuid());
	return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/nonexistent";
}

void kernel_cache_dir(char *out, size_t len)
{
	const char *env = getenv("NECTL_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");

	if (env && *env)
		snprintf(out, len, "%s/kernels", env);
	else if (geteuid() == 0)
		snprintf(out, len, "/var/cache/nectl/kernels");
	else if (xdg && *xdg)
		snprintf(out, len, "%s/nectl/kernels", xdg);
	else
		snprintf(out, len, "%s/.cache/nectl/kernels", kernel_home());
}

static void kernel_paths(struct kernel_info *k, const char *root)
{
	snprintf(k->kernel, sizeof(k->kernel), "%s/boot/vmlinuz-%s", root, k->version);
	snprintf(k->config, sizeof(k->config), "%s/boot/config-%s", root, k->version);
	snprintf(k->modules_dir, sizeof(k->modules_dir), "%s/lib/modules/%s", root, k->version);
}

/* Debian's kernel ABIs ("6.12.95+deb12", "6.1.0-28"): a digit, then digits,
 * letters, '.', '+', '~' and '-', no "..". Anything else would become a path
 * (`../../x`) or an apt argument (`-o`, spaces) once it names the package. */
static int kernel_abi_check(const char *abi, struct nectl_err *err)
{
	char shown[KERNEL_ABI_MAX + 1];
	size_t n = strnlen(abi, KERNEL_ABI_MAX + 1);
	bool ok =
	    n > 0 && n <= KERNEL_ABI_MAX && isdigit((unsigned char)abi[0]) && !strstr(abi, "..");

	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)abi[i]) || strchr(".+~-", abi[i]);
	if (ok)
		return 0;
	/* Shown on one line whatever it holds. */
	for (size_t i = 0; i < n && i < KERNEL_ABI_MAX; i++)
		shown[i] = isprint((unsigned char)abi[i]) ? abi[i] : '?';
	shown[n < KERNEL_ABI_MAX ? n : KERNEL_ABI_MAX] = '\0';
	return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
			     "kernel ABI `%s` is not valid: a digit, then digits, letters, '.', "
			     "'+', '~' or '-', at most %d bytes (like " NECTL_KERNEL_DEFAULT ")",
			     shown, KERNEL_ABI_MAX);
}

static void kernel_names(struct kernel_info *k, enum eif_arch arch, const char *abi)
{
	memset(k, 0, sizeof(*k));
	k->arch = arch;
	snprintf(k->version, sizeof(k->version), "%s-cloud-%s", abi ? abi : NECTL_KERNEL_DEFAULT,
		 kernel_deb_arch(arch));
	snprintf(k->package, sizeof(k->package), "linux-image-%s", k->version);
}

int kernel_find(enum eif_arch arch, const char *abi, struct kernel_info *info,
		struct nectl_err *err)
{
	char cache[4096], root[4096 + 160];
	struct stat st;

	if (abi && kernel_abi_check(abi, err) < 0) {
		kernel_names(info, arch, NULL);
		return -1;
	}
	kernel_names(info, arch, abi);
	kernel_cache_dir(cache, sizeof(cache));
	snprintf(root, sizeof(root), "%s/%s", cache, info->version);
	kernel_paths(info, root);
	if (stat(info->kernel, &st) < 0 || stat(info->modules_dir, &st) < 0)
		return nectl_err_set(
		    err, NECTL_ERR_FILE,
		    "no cached kernel %s in %s (run `nectl kernel fetch --arch %s`)", info->version,
		    cache, eif_arch_name(arch));
	return 0;
}

/* dpkg-deb into a temporary directory beside the final one, renamed into place:
 * an interrupted fetch leaves no half-unpacked kernel behind. */
static int kernel_unpack(const struct kernel_apt *a, const char *deb, const char *root,
			 struct nectl_err *err)
{
	char tmp[4300];
	char *argv[] = {"dpkg-deb", "-x", (char *)deb, tmp, NULL};

	snprintf(tmp, sizeof(tmp), "%s.unpack.XXXXXX", root);
	/* mkdtemp's 0700 would hide the kernel from other users once renamed. */
	if (!mkdtemp(tmp) || chmod(tmp, 0755) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", tmp);
	if (kernel_run(argv, NULL, a->log) != 0) {
		kernel_rmtree(tmp, NULL);
		return nectl_err_set(err, NECTL_ERR_FILE, "dpkg-deb -x %s failed; see %s", deb,
				     a->log);
	}
	if (rename(tmp, root) < 0) {
		int e = errno;

		kernel_rmtree(tmp, NULL);
		return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s: cannot move into place", root);
	}
	return 0;
}

static void kernel_record_version(const char *deb, const char *root, struct kernel_info *k)
{
	const char *base = strrchr(deb, '/');
	const char *v = base ? strchr(base, '_') : NULL;
	char path[4200];
	FILE *fp;

	if (!v)
		return;
	snprintf(k->package_version, sizeof(k->package_version), "%.*s", (int)strcspn(v + 1, "_"),
		 v + 1);
	snprintf(path, sizeof(path), "%s/package-version", root);
	fp = fopen(path, "we");
	if (fp) {
		fprintf(fp, "%s %s\n", k->package, k->package_version);
		fclose(fp);
	}
}

/* Download and unpack, with the apt lock held. */
static int kernel_fetch_locked(struct kernel_apt *a, const char *cache, struct kernel_info *k,
			       struct nectl_err *err)
{
	const char *arch = kernel_deb_arch(k->arch);
	char root[4300], deb[4600], pkg[256];

	snprintf(pkg, sizeof(pkg), "%s:%s", k->package, arch);
	snprintf(root, sizeof(root), "%s/%s", cache, k->version);
	if (kernel_apt_get(a, "update", NULL, err) < 0 ||
	    kernel_apt_get(a, "download", pkg, err) < 0 ||
	    kernel_apt_find_deb(a, k->package, arch, deb, sizeof(deb), err) < 0 ||
	    kernel_unpack(a, deb, root, err) < 0)
		return -1;
	kernel_record_version(deb, root, k);
	unlink(deb);
	return 0;
}

int kernel_fetch(enum eif_arch arch, const char *abi, struct kernel_info *info,
		 struct nectl_err *err)
{
	char cache[4096];
	struct kernel_apt a;
	int rc = 0;

	if (abi && kernel_abi_check(abi, err) < 0)
		return -1;
	if (kernel_find(arch, abi, info, NULL) == 0)
		return 0;
	kernel_cache_dir(cache, sizeof(cache));
	if (kernel_apt_open(&a, cache, err) < 0)
		return -1;
	/* Another nectl may have fetched it while we waited for the lock. */
	if (kernel_find(arch, abi, info, NULL) < 0)
		rc = kernel_fetch_locked(&a, cache, info, err);
	kernel_apt_close(&a);
	return rc < 0 ? -1 : kernel_find(arch, abi, info, err);
}
