/* The KVM accelerator on the host's /dev/kvm with a tiny 64-bit guest placed
 * by x86_boot_setup: proves memory slots, long-mode entry state (GDT, page
 * tables, control registers), the run loop's port I/O and stopping. Booting
 * Linux needs a KVM that can run it (the shell VM); this needs only a KVM
 * that runs a few instructions, and is skipped where there is none. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "bzgen.h"

#include "nectl/kvm.h"

#define MEM (128u << 20)
#define SETUP_SECTS 4
#define IMG_LEN (64u << 10)
#define PM_OFF ((SETUP_SECTS + 1) * 512)
#define EXIT_PORT 0x501

struct probe {
	struct kvm_vm *vm;
	char out[64];
	unsigned nout;
	uint32_t exit_value;
	unsigned pio_reads;
};

/* A bzImage whose 64-bit entry (pm offset 0x200) writes "OK" to COM1, reads
 * port 0x60 once, then writes its boot_params pointer (rsi) to EXIT_PORT. */
static void make_image(uint8_t *k)
{
	static const uint8_t code[] = {
		0x66, 0xba, 0xf8, 0x03, /* mov $0x3f8, %dx */
		0xb0, 'O', 0xee,	/* mov $'O', %al; out %al, (%dx) */
		0xb0, 'K', 0xee,	/* mov $'K', %al; out %al, (%dx) */
		0xe4, 0x60,		/* in $0x60, %al */
		0x48, 0x89, 0xf0,	/* mov %rsi, %rax */
		0x66, 0xba, 0x01, 0x05, /* mov $0x501, %dx */
		0xef,			/* out %eax, (%dx) */
		0xf4, 0xeb, 0xfd,	/* hlt; jmp back to hlt */
	};

	bzgen_header(k, IMG_LEN, SETUP_SECTS, 0x1000000, 0x1000000);
	memcpy(k + PM_OFF + 0x200, code, sizeof(code));
}

static void probe_pio(void *ctx, uint16_t port, bool is_write, uint8_t *data, unsigned len)
{
	struct probe *p = ctx;

	if (port == 0x3f8 && is_write && p->nout < sizeof(p->out) - 1)
		p->out[p->nout++] = (char)data[0];
	if (port == 0x60 && !is_write) {
		p->pio_reads++;
		data[0] = 0x5a;
	}
	if (port == EXIT_PORT && is_write && len == 4) {
		memcpy(&p->exit_value, data, 4);
		kvm_vm_stop(p->vm, KVM_STOP_REQUESTED);
	}
}

/* Asserts success, showing the library's message when there is none. */
static void check(int rc, const struct nectl_err *err)
{
	if (rc != 0)
		fprintf(stderr, "error: %s\n", err->msg);
	assert_int_equal(rc, 0);
}

/* KVM maps page-aligned host memory only, as a VMM's mmap gives. */
static uint8_t *guest_alloc(void)
{
	void *p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

static bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void test_boot_and_stop(void **state)
{
	static uint8_t img[IMG_LEN];
	struct guestmem gm = {.n = 1};
	struct probe p = {0};
	struct kvm_bus bus = {.pio = probe_pio, .ctx = &p};
	struct x86_boot_regs regs;
	struct nectl_err err = {0};
	char detail[160];

	(void)state;
	if (!kvm_usable())
		skip();
	gm.r[0] = (struct guestmem_region){0, MEM, guest_alloc()};
	make_image(img);
	check(x86_boot_setup(&gm,
			     &(struct x86_boot_spec){.bzimage = img,
						     .bzimage_len = IMG_LEN,
						     .cmdline = "console=ttyS0",
						     .ncpus = 2},
			     &regs, &err),
	      &err);
	check(kvm_vm_create(&p.vm, &gm, 2, &bus, &err), &err);
	check(kvm_vm_start(p.vm, &regs, &err), &err);
	assert_int_equal(kvm_vm_wait(p.vm, detail, sizeof(detail)), KVM_STOP_REQUESTED);
	kvm_vm_destroy(p.vm);
	assert_string_equal(p.out, "OK");
	assert_int_equal(p.pio_reads, 1);
	assert_int_equal(p.exit_value, X86_BOOT_PARAMS_GPA);
	munmap(gm.r[0].hva, MEM);
}

/* A guest that faults with no IDT triple-faults: reported, not hung. */
static void test_triple_fault(void **state)
{
	static uint8_t img[IMG_LEN];
	static const uint8_t ud2[] = {0x0f, 0x0b};
	struct guestmem gm = {.n = 1};
	struct kvm_bus bus = {0};
	struct x86_boot_regs regs;
	struct nectl_err err = {0};
	struct kvm_vm *vm;
	char detail[160];

	(void)state;
	if (!kvm_usable())
		skip();
	gm.r[0] = (struct guestmem_region){0, MEM, guest_alloc()};
	make_image(img);
	memcpy(img + PM_OFF + 0x200, ud2, sizeof(ud2));
	check(x86_boot_setup(&gm,
			     &(struct x86_boot_spec){.bzimage = img,
						     .bzimage_len = IMG_LEN,
						     .cmdline = "",
						     .ncpus = 1},
			     &regs, &err),
	      &err);
	check(kvm_vm_create(&vm, &gm, 1, &bus, &err), &err);
	check(kvm_vm_start(vm, &regs, &err), &err);
	assert_int_equal(kvm_vm_wait(vm, detail, sizeof(detail)), KVM_STOP_SHUTDOWN);
	assert_non_null(strstr(detail, "triple fault"));
	kvm_vm_destroy(vm);
	munmap(gm.r[0].hva, MEM);
}

static void test_bad_cpu_count(void **state)
{
	struct guestmem gm = {0};
	struct kvm_bus bus = {0};
	struct nectl_err err = {0};
	struct kvm_vm *vm;

	(void)state;
	assert_int_equal(kvm_vm_create(&vm, &gm, 0, &bus, &err), -1);
	assert_int_equal(err.kind, NECTL_ERR_INVALID_ARG);
	assert_int_equal(kvm_vm_create(&vm, &gm, KVM_VM_MAX_CPUS + 1, &bus, &err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_and_stop),
		cmocka_unit_test(test_triple_fault),
		cmocka_unit_test(test_bad_cpu_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
