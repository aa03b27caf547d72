/* The private apt configuration nectl downloads kernels with: its own sources
 * list, lists and cache directories under nectl's cache, pointing at
 * <codename>-backports of the archive the machine already uses, so nothing on
 * the host changes and apt verifies every byte against the archive keyring.
 * The archive address is read from the machine's apt sources at run time. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/kernel_apt.h"

#define KEYRING_DEFAULT "/usr/share/keyrings/debian-archive-keyring.gpg"

const char *kernel_deb_arch(enum eif_arch arch)
{
	return arch == EIF_ARCH_AARCH64 ? "arm64" : "amd64";
}

int kernel_mkdirs(const char *path, struct nectl_err *err)
{
	char buf[4096];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return nectl_err_set(err, NECTL_ERR_FILE, "%.200s...: path too long", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", buf);
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot create", buf);
	return 0;
}

static int kernel_rmtree_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int kernel_rmtree(const char *path, struct nectl_err *err)
{
	if (nftw(path, kernel_rmtree_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 &&
	    errno != ENOENT)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot remove", path);
	return 0;
}

/* The archive URI and keyring of the machine's main Debian suite, from either
 * deb822 .sources files or one-line sources.list entries. */
struct kernel_origin {
	char uri[1024];
	char keyring[1024];
	char codename[64];
};

static void kernel_trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

static bool kernel_suite_listed(const char *suites, const char *codename)
{
	size_t n = strlen(codename);

	for (const char *p = suites; (p = strstr(p, codename)); p += n)
		if ((p == suites || isspace((unsigned char)p[-1])) &&
		    (p[n] == '\0' || isspace((unsigned char)p[n])))
			return true;
	return false;
}

/* deb822 stanzas: URIs:, Suites:, Signed-By: (a path). */
static void kernel_scan_deb822(FILE *fp, struct kernel_origin *o)
{
	char line[2048], uri[1024] = "", suites[512] = "", keyring[1024] = "";

	for (bool more = true; more;) {
		more = fgets(line, sizeof(line), fp) != NULL;
		kernel_trim(line);
		if (!more || line[0] == '\0') {
			if (!o->uri[0] && uri[0] && kernel_suite_listed(suites, o->codename)) {
				snprintf(o->uri, sizeof(o->uri), "%s", uri);
				snprintf(o->keyring, sizeof(o->keyring), "%s",
					 keyring[0] == '/' ? keyring : KEYRING_DEFAULT);
			}
			uri[0] = suites[0] = keyring[0] = '\0';
		} else if (strncmp(line, "URIs:", 5) == 0) {
			sscanf(line + 5, " %1023s", uri);
		} else if (strncmp(line, "Suites:", 7) == 0) {
			snprintf(suites, sizeof(suites), "%s", line + 7);
		} else if (strncmp(line, "Signed-By:", 10) == 0) {
			sscanf(line + 10, " %1023s", keyring);
		}
	}
}

/* "deb [options] URI SUITE COMPONENTS..." */
static void kernel_scan_list(FILE *fp, struct kernel_origin *o)
{
	char line[2048];

	while (!o->uri[0] && fgets(line, sizeof(line), fp)) {
		char *p = line, uri[1024], suite[128];

		if (strncmp(p, "deb ", 4) != 0)
			continue;
		p += 4;
		if (*p == '[') {
			p = strchr(p, ']');
			if (!p)
				continue;
			p++;
		}
		if (sscanf(p, " %1023s %127s", uri, suite) == 2 &&
		    strcmp(suite, o->codename) == 0) {
			snprintf(o->uri, sizeof(o->uri), "%s", uri);
			snprintf(o->keyring, sizeof(o->keyring), "%s", KEYRING_DEFAULT);
		}
	}
}

static int kernel_codename(struct kernel_origin *o, struct nectl_err *err)
{
	FILE *fp = fopen("/etc/os-release", "re");
	char line[256];

	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "VERSION_CODENAME=%63s", o->codename) == 1)
			break;
	if (fp)
		fclose(fp);
	if (!o->codename[0])
		return nectl_err_set(err, NECTL_ERR_FILE,
				     "/etc/os-release: no VERSION_CODENAME (nectl downloads "
				     "kernels with Debian's apt)");
	return 0;
}

