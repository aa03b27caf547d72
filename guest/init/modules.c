/* Kernel modules from the bootstrap ramdisk: AWS's /nsm.ko (blob kernels), then
 * nectl's /nectl/modules/NN-name.ko in name order, which the image builder made
 * the dependency order. The kernel's nomodules only stops automatic loading. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#define NSM_FILE   "nsm.ko"
#define NSM_MODULE "/" NSM_FILE
#define MODULE_DIR "/nectl/modules"

/* glibc has no wrapper for finit_module. */
static int finit_module(int fd, const char *params, int flags)
{
	return (int)syscall(SYS_finit_module, fd, params, flags);
}

static void load_module(const char *path, const char *file)
{
	char name[64];
	int fd;

	module_display_name(file, name, sizeof(name));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(errno, "module %s: cannot open %s", name, path);
	if (finit_module(fd, "", 0) == 0)
		say("loaded module %s", name);
	else if (errno == EEXIST)
		say("module %s: already loaded", name);
	else
		die(errno, "module %s: cannot load %s", name, path);
	close(fd);
	/* The kernel has its own copy now; the ramdisk's only costs enclave memory. */
	unlink(path);
}

/* Reads the directory's names into names[], at most MODULES_MAX of them. */
static size_t list_module_dir(const char **names)
{
	static char store[MODULES_MAX][256];
	struct dirent *de;
	size_t n = 0;
	DIR *dir = opendir(MODULE_DIR);

	if (!dir) {
		if (errno == ENOENT)
			return 0;
		die(errno, "modules: cannot open %s", MODULE_DIR);
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == MODULES_MAX)
			die(0, "modules: more than %d files in %s", MODULES_MAX, MODULE_DIR);
		snprintf(store[n], sizeof(store[n]), "%s", de->d_name);
		names[n] = store[n];
		n++;
	}
	closedir(dir);
	return n;
}

void load_modules(void)
{
	const char *names[MODULES_MAX];
	size_t n;

	if (access(NSM_MODULE, F_OK) == 0)
		load_module(NSM_MODULE, NSM_FILE);
	n = modules_select(names, list_module_dir(names));
	for (size_t i = 0; i < n; i++) {
		char path[sizeof(MODULE_DIR) + 256];

		snprintf(path, sizeof(path), "%s/%s", MODULE_DIR, names[i]);
		load_module(path, names[i]);
	}
}
