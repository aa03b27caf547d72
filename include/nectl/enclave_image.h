/* build-enclave's library half: a root filesystem or container image, a
 * kernel and an init become an EIF with nitro-cli's ramdisk layout
 * (reference/aws-nitro-ecosystem.md §3.5):
 *   ramdisk 0: dev/, init, and the kernel modules the guest needs
 *              (nectl/modules/NN-name.ko), or nsm.ko with nitro-cli's blobs;
 *   ramdisk 1: rootfs/..., cmd, env. */
#ifndef NECTL_ENCLAVE_IMAGE_H
#define NECTL_ENCLAVE_IMAGE_H

#include "nectl/eif.h"
#include "nectl/image.h"

/* The modules nectl's init loads when the kernel has them as modules. */
extern const char *const enclave_image_modules[];
extern const size_t enclave_image_nmodules;

struct enclave_image_spec {
	enum eif_arch arch;
	/* The application: exactly one source. */
	const char *rootfs; /* a directory or a tar archive */
	const char *image;  /* an OCI layout, OCI archive or docker-save archive */
	struct image_limits limits; /* what the source may hold; zeros: the defaults */
	/* Overrides (NULL-terminated argv arrays; NULL when not given). */
	char *const *cmd;
	char *const *entrypoint;
	char *const *env; /* KEY=VALUE, added to or replacing the image's */
	/* The kernel side. */
	const char *kernel;
	const char *kernel_config; /* NULL: OS and version "Unknown" */
	const char *modules_dir;   /* NULL: the kernel has what it needs built in */
	const char *nsm_ko;	   /* nitro-cli blob layout: nsm.ko at the root */
	const char *init_path;	   /* NULL: init_data */
	const void *init_data;
	size_t init_len;
	const char *cmdline;
	/* The image. */
	const char *name;
	const char *version;
	const char *custom_metadata; /* JSON text or NULL */
	int64_t build_time;
	const struct eif_signer *signer;
	const char *output;
	const struct eif_progress *progress;
	/* Filled in as the ramdisks are written, for progress displays. */
	uint64_t *entries_done;
	uint64_t *entries_total;
};

/* The cmd nectl writes: --cmd and --entrypoint overrides first (entrypoint +
 * cmd when both are given), otherwise nitro-cli's rule on the image config:
 * Cmd if set, else Entrypoint. Returns a NULL-terminated array owned by the
 * caller (free each string and the array), or NULL with err set. */
char **enclave_image_cmd(char *const *cmd, char *const *entrypoint, const struct image_config *cfg,
			 struct nectl_err *err);

int enclave_image_build(const struct enclave_image_spec *spec, struct eif_pcrs *pcrs,
			struct image_notes *notes, struct nectl_err *err);

#endif
