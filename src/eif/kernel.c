/* Facts read from kernels and their .configs: nitro-cli's OS and version
 * from a config, the architecture from the image's magic, the release from
 * an x86 bzImage's header. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nectl/eif.h"
#include "util/fileio.h"

/* nitro-cli reads the third line ("# Linux/x86_64 6.6.79 Kernel Configuration"),
 * splits it on ' ', '/' and '-', and takes words 1 and 3. */
int eif_kernel_config_info(const char *path, char os[64], char version[64],
			   struct nectl_err *err)
{
	char *text, *line, *save = NULL, *word;
	int idx = 0;

	snprintf(os, 64, "Unknown");
	snprintf(version, 64, "Unknown");
	if (file_read_all(path, 1u << 20, &text, NULL, NECTL_ERR_FILE, err) < 0)
		return -1;
	line = text;
	for (int i = 0; i < 2 && line; i++) {
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	if (line) {
		line[strcspn(line, "\n")] = '\0';
		for (word = strtok_r(line, " /-", &save); word; word = strtok_r(NULL, " /-", &save), idx++) {
			if (idx == 1)
				snprintf(os, 64, "%s", word);
			else if (idx == 3)
				snprintf(version, 64, "%s", word);
		}
	}
	free(text);
	return 0;
}

/* x86 bzImage: "HdrS" at 0x202 (boot protocol header). arm64 Image: "ARM\x64"
 * at 0x38 (Documentation/arch/arm64/booting.rst). */
int eif_kernel_detect_arch(const char *path, enum eif_arch *arch, struct nectl_err *err)
{
	uint8_t buf[0x206];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
	n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: read failed", path);
	if (n >= 0x206 && memcmp(buf + 0x202, "HdrS", 4) == 0) {
		*arch = EIF_ARCH_X86_64;
		return 1;
	}
	if (n >= 0x3c && memcmp(buf + 0x38, "ARM\x64", 4) == 0) {
		*arch = EIF_ARCH_AARCH64;
		return 1;
	}
	return 0;
}

/* The boot protocol's kernel_version (0x20e): a pointer, less 0x200, to the
 * release string in the setup code, which stays uncompressed. */
bool eif_kernel_release(const uint8_t *k, size_t len, char *out, size_t out_len)
{
	size_t setup, at;
	uint16_t ptr;

	out[0] = '\0';
	if (len < 0x210 || memcmp(k + 0x202, "HdrS", 4) != 0 || out_len == 0)
		return false;
	setup = ((size_t)(k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
	ptr = (uint16_t)(k[0x20e] | k[0x20f] << 8);
	at = (size_t)ptr + 0x200;
	if (!ptr || at >= setup || at >= len)
		return false;
	for (size_t i = 0; i + 1 < out_len && at + i < len && at + i < setup; i++) {
		unsigned char c = k[at + i];

		if (c == '\0' || c == ' ')
			break;
		if (c < 0x21 || c > 0x7e)
			return out[0] = '\0', false;
		out[i] = (char)c;
		out[i + 1] = '\0';
	}
	return out[0] != '\0';
}
