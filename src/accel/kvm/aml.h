/* A tiny AML (ACPI Machine Language) encoder: just what nectl's DSDT needs
 * (scopes, devices, named strings, integers, EISA ids and resource templates).
 * Writes into a fixed caller buffer; an overflow is sticky and reported once
 * at the end, so building code stays a straight line of calls. */
#ifndef NECTL_ACCEL_KVM_AML_H
#define NECTL_ACCEL_KVM_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
void aml_bytes(struct aml *a, const void *src, size_t n);
void aml_byte(struct aml *a, uint8_t b);
void aml_le16(struct aml *a, uint16_t v);
void aml_le32(struct aml *a, uint32_t v);

/* A package (Scope, Device, Buffer) is opened at its body's start and closed
 * once the body is written, when its PkgLength is known and inserted. */
size_t aml_pkg_begin(struct aml *a);
void aml_pkg_end(struct aml *a, size_t start);

/* Scope(name) and Device(name): returns the package start for aml_pkg_end. */
size_t aml_scope_begin(struct aml *a, const char *name);
size_t aml_device_begin(struct aml *a, const char *seg);

/* Name(seg, ...) with a string, an integer or an EisaId("PNP0501") value. */
void aml_name_string(struct aml *a, const char *seg, const char *s);
void aml_name_int(struct aml *a, const char *seg, uint64_t v);
/* Name (SEG, Package (n) {v[0], ...}) with integer elements, n < 256. */
void aml_name_package(struct aml *a, const char *seg, const uint64_t *v, unsigned n);
void aml_name_eisaid(struct aml *a, const char *seg, const char *id);
void aml_integer(struct aml *a, uint64_t v);
/* EisaId() compression of a 7-character id such as "PNP0501". */
uint32_t aml_eisaid(const char *id);

/* Name(seg, ResourceTemplate() { ... }): begin, add descriptors, end. */
size_t aml_restemplate_begin(struct aml *a, const char *seg);
void aml_restemplate_end(struct aml *a, size_t start);
void aml_res_mem32_fixed(struct aml *a, bool rw, uint32_t base, uint32_t size);
/* Interrupt(ResourceConsumer, level?Level:Edge, ActiveHigh, Exclusive) {irq} */
void aml_res_interrupt(struct aml *a, bool level, uint32_t irq);
void aml_res_io16(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void aml_res_irq_noflags(struct aml *a, unsigned irq);

#endif
