/* The smallest i8042 keyboard controller Linux is content with: it answers
 * the controller-configuration reads the i8042 driver makes at boot (so the
 * probe does not time out), has no keyboard behind it, and turns the reset
 * command (0xFE on port 0x64, what reboot=k writes) into a callback. */
#ifndef NECTL_I8042_H
#define NECTL_I8042_H

#include <stdbool.h>
#include <stdint.h>

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT	0x64 /* status on read, command on write */

struct i8042 {
	uint8_t ctr; /* controller configuration ("command byte") */
	uint8_t out; /* output buffer, valid while out_full */
	bool out_full;
	bool want_ctr;		  /* the next data-port write is the new CTR */
	void (*reset)(void *ctx); /* may be called repeatedly: Linux retries */
	void *ctx;
};

void i8042_init(struct i8042 *k, void (*reset)(void *ctx), void *ctx);
/* Accesses by absolute port number; ports other than 0x60/0x64 read 0xff. */
uint8_t i8042_read(struct i8042 *k, uint16_t port);
/* A `len`-byte IN: byte i is the port at `port` + i, as uart_read_bytes. */
void i8042_read_bytes(struct i8042 *k, uint16_t port, uint8_t *data, unsigned len);
void i8042_write(struct i8042 *k, uint16_t port, uint8_t val);

#endif
