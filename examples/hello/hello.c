/*
 * The nectl sample enclave app: greets on the console, then echoes lines back to
 * anyone who connects to vsock port 5000 (from the parent: CID = the enclave's).
 * Static, so a rootfs with only /bin/hello in it is a complete image.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define ECHO_PORT 5000

static void greet(int argc, char **argv)
{
	const char *greeting = getenv("GREETING");

	printf("Hello from the nectl sample enclave!\n");
	for (int i = 0; i < argc; i++)
		printf("hello: argv[%d] = %s\n", i, argv[i]);
	if (greeting)
		printf("hello: GREETING = %s\n", greeting);
}

/* Echoes line by line; a line longer than the buffer comes back in pieces. */
static void echo_lines(int fd)
{
	char line[4096];
	FILE *in = fdopen(fd, "r");
	FILE *out = fdopen(dup(fd), "w");

	if (!in || !out) {
		perror("hello: fdopen");
		exit(1);
	}
	while (fgets(line, sizeof(line), in)) {
		if (fputs(line, out) == EOF || fflush(out) == EOF)
			break;
	}
	fclose(in);
	fclose(out);
}

static int listen_vsock(unsigned int port)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_ANY,
		.svm_port = port,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("hello: vsock socket");
		exit(1);
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
		fprintf(stderr, "hello: cannot listen on vsock port %u: %s\n", port,
			strerror(errno));
		exit(1);
	}
	return fd;
}

/* One child per client, so a slow client does not hold up the next one. */
static void serve(int lfd)
{
	for (;;) {
		struct sockaddr_vm peer;
		socklen_t len = sizeof(peer);
		int fd = accept(lfd, (struct sockaddr *)&peer, &len);
		pid_t pid;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("hello: accept");
			exit(1);
		}
		printf("hello: client CID %u port %u connected\n", peer.svm_cid, peer.svm_port);
		pid = fork();
		if (pid == 0) {
			close(lfd);
			echo_lines(fd);
			_exit(0);
		}
		if (pid < 0)
			perror("hello: fork");
		close(fd);
	}
}

int main(int argc, char **argv)
{
	int lfd;

	/* The console may not be a terminal; each line should reach it at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	greet(argc, argv);
	/* Children are not waited for: ignoring SIGCHLD lets the kernel reap them. */
	signal(SIGCHLD, SIG_IGN);
	lfd = listen_vsock(ECHO_PORT);
	printf("hello: listening on vsock port %d\n", ECHO_PORT);
	serve(lfd);
}
