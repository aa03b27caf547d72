/* `kernel build` without building a kernel: configuration fragments checked
 * against .config files (dropped options, `is not set`, =m against =y, prefix
 * look-alikes, malformed fragments), the shipped fragments themselves, cache
 * entry names and lookup, kbuild's progress lines, the source tarball's entry
 * names, and the command's refusals before any download. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "image/kernel_build.h"
#include "image/kernel_kconfig.h"
#include "nectl/kernel.h"

static char tmpdir[] = "/tmp/nectl-test-kernel-XXXXXX";

static int verify(const char *fragment, const char *config, struct nectl_err *err)
{
	memset(err, 0, sizeof(*err));
	return kconfig_verify(fragment, "test.config", config, strlen(config), err);
}

static void expect_wrong(const char *fragment, const char *config, const char *needle)
{
	struct nectl_err err;

	assert_int_equal(verify(fragment, config, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_BUILD);
	if (!strstr(err.msg, needle))
		fail_msg("`%s` lacks `%s`", err.msg, needle);
}

static void expect_bad_fragment(const char *fragment, const char *needle)
{
	struct nectl_err err = {0};

	assert_int_equal(kconfig_check_fragment(fragment, "test.config", &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_SERDE);
	if (!strstr(err.msg, needle))
		fail_msg("`%s` lacks `%s`", err.msg, needle);
	assert_int_equal(verify(fragment, "", &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_SERDE);
}

static const char config_ok[] = "#\n"
				"# Automatically generated file; DO NOT EDIT.\n"
				"#\n"
				"CONFIG_VIRTIO_MMIO=y\n"
				"CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n"
				"CONFIG_NSM=m\n"
				"CONFIG_LOCALVERSION=\"-nectl\"\n"
				"CONFIG_NR_CPUS=512\n"
				"CONFIG_PHYSICAL_START=0x1000000\n"
				"# CONFIG_MODULES is not set\n";

static void test_verify_ok(void **state)
{
	struct nectl_err err;
	const char *fragment = "# a comment\n"
			       "\n"
			       "CONFIG_VIRTIO_MMIO=y\n"
			       "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y  \n"
			       "CONFIG_NSM=m\n"
			       "CONFIG_LOCALVERSION=\"-nectl\"\n"
			       "CONFIG_NR_CPUS=512\n"
			       "CONFIG_PHYSICAL_START=0x1000000\n"
			       "# CONFIG_MODULES is not set\n"
			       "# an unset option kconfig did not even write is not set too:\n"
			       "# CONFIG_BLOCK is not set\n"
			       "CONFIG_VT=n";

	(void)state;
	assert_int_equal(verify(fragment, config_ok, &err), 0);
}

static void test_verify_dropped(void **state)
{
	(void)state;
	expect_wrong("CONFIG_X86_MPPARSE=y\n", config_ok,
		     "CONFIG_X86_MPPARSE=y is missing from the .config");
	expect_wrong("CONFIG_MODULES=y\n", config_ok, "CONFIG_MODULES=y came out not set");
	/* A longer option with the same prefix is not the option. */
	expect_wrong("CONFIG_VIRTIO=y\n", config_ok, "CONFIG_VIRTIO=y is missing");
	expect_wrong("CONFIG_VIRTIO_MMIO_CMDLINE=y\n",
		     "# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set\n",
		     "CONFIG_VIRTIO_MMIO_CMDLINE=y is missing");
}

static void test_verify_values(void **state)
{
	(void)state;
	expect_wrong("CONFIG_NSM=y\n", config_ok, "CONFIG_NSM=y came out as CONFIG_NSM=m");
	expect_wrong("CONFIG_VIRTIO_MMIO=m\n", config_ok,
		     "CONFIG_VIRTIO_MMIO=m came out as CONFIG_VIRTIO_MMIO=y");
	expect_wrong("CONFIG_NR_CPUS=64\n", config_ok,
		     "CONFIG_NR_CPUS=64 came out as CONFIG_NR_CPUS=512");
	expect_wrong("CONFIG_LOCALVERSION=\"-x\"\n", config_ok,
		     "CONFIG_LOCALVERSION=\"-x\" came out as CONFIG_LOCALVERSION=\"-nectl\"");
	expect_wrong("# CONFIG_NSM is not set\n", config_ok,
		     "# CONFIG_NSM is not set came out as CONFIG_NSM=m");
	expect_wrong("CONFIG_NSM=n\n", config_ok, "CONFIG_NSM is not set came out as CONFIG_NSM=m");
}

