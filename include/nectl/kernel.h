/* Guest kernels for enclaves: Debian's cloud kernel from the backports suite of
 * the machine's own Debian archive, downloaded and verified by apt (never
 * installed on the host), unpacked into a cache; and nectl's own enclave
 * kernel, built reproducibly from Debian's kernel source into the same cache. */
#ifndef NECTL_KERNEL_H
#define NECTL_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "nectl/eif.h"
#include "nectl/err.h"

/* The kernel ABI nectl is pinned to (>= 6.8: in-tree NSM driver). */
#define NECTL_KERNEL_DEFAULT "6.12.95+deb12"
/* The source nectl's enclave kernel is built from, pinned so that builds are
 * reproducible, and the date of that version's Debian changelog entry: the
 * build timestamp the kernel carries (KBUILD_BUILD_TIMESTAMP, `date` format). */
#define NECTL_KSRC_PACKAGE "linux-source-6.12"
#define NECTL_KSRC_VERSION "6.12.95-1~bpo12+1"
#define NECTL_KSRC_DATE	   "Sun Jul  5 18:26:27 UTC 2026"

struct kernel_info {
	char version[128];	  /* "6.12.95+deb12-cloud-amd64" */
	char package[160];	  /* "linux-image-6.12.95+deb12-cloud-amd64" */
	char package_version[64]; /* "6.12.95-1~bpo12+1" */
	char kernel[4096];	  /* bzImage (x86_64) or Image (aarch64) */
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
/* A cached kernel (abi NULL: the pinned default); NECTL_ERR_FILE when absent. */
int kernel_find(enum eif_arch arch, const char *abi, struct kernel_info *info,
		struct nectl_err *err);

struct kernel_build_opts {
	enum eif_arch arch;
	unsigned jobs;		/* 0: the online CPUs */
	const char *work_dir;	/* NULL: a temporary directory under the cache */
	const char *output_dir; /* NULL: the cache entry kernel_find_built finds */
	bool force;		/* rebuild even when cached */
	/* Phases "download", "unpack" (bytes), "configure", "compile" (objects,
	 * total an estimate), "link"; total 0 when unknown. May be NULL. */
	void (*progress)(void *ctx, const char *phase, uint64_t done, uint64_t total);
	void *ctx;
};

/* Builds (or finds, unless force) nectl's enclave kernel: NECTL_KSRC_PACKAGE at
 * NECTL_KSRC_VERSION, allnoconfig plus kernel_config_fragment(arch), every
 * option of the fragment checked in the result, everything built in. Fills
 * info: kernel = bzImage/Image path, config = its .config, modules_dir = "",
 * version = the kernel release ("6.12.95-nectl"), package/package_version = the
 * source package. NECTL_ERR_BUILD for missing tools or a failed build (naming the
 * log), NECTL_ERR_FILE for download and file errors. */
int kernel_build(const struct kernel_build_opts *o, struct kernel_info *info,
		 struct nectl_err *err);
/* The cached build for arch with the fragment this nectl ships; NECTL_ERR_FILE
 * naming `nectl kernel build --arch ...` when absent. */
int kernel_find_built(enum eif_arch arch, struct kernel_info *info, struct nectl_err *err);
/* The shipped configuration fragment for arch (NUL-terminated text). */
const char *kernel_config_fragment(enum eif_arch arch);
/* SHA-256 of kernel_config_fragment(arch), 64 hex digits. */
void kernel_config_hash(enum eif_arch arch, char out[65]);
/* SHA-256 of a built kernel image (or any file), 64 hex digits. */
int kernel_file_sha256(const char *path, char out[65], struct nectl_err *err);

#endif
