/* Internal to src/image: the steps of `kernel build` that touch the outside
 * world (the source tarball, make, the tools it needs), used by kernel_build.c. */
#ifndef NECTL_IMAGE_KERNEL_BUILD_H
#define NECTL_IMAGE_KERNEL_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/eif.h"
#include "nectl/err.h"
#include "nectl/kernel.h"

/* Reports one phase's progress through the caller's callback, if any. */
void kernel_build_report(const struct kernel_build_opts *o, const char *phase, uint64_t done,
			 uint64_t total);

/* NECTL_ERR_BUILD naming every missing tool and the Debian packages that provide
 * them, checked before anything is downloaded. */
int kernel_build_check_tools(enum eif_arch arch, struct nectl_err *err);

/* <cache>/<package>_<version>.tar.xz: where the source tarball is kept. */
void kernel_source_path(const char *cache, char *out, size_t len);

/* Makes sure the source tarball is in the cache: downloads the pinned
 * linux-source .deb with apt (verified by apt) and keeps only its tarball. */
int kernel_source_fetch(const char *cache, const struct kernel_build_opts *o,
			struct nectl_err *err);

/* An entry name of the source tarball that may be unpacked: below the
 * package's top directory, without a ".." component, of bounded length. */
bool kernel_source_name_ok(const char *name);

/* Unpacks the tarball into dir (every entry under the package's top directory,
 * no climbing out, sizes capped); the tree's path in src. */
int kernel_source_unpack(const char *tarball, const char *dir, const struct kernel_build_opts *o,
			 char *src, size_t len, struct nectl_err *err);

/* One make run in a kernel tree, with nothing inherited from our environment
 * but PATH, and kbuild's reproducibility settings pinned. */
struct kernel_make {
	const char *src;
	int log_fd; /* everything make prints is appended here (capped) */
	const struct kernel_build_opts *o;
	const char *phase;    /* reported while it runs */
	uint64_t objects;     /* compiled so far, over all runs */
	uint64_t objects_est; /* the expected total, for progress */
	uint64_t log_bytes;
	char last_error[240]; /* the last line that looked like an error */
};

/* make [-jN] ARCH=... [CROSS_COMPILE=...] [extra] target; its exit status (0
 * on success), or -1 with err set when it could not be run at all. */
int kernel_make_run(struct kernel_make *m, const char *extra, const char *target, unsigned jobs,
		    struct nectl_err *err);

#endif
