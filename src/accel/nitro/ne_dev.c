/* The NE device behind one interface (nectl/ne_dev.h): the kernel's ioctls,
 * or the driver model. The model's enclave fd is a pipe's read end whose
 * write end is closed when the enclave ends: exactly POLLHUP, no POLLIN,
 * as the driver's enclave fd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/nitro_enclaves.h>

#include "nectl/ne_dev.h"

struct ne_dev {
	int fd;				    /* the real device, or -1 */
	struct sim_ne *sim;		    /* or the model */
	const struct ne_sim_hv_ops *hv_ops; /* and its hypervisor */
	void *hv;
};

struct ne_vm {
	struct ne_dev *d;
	int fd;	   /* the enclave fd (real), or the pipe's read end (model) */
	int hup_w; /* the model: the pipe's write end until the enclave ends */
	struct sim_enclave *e;
	/* the model: what was donated, for its hypervisor */
	struct mem_region mem[MACHINE_MAX_REGIONS];
	unsigned nmem, ncpus;
	bool too_many, booted;
	char why[NECTL_ERR_MSG_MAX];
};

int ne_dev_open(const char *path, struct ne_dev **out, struct nectl_err *err)
{
	struct ne_dev *d;
	int fd;

	if (!path)
		path = NE_DEV_PATH;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno,
				     "File: '%s', failing operation: 'Open' (is the nitro_enclaves "
				     "driver loaded, and may this user open it?)",
				     path);
	d = calloc(1, sizeof(*d));
	if (!d) {
		close(fd);
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	}
	d->fd = fd;
	*out = d;
	return 0;
}

int ne_dev_open_sim(const struct sim_topology *t, const char *pool, sim_page_fn pages, void *ctx,
		    struct ne_dev **out, struct nectl_err *err)
{
	struct ne_dev *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	d->fd = -1;
	d->sim = sim_ne_new(t, pages ? pages : sim_pages_host, ctx);
	if (!d->sim) {
		free(d);
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	}
	rc = sim_ne_set_pool(d->sim, pool);
	if (rc) {
		ne_dev_close(d);
		return nectl_err_sys(err, NECTL_ERR_CPU_POOL, rc,
				     "simulated NE device: CPU pool `%s` refused", pool);
	}
	*out = d;
	return 0;
}

void ne_dev_sim_hypervisor(struct ne_dev *d, const struct ne_sim_hv_ops *ops, void *hv)
{
	d->hv_ops = ops;
	d->hv = hv;
}

void ne_dev_sim_hold_core(struct ne_dev *d, unsigned cpu)
{
	if (d->sim)
		sim_ne_hold_core(d->sim, cpu);
}

const char *ne_dev_mode(const struct ne_dev *d)
{
	return d->sim ? "simulated" : "native";
}

void ne_dev_close(struct ne_dev *d)
{
	if (!d)
		return;
	if (d->fd >= 0)
		close(d->fd);
	sim_ne_free(d->sim);
	free(d);
}

/* An ioctl's errno (the driver's NE_ERR_* are positive errnos). */
static int ne_ioctl(int fd, unsigned long cmd, void *arg)
{
	int rc;

	do
		rc = ioctl(fd, cmd, arg);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? errno : 0;
}

int ne_create_vm(struct ne_dev *d, struct ne_vm **out, uint64_t *slot_uid)
{
	struct ne_vm *vm = calloc(1, sizeof(*vm));
	int p[2], rc;

	if (!vm)
		return ENOMEM;
	vm->d = d;
	vm->fd = vm->hup_w = -1;
	if (!d->sim) {
		vm->fd = ioctl(d->fd, NE_CREATE_VM, slot_uid);
		if (vm->fd < 0) {
			rc = errno;
			free(vm);
			return rc;
		}
		*out = vm;
		return 0;
	}
	rc = sim_ne_create_vm(d->sim, &vm->e, slot_uid);
	if (rc == 0 && pipe2(p, O_CLOEXEC) < 0) {
		rc = errno;
		sim_ne_release(vm->e);
	}
	if (rc) {
		free(vm);
		return rc;
	}
	vm->fd = p[0];
	vm->hup_w = p[1];
	*out = vm;
	return 0;
}

