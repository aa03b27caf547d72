/* The filesystems of the enclave: /dev before anything else, then the switch into
 * the app's root and the mounts an application expects there (as AWS's init). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

#define NODEV_NOSUID_NOEXEC (MS_NODEV | MS_NOSUID | MS_NOEXEC)

struct mnt {
	const char *source, *target, *fstype;
	unsigned long flags;
	const char *data;
};

/* Order matters: /dev/shm and /dev/pts sit inside /dev. */
static const struct mnt rootfs_mounts[] = {
	{"dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL},
	{"proc", "/proc", "proc", NODEV_NOSUID_NOEXEC, NULL},
	{"tmpfs", "/run", "tmpfs", NODEV_NOSUID_NOEXEC, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", NODEV_NOSUID_NOEXEC, NULL},
	{"shm", "/dev/shm", "tmpfs", NODEV_NOSUID_NOEXEC, NULL},
	{"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, NULL},
	{"sysfs", "/sys", "sysfs", NODEV_NOSUID_NOEXEC, NULL},
};

static const char *const dev_links[][2] = {
	{"/dev/fd", "/proc/self/fd"},
	{"/dev/stdin", "/proc/self/fd/0"},
	{"/dev/stdout", "/proc/self/fd/1"},
	{"/dev/stderr", "/proc/self/fd/2"},
};

/* Mount points an image lacks are created: the root is RAM, so this cannot fail
 * for lack of space, and an image without /proc should still boot. */
static int do_mount(const struct mnt *m)
{
	if (mkdir(m->target, 0755) < 0 && errno != EEXIST)
		return -1;
	return mount(m->source, m->target, m->fstype, m->flags, m->data);
}

/* Returns 0 or the errno, so that the caller can report it once a console exists.
 * EBUSY means the kernel mounted it already (devtmpfs.mount=1). */
int mount_early_dev(void)
{
	static const struct mnt dev = {"dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL};

	if (do_mount(&dev) < 0 && errno != EBUSY)
		return errno;
	return 0;
}

/* The switch AWS's init does since 2023: /rootfs becomes a mount point and moves
 * onto /, so the app's root is a real mount (user namespaces require that). */
void switch_root(const char *newroot)
{
	if (mount(newroot, newroot, NULL, MS_BIND, NULL) < 0)
		die(errno, "switch root: cannot bind-mount %s", newroot);
	if (chdir(newroot) < 0)
		die(errno, "switch root: cannot enter %s", newroot);
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		die(errno, "switch root: cannot move %s to /", newroot);
	if (chroot(".") < 0)
		die(errno, "switch root: chroot into %s", newroot);
	if (chdir("/") < 0)
		die(errno, "switch root: chdir /");
}

static size_t read_proc_file(const char *path, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return len;
}

/* Cgroup v1 hierarchies as AWS's init mounts them. Kernels may leave v1 out for
 * some controllers (Debian 6.12: memory, cpuset), so failures are warnings. */
static void mount_cgroups(void)
{
	static const struct mnt root = {"cgroup_root", "/sys/fs/cgroup", "tmpfs",
					NODEV_NOSUID_NOEXEC, "mode=0755"};
	static char buf[16384];
	const char *names[64];
	size_t n;

	if (do_mount(&root) < 0) {
		warn_err(errno, "cgroups: cannot mount tmpfs on /sys/fs/cgroup");
		return;
	}
	if (read_proc_file("/proc/cgroups", buf, sizeof(buf)) == 0) {
		warn_err(0, "cgroups: /proc/cgroups is missing or empty");
		return;
	}
	n = cgroups_enabled(buf, names, sizeof(names) / sizeof(names[0]));
	for (size_t i = 0; i < n; i++) {
		char target[128];
		struct mnt m = {"cgroup", target, "cgroup", NODEV_NOSUID_NOEXEC, names[i]};

		snprintf(target, sizeof(target), "/sys/fs/cgroup/%s", names[i]);
		if (do_mount(&m) < 0) {
			warn_err(errno, "cgroups: cannot mount the v1 controller %s", names[i]);
			/* An empty directory would look like a mounted hierarchy. */
			rmdir(target);
		}
	}
}

void mount_rootfs_filesystems(void)
{
	for (size_t i = 0; i < sizeof(rootfs_mounts) / sizeof(rootfs_mounts[0]); i++) {
		const struct mnt *m = &rootfs_mounts[i];

		if (do_mount(m) < 0)
			die(errno, "mount: cannot mount %s on %s", m->fstype, m->target);
	}
	for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++) {
		if (symlink(dev_links[i][1], dev_links[i][0]) < 0 && errno != EEXIST)
			die(errno, "mount: cannot create the link %s", dev_links[i][0]);
	}
	mount_cgroups();
}
