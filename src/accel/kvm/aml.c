/* AML encoding per ACPI 6.x §20 (AML grammar) and §6.4 (resource data types). */
#include <string.h>

#include "accel/kvm/aml.h"

#define AML_ZERO_OP	  0x00
#define AML_ONE_OP	  0x01
#define AML_NAME_OP	  0x08
#define AML_BYTE_PREFIX	  0x0a
#define AML_WORD_PREFIX	  0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX  0x0e
#define AML_SCOPE_OP	  0x10
#define AML_BUFFER_OP	  0x11
#define AML_PACKAGE_OP	  0x12
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP	  0x82
#define AML_ROOT_CHAR	  0x5c

#define RES_IRQ_NOFLAGS 0x22 /* small item 0x04, length 2 */
#define RES_IO		0x47 /* small item 0x08, length 7 */
#define RES_END_TAG	0x79 /* small item 0x0f, length 1 */
#define RES_MEM32_FIXED 0x86
#define RES_EXT_IRQ	0x89

/* The longest body the 4-byte PkgLength encoding can describe. */
#define AML_PKG_MAX 0x0fffffffu

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->p = buf;
	a->len = 0;
	a->cap = cap;
	a->overflow = false;
}

void aml_bytes(struct aml *a, const void *src, size_t n)
{
	if (a->overflow || n > a->cap - a->len) {
		a->overflow = true;
		return;
	}
	memcpy(a->p + a->len, src, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

void aml_le16(struct aml *a, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	aml_bytes(a, b, sizeof(b));
}

void aml_le32(struct aml *a, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	aml_bytes(a, b, sizeof(b));
}

size_t aml_pkg_begin(struct aml *a)
{
	return a->len;
}

/* PkgLength counts itself: one byte up to 63, else a lead byte holding the
 * low nibble and the number of following bytes, which hold the rest. */
void aml_pkg_end(struct aml *a, size_t start)
{
	size_t body, total;
	unsigned n;
	uint8_t enc[4];

	if (a->overflow)
		return;
	body = a->len - start;
	if (body + 1 <= 0x3f) {
		n = 1;
		enc[0] = (uint8_t)(body + 1);
	} else {
		if (body + 2 <= 0xfff)
			n = 2;
		else if (body + 3 <= 0xfffff)
			n = 3;
		else if (body + 4 <= AML_PKG_MAX)
			n = 4;
		else {
			a->overflow = true;
			return;
		}
		total = body + n;
		enc[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (n > a->cap - a->len) {
		a->overflow = true;
		return;
	}
	memmove(a->p + start + n, a->p + start, body);
	memcpy(a->p + start, enc, n);
	a->len += n;
}

static void aml_nameseg(struct aml *a, const char *seg)
{
	char s[4] = {'_', '_', '_', '_'};

	/* Short names are padded with '_', as iasl does. */
	for (size_t i = 0; i < 4 && seg[i]; i++)
		s[i] = seg[i];
	aml_bytes(a, s, 4);
}

size_t aml_scope_begin(struct aml *a, const char *name)
{
	size_t start;

	aml_byte(a, AML_SCOPE_OP);
	start = aml_pkg_begin(a);
	if (name[0] == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		name++;
	}
	aml_nameseg(a, name);
	return start;
}

size_t aml_device_begin(struct aml *a, const char *seg)
{
	size_t start;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	start = aml_pkg_begin(a);
	aml_nameseg(a, seg);
	return start;
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le16(a, (uint16_t)v);
	} else if (v <= 0xffffffffu) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le32(a, (uint32_t)v);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le32(a, (uint32_t)v);
		aml_le32(a, (uint32_t)(v >> 32));
	}
}

void aml_name_string(struct aml *a, const char *seg, const char *s)
{
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, seg);
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

void aml_name_int(struct aml *a, const char *seg, uint64_t v)
{
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, seg);
	aml_integer(a, v);
}

void aml_name_package(struct aml *a, const char *seg, const uint64_t *v, unsigned n)
{
	size_t pkg;

	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, seg);
	aml_byte(a, AML_PACKAGE_OP);
	pkg = aml_pkg_begin(a);
	aml_byte(a, (uint8_t)n);
	for (unsigned i = 0; i < n; i++)
		aml_integer(a, v[i]);
	aml_pkg_end(a, pkg);
}

