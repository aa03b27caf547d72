/* nectl-vmm EIF MEM_MIB CPUS: boots an EIF on nectl's hypervisor with the
 * console on stdout, until the guest resets. A development and test tool for
 * the hypervisor alone (run-enclave wraps the same machine with a supervisor). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nectl/machine.h"

static void vmm_console(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	fwrite(buf, 1, len, stdout);
	fflush(stdout);
}

static int vmm_refuse(void *ctx, uint32_t port, uint64_t conn_id)
{
	(void)ctx;
	(void)port;
	(void)conn_id;
	return -1;
}

static void vmm_heartbeat(void *ctx)
{
	(void)ctx;
	fprintf(stderr, "nectl-vmm: heartbeat answered\n");
}

static const struct vsock_host_ops vmm_vsock = {.connect = vmm_refuse, .heartbeat = vmm_heartbeat};

int main(int argc, char **argv)
{
	static const char *const names[] = {"reset", "power-off", "stopped", "triple fault",
					    "KVM error"};
	struct nectl_err err = {0};
	struct machine *m;
	enum machine_exit why;
	char detail[256] = "";

	if (argc != 4) {
		fprintf(stderr, "usage: nectl-vmm EIF MEM_MIB CPUS\n");
		return 2;
	}
	if (machine_create(&m,
			   &(struct machine_spec){.eif_path = argv[1],
						  .mem_mib = strtoull(argv[2], NULL, 10),
						  .ncpus = (unsigned)atoi(argv[3]),
						  .cid = 16,
						  .console = vmm_console,
						  .vsock_ops = &vmm_vsock},
			   &err) < 0 ||
	    machine_run(m, &why, detail, sizeof(detail), &err) < 0) {
		fprintf(stderr, "[ E%02d ] %s\n", err.code, err.msg);
		return err.code ? err.code : 1;
	}
	fprintf(stderr, "nectl-vmm: enclave memory: %s; guest stopped: %s (%s)\n",
		machine_memory_kind(m), names[why], detail);
	machine_destroy(m);
	return why == MACHINE_EXIT_RESET || why == MACHINE_EXIT_POWEROFF ? 0 : 1;
}
