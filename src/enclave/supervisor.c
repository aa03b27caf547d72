/* The per-enclave supervisor: a process of its own (it outlives the CLI that
 * launched it, like nitro-cli's enclave process) that holds the VM, captures
 * the console, runs the port forwarder, answers its control socket, and
 * records how the enclave ended. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "enclave/sup.h"
#include "nectl/afvsock.h"
#include "nectl/enclave.h"
#include "nectl/ne_dev.h"
#include "nectl/sim_hv.h"

uint64_t sup_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sup_wake(void *ctx)
{
	struct sup *s = ctx;
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: a wake-up is pending anyway. */
	}
}

static void *sup_waiter(void *arg)
{
	struct sup *s = arg;

	struct accel_exit e;

	s->acc->ops->wait(s->acc, &e);
	s->why = e.known ? e.why : MACHINE_EXIT_STOPPED;
	s->why_unknown = !e.known;
	snprintf(s->detail, sizeof(s->detail), "%s", e.detail);
	atomic_store(&s->exited, true);
	sup_wake(s);
	return NULL;
}

static void sup_report(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sup_report(struct sup *s, const char *fmt, ...)
{
	char line[NECTL_ERR_MSG_MAX + 16];
	va_list ap;
	int n;

	if (s->report_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(s->report_fd, line, (size_t)n) < 0) {
		/* The launcher is gone; the enclave runs on without it. */
	}
}

void sup_save(struct sup *s)
{
	json_t *r = sup_record(s);

	/* A failed write leaves the previous record: describe shows stale
	 * state rather than none. */
	rundir_write_record(s->p->run_dir, s->p->sid, r, NULL);
	json_decref(r);
}

void sup_halt(struct sup *s, enum sup_stop why)
{
	if (s->stop == SUP_STOP_NONE)
		s->stop = why;
	if (!s->acc)
		return;
	s->acc->ops->stop(s->acc);
	if (s->waiter_started) {
		pthread_join(s->waiter, NULL);
		s->waiter_started = false;
	}
}

static void sup_release(struct sup *s)
{
	sup_halt(s, SUP_STOP_TERMINATE);
	fwd_destroy(s->fwd); /* before the device goes, while no vCPU runs */
	s->fwd = NULL;
	afvsock_free(s->afv);
	s->afv = NULL;
	accel_destroy(s->acc); /* ends the enclave, gives back its memory */
	s->acc = NULL;
	s->m = NULL;
	sim_hv_free(s->hv);
	s->hv = NULL;
	ne_dev_close(s->ne);
	s->ne = NULL;
}

_Noreturn void sup_finish(struct sup *s, bool keep_record)
{
	char path[PATH_MAX];

	sup_release(s);
	if (keep_record) {
		sup_save(s);
		rundir_file(s->p->run_dir, s->p->sid, ".sock", path, sizeof(path));
		unlink(path);
	} else {
		rundir_remove(s->p->run_dir, s->p->sid);
	}
	sup_clients_close(s);
	console_fini(&s->cons);
	_exit(0);
}

/* A launch that failed leaves nothing behind, and the launcher hears of it
 * only once that holds. */
_Noreturn static void sup_fail(struct sup *s, enum nectl_kind kind, const char *msg)
{
	sup_release(s);
	rundir_remove(s->p->run_dir, s->p->sid);
	sup_clients_close(s);
	/* "K<kind> <message>": the launcher rebuilds the error from it. */
	sup_report(s, "K%d %s", (int)kind, msg);
	_exit(1);
}

/* Why the enclave's kernel never used its vsock device, in machine terms:
 * from the device's own record of what the driver did, which the guest's
 * applications cannot forge by printing. Said only when the guest ended by
 * itself (its init gives up without vsock) or ran out of time, not when a
 * crash cut its boot short; empty when the device went live. */
static void sup_vsock_why(struct sup *s, const char *reason, char *out, size_t len)
{
	bool timeout = s->stop == SUP_STOP_NO_HEARTBEAT;
	const char *never = timeout ? "by then the enclave's kernel had not probed"
				    : "the enclave's kernel never probed";
	const char *lacks = timeout ? "may lack" : "most likely lacks";
	struct machine_probe pr;

	out[0] = 0;
	if (!timeout && strcmp(reason, "reboot") != 0 && strcmp(reason, "poweroff") != 0)
		return;
	if (!s->m || machine_device_probe(s->m, "vsock", &pr) < 0)
		return;
	if (pr.stage <= VIRTIO_PROBE_TOUCHED && !s->p->acpi)
		snprintf(out, len,
			 "; %s the vsock device announced on its command line (%s), so it %s "
			 "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES (Debian's kernels do) and "
			 "would fail the same way on Nitro; build the image with nectl's kernel "
			 "(`nectl kernel build`) or AWS's blobs, or debug it with --emulate "
			 "--machine-acpi",
			 never, pr.announced, lacks);
	else if (pr.stage <= VIRTIO_PROBE_TOUCHED)
		snprintf(out, len,
			 "; %s the vsock device, though its command line announced it (%s) and "
			 "ACPI described it, so it %s the virtio-mmio driver "
			 "(CONFIG_VIRTIO_MMIO)",
			 never, pr.announced, lacks);
	else if (pr.stage == VIRTIO_PROBE_MAGIC)
		snprintf(out, len,
			 "; the enclave's kernel probed the vsock device (%s) but %s brought it up "
			 "(driver status 0x%x, no DRIVER_OK), so it %s virtio vsock "
			 "(CONFIG_VIRTIO_VSOCKETS)",
			 pr.announced, timeout ? "had not" : "never", pr.status_seen, lacks);
}

/* A boot failure: what stopped the boot, the machine's explanation when it has one,
 * then the console's last line as a hint, marked as the guest's own text. */
static void sup_boot_failure(struct sup *s, const json_t *e, char *msg, size_t len)
{
	const char *reason = json_string_value(json_object_get(e, "Reason"));
	const char *detail = json_string_value(json_object_get(e, "Detail"));
	char why[400];

	sup_vsock_why(s, reason, why, sizeof(why));
	if (s->stop == SUP_STOP_NO_HEARTBEAT)
		snprintf(msg, len,
			 "Enclave boot failure: no heartbeat from the enclave within %u s; the "
			 "enclave was terminated%s",
			 s->p->hb_timeout_s, why);
	else
		snprintf(msg, len,
			 "Enclave boot failure: the enclave stopped before its boot heartbeat "
			 "(%s%s%s)%s. Its last console line (printed by the guest): \"%s\"",
			 reason, detail ? ": " : "", detail ? detail : "", why, s->cons.last_line);
}

static void sup_on_exit(struct sup *s)
{
	json_t *e;

	sup_halt(s, SUP_STOP_NONE);
	e = s->exit_info = sup_classify(s);
	s->state = "EXITED";
	if (!s->booted) {
		char msg[NECTL_ERR_MSG_MAX];

		sup_boot_failure(s, e, msg, sizeof(msg));
		sup_fail(s, NECTL_ERR_BOOT, msg);
	}
	sup_finish(s, s->stop != SUP_STOP_TERMINATE);
}

static void sup_on_heartbeat(struct sup *s)
{
	if (s->booted)
		return;
	s->booted = true;
	s->t_heartbeat = sup_now_ns();
	if (s->hb_lock_fd >= 0) {
		close(s->hb_lock_fd); /* the next enclave may boot */
		s->hb_lock_fd = -1;
	}
	s->state = "RUNNING";
	sup_save(s);
	sup_report(s, "OK");
	close(s->report_fd);
	s->report_fd = -1;
}

static int sup_poll_timeout(const struct sup *s)
{
	uint64_t now = sup_now_ns(), deadline = sup_control_deadline(s);

	if (!s->booted) {
		uint64_t hb = s->t_entry + (uint64_t)s->p->hb_timeout_s * 1000000000ull;

		if (!deadline || hb < deadline)
			deadline = hb;
	}
	if (!deadline)
		return -1;
	return deadline <= now ? 0 : (int)((deadline - now) / 1000000 + 1);
}

static void sup_check_time(struct sup *s)
{
	uint64_t now = sup_now_ns();

	/* Console text never ends an enclave: a panicking kernel is seen by
	 * the machine (pvpanic, or the reboot panic=N makes, as on Nitro). */
	if (!s->booted && now >= s->t_entry + (uint64_t)s->p->hb_timeout_s * 1000000000ull)
		sup_halt(s, SUP_STOP_NO_HEARTBEAT);
}

static void sup_on_signal(struct sup *s)
{
	struct signalfd_siginfo si;

	if (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		sup_halt(s, SUP_STOP_TERMINATE);
}

_Noreturn static void sup_loop(struct sup *s)
{
	for (;;) {
		struct pollfd pfd[3 + SUP_MAX_CLIENTS];
		struct sup_client *who[3 + SUP_MAX_CLIENTS];
		nfds_t n = 2;
		uint64_t v;

		pfd[0] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = s->sig_fd, .events = POLLIN};
		n += sup_control_fds(s, pfd + 2, who + 2);
		if (poll(pfd, n, sup_poll_timeout(s)) < 0 && errno != EINTR)
			sup_halt(s, SUP_STOP_TERMINATE);
		if (pfd[0].revents && read(s->wake_fd, &v, sizeof(v)) < 0) {
			/* Spurious: nothing to consume. */
		}
		if (pfd[1].revents)
			sup_on_signal(s);
		if (atomic_load(&s->heartbeat_seen))
			sup_on_heartbeat(s);
		sup_check_time(s);
		if (atomic_load(&s->device_breaks) != s->device_breaks_saved) {
			s->device_breaks_saved = atomic_load(&s->device_breaks);
			sup_save(s);
		}
		if (s->stop != SUP_STOP_NONE || atomic_load(&s->exited))
			sup_on_exit(s);
		sup_control_io(s, pfd + 2, who + 2, n - 2);
		sup_console_pump(s);
	}
}

static int sup_save_first(struct sup *s, struct nectl_err *err)
{
	json_t *r = sup_record(s);
	int rc = rundir_write_record(s->p->run_dir, s->p->sid, r, err);

	json_decref(r);
	return rc;
}

static int sup_listen(struct sup *s, struct nectl_err *err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	mode_t mask;
	int rc = 0;

	rundir_file(s->p->run_dir, s->p->sid, ".sock", a.sun_path, sizeof(a.sun_path));
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* The owner's only (describe reads the records, not the socket); the
	 * supervisor checks the peer's credentials as well. Created so, with
	 * no moment of wider access. */
	mask = umask(0177);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s->lfd, 16) < 0)
		rc = nectl_err_sys(err, NECTL_ERR_SOCKET, errno, "%s: cannot listen", a.sun_path);
	umask(mask);
	return rc;
}

