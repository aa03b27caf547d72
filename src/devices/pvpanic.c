/* pvpanic: the guest kernel's own report of a panic (see nectl/pvpanic.h). */
#include <stddef.h>

#include "nectl/pvpanic.h"

#define PVPANIC_OFFERED (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

void pvpanic_init(struct pvpanic *p, void (*event)(void *ctx, uint8_t events), void *ctx)
{
	p->event = event;
	p->ctx = ctx;
}

uint8_t pvpanic_read(const struct pvpanic *p)
{
	(void)p;
	return PVPANIC_OFFERED;
}

void pvpanic_write(struct pvpanic *p, uint8_t val)
{
	/* Bits the device does not offer are ignored, as QEMU does. */
	val &= PVPANIC_OFFERED;
	if (val && p->event)
		p->event(p->ctx, val);
}
