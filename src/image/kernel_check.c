/* Nitro-readiness of an enclave kernel, from its .config: the options without
 * which the enclave cannot find the devices the Nitro hypervisor announces on
 * its command line, and where to find the .config of a kernel already inside
 * an EIF (nectl's cache and nitro-cli's blobs, matched byte for byte). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "nectl/enclave_image.h"
#include "nectl/kernel.h"
#include "nectl/kernel_check.h"
#include "util/fileio.h"

#define CONFIG_MAX	 (1u << 20)
#define ARCH_X86	 (1u << EIF_ARCH_X86_64)
#define ARCH_ARM	 (1u << EIF_ARCH_AARCH64)
#define ARCH_ALL	 (ARCH_X86 | ARCH_ARM)
#define CACHE_MAX_DIR	 256  /* entries looked at in the kernel cache */
#define SCAN_MAX_ENTRIES 4096 /* a first ramdisk holds init, dev/ and a few modules */

enum need {
	NEED_BUILTIN, /* =y */
	NEED_DRIVER,  /* =y, or =m when init loads nectl's module set */
	NEED_NSM,     /* =y, =m with nectl's modules, or AWS's nsm.ko */
};

struct rule {
	const char *name;  /* without CONFIG_ */
	const char *needs; /* only checked when this one is set (NULL: always) */
	unsigned arches;
	enum need need;
	enum kernel_check_severity severity;
	const char *why;
};

static const struct rule rules[] = {
    {"BLK_DEV_INITRD", NULL, ARCH_ALL, NEED_BUILTIN, KERNEL_CHECK_FATAL,
     "the EIF's ramdisks are the enclave's initramfs: there is no init to run"},
    {"VIRTIO_MMIO", NULL, ARCH_ALL, NEED_DRIVER, KERNEL_CHECK_FATAL,
     "the Nitro hypervisor's vsock and NSM are virtio-mmio devices: no vsock, so the boot "
     "heartbeat fails (E36)"},
    {"VIRTIO_MMIO_CMDLINE_DEVICES", "VIRTIO_MMIO", ARCH_ALL, NEED_BUILTIN, KERNEL_CHECK_FATAL,
     "the Nitro hypervisor announces its devices only on the kernel command line "
     "(virtio_mmio.device=4K@0xd0000000:5): the kernel finds no vsock, so the boot heartbeat "
     "fails (E36)"},
    {"VSOCKETS", NULL, ARCH_ALL, NEED_DRIVER, KERNEL_CHECK_FATAL,
     "the boot heartbeat and all traffic with the parent go over vsock (E36)"},
    {"VIRTIO_VSOCKETS", "VSOCKETS", ARCH_ALL, NEED_DRIVER, KERNEL_CHECK_FATAL,
     "vsock's virtio transport drives the Nitro vsock device (E36)"},
    {"NSM", NULL, ARCH_ALL, NEED_NSM, KERNEL_CHECK_DEGRADED,
     "no /dev/nsm: no attestation documents, PCR extension or NSM randomness"},
    {"X86_MPPARSE", NULL, ARCH_X86, NEED_BUILTIN, KERNEL_CHECK_DEGRADED,
     "without ACPI tables the kernel finds CPUs and the I/O APIC only in the MP table: it "
     "runs on one CPU"},
};

/* 'y', 'm', or 0 for "is not set", absent, or any other value. */
static char kconfig_value(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *line = text; line && *line;) {
		const char *next = strchr(line, '\n');

		if (strncmp(line, "CONFIG_", 7) == 0 && strncmp(line + 7, name, n) == 0 &&
		    line[7 + n] == '=') {
			char v = line[8 + n];
			char end = line[9 + n];

			return (v == 'y' || v == 'm') && (end == '\n' || end == '\0' || end == '\r')
				   ? v
				   : 0;
		}
		line = next ? next + 1 : NULL;
	}
	return 0;
}

static bool rule_module_ok(const struct rule *r, const struct kernel_check_image *img)
{
	if (r->need == NEED_DRIVER)
		return img->modules_loaded;
	if (r->need == NEED_NSM)
		return img->modules_loaded || img->nsm_module;
	return false;
}

