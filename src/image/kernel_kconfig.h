/* Internal to src/image: the parts of `kernel build` that need no kernel tree
 * (a configuration fragment checked against the .config kconfig produced, the
 * cache entry's name, kbuild's progress lines), kept apart so that unit tests
 * reach them directly. */
#ifndef NECTL_IMAGE_KERNEL_KCONFIG_H
#define NECTL_IMAGE_KERNEL_KCONFIG_H

#include <stddef.h>

#include "nectl/eif.h"
#include "nectl/err.h"

/* Caps on what a fragment may hold. */
#define KCONFIG_FRAGMENT_MAX (64 * 1024)
#define KCONFIG_LINE_MAX     512
#define KCONFIG_CONFIG_MAX   (4 * 1024 * 1024)

/* Fails with NECTL_ERR_SERDE naming the line when the fragment is not made of
 * `CONFIG_NAME=value`, `# CONFIG_NAME is not set`, comments and blank lines, or
 * names an option twice. */
int kconfig_check_fragment(const char *fragment, const char *label, struct nectl_err *err);

/* Every option of the fragment must have taken its value in config (len bytes,
 * a .config): `=value` exactly, `is not set` (or `=n`) as not set or absent.
 * NECTL_ERR_BUILD naming the first option that did not and the others after it;
 * label names the fragment in the message. */
int kconfig_verify(const char *fragment, const char *label, const char *config, size_t len,
		   struct nectl_err *err);

/* "nectl-<source version>-<arch>-<first 12 hex digits of the fragment hash>". */
void kernel_entry_name(enum eif_arch arch, const char *hash_hex, char *out, size_t len);

enum kbuild_line {
	KBUILD_OTHER,
	KBUILD_OBJECT, /* a compiled or assembled object: "  CC      kernel/fork.o" */
	KBUILD_LINK,   /* the final link has begun: "  LD      vmlinux.o" */
};

/* What one line of kbuild's short output (V=0) says about progress. */
enum kbuild_line kbuild_classify(const char *line);

#endif
