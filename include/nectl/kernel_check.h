/* Is an enclave kernel Nitro-ready? The Nitro hypervisor announces its
 * virtio-mmio devices (vsock, NSM) only on the kernel command line and gives
 * CPUs in an MP table, so a kernel that cannot take devices from the cmdline
 * never reaches its parent: the boot heartbeat fails (E36) on Nitro and in
 * nectl's emulator alike. These checks read a kernel's .config and say what
 * is missing and what it costs, before anyone deploys the image. */
#ifndef NECTL_KERNEL_CHECK_H
#define NECTL_KERNEL_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nectl/eif.h"
#include "nectl/err.h"

#define KERNEL_CHECK_MAX 16

enum kernel_check_severity {
	KERNEL_CHECK_FATAL,    /* the enclave cannot boot or reach its parent */
	KERNEL_CHECK_DEGRADED, /* it boots, without something enclaves rely on */
};

struct kernel_check_problem {
	enum kernel_check_severity severity;
	char option[64]; /* "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES" */
	char text[320];	 /* what is wrong and what it costs, one line */
};

struct kernel_check {
	struct kernel_check_problem p[KERNEL_CHECK_MAX];
	unsigned n;
	bool fatal; /* some problem is KERNEL_CHECK_FATAL */
};

/* What else the image brings that can stand in for a built-in driver. */
struct kernel_check_image {
	bool modules_loaded; /* init loads the virtio-mmio, vsock and NSM modules */
	bool nsm_module;     /* nsm.ko is in the image and init loads it (AWS's blobs) */
};

/* Reads the .config at path (at most 1 MiB) and lists what the kernel lacks
 * for Nitro. NECTL_ERR_FILE when the file cannot be read. */
int kernel_check_config(const char *path, enum eif_arch arch, const struct kernel_check_image *img,
			struct kernel_check *out, struct nectl_err *err);

/* The same on .config text already in memory (NUL-terminated). */
void kernel_check_config_text(const char *text, enum eif_arch arch,
			      const struct kernel_check_image *img, struct kernel_check *out);

/* Looks for a kernel with exactly the len bytes at off in fd among the kernels
 * nectl knows the configuration of: the kernel cache (nectl's builds and
 * Debian's) and nitro-cli's blob directory. On a match, copies the path of its
 * .config into config and returns 1; 0 when none matches. */
int kernel_check_find_config(int fd, uint64_t off, uint64_t len, enum eif_arch arch, char *config,
			     size_t config_len);

/* What the cpio ramdisk of len bytes at off in fd brings: nectl's module set
 * (nectl/modules/NN-name.ko, which nectl's init loads) or AWS's nsm.ko.
 * Reads entry names only, at most a few thousand; -1 when unreadable. */
int kernel_check_scan_ramdisk(int fd, uint64_t off, uint64_t len, struct kernel_check_image *img);

struct kernel_check_eif {
	char release[128]; /* from an x86 bzImage's header; "" when none */
	bool known;	   /* the kernel matches one whose .config nectl has */
	char config[4096];
	struct kernel_check_image image; /* what its first ramdisk brings */
	struct kernel_check check;	 /* valid when known */
};

/* An EIF's kernel (img as eif_read_file read path): its release, and when it
 * is a kernel nectl knows (kernel_check_find_config), its Nitro-readiness
 * with what the image's first ramdisk brings. */
int kernel_check_eif(const char *path, const struct eif_image *img, struct kernel_check_eif *out,
		     struct nectl_err *err);

/* nitro-cli's blob directory: $NITRO_CLI_BLOBS, else /usr/share/nitro_enclaves/blobs. */
const char *kernel_blobs_dir(void);

#endif