static int sup_setup_fds(struct sup *s, struct nectl_err *err)
{
	sigset_t set;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->sig_fd < 0 || s->wake_fd < 0)
		return nectl_err_sys(err, NECTL_ERR_EVENT, errno,
				     "cannot create the supervisor's event sources");
	return 0;
}

static int sup_boot(struct sup *s, struct nectl_err *err)
{
	const struct enclave_plan *p = s->p;
	char log[PATH_MAX];

	rundir_file(p->run_dir, p->sid, ".log", log, sizeof(log));
	if (console_init(&s->cons, p->debug, log, sup_wake, s, err) < 0 ||
	    fwd_create(&s->fwd, p->rules, p->nrules, err) < 0)
		return -1;
	fwd_set_limits(s->fwd, p->fwd_max_conns, p->fwd_max_conns_total, sup_note, s);
	if (sup_launch(s, err) < 0)
		return -1;
	if (pthread_create(&s->waiter, NULL, sup_waiter, s) != 0)
		return nectl_err_set(err, NECTL_ERR_THREAD,
				     "cannot start the supervisor's waiter thread");
	s->waiter_started = true;
	s->state = "RUNNING";
	sup_save(s);
	return 0;
}

_Noreturn void supervisor_main(struct enclave_plan *p, int report_fd, int lock_fd)
{
	static struct sup sup;
	struct sup *s = &sup;
	struct nectl_err err = {0};

	s->p = p;
	s->report_fd = report_fd;
	s->lfd = s->wake_fd = s->sig_fd = s->hb_lock_fd = s->pool_lock_fd = -1;
	s->owner = getuid();
	s->cid = p->cid;
	s->t0 = sup_now_ns();
	s->state = "STARTING";
	for (unsigned i = 0; i < SUP_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	setsid();
	if (chdir("/") < 0) {
		/* Only to not pin the caller's directory; harmless if it fails. */
	}
	if (sup_setup_fds(s, &err) < 0 || sup_prepare(s, p, &err) < 0 || sup_listen(s, &err) < 0 ||
	    sup_save_first(s, &err) < 0) {
		rundir_remove(p->run_dir, p->sid);
		sup_report(s, "K%d %s", (int)err.kind, err.msg);
		_exit(1);
	}
	/* The CID and name are now visible to other launches; the launcher
	 * hears the sid when the device chose it. */
	if (p->mode == ENCLAVE_MODE_EMULATED)
		sup_report(s, "R");
	else
		sup_report(s, "R %s", p->sid);
	close(lock_fd);
	if (sup_boot(s, &err) < 0)
		sup_fail(s, err.kind, err.msg);
	sup_loop(s);
}
