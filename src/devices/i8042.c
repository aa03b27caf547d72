/* Minimal i8042. Linux's driver (booted with i8042.noaux i8042.nomux
 * i8042.nopnp i8042.dumbkbd) polls the status register, reads the CTR twice
 * and writes it back; a controller that never answers costs a 0.5 s timeout
 * per read and a failed probe, so the CTR commands are modelled. With
 * dumbkbd the keyboard is never spoken to, so there is no keyboard. */
#include <stddef.h>

#include "nectl/i8042.h"

#define STS_OBF	     0x01 /* output buffer full: data for the guest at 0x60 */
#define STS_SYS	     0x04 /* system flag: self-test passed */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited (else Linux warns "Keylock active") */

#define CMD_READ_CTR  0x20
#define CMD_WRITE_CTR 0x60
#define CMD_SELF_TEST 0xaa
#define CMD_RESET_CPU 0xfe /* pulse the CPU reset line */

#define CTR_KBDINT   0x01
#define CTR_SYS	     0x04
#define CTR_XLATE    0x40
#define SELF_TEST_OK 0x55

void i8042_init(struct i8042 *k, void (*reset)(void *ctx), void *ctx)
{
	*k = (struct i8042){
	    /* What a BIOS leaves behind: keyboard interrupt on, translated. */
	    .ctr = CTR_KBDINT | CTR_SYS | CTR_XLATE,
	    .reset = reset,
	    .ctx = ctx,
	};
}

static void reply(struct i8042 *k, uint8_t val)
{
	k->out = val;
	k->out_full = true;
}

static void command(struct i8042 *k, uint8_t cmd)
{
	/* A new command abandons a CTR write still waiting for its byte. */
	k->want_ctr = false;
	switch (cmd) {
	case CMD_READ_CTR:
		reply(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
		k->want_ctr = true;
		break;
	case CMD_SELF_TEST:
		reply(k, SELF_TEST_OK);
		break;
	case CMD_RESET_CPU:
		if (k->reset)
			k->reset(k->ctx);
		break;
	default:
		/* Everything else (A20 via 0xd1, port enables, ...) has no
		 * effect on this machine. */
		break;
	}
}

uint8_t i8042_read(struct i8042 *k, uint16_t port)
{
	uint8_t val;

	switch (port) {
	case I8042_CMD_PORT:
		/* The input buffer is always empty: commands complete at once. */
		return STS_SYS | STS_UNLOCKED | (k->out_full ? STS_OBF : 0);
	case I8042_DATA_PORT:
		val = k->out_full ? k->out : 0;
		k->out_full = false;
		return val;
	default:
		return 0xff;
	}
}

void i8042_write(struct i8042 *k, uint16_t port, uint8_t val)
{
	switch (port) {
	case I8042_CMD_PORT:
		command(k, val);
		break;
	case I8042_DATA_PORT:
		/* Data not following 0x60 would go to the (absent) keyboard. */
		if (k->want_ctr)
			k->ctr = val;
		k->want_ctr = false;
		break;
	default:
		break;
	}
}

/* As uart_read_bytes: byte i of a wide IN is the port at `port` + i (0x61
 * to 0x63 and 0x65 to 0x67 are not the controller's: 0xff). */
void i8042_read_bytes(struct i8042 *k, uint16_t port, uint8_t *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		data[i] = i8042_read(k, (uint16_t)(port + i));
}
