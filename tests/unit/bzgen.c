/* bzgen.c: see bzgen.h. Offsets: Documentation/arch/x86/boot.rst. */
#include <string.h>

#include "util/le.h"

#include "bzgen.h"

void bzgen_header(uint8_t *k, size_t len, unsigned setup_sects, uint64_t pref, uint32_t init_size)
{
	memset(k, 0, len);
	k[0x1f1] = (uint8_t)setup_sects;
	le16_put(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = 0x66; /* header ends at 0x268 */
	memcpy(k + 0x202, "HdrS", 4);
	le16_put(k + 0x206, 0x020f);
	k[0x211] = 0x01;		 /* LOADED_HIGH */
	le32_put(k + 0x22c, 0x7fffffff); /* initrd_addr_max */
	le32_put(k + 0x230, 0x200000);	 /* kernel_alignment */
	k[0x234] = 1;			 /* relocatable */
	le16_put(k + 0x236, 0x3);	 /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	le32_put(k + 0x238, 2047);	 /* cmdline_size */
	le64_put(k + 0x258, pref);
	le32_put(k + 0x260, init_size);
}
