/* Nitro-readiness of enclave kernels: the .config rules (what is missing,
 * =m only when the image's init loads it, per-arch rules), the release an x86
 * bzImage names, and an EIF's kernel recognised byte for byte in a kernel
 * cache and nitro-cli's blob directory, with its first ramdisk's modules. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "eifgen.h"
#include "nectl/kernel_check.h"

/* The options as Debian's 6.12 cloud kernel has them. */
#define DEBIAN_CONFIG                                                                              \
	"#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.12.95 Kernel "             \
	"Configuration\n#\nCONFIG_BLK_DEV_INITRD=y\n# CONFIG_X86_MPPARSE is not set\n"             \
	"CONFIG_VSOCKETS=m\nCONFIG_VIRTIO_VSOCKETS=m\nCONFIG_NSM=m\nCONFIG_VIRTIO_MMIO=m\n"        \
	"# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set\n"
/* What nectl's kernel (and AWS's enclave kernels) have. */
#define NITRO_CONFIG                                                                               \
	"CONFIG_BLK_DEV_INITRD=y\nCONFIG_X86_MPPARSE=y\nCONFIG_VSOCKETS=y\n"                       \
	"CONFIG_VIRTIO_VSOCKETS=y\nCONFIG_NSM=y\nCONFIG_VIRTIO_MMIO=y\n"                           \
	"CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n"

static char dir[] = "/tmp/nectl-test-kcheck-XXXXXX";

static bool has(const struct kernel_check *c, const char *option, const char *text)
{
	for (unsigned i = 0; i < c->n; i++)
		if (strcmp(c->p[i].option, option) == 0 && (!text || strstr(c->p[i].text, text)))
			return true;
	return false;
}

static void test_nitro_config_is_ready(void **state)
{
	struct kernel_check c;

	(void)state;
	kernel_check_config_text(NITRO_CONFIG, EIF_ARCH_X86_64, NULL, &c);
	assert_int_equal(c.n, 0);
	assert_false(c.fatal);
}

/* Debian's kernel with nectl's module set in the image: only the cmdline
 * devices and the MP table are missing, and the first is fatal. */
static void test_debian_with_modules(void **state)
{
	const struct kernel_check_image img = {.modules_loaded = true};
	struct kernel_check c;

	(void)state;
	kernel_check_config_text(DEBIAN_CONFIG, EIF_ARCH_X86_64, &img, &c);
	assert_int_equal(c.n, 2);
	assert_true(has(&c, "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES",
			"is not set: the Nitro hypervisor "
			"announces its devices only on "
			"the kernel command line"));
	assert_int_equal(c.p[0].severity, KERNEL_CHECK_FATAL);
	assert_true(has(&c, "CONFIG_X86_MPPARSE", "one CPU"));
	assert_int_equal(c.p[1].severity, KERNEL_CHECK_DEGRADED);
	assert_true(c.fatal);
}

/* Modules nobody loads do not count. */
static void test_modules_not_loaded(void **state)
{
	struct kernel_check c;

	(void)state;
	kernel_check_config_text(DEBIAN_CONFIG, EIF_ARCH_X86_64, NULL, &c);
	assert_int_equal(c.n, 6);
	assert_true(has(&c, "CONFIG_VIRTIO_MMIO", "=m, and this image's init does not load it"));
	assert_true(has(&c, "CONFIG_VSOCKETS", "=m"));
	assert_true(has(&c, "CONFIG_VIRTIO_VSOCKETS", "=m"));
	assert_true(has(&c, "CONFIG_NSM", "no /dev/nsm"));
}

/* AWS's blob init loads nsm.ko and nothing else. */
static void test_nsm_module(void **state)
{
	const char *cfg = "CONFIG_BLK_DEV_INITRD=y\nCONFIG_X86_MPPARSE=y\nCONFIG_VSOCKETS=y\n"
			  "CONFIG_VIRTIO_VSOCKETS=y\nCONFIG_NSM=m\nCONFIG_VIRTIO_MMIO=y\n"
			  "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n";
	const struct kernel_check_image blobs = {.nsm_module = true};
	struct kernel_check c;

	(void)state;
	kernel_check_config_text(cfg, EIF_ARCH_X86_64, &blobs, &c);
	assert_int_equal(c.n, 0);
	kernel_check_config_text(cfg, EIF_ARCH_X86_64, NULL, &c);
	assert_int_equal(c.n, 1);
	assert_true(has(&c, "CONFIG_NSM", NULL));
	assert_false(c.fatal);
}

/* A dependent option is not reported when what it depends on is missing,
 * and the MP table parser is an x86 matter. */
static void test_dependencies_and_arch(void **state)
{
	const char *cfg = "CONFIG_BLK_DEV_INITRD=y\nCONFIG_NSM=y\n";
	struct kernel_check c;

	(void)state;
	kernel_check_config_text(cfg, EIF_ARCH_AARCH64, NULL, &c);
	assert_int_equal(c.n, 2);
	assert_true(has(&c, "CONFIG_VIRTIO_MMIO", "is not set"));
	assert_true(has(&c, "CONFIG_VSOCKETS", "is not set"));
	assert_false(has(&c, "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES", NULL));
	kernel_check_config_text(cfg, EIF_ARCH_X86_64, NULL, &c);
	assert_int_equal(c.n, 3);
	assert_true(has(&c, "CONFIG_X86_MPPARSE", NULL));
}

