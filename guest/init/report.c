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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "init.h"
#include "nectl/app_report.h"

#define PARENT_CID	  3
#define CONNECT_TIMEOUT_S 5

static int report_fd = -1;

void report_open(void)
{
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK,
	    .svm_cid = PARENT_CID,
	    .svm_port = APP_REPORT_PORT,
	};
	struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		warn_err(errno, "exit report: cannot create a vsock socket");
		return;
	}
	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		say("exit report: the parent does not listen on port %d (%s); the app's end is "
		    "told on this console only",
		    APP_REPORT_PORT, strerror(errno));
		close(fd);
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
