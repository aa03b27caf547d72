/* 16550A UART, register-compatible with what Linux's 8250 driver probes and
 * drives. The transmitter is infinitely fast (THR is empty again as soon as
 * it is written), so nothing the guest does can make the host wait; the
 * receive FIFO pushes back on the host instead of dropping input. */
#include <string.h>

#include "nectl/uart.h"

/* Register offsets; DLAB (LCR bit 7) turns 0 and 1 into the divisor. */
enum {
	REG_DATA = 0, /* RBR on read, THR on write; DLL with DLAB */
	REG_IER = 1,  /* DLM with DLAB */
	REG_IIR = 2,  /* FCR on write */
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* transmit holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI	 0x08 /* modem status */
#define IER_MASK 0x0f /* the rest read as 0 (Linux's probe checks this) */

#define IIR_MSI	   0x00
#define IIR_NO_INT 0x01
#define IIR_THRI   0x02
#define IIR_RDI	   0x04
#define IIR_RLSI   0x06
#define IIR_ID	   0x0f
#define IIR_FIFO   0xc0 /* both bits: a 16550A with working FIFOs */

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_KEEP     0xc9 /* enable, DMA mode, RX trigger; 1 and 2 self-clear */

#define LCR_8N1	 0x03
#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08 /* gates the interrupt line on PCs */
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	 0x01
#define LSR_OE	 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_DELTA 0x0f
#define MSR_CTS	  0x10
#define MSR_DSR	  0x20
#define MSR_RI	  0x40
#define MSR_DCD	  0x80
#define MSR_LINES 0xf0

/* Divisor 12 (9600 baud), what Linux programs by default anyway; zero would
 * make a probe of the current baud rate divide by zero. */
#define RESET_DIVISOR 12

static uint8_t pending_id(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr & LSR_OE))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thr_interrupt)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & MSR_DELTA))
		return IIR_MSI;
	return IIR_NO_INT;
}

