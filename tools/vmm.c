/* nectl-vmm [--acpi] EIF MEM_MIB CPUS: boots an EIF on nectl's hypervisor
 * with the console on stdout, until the guest resets. The machine is Nitro's
 * (devices on the cmdline, MP table, no ACPI); --acpi adds ACPI tables. At the
 * end it says what the guest's kernel did with the vsock device. A
 * development and test tool for the hypervisor alone (run-enclave wraps the
 * same machine with a supervisor). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nectl/accel.h"
#include "nectl/enclave.h"
#include "nectl/launch_seq.h"
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

/* The machine's own record of the vsock device (not the guest's console). */
static void vmm_report_vsock(struct machine *m)
{
	struct machine_probe p;

	if (machine_device_probe(m, "vsock", &p) == 0)
		fprintf(stderr, "nectl-vmm: vsock device (%s): %s, driver status 0x%x\n",
			p.announced, virtio_probe_name(p.stage), p.status_seen);
}

int main(int argc, char **argv)
{
	/* enum machine_exit's order */
	static const char *const names[] = {"reset",	    "power-off", "stopped",
					    "triple fault", "KVM error", "kernel panic (pvpanic)"};
	struct nectl_err err = {0};
	struct accel *a = NULL;
	struct launch_result r;
	struct accel_exit e;
	bool acpi = argc > 1 && strcmp(argv[1], "--acpi") == 0;
	enum machine_exit why;

	argv += acpi;
	argc -= acpi;
	if (argc != 4) {
		fprintf(stderr, "usage: nectl-vmm [--acpi] EIF MEM_MIB CPUS\n");
		return 2;
	}
	/* The launch sequence every mode shares, on accel/kvm directly. */
	if (accel_kvm_new(&a,
			  &(struct machine_spec){.image_name = argv[1],
						 .console = vmm_console,
						 .vsock_ops = &vmm_vsock,
						 .acpi = acpi},
			  &err) < 0 ||
	    launch_seq_run(a,
			   &(struct launch_spec){.eif_path = argv[1],
						 .memory_bytes = strtoull(argv[2], NULL, 10) << 20,
						 .ncpus = (unsigned)atoi(argv[3]),
						 .cid = 16},
			   &r, &err) < 0) {
		fprintf(stderr, "nectl-vmm: %s\n", err.msg);
		accel_destroy(a);
		return 1;
	}
	a->ops->wait(a, &e);
	why = e.why;
	fprintf(stderr, "nectl-vmm: enclave memory: %s; machine: %s; guest stopped: %s (%s)\n",
		machine_memory_kind(a->ops->machine(a)), acpi ? "nitro+acpi" : "nitro", names[why],
		e.detail);
	vmm_report_vsock(a->ops->machine(a));
	accel_destroy(a);
	return why == MACHINE_EXIT_RESET || why == MACHINE_EXIT_POWEROFF ? 0 : 1;
}
