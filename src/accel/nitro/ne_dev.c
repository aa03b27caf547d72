/* The NE device behind one interface (nectl/ne_dev.h): the kernel's ioctls,
 * or the driver model. The model's enclave fd is a pipe's read end whose
 * write end is closed when the enclave ends: exactly POLLHUP, no POLLIN,
 * as the driver's enclave fd. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/nitro_enclaves.h>

#include "nectl/ne_dev.h"

struct ne_dev {
	int fd;		    /* the real device, or -1 */
	struct sim_ne *sim; /* or the model */
};

struct ne_vm {
	struct ne_dev *d;
	int fd;	   /* the enclave fd (real), or the pipe's read end (model) */
	int hup_w; /* the model: the pipe's write end until the enclave ends */
	struct sim_enclave *e;
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
	return vm->e ? sim_ne_add_vcpu(vm->e, cpu) : ne_ioctl(vm->fd, NE_ADD_VCPU, cpu);
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

	if (vm->e)
		return sim_ne_set_memory(vm->e, 0, size, addr);
	return ne_ioctl(vm->fd, NE_SET_USER_MEMORY_REGION, &r);
}

int ne_start(struct ne_vm *vm, bool debug, uint64_t *cid)
{
	struct ne_enclave_start_info info = {.flags = debug ? NE_ENCLAVE_DEBUG_MODE
							    : NE_ENCLAVE_PRODUCTION_MODE,
					     .enclave_cid = *cid};
	int rc;

	if (vm->e)
		return sim_ne_start(vm->e, info.flags, cid);
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

void ne_vm_close(struct ne_vm *vm)
{
	if (!vm)
		return;
	if (vm->e)
		sim_ne_release(vm->e);
	if (vm->hup_w >= 0)
		close(vm->hup_w);
	if (vm->fd >= 0)
		close(vm->fd);
	free(vm);
}