/* Only =y and =m count, whole lines only; CRLF endings are read. */
static void test_values(void **state)
{
	const char *cfg = "CONFIG_BLK_DEV_INITRD=yes\r\nCONFIG_X86_MPPARSE=y\r\n"
			  "XCONFIG_NSM=y\nCONFIG_NSM_EXTRA=y\nCONFIG_VSOCKETS=\"y\"\n";
	struct kernel_check c;

	(void)state;
	kernel_check_config_text(cfg, EIF_ARCH_X86_64, NULL, &c);
	assert_true(has(&c, "CONFIG_BLK_DEV_INITRD", NULL));
	assert_false(has(&c, "CONFIG_X86_MPPARSE", NULL));
	assert_true(has(&c, "CONFIG_NSM", NULL));
	assert_true(has(&c, "CONFIG_VSOCKETS", NULL));
	kernel_check_config_text("", EIF_ARCH_X86_64, NULL, &c);
	assert_true(c.fatal);
}

static void test_config_file(void **state)
{
	struct kernel_check c;
	struct nectl_err err = {0};
	char path[256];
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/debian.config", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(DEBIAN_CONFIG, fp);
	fclose(fp);
	assert_int_equal(kernel_check_config(path, EIF_ARCH_X86_64, NULL, &c, &err), 0);
	assert_int_equal(c.n, 6);
	snprintf(path, sizeof(path), "%s/absent.config", dir);
	assert_int_equal(kernel_check_config(path, EIF_ARCH_X86_64, NULL, &c, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_non_null(strstr(err.msg, "absent.config"));
}

/* A bzImage-like image: setup_sects 1, "HdrS", kernel_version -> a string. */
static size_t fake_bzimage(uint8_t *k, size_t len, const char *version, uint16_t ptr)
{
	memset(k, 0, len);
	k[0x1f1] = 1;
	memcpy(k + 0x202, "HdrS", 4);
	k[0x20e] = (uint8_t)ptr;
	k[0x20f] = (uint8_t)(ptr >> 8);
	if (version)
		memcpy(k + 0x200 + ptr, version, strlen(version) + 1);
	for (size_t i = 1024; i < len; i++)
		k[i] = (uint8_t)(i * 7);
	return len;
}

static void test_release(void **state)
{
	uint8_t k[4096];
	char out[64];

	(void)state;
	fake_bzimage(k, sizeof(k), "6.12.95-nectl (nectl@nectl) #1 SMP", 0x100);
	assert_true(eif_kernel_release(k, sizeof(k), out, sizeof(out)));
	assert_string_equal(out, "6.12.95-nectl");
	/* Truncated to the buffer, never overrun. */
	assert_true(eif_kernel_release(k, sizeof(k), out, 5));
	assert_string_equal(out, "6.12");
	/* The pointer must stay inside the setup code (2 sectors here). */
	fake_bzimage(k, sizeof(k), NULL, 0x200);
	assert_false(eif_kernel_release(k, sizeof(k), out, sizeof(out)));
	assert_string_equal(out, "");
	fake_bzimage(k, sizeof(k), NULL, 0);
	assert_false(eif_kernel_release(k, sizeof(k), out, sizeof(out)));
	fake_bzimage(k, sizeof(k), "6.1\x01", 0x100);
	assert_false(eif_kernel_release(k, sizeof(k), out, sizeof(out)));
	/* Not a bzImage, or too short for a header. */
	memset(k + 0x202, 0, 4);
	assert_false(eif_kernel_release(k, sizeof(k), out, sizeof(out)));
	assert_false(eif_kernel_release(k, 0x100, out, sizeof(out)));
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A newc archive holding the given names, as regular files of one byte. */
static uint8_t *make_cpio(const char *const *names, size_t n, size_t *len)
{
	static uint8_t buf[65536];
	struct archive *a = archive_write_new();
	size_t used = 0;

	archive_write_set_format_cpio_newc(a);
	assert_int_equal(archive_write_open_memory(a, buf, sizeof(buf), &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, names[i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, 1);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, "x", 1), 1);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	*len = used;
	return buf;
}

static void test_scan_ramdisk(void **state)
{
	const char *nectl[] = {"init", "nectl/modules/00-virtio_mmio.ko", "dev"};
	const char *deps[] = {"init", "nectl/modules/00-virtio.ko"};
	const char *aws[] = {"init", "nsm.ko"};
	struct kernel_check_image img;
	char path[256];
	uint8_t *cpio;
	size_t len;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/r.cpio", dir);
	cpio = make_cpio(nectl, 3, &len);
	write_file(path, cpio, len);
	fd = open(path, O_RDONLY);
	assert_int_equal(kernel_check_scan_ramdisk(fd, 0, len, &img), 0);
	close(fd);
	assert_true(img.modules_loaded);
	assert_false(img.nsm_module);
	cpio = make_cpio(deps, 2, &len);
	write_file(path, cpio, len);
	fd = open(path, O_RDONLY);
	assert_int_equal(kernel_check_scan_ramdisk(fd, 0, len, &img), 0);
	close(fd);
	assert_false(img.modules_loaded); /* a dependency alone is not the set */
	cpio = make_cpio(aws, 2, &len);
	write_file(path, cpio, len);
	fd = open(path, O_RDONLY);
	assert_int_equal(kernel_check_scan_ramdisk(fd, 0, len, &img), 0);
	assert_true(img.nsm_module);
	assert_false(img.modules_loaded);
	/* Garbage is no archive: nothing found, no crash. */
	assert_int_equal(kernel_check_scan_ramdisk(fd, 3, len - 3, &img), -1);
	close(fd);
}

/* An EIF whose kernel is in the cache (nectl's build layout) is checked with
 * that entry's config; a different kernel of the same size is unknown; one in
 * the blob directory is found there. */
static void test_eif_lookup(void **state)
{
	static uint8_t k[8192], other[8192];
	const char *mods[] = {"init", "nectl/modules/03-vsock.ko"};
	char cache[256], entry[300], path[400], eif[300], blobs[300];
	struct kernel_check_eif out;
	struct nectl_err err = {0};
	struct eif_image img;
	struct eifgen g;
	uint8_t *cpio;
	size_t cpio_len;

	(void)state;
	fake_bzimage(k, sizeof(k), "6.12.95+deb12-cloud-amd64 (debian)", 0x80);
	memcpy(other, k, sizeof(k));
	other[5000] ^= 1;
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(entry, sizeof(entry), "%s/kernels", cache);
	mkdir(cache, 0755);
	mkdir(entry, 0755);
	snprintf(entry, sizeof(entry), "%s/kernels/nectl-test-x86_64", cache);
	mkdir(entry, 0755);
	snprintf(path, sizeof(path), "%s/bzImage", entry);
	write_file(path, other, sizeof(other));
	snprintf(path, sizeof(path), "%s/config", entry);
	write_file(path, DEBIAN_CONFIG, strlen(DEBIAN_CONFIG));
	setenv("NECTL_CACHE_DIR", cache, 1);
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	mkdir(blobs, 0755);
	setenv("NITRO_CLI_BLOBS", blobs, 1);

	cpio = make_cpio(mods, 2, &cpio_len);
	eifgen_init(&g);
	eifgen_add(&g, EIF_SECTION_KERNEL, k, sizeof(k));
	eifgen_add_str(&g, EIF_SECTION_CMDLINE, "console=ttyS0");
	eifgen_add_str(&g, EIF_SECTION_METADATA, EIFGEN_REF_METADATA_JSON);
	eifgen_add(&g, EIF_SECTION_RAMDISK, cpio, cpio_len);
	eifgen_add_str(&g, EIF_SECTION_RAMDISK, "app");
	snprintf(eif, sizeof(eif), "%s/a.eif", dir);
	assert_int_equal(eifgen_write_file(&g, eif), 0);
	if (eif_read_file(eif, &img, NULL, &err) < 0)
		fail_msg("%s", err.msg);

	/* Same size, other bytes: unknown. */
	assert_int_equal(kernel_check_eif(eif, &img, &out, &err), 0);
	assert_false(out.known);
	assert_string_equal(out.release, "6.12.95+deb12-cloud-amd64");
	assert_true(out.image.modules_loaded);

	/* The cache entry now holds this very kernel. */
	snprintf(path, sizeof(path), "%s/bzImage", entry);
	write_file(path, k, sizeof(k));
	assert_int_equal(kernel_check_eif(eif, &img, &out, &err), 0);
	assert_true(out.known);
	assert_non_null(strstr(out.config, "nectl-test-x86_64/config"));
	assert_int_equal(out.check.n, 2); /* cmdline devices, MP table */
	assert_true(out.check.fatal);

	/* nitro-cli's blobs come first, with their own .config. */
	snprintf(path, sizeof(path), "%s/bzImage", blobs);
	write_file(path, k, sizeof(k));
	snprintf(path, sizeof(path), "%s/bzImage.config", blobs);
	write_file(path, NITRO_CONFIG, strlen(NITRO_CONFIG));
	assert_int_equal(kernel_check_eif(eif, &img, &out, &err), 0);
	assert_true(out.known);
	assert_non_null(strstr(out.config, "blobs/bzImage.config"));
	assert_int_equal(out.check.n, 0);
	eif_image_free(&img);
	unsetenv("NECTL_CACHE_DIR");
	unsetenv("NITRO_CLI_BLOBS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nitro_config_is_ready),
	    cmocka_unit_test(test_debian_with_modules),
	    cmocka_unit_test(test_modules_not_loaded),
	    cmocka_unit_test(test_nsm_module),
	    cmocka_unit_test(test_dependencies_and_arch),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_config_file),
	    cmocka_unit_test(test_release),
	    cmocka_unit_test(test_scan_ramdisk),
	    cmocka_unit_test(test_eif_lookup),
	};
	int rc;
	char cmd[128];

	if (!mkdtemp(dir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