static void test_verify_many(void **state)
{
	(void)state;
	expect_wrong("CONFIG_A=y\nCONFIG_VIRTIO_MMIO=y\nCONFIG_B=y\nCONFIG_NSM=y\n", config_ok,
		     "kernel configuration (test.config): CONFIG_A=y is missing");
	expect_wrong("CONFIG_A=y\nCONFIG_VIRTIO_MMIO=y\nCONFIG_B=y\nCONFIG_NSM=y\n", config_ok,
		     "; 2 more: CONFIG_B, CONFIG_NSM");
	expect_wrong("CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\nCONFIG_D=y\nCONFIG_E=y\nCONFIG_F=y\n"
		     "CONFIG_G=y\n",
		     config_ok, "6 more: CONFIG_B, CONFIG_C, CONFIG_D, CONFIG_E, ...");
}

static void test_verify_hostile_config(void **state)
{
	static const char with_nul[] = "CONFIG_NSM=y\n\0CONFIG_X=y\n";
	struct nectl_err err = {0};
	char *huge = malloc(KCONFIG_CONFIG_MAX + 2);
	char *long_line = malloc(4 * KCONFIG_LINE_MAX);

	(void)state;
	assert_int_equal(
	    kconfig_verify("CONFIG_NSM=y\n", "t", with_nul, sizeof(with_nul) - 1, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_BUILD);
	assert_non_null(huge);
	memset(huge, '\n', KCONFIG_CONFIG_MAX + 1);
	huge[KCONFIG_CONFIG_MAX + 1] = '\0';
	assert_int_equal(kconfig_verify("CONFIG_NSM=y\n", "t", huge, KCONFIG_CONFIG_MAX + 1, &err),
			 -1);
	free(huge);
	/* An over-long line is cut, never overflows, and does not match. */
	assert_non_null(long_line);
	memset(long_line, 'y', 4 * KCONFIG_LINE_MAX - 1);
	memcpy(long_line, "CONFIG_NSM=", 11);
	long_line[4 * KCONFIG_LINE_MAX - 1] = '\0';
	expect_wrong("CONFIG_NSM=y\n", long_line, "CONFIG_NSM=y came out as CONFIG_NSM=yyy");
	free(long_line);
}

static void test_fragment_grammar(void **state)
{
	char big[KCONFIG_FRAGMENT_MAX + 64];
	char long_line[KCONFIG_LINE_MAX + 16];

	(void)state;
	expect_bad_fragment("CONFIG_A=y\nCONFIG_B = y\n", "line 2:");
	expect_bad_fragment("FOO=y\n", "line 1:");
	expect_bad_fragment("CONFIG_A=y # trailing comment\n", "line 1:");
	expect_bad_fragment("CONFIG_A=\n", "line 1:");
	expect_bad_fragment("CONFIG_=y\n", "line 1:");
	expect_bad_fragment("CONFIG_A=\"unterminated\n", "line 1:");
	expect_bad_fragment("CONFIG_A=\"ends in an escape\\\"\n", "line 1:");
	expect_bad_fragment("  CONFIG_A=y\n", "line 1:");
	expect_bad_fragment("CONFIG_A=y\n# CONFIG_A is not set\n", "line 2: CONFIG_A given twice");
	memset(long_line, 'y', sizeof(long_line) - 1);
	memcpy(long_line, "CONFIG_A=", 9);
	long_line[sizeof(long_line) - 1] = '\0';
	expect_bad_fragment(long_line, "line 1:");
	memset(big, '\n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_bad_fragment(big, "larger than");
}

static void test_shipped_fragments(void **state)
{
	static const char *const both[] = {
	    "\nCONFIG_VIRTIO_MMIO=y\n",
	    "\nCONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y\n",
	    "\nCONFIG_VIRTIO_VSOCKETS=y\n",
	    "\nCONFIG_NSM=y\n",
	    "\n# CONFIG_MODULES is not set\n",
	    "\nCONFIG_SERIAL_8250_CONSOLE=y\n",
	    "\nCONFIG_DEVTMPFS=y\n",
	    "\nCONFIG_UNIX98_PTYS=y\n",
	    "\nCONFIG_TMPFS=y\n",
	    "\nCONFIG_BLK_DEV_INITRD=y\n",
	    "\nCONFIG_ACPI=y\n",
	    "\nCONFIG_PCI=y\n",
	    "\nCONFIG_LOCALVERSION=\"-nectl\"\n",
	};
	enum eif_arch arches[] = {EIF_ARCH_X86_64, EIF_ARCH_AARCH64};
	struct nectl_err err = {0};

	(void)state;
	for (size_t a = 0; a < 2; a++) {
		const char *f = kernel_config_fragment(arches[a]);

		assert_non_null(f);
		assert_int_equal(kconfig_check_fragment(f, "shipped", &err), 0);
		/* A .config holding exactly the fragment satisfies it. */
		assert_int_equal(kconfig_verify(f, "shipped", f, strlen(f), &err), 0);
		for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++)
			if (!strstr(f, both[i]))
				fail_msg("the %s fragment lacks %s", eif_arch_name(arches[a]),
					 both[i]);
	}
	assert_non_null(
	    strstr(kernel_config_fragment(EIF_ARCH_X86_64), "\nCONFIG_X86_MPPARSE=y\n"));
	assert_non_null(strstr(kernel_config_fragment(EIF_ARCH_X86_64), "\nCONFIG_KVM_GUEST=y\n"));
	assert_null(strstr(kernel_config_fragment(EIF_ARCH_AARCH64), "X86"));
}

static void test_hash_and_entry(void **state)
{
	char x86[65], arm[65], expect[65], name[256];
	unsigned char md[32];
	const char *f = kernel_config_fragment(EIF_ARCH_X86_64);

	(void)state;
	kernel_config_hash(EIF_ARCH_X86_64, x86);
	kernel_config_hash(EIF_ARCH_AARCH64, arm);
	assert_int_equal(strlen(x86), 64);
	assert_string_not_equal(x86, arm);
	assert_int_equal(EVP_Digest(f, strlen(f), md, NULL, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(expect + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(x86, expect);
	kernel_entry_name(EIF_ARCH_X86_64, "0123456789abcdef0123", name, sizeof(name));
	assert_string_equal(name, "nectl-" NECTL_KSRC_VERSION "-x86_64-0123456789ab");
	kernel_entry_name(EIF_ARCH_AARCH64, arm, name, sizeof(name));
	assert_int_equal(strncmp(name, "nectl-6.12.95-1~bpo12+1-aarch64-", 32), 0);
	assert_int_equal(strlen(name), 32 + 12);
}

static void test_kbuild_lines(void **state)
{
	(void)state;
	assert_int_equal(kbuild_classify("  CC      kernel/fork.o"), KBUILD_OBJECT);
	assert_int_equal(kbuild_classify("  AS      arch/x86/entry/entry_64.o"), KBUILD_OBJECT);
	assert_int_equal(kbuild_classify("  HOSTCC  scripts/basic/fixdep"), KBUILD_OBJECT);
	assert_int_equal(kbuild_classify("  LD      vmlinux.o"), KBUILD_LINK);
	assert_int_equal(kbuild_classify("  LD      arch/x86/boot/setup.elf"), KBUILD_OTHER);
	assert_int_equal(kbuild_classify("  AR      vmlinux.a"), KBUILD_OTHER);
	assert_int_equal(kbuild_classify("  CC"), KBUILD_OTHER);
	assert_int_equal(kbuild_classify("   CC      kernel/fork.o"), KBUILD_OTHER);
	assert_int_equal(kbuild_classify("kernel/fork.c:1:1: error: expected"), KBUILD_OTHER);
	assert_int_equal(kbuild_classify(""), KBUILD_OTHER);
}

static void test_source_names(void **state)
{
	char long_name[2048];

	(void)state;
	assert_true(kernel_source_name_ok("linux-source-6.12"));
	assert_true(kernel_source_name_ok("linux-source-6.12/"));
	assert_true(kernel_source_name_ok("linux-source-6.12/kernel/fork.c"));
	assert_true(kernel_source_name_ok("linux-source-6.12/scripts/..foo/x"));
	assert_false(kernel_source_name_ok(""));
	assert_false(kernel_source_name_ok("/etc/passwd"));
	assert_false(kernel_source_name_ok("linux-source-6.12/../../etc/cron.d/x"));
	assert_false(kernel_source_name_ok("linux-source-6.12/a/.."));
	assert_false(kernel_source_name_ok("linux-source-6.12x/a"));
	assert_false(kernel_source_name_ok("other/a"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	memcpy(long_name, "linux-source-6.12/", 18);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(kernel_source_name_ok(long_name));
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* A complete entry as kernel_build leaves one, with the given config hash. */
static void fake_entry(const char *dir, const char *arch, const char *image, const char *hash)
{
	char info[1024];

	assert_true(mkdir(dir, 0755) == 0 || access(dir, F_OK) == 0);
	snprintf(info, sizeof(info),
		 "{\"Arch\": \"%s\", \"ConfigHash\": \"%s\", \"SourceVersion\": \"%s\", "
		 "\"Version\": \"6.12.95-nectl\"}\n",
		 arch, hash, NECTL_KSRC_VERSION);
	write_file(dir, image, "kernel");
	write_file(dir, "config", "CONFIG_NSM=y\n");
	write_file(dir, "info.json", info);
}

static void test_find_built(void **state)
{
	char cache[256], kernels[300], hash[65], name[256], dir[600];
	struct kernel_info k;
	struct nectl_err err = {0};

	(void)state;
	snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
	setenv("NECTL_CACHE_DIR", cache, 1);
	assert_int_equal(kernel_find_built(EIF_ARCH_X86_64, &k, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_non_null(strstr(err.msg, "nectl kernel build --arch x86_64"));
	snprintf(kernels, sizeof(kernels), "%s/kernels", cache);
	assert_int_equal(mkdir(cache, 0755), 0);
	assert_int_equal(mkdir(kernels, 0755), 0);
	kernel_config_hash(EIF_ARCH_X86_64, hash);
	kernel_entry_name(EIF_ARCH_X86_64, hash, name, sizeof(name));
	snprintf(dir, sizeof(dir), "%s/%s", kernels, name);
	/* An entry of another fragment (an older nectl) is not this one. */
	fake_entry(dir, "x86_64", "bzImage", "00000000");
	assert_int_equal(kernel_find_built(EIF_ARCH_X86_64, &k, &err), -1);
	fake_entry(dir, "x86_64", "bzImage", hash);
	assert_int_equal(kernel_find_built(EIF_ARCH_X86_64, &k, &err), 0);
	assert_string_equal(k.version, "6.12.95-nectl");
	assert_string_equal(k.package, NECTL_KSRC_PACKAGE);
	assert_string_equal(k.package_version, NECTL_KSRC_VERSION);
	assert_string_equal(k.modules_dir, "");
	assert_int_equal(strncmp(k.kernel, dir, strlen(dir)), 0);
	assert_string_equal(k.kernel + strlen(dir), "/bzImage");
	assert_string_equal(k.config + strlen(dir), "/config");
	assert_int_equal(kernel_find_built(EIF_ARCH_AARCH64, &k, &err), -1);
	assert_non_null(strstr(err.msg, "--arch aarch64"));
	unsetenv("NECTL_CACHE_DIR");
}

static void test_build_refusals(void **state)
{
	char out[300], hash[65], path[512];
	struct kernel_build_opts o = {.arch = EIF_ARCH_AARCH64};
	struct kernel_info k;
	struct nectl_err err = {0};
	const char *saved = getenv("PATH");
	char *path_copy = saved ? strdup(saved) : NULL;

	(void)state;
	snprintf(out, sizeof(out), "%s/out", tmpdir);
	o.output_dir = out;
	/* A complete build in the output directory is found, not rebuilt. */
	kernel_config_hash(EIF_ARCH_AARCH64, hash);
	fake_entry(out, "aarch64", "Image", hash);
	assert_int_equal(kernel_build(&o, &k, &err), 0);
	assert_string_equal(k.kernel + strlen(out), "/Image");
	/* --force with no tools: refused, naming them, before anything is made. */
	o.force = true;
	setenv("PATH", "/nonexistent", 1);
	assert_int_equal(kernel_build(&o, &k, &err), -1);
	setenv("PATH", path_copy ? path_copy : "/usr/bin:/bin", 1);
	free(path_copy);
	assert_int_equal(err.kind, NECTL_ERR_BUILD);
	assert_non_null(strstr(err.msg, "aarch64-linux-gnu-gcc"));
	assert_non_null(strstr(err.msg, "gcc-aarch64-linux-gnu"));
	assert_non_null(strstr(err.msg, "flex"));
	snprintf(path, sizeof(path), "%s/info.json", out);
	assert_int_equal(access(path, F_OK), 0);
	o.arch = (enum eif_arch)7;
	assert_int_equal(kernel_build(&o, &k, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	o.arch = EIF_ARCH_X86_64;
	o.jobs = 100000;
	assert_int_equal(kernel_build(&o, &k, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
}

static int rm_tree(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_ok),
	    cmocka_unit_test(test_verify_dropped),
	    cmocka_unit_test(test_verify_values),
	    cmocka_unit_test(test_verify_many),
	    cmocka_unit_test(test_verify_hostile_config),
	    cmocka_unit_test(test_fragment_grammar),
	    cmocka_unit_test(test_shipped_fragments),
	    cmocka_unit_test(test_hash_and_entry),
	    cmocka_unit_test(test_kbuild_lines),
	    cmocka_unit_test(test_source_names),
	    cmocka_unit_test(test_find_built),
	    cmocka_unit_test(test_build_refusals),
	};
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rm_tree();
	return rc;
}
