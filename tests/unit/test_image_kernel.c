/* `kernel fetch` without downloading: the ABI a user names is checked before
 * it becomes a path or an apt argument, and the private apt configuration
 * keeps apt's privilege drop (its sandbox user, _apt, can use the download
 * directories). Nothing here touches the network or the shared cache. */
#include <pwd.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "image/kernel_apt.h"
#include "imgfix.h"
#include "nectl/kernel.h"

static char tmpdir[] = "/tmp/nectl-test-kfetch-XXXXXX";

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	/* Never the shared cache, whatever the environment says. */
	return setenv("NECTL_CACHE_DIR", tmpdir, 1);
}

static int group_teardown(void **state)
{
	(void)state;
	unsetenv("NECTL_CACHE_DIR");
	return imgfix_rmtree(tmpdir);
}

static void expect_bad_abi(const char *abi)
{
	struct kernel_info k;
	struct nectl_err err = {0};
	char apt[4200];
	struct stat st;

	assert_int_equal(kernel_find(EIF_ARCH_X86_64, abi, &k, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	if (strchr(err.msg, '\n') || (!strpbrk(abi, "\n") && !strstr(err.msg, abi)))
		fail_msg("`%s` does not name `%s` on one line", err.msg, abi);
	memset(&err, 0, sizeof(err));
	assert_int_equal(kernel_fetch(EIF_ARCH_AARCH64, abi, &k, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	/* Refused before apt: no private apt configuration was even created. */
	snprintf(apt, sizeof(apt), "%s/kernels/apt", tmpdir);
	assert_int_equal(stat(apt, &st), -1);
}

static void test_kernel_abi_is_checked_before_it_becomes_a_path(void **state)
{
	static const char *const bad[] = {
	    "../../x", "a b",
	    "",	       "6.12/../../etc",
	    "-o",      "6.12.95+deb12;reboot",
	    "6.12\n",  "6.12.95+deb12:amd64",
	    "..",      "6..12",
	};
	struct kernel_info k;
	struct nectl_err err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_abi(bad[i]);
	/* Debian's spellings pass the check (and are then simply not cached). */
	assert_int_equal(kernel_find(EIF_ARCH_X86_64, "6.12.95+deb12", &k, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_int_equal(kernel_find(EIF_ARCH_X86_64, "6.1.0-28", &k, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_FILE);
	assert_string_equal(k.version, "6.1.0-28-cloud-amd64");
}

/* apt drops to _apt for downloads when it runs as root; forcing its sandbox
 * user to root would run the network code (http, gpgv) as root. */
static void test_apt_config_keeps_the_sandbox_user(void **state)
{
	char cache[4200], path[4300];
	struct kernel_apt a;
	struct nectl_err err = {0};
	struct passwd *pw = getpwnam("_apt");
	struct stat st;

	(void)state;
	snprintf(cache, sizeof(cache), "%s/aptcfg", tmpdir);
	if (kernel_apt_open(&a, cache, &err) < 0)
		skip(); /* not a Debian machine: no apt sources to point at */
	for (int i = 0; i < KERNEL_APT_NOPTS; i++)
		if (strstr(a.opts[i], "APT::Sandbox"))
			fail_msg("apt option %d overrides the sandbox: %s", i, a.opts[i]);
	/* What apt itself does to its partial directories: owned by _apt, 0700. */
	if (geteuid() == 0 && pw) {
		static const char *const dirs[] = {"lists/partial", "archives/partial", "download"};

		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s/%s", a.dir, dirs[i]);
			assert_int_equal(stat(path, &st), 0);
			if (st.st_uid != pw->pw_uid || (st.st_mode & 07777) != 0700)
				fail_msg("%s: owner %u mode %o, not _apt (%u) and 0700", path,
					 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
					 (unsigned)pw->pw_uid);
		}
	}
	kernel_apt_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kernel_abi_is_checked_before_it_becomes_a_path),
	    cmocka_unit_test(test_apt_config_keeps_the_sandbox_user),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
