/* nectl-init: the enclave's PID 1. Each step lives in its own file; a step that
 * fails calls die(), which reports on the console and shuts the enclave down. */
#ifndef NECTL_INIT_H
#define NECTL_INIT_H

#include <stdnoreturn.h>

#include "parse.h"

#define PREFIX "nectl-init: "

/* Console messages, one line each, prefixed with "nectl-init: ". */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "nectl-init: warning: <msg>: <strerror(err)>". */
void warn_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "nectl-init: <msg>: <strerror(err)>" (no ": <strerror>" if err is 0), then shutdown. */
noreturn void die(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sync and reboot: with reboot=k the hypervisor ends the enclave. */
noreturn void shutdown_enclave(void);

/* mounts.c */
int mount_early_dev(void);
void switch_root(const char *newroot);
void mount_rootfs_filesystems(void);

/* modules.c */
void load_modules(void);

/* net.c */
void loopback_up(void);
void heartbeat(void);
/* A stream to the parent (CID 3) on port, or -1 with errno and the failed step. */
int vsock_connect_parent(unsigned port, int timeout_s, const char **failed);

/* report.c: init's own connection to the parent for the app's end
 * (nectl/app_report.h); opened before the app starts, used once after. */
void report_open(void);
void report_app_end(int status);

/* cmdenv.c: reads /cmd and /env into the lists (defaults if absent), unlinks them. */
void read_cmd_env(struct strlist *argv, struct strlist *env);

#endif