static void check_add(struct kernel_check *out, const struct rule *r, char value)
{
	struct kernel_check_problem *p;

	if (out->n >= KERNEL_CHECK_MAX)
		return;
	p = &out->p[out->n++];
	p->severity = r->severity;
	snprintf(p->option, sizeof(p->option), "CONFIG_%s", r->name);
	if (value == 'm')
		snprintf(p->text, sizeof(p->text),
			 "CONFIG_%s=m, and this image's init does not load it: %s", r->name,
			 r->why);
	else
		snprintf(p->text, sizeof(p->text), "CONFIG_%s is not set: %s", r->name, r->why);
	if (r->severity == KERNEL_CHECK_FATAL)
		out->fatal = true;
}

void kernel_check_config_text(const char *text, enum eif_arch arch,
			      const struct kernel_check_image *img, struct kernel_check *out)
{
	static const struct kernel_check_image none;

	memset(out, 0, sizeof(*out));
	if (!img)
		img = &none;
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct rule *r = &rules[i];
		char v;

		if (!(r->arches & (1u << arch)) || (r->needs && !kconfig_value(text, r->needs)))
			continue;
		v = kconfig_value(text, r->name);
		if (v == 'y' || (v == 'm' && rule_module_ok(r, img)))
			continue;
		check_add(out, r, v);
	}
}

int kernel_check_config(const char *path, enum eif_arch arch, const struct kernel_check_image *img,
			struct kernel_check *out, struct nectl_err *err)
{
	char *text;

	if (file_read_all(path, CONFIG_MAX, &text, NULL, NECTL_ERR_FILE, err) < 0)
		return -1;
	kernel_check_config_text(text, arch, img, out);
	free(text);
	return 0;
}

const char *kernel_blobs_dir(void)
{
	const char *env = getenv("NITRO_CLI_BLOBS");

	return env && *env ? env : "/usr/share/nitro_enclaves/blobs";
}

/* Whether the file at path holds exactly the len bytes at off in fd. */
static bool same_bytes(int fd, uint64_t off, uint64_t len, const char *path)
{
	enum { CHUNK = 65536 };
	uint8_t *a = malloc(2 * CHUNK), *b;
	struct stat st;
	bool same = false;
	int k = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (k < 0 || !a) {
		free(a);
		if (k >= 0)
			close(k);
		return false;
	}
	if (fstat(k, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len) {
		uint64_t done = 0;

		b = a + CHUNK;
		while (done < len) {
			size_t want = len - done < CHUNK ? (size_t)(len - done) : CHUNK;

			if (pread(fd, a, want, (off_t)(off + done)) != (ssize_t)want ||
			    pread(k, b, want, (off_t)done) != (ssize_t)want || memcmp(a, b, want))
				break;
			done += want;
		}
		same = done == len;
	}
	close(k);
	free(a);
	return same;
}

static bool exists(const char *path)
{
	return access(path, R_OK) == 0;
}

/* A cache entry holds either nectl's build (bzImage|Image + config) or a
 * Debian package's boot/ (vmlinuz-V + config-V). */
static int match_entry(int fd, uint64_t off, uint64_t len, enum eif_arch arch, const char *dir,
		       const char *name, char *config, size_t config_len)
{
	const char *image = arch == EIF_ARCH_AARCH64 ? "Image" : "bzImage";
	char k[4400], c[4400];

	snprintf(k, sizeof(k), "%s/%s/%s", dir, name, image);
	snprintf(c, sizeof(c), "%s/%s/config", dir, name);
	if (!exists(k) || !exists(c)) {
		snprintf(k, sizeof(k), "%s/%s/boot/vmlinuz-%s", dir, name, name);
		snprintf(c, sizeof(c), "%s/%s/boot/config-%s", dir, name, name);
	}
	if (!exists(c) || !same_bytes(fd, off, len, k))
		return 0;
	snprintf(config, config_len, "%s", c);
	return 1;
}

int kernel_check_find_config(int fd, uint64_t off, uint64_t len, enum eif_arch arch, char *config,
			     size_t config_len)
{
	const char *image = arch == EIF_ARCH_AARCH64 ? "Image" : "bzImage";
	char cache[4096], k[4200], c[4200];
	struct dirent *e;
	unsigned seen = 0;
	DIR *d;
	int found = 0;

	snprintf(k, sizeof(k), "%s/%s", kernel_blobs_dir(), image);
	snprintf(c, sizeof(c), "%s.config", k);
	if (exists(c) && same_bytes(fd, off, len, k)) {
		snprintf(config, config_len, "%s", c);
		return 1;
	}
	kernel_cache_dir(cache, sizeof(cache));
	d = opendir(cache);
	while (d && !found && seen++ < CACHE_MAX_DIR && (e = readdir(d)))
		if (e->d_name[0] != '.')
			found =
			    match_entry(fd, off, len, arch, cache, e->d_name, config, config_len);
	if (d)
		closedir(d);
	return found;
}

/* ---- what an EIF's first ramdisk brings (nectl's modules, AWS's nsm.ko) ---- */

struct scan_src {
	int fd;
	uint64_t off, len, pos;
	uint8_t buf[65536];
};

static la_ssize_t scan_read(struct archive *a, void *ctx, const void **out)
{
	struct scan_src *s = ctx;
	size_t want = sizeof(s->buf);
	ssize_t n;

	(void)a;
	if (s->pos >= s->len)
		return 0;
	if (s->len - s->pos < want)
		want = (size_t)(s->len - s->pos);
	n = pread(s->fd, s->buf, want, (off_t)(s->off + s->pos));
	if (n <= 0)
		return n < 0 ? -1 : 0;
	s->pos += (uint64_t)n;
	*out = s->buf;
	return n;
}

static void scan_name(const char *name, struct kernel_check_image *img)
{
	size_t wanted = 0;

	while (name[0] == '.' && name[1] == '/')
		name += 2;
	if (strcmp(name, "nsm.ko") == 0)
		img->nsm_module = true;
	if (strncmp(name, "nectl/modules/", 14) != 0)
		return;
	for (size_t i = 0; i < enclave_image_nmodules; i++) {
		const char *dash = strchr(name + 14, '-');
		size_t n = strlen(enclave_image_modules[i]);

		if (dash && strncmp(dash + 1, enclave_image_modules[i], n) == 0 &&
		    strcmp(dash + 1 + n, ".ko") == 0)
			wanted++;
	}
	img->modules_loaded |= wanted > 0;
}

int kernel_check_scan_ramdisk(int fd, uint64_t off, uint64_t len, struct kernel_check_image *img)
{
	struct scan_src *s = calloc(1, sizeof(*s));
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	unsigned entries = 0;
	int rc = -1;

	memset(img, 0, sizeof(*img));
	if (!s || !a)
		goto out;
	*s = (struct scan_src){.fd = fd, .off = off, .len = len};
	archive_read_support_format_cpio(a);
	if (archive_read_open(a, s, NULL, scan_read, NULL) != ARCHIVE_OK)
		goto out;
	while (entries++ < SCAN_MAX_ENTRIES && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);

		if (name)
			scan_name(name, img);
	}
	rc = 0;
out:
	if (a)
		archive_read_free(a);
	free(s);
	return rc;
}

