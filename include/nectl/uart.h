/* A 16550A-compatible UART at the standard COM1 I/O ports (0x3f8, IRQ 4):
 * the enclave's console. Transmitted bytes go to a callback; nothing the
 * guest writes can make the host block. */
#ifndef NECTL_UART_H
#define NECTL_UART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ  4
#define UART_RX_FIFO   64

struct uart {
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	uint8_t rx[UART_RX_FIFO];
	unsigned rx_head, rx_count;
	bool thr_interrupt; /* THR-empty interrupt pending */
	int irq_level;
	/* Console output; called from the vCPU's port write, so it must not
	 * block (buffer or drop instead). */
	void (*tx)(void *ctx, const uint8_t *buf, size_t len);
	void (*set_irq)(void *ctx, int level); /* only on level changes */
	void *ctx;
};

void uart_init(struct uart *u, void (*tx)(void *ctx, const uint8_t *buf, size_t len),
	       void (*set_irq)(void *ctx, int level), void *ctx);
/* Port accesses at offset 0..7 from the base (one byte). */
uint8_t uart_read(struct uart *u, unsigned off);
/* A `len`-byte IN at offset `off`: byte i is the register at off + i, 0xff
 * past the UART (the ISA bus splits wide accesses to byte-wide ports). */
void uart_read_bytes(struct uart *u, unsigned off, uint8_t *data, unsigned len);
void uart_write(struct uart *u, unsigned off, uint8_t val);
/* Host input for the guest (console attach); returns bytes accepted. A full
 * FIFO (or loopback mode) refuses the rest rather than losing it: offer it
 * again after the guest has read (no overrun is signalled). */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len);

#endif
