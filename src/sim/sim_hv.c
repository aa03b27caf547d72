/* The simulated Nitro hypervisor: what a simulated enclave's
 * NE_START_ENCLAVE starts. It boots accel/kvm over exactly the memory the
 * launch donated, finding the EIF at the load offset as the Nitro hypervisor
 * does, and tells the NE device model when the enclave has ended (the
 * enclave fd's EPOLLHUP). One enclave per hypervisor. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nectl/sim_hv.h"

struct sim_hv {
	struct machine_spec tmpl;
	struct machine *m;
	struct ne_vm *vm;
	pthread_t waiter;
	bool running;
	struct accel_exit exit;
};

static void *sim_hv_waiter(void *arg)
{
	struct sim_hv *hv = arg;

	hv->exit.known = true;
	machine_wait(hv->m, &hv->exit.why, hv->exit.detail, sizeof(hv->exit.detail));
	ne_vm_ended(hv->vm);
	return NULL;
}

static int sim_hv_boot(void *ctx, struct ne_vm *vm, const struct ne_sim_boot *b, char *why,
		       size_t len)
{
	struct sim_hv *hv = ctx;
	struct machine_spec spec = hv->tmpl;
	struct nectl_err err = {0};

	if (hv->m) {
		snprintf(why, len, "the simulated hypervisor already runs an enclave");
		return EBUSY;
	}
	spec.memory = b->memory;
	spec.nmemory = b->nmemory;
	spec.image_offset = b->image_offset;
	spec.memory_huge = true; /* the model admits hugetlb memory only */
	spec.ncpus = b->ncpus;
	spec.cid = b->cid;
	/* The model's CPU numbers are the simulated parent's, not this
	 * host's: the vCPUs run wherever the host schedules them. */
	spec.host_cpus = NULL;
	if (machine_create(&hv->m, &spec, &err) < 0 || machine_load_image(hv->m, &err) < 0 ||
	    (spec.ready && spec.ready(spec.ctx, hv->m, &err) < 0) ||
	    machine_start(hv->m, &err) < 0) {
		snprintf(why, len, "simulated hypervisor: %s", err.msg);
		machine_destroy(hv->m);
		hv->m = NULL;
		return EINVAL;
	}
	hv->vm = vm;
	if (pthread_create(&hv->waiter, NULL, sim_hv_waiter, hv) != 0) {
		snprintf(why, len, "simulated hypervisor: cannot start its waiter thread");
		machine_stop(hv->m);
		machine_wait(hv->m, &hv->exit.why, hv->exit.detail, sizeof(hv->exit.detail));
		machine_destroy(hv->m);
		hv->m = NULL;
		return EAGAIN;
	}
	hv->running = true;
	return 0;
}

static void sim_hv_halt(void *ctx)
{
	struct sim_hv *hv = ctx;

	if (!hv->running)
		return;
	machine_stop(hv->m);
	pthread_join(hv->waiter, NULL);
	hv->running = false;
}

static struct machine *sim_hv_machine(void *ctx)
{
	return ((struct sim_hv *)ctx)->m;
}

static void sim_hv_exit(void *ctx, struct accel_exit *out)
{
	*out = ((struct sim_hv *)ctx)->exit;
}

static const struct ne_sim_hv_ops sim_hv_ops = {
    .boot = sim_hv_boot,
    .halt = sim_hv_halt,
    .machine = sim_hv_machine,
    .exit = sim_hv_exit,
};

int sim_hv_attach(struct ne_dev *d, const struct machine_spec *tmpl, struct sim_hv **out,
		  struct nectl_err *err)
{
	struct sim_hv *hv = calloc(1, sizeof(*hv));

	if (!hv)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	hv->tmpl = *tmpl;
	ne_dev_sim_hypervisor(d, &sim_hv_ops, hv);
	*out = hv;
	return 0;
}

void sim_hv_free(struct sim_hv *hv)
{
	if (!hv)
		return;
	sim_hv_halt(hv);
	machine_destroy(hv->m);
	free(hv);
}