/* ---- an EIF's kernel ---- */

static const struct eif_section *eif_first(const struct eif_image *img, unsigned type)
{
	for (unsigned i = 0; i < img->num_sections; i++)
		if (img->sections[i].type == type)
			return &img->sections[i];
	return NULL;
}

int kernel_check_eif(const char *path, const struct eif_image *img, struct kernel_check_eif *out,
		     struct nectl_err *err)
{
	const struct eif_section *k = eif_first(img, EIF_SECTION_KERNEL);
	const struct eif_section *r0 = eif_first(img, EIF_SECTION_RAMDISK);
	uint8_t head[65536];
	ssize_t n;
	int fd, rc = -1;

	memset(out, 0, sizeof(*out));
	if (!k)
		return nectl_err_set(err, NECTL_ERR_EIF, "%s: no kernel section", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", path);
	n = pread(fd, head, k->size < sizeof(head) ? (size_t)k->size : sizeof(head),
		  (off_t)(k->offset + EIF_SECTION_HEADER_SIZE));
	if (n < 0) {
		nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: read failed", path);
		goto out;
	}
	eif_kernel_release(head, (size_t)n, out->release, sizeof(out->release));
	if (r0)
		kernel_check_scan_ramdisk(fd, r0->offset + EIF_SECTION_HEADER_SIZE, r0->size,
					  &out->image);
	out->known = kernel_check_find_config(fd, k->offset + EIF_SECTION_HEADER_SIZE, k->size,
					      img->arch, out->config, sizeof(out->config)) == 1;
	rc = 0;
	if (out->known &&
	    kernel_check_config(out->config, img->arch, &out->image, &out->check, err) < 0)
		rc = -1;
out:
	close(fd);
	return rc;
}