int ne_add_vcpu(struct ne_vm *vm, uint32_t *cpu)
{
	int rc;

	if (!vm->e)
		return ne_ioctl(vm->fd, NE_ADD_VCPU, cpu);
	rc = sim_ne_add_vcpu(vm->e, cpu);
	if (rc == 0)
		vm->ncpus++;
	return rc;
}

int ne_image_load_info(struct ne_vm *vm, uint64_t *offset)
{
	struct ne_image_load_info info = {.flags = NE_EIF_IMAGE};
	int rc;

	if (vm->e)
		return sim_ne_image_load_info(vm->e, NE_EIF_IMAGE, offset);
	rc = ne_ioctl(vm->fd, NE_GET_IMAGE_LOAD_INFO, &info);
	if (rc == 0)
		*offset = info.memory_offset;
	return rc;
}

int ne_set_memory(struct ne_vm *vm, uintptr_t addr, uint64_t size)
{
	struct ne_user_memory_region r = {
	    .flags = NE_DEFAULT_MEMORY_REGION, .memory_size = size, .userspace_addr = addr};

	int rc;

	if (!vm->e)
		return ne_ioctl(vm->fd, NE_SET_USER_MEMORY_REGION, &r);
	rc = sim_ne_set_memory(vm->e, 0, size, addr);
	if (rc == 0 && vm->nmem < MACHINE_MAX_REGIONS)
		vm->mem[vm->nmem++] = (struct mem_region){(uint8_t *)addr, size};
	else if (rc == 0)
		vm->too_many = true;
	return rc;
}

/* The model's start succeeded: its hypervisor runs what was donated. */
static int ne_sim_boot(struct ne_vm *vm, bool debug, uint64_t cid)
{
	struct ne_dev *d = vm->d;
	struct ne_sim_boot b = {.memory = vm->mem,
				.nmemory = vm->nmem,
				.image_offset = SIM_IMAGE_LOAD_OFFSET,
				.ncpus = vm->ncpus,
				.cid = cid,
				.debug = debug};
	int rc;

	if (!d->hv_ops)
		return 0;
	if (vm->too_many) {
		snprintf(vm->why, sizeof(vm->why),
			 "the simulated hypervisor runs at most %d memory regions",
			 MACHINE_MAX_REGIONS);
		return EINVAL;
	}
	rc = d->hv_ops->boot(d->hv, vm, &b, vm->why, sizeof(vm->why));
	vm->booted = rc == 0;
	return rc;
}

int ne_start(struct ne_vm *vm, bool debug, uint64_t *cid)
{
	struct ne_enclave_start_info info = {.flags = debug ? NE_ENCLAVE_DEBUG_MODE
							    : NE_ENCLAVE_PRODUCTION_MODE,
					     .enclave_cid = *cid};
	int rc;

	if (vm->e) {
		rc = sim_ne_start(vm->e, info.flags, cid);
		return rc ? rc : ne_sim_boot(vm, debug, *cid);
	}
	rc = ne_ioctl(vm->fd, NE_START_ENCLAVE, &info);
	if (rc == 0)
		*cid = info.enclave_cid;
	return rc;
}

int ne_vm_fd(const struct ne_vm *vm)
{
	return vm->fd;
}

void ne_vm_ended(struct ne_vm *vm)
{
	if (!vm->e)
		return;
	sim_ne_stopped(vm->e);
	if (vm->hup_w >= 0) {
		close(vm->hup_w);
		vm->hup_w = -1;
	}
}

const char *ne_vm_why(const struct ne_vm *vm)
{
	return vm->why;
}

void ne_vm_exit(const struct ne_vm *vm, struct accel_exit *out)
{
	memset(out, 0, sizeof(*out));
	if (vm->booted && vm->d->hv_ops)
		vm->d->hv_ops->exit(vm->d->hv, out);
}

struct machine *ne_vm_machine(const struct ne_vm *vm)
{
	return vm && vm->booted && vm->d->hv_ops ? vm->d->hv_ops->machine(vm->d->hv) : NULL;
}

void ne_vm_close(struct ne_vm *vm)
{
	if (!vm)
		return;
	/* The last close ends the enclave: the hypervisor first, then the
	 * model gives back its CPUs and memory. */
	if (vm->booted)
		vm->d->hv_ops->halt(vm->d->hv);
	if (vm->e)
		sim_ne_release(vm->e);
	if (vm->hup_w >= 0)
		close(vm->hup_w);
	if (vm->fd >= 0)
		close(vm->fd);
	free(vm);
}