static uint32_t hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (uint32_t)(c - '0');
	if (c >= 'A' && c <= 'F')
		return (uint32_t)(c - 'A' + 10);
	return 0;
}

/* Three 5-bit letters then four hex digits, stored big-endian as ACPI §19.6.35
 * describes and then read as a little-endian DWORD. */
uint32_t aml_eisaid(const char *id)
{
	uint32_t c1 = (uint32_t)(id[0] - 0x40) & 0x1f;
	uint32_t c2 = (uint32_t)(id[1] - 0x40) & 0x1f;
	uint32_t c3 = (uint32_t)(id[2] - 0x40) & 0x1f;
	uint8_t b[4];

	b[0] = (uint8_t)((c1 << 2) | (c2 >> 3));
	b[1] = (uint8_t)(((c2 & 7) << 5) | c3);
	b[2] = (uint8_t)((hexval(id[3]) << 4) | hexval(id[4]));
	b[3] = (uint8_t)((hexval(id[5]) << 4) | hexval(id[6]));
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

void aml_name_eisaid(struct aml *a, const char *seg, const char *id)
{
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, seg);
	/* Always a DWORD, even when a shorter integer encoding would fit. */
	aml_byte(a, AML_DWORD_PREFIX);
	aml_le32(a, aml_eisaid(id));
}

/* The buffer's size is an integer term before its bytes, known only once the
 * descriptors are written, so the body is built first and the size inserted. */
size_t aml_restemplate_begin(struct aml *a, const char *seg)
{
	aml_byte(a, AML_NAME_OP);
	aml_nameseg(a, seg);
	aml_byte(a, AML_BUFFER_OP);
	return aml_pkg_begin(a);
}

void aml_restemplate_end(struct aml *a, size_t start)
{
	uint8_t sz[8];
	struct aml s;
	size_t body;

	/* End tag; a zero checksum means "treat as summed to zero". */
	aml_byte(a, RES_END_TAG);
	aml_byte(a, 0);
	if (a->overflow)
		return;
	body = a->len - start;
	aml_init(&s, sz, sizeof(sz));
	aml_integer(&s, body);
	if (s.len > a->cap - a->len) {
		a->overflow = true;
		return;
	}
	memmove(a->p + start + s.len, a->p + start, body);
	memcpy(a->p + start, sz, s.len);
	a->len += s.len;
	aml_pkg_end(a, start);
}

void aml_res_mem32_fixed(struct aml *a, bool rw, uint32_t base, uint32_t size)
{
	aml_byte(a, RES_MEM32_FIXED);
	aml_le16(a, 9);
	aml_byte(a, rw ? 1 : 0);
	aml_le32(a, base);
	aml_le32(a, size);
}

void aml_res_interrupt(struct aml *a, bool level, uint32_t irq)
{
	aml_byte(a, RES_EXT_IRQ);
	aml_le16(a, 6);
	/* bit 0 consumer, bit 1 edge, bit 2 active-low, bit 3 shared */
	aml_byte(a, (uint8_t)(0x01 | (level ? 0 : 0x02)));
	aml_byte(a, 1);
	aml_le32(a, irq);
}

void aml_res_io16(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	aml_byte(a, RES_IO);
	aml_byte(a, 1); /* Decode16 */
	aml_le16(a, min);
	aml_le16(a, max);
	aml_byte(a, align);
	aml_byte(a, len);
}

void aml_res_irq_noflags(struct aml *a, unsigned irq)
{
	aml_byte(a, RES_IRQ_NOFLAGS);
	aml_le16(a, (uint16_t)(1u << (irq & 15)));
}
