/* Internal to src/image: the apt plumbing that `kernel fetch` (Debian's cloud
 * kernel) and `kernel build` (Debian's kernel source) share, so that both
 * download through one private apt configuration under nectl's cache. */
#ifndef NECTL_IMAGE_KERNEL_APT_H
#define NECTL_IMAGE_KERNEL_APT_H

#include <stddef.h>

#include "nectl/eif.h"
#include "nectl/err.h"

#define KERNEL_APT_NOPTS 7
#define KERNEL_ABI_MAX	 64 /* longest kernel ABI accepted ("6.12.95+deb12") */

struct kernel_apt {
	char dir[4096];
	char dl[4096 + 16]; /* where `apt-get download` writes: <dir>/download */
	char log[4096 + 16];
	char opts[KERNEL_APT_NOPTS][4200];
	int lock_fd;
};

/* "amd64" or "arm64": Debian's name for arch. */
const char *kernel_deb_arch(enum eif_arch arch);

/* mkdir -p. */
int kernel_mkdirs(const char *path, struct nectl_err *err);

/* Runs argv (looked up in PATH) in cwd (NULL: ours) with stdin from /dev/null
 * and stdout and stderr appended to log; returns its exit status, 128 when a
 * signal ended it, -1 when it could not be started or waited for. */
int kernel_run(char *const argv[], const char *cwd, const char *log);

/* Removes a directory tree without following symlinks or crossing mounts. */
int kernel_rmtree(const char *path, struct nectl_err *err);

/* The private apt configuration under cache (<cache>/apt, log <cache>/apt.log),
 * pointing at <codename>-backports of the machine's own Debian archive, and an
 * exclusive lock on it: two nectl processes never run apt on it at once. */
int kernel_apt_open(struct kernel_apt *a, const char *cache, struct nectl_err *err);
void kernel_apt_close(struct kernel_apt *a);

/* apt-get VERB [ARG] with the private configuration, run in the download
 * directory (where `download` leaves its .deb). */
int kernel_apt_get(struct kernel_apt *a, const char *verb, const char *arg, struct nectl_err *err);

/* The <package>_*_<arch>.deb that `apt-get download` left in the download
 * directory. */
int kernel_apt_find_deb(const struct kernel_apt *a, const char *package, const char *arch,
			char *out, size_t len, struct nectl_err *err);

#endif