/* Called after every state change: recomputes IIR and drives the line. */
static void update(struct uart *u)
{
	uint8_t id = pending_id(u);
	int level = id != IIR_NO_INT && (u->mcr & MCR_OUT2);

	u->iir = id | ((u->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
	if (level == u->irq_level)
		return;
	u->irq_level = level;
	if (u->set_irq)
		u->set_irq(u->ctx, level);
}

static unsigned rx_capacity(const struct uart *u)
{
	/* With FIFOs off a 16550A is a 16450: one receive holding register. */
	return (u->fcr & FCR_ENABLE) ? UART_RX_FIFO : 1;
}

static bool rx_push(struct uart *u, uint8_t c)
{
	if (u->rx_count >= rx_capacity(u))
		return false;
	u->rx[(u->rx_head + u->rx_count) % UART_RX_FIFO] = c;
	u->rx_count++;
	u->lsr |= LSR_DR;
	return true;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t c;

	if (!u->rx_count)
		return 0;
	c = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_RX_FIFO;
	if (--u->rx_count == 0)
		u->lsr &= ~LSR_DR;
	return c;
}

static void rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
	u->lsr &= ~LSR_DR;
}

/* Input lines as the modem would drive them. */
static uint8_t modem_lines(const struct uart *u)
{
	uint8_t m = u->mcr;

	/* A terminal that is always there and always ready. */
	if (!(m & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback wires the outputs to the inputs; Linux's port test checks
	 * that RTS and OUT2 come back as CTS and DCD. */
	return ((m & MCR_DTR) ? MSR_DSR : 0) | ((m & MCR_RTS) ? MSR_CTS : 0) |
	       ((m & MCR_OUT1) ? MSR_RI : 0) | ((m & MCR_OUT2) ? MSR_DCD : 0);
}

static void set_modem_lines(struct uart *u, uint8_t lines)
{
	uint8_t old = u->msr & MSR_LINES;
	uint8_t changed = old ^ lines;
	uint8_t delta = u->msr & MSR_DELTA;

	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		delta |= MSR_TERI; /* trailing edge only */
	u->msr = lines | delta;
}

void uart_init(struct uart *u, void (*tx)(void *ctx, const uint8_t *buf, size_t len),
	       void (*set_irq)(void *ctx, int level), void *ctx)
{
	memset(u, 0, sizeof(*u));
	u->lcr = LCR_8N1;
	u->dll = RESET_DIVISOR;
	u->lsr = LSR_THRE | LSR_TEMT;
	u->iir = IIR_NO_INT;
	u->tx = tx;
	u->set_irq = set_irq;
	u->ctx = ctx;
	set_modem_lines(u, modem_lines(u));
	u->msr &= ~MSR_DELTA; /* power-on is not a line change */
}

static void transmit(struct uart *u, uint8_t c)
{
	if (u->mcr & MCR_LOOP) {
		/* A full receiver loses the byte: a genuine overrun. */
		if (!rx_push(u, c))
			u->lsr |= LSR_OE;
	} else if (u->tx) {
		u->tx(u->ctx, &c, 1);
	}
	/* Writing THR clears the THRE interrupt, and the byte is gone at
	 * once, so THR is empty again and the interrupt re-arms. */
	u->thr_interrupt = true;
}

static void write_ier(struct uart *u, uint8_t val)
{
	uint8_t changed = (u->ier ^ val) & IER_THRI;

	u->ier = val & IER_MASK;
	/* THR is always empty, so enabling THRI raises the interrupt at once
	 * (Linux's THRE test and start_tx rely on it, as QEMU notes for
	 * Windows); disabling it forgets a pending one. */
	if (changed)
		u->thr_interrupt = u->ier & IER_THRI;
}

static void write_fcr(struct uart *u, uint8_t val)
{
	/* Switching the FIFOs on or off empties them, as on the 16550A. */
	if ((val ^ u->fcr) & FCR_ENABLE)
		val |= FCR_CLEAR_RX | FCR_CLEAR_TX;
	if (val & FCR_CLEAR_RX)
		rx_clear(u);
	/* The transmit FIFO is always empty: nothing to clear. */
	u->fcr = val & FCR_KEEP;
}

static void write_mcr(struct uart *u, uint8_t val)
{
	u->mcr = val & MCR_MASK;
	set_modem_lines(u, modem_lines(u));
}

void uart_write(struct uart *u, unsigned off, uint8_t val)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (off) {
	case REG_DATA:
		if (dlab)
			u->dll = val;
		else
			transmit(u, val);
		break;
	case REG_IER:
		if (dlab)
			u->dlm = val;
		else
			write_ier(u, val);
		break;
	case REG_IIR:
		write_fcr(u, val);
		break;
	case REG_LCR:
		u->lcr = val;
		break;
	case REG_MCR:
		write_mcr(u, val);
		break;
	case REG_SCR:
		u->scr = val;
		break;
	default:
		/* LSR and MSR are read-only; offsets past 7 are not ours. */
		break;
	}
	update(u);
}

static uint8_t read_iir(struct uart *u)
{
	uint8_t val = u->iir;

	/* Reading IIR is how the driver acknowledges a THRE interrupt. */
	if ((val & IIR_ID) == IIR_THRI)
		u->thr_interrupt = false;
	return val;
}

static uint8_t read_clear(uint8_t *reg, uint8_t clear)
{
	uint8_t val = *reg;

	*reg &= ~clear;
	return val;
}

uint8_t uart_read(struct uart *u, unsigned off)
{
	bool dlab = u->lcr & LCR_DLAB;
	uint8_t val;

	switch (off) {
	case REG_DATA:
		val = dlab ? u->dll : rx_pop(u);
		break;
	case REG_IER:
		val = dlab ? u->dlm : u->ier;
		break;
	case REG_IIR:
		val = read_iir(u);
		break;
	case REG_LCR:
		val = u->lcr;
		break;
	case REG_MCR:
		val = u->mcr;
		break;
	case REG_LSR:
		val = read_clear(&u->lsr, LSR_OE);
		break;
	case REG_MSR:
		val = read_clear(&u->msr, MSR_DELTA);
		break;
	case REG_SCR:
		val = u->scr;
		break;
	default:
		return 0xff; /* nothing decodes it: an open bus */
	}
	update(u);
	return val;
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	/* In loopback the receiver hears only the transmitter. */
	if (u->mcr & MCR_LOOP)
		return 0;
	while (n < len && rx_push(u, buf[n]))
		n++;
	update(u);
	return n;
}

/* An IN wider than a byte from these 8-bit ports is split by the ISA bus
 * into byte reads of consecutive ports, low byte first (QEMU splits it the
 * same way); past the UART's eight ports nothing answers. So every byte of
 * the guest's register is defined, with the side effects real hardware has
 * (e.g. a 2-byte read of RBR also reads IER). */
void uart_read_bytes(struct uart *u, unsigned off, uint8_t *data, unsigned len)
{
	for (unsigned i = 0; i < len; i++)
		data[i] = uart_read(u, off + i);
}
