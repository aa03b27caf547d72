/* Guest kernels for enclaves: Debian's cloud kernel from the backports suite of
 * the machine's own Debian archive, downloaded and verified by apt (never
 * installed on the host), unpacked into a cache. */
#ifndef NECTL_KERNEL_H
#define NECTL_KERNEL_H

#include "nectl/eif.h"
#include "nectl/err.h"

/* The kernel ABI nectl is pinned to (>= 6.8: in-tree NSM driver). */
#define NECTL_KERNEL_DEFAULT "6.12.95+deb12"

struct kernel_info {
	char version[128];	   /* "6.12.95+deb12-cloud-amd64" */
	char package[160];	   /* "linux-image-6.12.95+deb12-cloud-amd64" */
	char package_version[64]; /* "6.12.95-1~bpo12+1" */
	char kernel[4096];	   /* bzImage (x86_64) or Image (aarch64) */
	char config[4096];
	char modules_dir[4096]; /* lib/modules/<version> */
	enum eif_arch arch;
};

/* The cache: $XDG_CACHE_HOME/nectl/kernels, ~/.cache/nectl/kernels, or
 * /var/cache/nectl/kernels as root; overridden by NECTL_CACHE_DIR. */
void kernel_cache_dir(char *out, size_t len);

/* Downloads linux-image-<abi>-cloud-<arch> (abi NULL: the pinned default) with
 * apt-get into the cache and unpacks it; a no-op when already cached. apt's
 * output goes to <cache>/apt.log, named in errors. */
int kernel_fetch(enum eif_arch arch, const char *abi, struct kernel_info *info,
		 struct nectl_err *err);
/* A cached kernel (abi NULL: the pinned default); NECTL_E_FILE when absent. */
int kernel_find(enum eif_arch arch, const char *abi, struct kernel_info *info,
		struct nectl_err *err);

#endif