static int kernel_origin(struct kernel_origin *o, struct nectl_err *err)
{
	static const char *const files[] = {"/etc/apt/sources.list.d/debian.sources",
					    "/etc/apt/sources.list"};

	memset(o, 0, sizeof(*o));
	if (kernel_codename(o, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && !o->uri[0]; i++) {
		FILE *fp = fopen(files[i], "re");

		if (!fp)
			continue;
		if (strstr(files[i], ".sources"))
			kernel_scan_deb822(fp, o);
		else
			kernel_scan_list(fp, o);
		fclose(fp);
	}
	if (!o->uri[0])
		return nectl_err_set(err, NECTL_ERR_FILE,
				     "no apt source for suite %s in /etc/apt (nectl downloads "
				     "kernels from the machine's Debian archive)",
				     o->codename);
	return 0;
}

int kernel_run(char *const argv[], const char *cwd, const char *log)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (in < 0 || fd < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
		    (cwd && chdir(cwd) < 0))
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (pid > 0 && waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (pid < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* apt run as root drops to its sandbox user, _apt, for the downloads, as long
 * as _apt can write where they land: the partial directories, which apt sets
 * up the same way itself (owned by _apt, 0700), and the directory `apt-get
 * download` writes to. Without an _apt user there is nothing to hand over,
 * and apt says so in the log. */
static int kernel_apt_partial(const char *path, struct nectl_err *err)
{
	struct passwd *pw;

	if (kernel_mkdirs(path, err) < 0)
		return -1;
	if (geteuid() != 0 || !(pw = getpwnam("_apt")))
		return 0;
	if (chown(path, pw->pw_uid, 0) < 0 || chmod(path, 0700) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot hand over to _apt",
				     path);
	return 0;
}

static int kernel_apt_setup(struct kernel_apt *a, const char *cache, struct nectl_err *err)
{
	struct kernel_origin o;
	char path[4200];
	FILE *fp;

	if (kernel_origin(&o, err) < 0)
		return -1;
	snprintf(a->dir, sizeof(a->dir), "%s/apt", cache);
	snprintf(a->log, sizeof(a->log), "%s/apt.log", cache);
	snprintf(path, sizeof(path), "%s/lists/partial", a->dir);
	if (kernel_apt_partial(path, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/archives/partial", a->dir);
	if (kernel_apt_partial(path, err) < 0)
		return -1;
	snprintf(a->dl, sizeof(a->dl), "%s/download", a->dir);
	if (kernel_apt_partial(a->dl, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/sources.list", a->dir);
	fp = fopen(path, "we");
	if (!fp)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot write", path);
	fprintf(fp, "deb [signed-by=%s] %s %s-backports main\n", o.keyring, o.uri, o.codename);
	fclose(fp);
	snprintf(a->opts[0], sizeof(a->opts[0]), "Dir::Etc::SourceList=%s", path);
	snprintf(a->opts[1], sizeof(a->opts[1]), "Dir::Etc::SourceParts=%s/none", a->dir);
	snprintf(a->opts[2], sizeof(a->opts[2]), "Dir::State::Lists=%s/lists", a->dir);
	snprintf(a->opts[3], sizeof(a->opts[3]), "Dir::Cache=%s", a->dir);
	snprintf(a->opts[4], sizeof(a->opts[4]), "Dir::Cache::archives=%s/archives", a->dir);
	snprintf(a->opts[5], sizeof(a->opts[5]), "APT::Architectures::=amd64");
	snprintf(a->opts[6], sizeof(a->opts[6]), "APT::Architectures::=arm64");
	return 0;
}

int kernel_apt_get(struct kernel_apt *a, const char *verb, const char *arg, struct nectl_err *err)
{
	char *argv[24];
	int n = 0, rc;

	argv[n++] = "apt-get";
	argv[n++] = "-q";
	for (int i = 0; i < KERNEL_APT_NOPTS; i++) {
		argv[n++] = "-o";
		argv[n++] = a->opts[i];
	}
	argv[n++] = (char *)verb;
	if (arg)
		argv[n++] = (char *)arg;
	argv[n] = NULL;
	rc = kernel_run(argv, a->dl, a->log);
	if (rc != 0)
		return nectl_err_set(err, NECTL_ERR_FILE,
				     "apt-get %s%s%s failed (status %d); see %s", verb,
				     arg ? " " : "", arg ? arg : "", rc, a->log);
	return 0;
}

int kernel_apt_open(struct kernel_apt *a, const char *cache, struct nectl_err *err)
{
	char lock[4200];

	a->lock_fd = -1;
	if (kernel_mkdirs(cache, err) < 0)
		return -1;
	snprintf(lock, sizeof(lock), "%s/apt.lock", cache);
	a->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (a->lock_fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", lock);
	while (flock(a->lock_fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;

			kernel_apt_close(a);
			return nectl_err_sys(err, NECTL_ERR_FILE, e, "%s: cannot lock", lock);
		}
	}
	if (kernel_apt_setup(a, cache, err) < 0) {
		kernel_apt_close(a);
		return -1;
	}
	return 0;
}

void kernel_apt_close(struct kernel_apt *a)
{
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	a->lock_fd = -1;
}

int kernel_apt_find_deb(const struct kernel_apt *a, const char *package, const char *arch,
			char *out, size_t len, struct nectl_err *err)
{
	char prefix[256], suffix[64];
	struct dirent *e;
	DIR *d = opendir(a->dl);
	int found = -1;

	snprintf(prefix, sizeof(prefix), "%s_", package);
	snprintf(suffix, sizeof(suffix), "_%s.deb", arch);
	while (d && found < 0 && (e = readdir(d))) {
		size_t n = strlen(e->d_name), m = strlen(suffix);

		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && n > m &&
		    strcmp(e->d_name + n - m, suffix) == 0) {
			snprintf(out, len, "%s/%s", a->dl, e->d_name);
			found = 0;
		}
	}
	if (d)
		closedir(d);
	if (found < 0)
		return nectl_err_set(err, NECTL_ERR_FILE, "apt-get download left no %s*%s in %s",
				     prefix, suffix, a->dl);
	return 0;
}
