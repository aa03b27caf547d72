/* init's report of how the app ended, to the parent over a vsock connection of
 * its own (include/nectl/app_report.h): the parent learns the exit status
 * from PID 1, not from console text that the app could print too. Opened
 * before the app starts, so the app cannot take the port first; close-on-exec,
 * so the app does not hold it. A parent that does not listen (nitro-cli)
 * leaves the console line as the only report. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "nectl/app_report.h"

#define CONNECT_TIMEOUT_S 5

static int report_fd = -1;

void report_open(void)
{
	const char *failed;
	int fd = vsock_connect_parent(APP_REPORT_PORT, CONNECT_TIMEOUT_S, &failed);

	if (fd < 0 && strcmp(failed, "connect") != 0) {
		warn_err(errno, "exit report: cannot %s", failed);
		return;
	}
	if (fd < 0) {
		say("exit report: the parent does not listen on port %d (%s); the app's end is "
		    "told on this console only",
		    APP_REPORT_PORT, strerror(errno));
		return;
	}
	report_fd = fd;
}

/* The parent closes the connection once it has the line. */
static void report_wait_ack(void)
{
	struct pollfd pfd = {.fd = report_fd, .events = POLLIN};
	char b;
	int r;

	do
		r = poll(&pfd, 1, APP_REPORT_WAIT_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0 || read(report_fd, &b, 1) != 0)
		say("exit report: the parent did not acknowledge it");
}

void report_app_end(int status)
{
	char line[APP_REPORT_LINE_MAX];
	int n;

	if (report_fd < 0)
		return;
	if (WIFEXITED(status))
		n = snprintf(line, sizeof(line), "exit %d\n", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		n = snprintf(line, sizeof(line), "signal %d\n", WTERMSIG(status));
	else
		n = 0;
	if (n > 0 && write(report_fd, line, (size_t)n) == n)
		report_wait_ack();
	else if (n > 0)
		warn_err(errno, "exit report: cannot send it to the parent");
	close(report_fd);
	report_fd = -1;
}
