/* Networking inside the enclave: the loopback interface, and the boot heartbeat
 * that tells the parent (nitro-cli, or nectl) that the enclave has booted. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "init.h"

#define HEARTBEAT_CID	    3
#define HEARTBEAT_PORT	    9000
#define HEARTBEAT_BYTE	    0xB7
#define HEARTBEAT_TIMEOUT_S 30

/*
 * Enclave kernels leave lo down, and apps that talk to 127.0.0.1 (a proxy to a
 * vsock port, say) expect it up. An enclave runs without it, so failures only
 * warn. Setting 127.0.0.1 after the kernel may already have added it on IFF_UP
 * is a no-op; the /8 netmask follows from the class-A address.
 */
void loopback_up(void)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		warn_err(errno, "loopback: cannot create an IPv4 socket");
		return;
	}
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		warn_err(errno, "loopback: cannot read the flags of lo");
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
		warn_err(errno, "loopback: cannot bring lo up");
		goto out;
	}
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		warn_err(errno, "loopback: cannot set 127.0.0.1 on lo");
out:
	close(fd);
}

static long elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Waits for the parent's answer within what is left of the timeout. */
static void heartbeat_answer(int fd, const struct timespec *start)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	long left = HEARTBEAT_TIMEOUT_S * 1000L - elapsed_ms(start);
	uint8_t b;
	ssize_t n;
	int r;

	do
		r = poll(&pfd, 1, left > 0 ? (int)left : 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		die(errno, "heartbeat: waiting for the parent's answer");
	if (r == 0)
		die(0, "heartbeat: no answer from the parent within %d s", HEARTBEAT_TIMEOUT_S);
	n = read(fd, &b, 1);
	if (n < 0)
		die(errno, "heartbeat: cannot read the parent's answer");
	if (n == 0)
		die(0, "heartbeat: the parent closed the connection without answering");
	if (b != HEARTBEAT_BYTE)
		die(0, "heartbeat: the parent answered 0x%02x, expected 0x%02x", b, HEARTBEAT_BYTE);
}

/*
 * A stream to the parent (CID 3) on `port` within timeout_s, or -1 with errno
 * and *failed naming the step that failed. The heartbeat and the exit report
 * both connect this way.
 */
int vsock_connect_parent(unsigned port, int timeout_s, const char **failed)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = HEARTBEAT_CID,
		.svm_port = port,
	};
	struct timeval tv = {.tv_sec = timeout_s};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	*failed = "create a vsock socket";
	if (fd < 0)
		return -1;
	*failed = "set the vsock connect timeout";
	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) == 0) {
		*failed = "connect";
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
	}
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/*
 * The parent listens on (CID 3, port 9000) before it starts the enclave and waits
 * for 0xB7, answering 0xB7. Unlike AWS's init this has a timeout, so a missing
 * parent ends the boot with a message instead of a hang.
 */
void heartbeat(void)
{
	struct timespec start;
	uint8_t b = HEARTBEAT_BYTE;
	const char *failed;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &start);
	fd = vsock_connect_parent(HEARTBEAT_PORT, HEARTBEAT_TIMEOUT_S, &failed);
	if (fd < 0 && strcmp(failed, "connect") == 0)
		die(errno, "heartbeat: cannot connect to the parent (CID %d, port %d)",
		    HEARTBEAT_CID, HEARTBEAT_PORT);
	if (fd < 0)
		die(errno, "heartbeat: cannot %s", failed);
	if (write(fd, &b, 1) != 1)
		die(errno, "heartbeat: cannot send 0x%02x to the parent", HEARTBEAT_BYTE);
	heartbeat_answer(fd, &start);
	close(fd);
	say("heartbeat answered");
}
