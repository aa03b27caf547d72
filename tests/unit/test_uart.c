/* The COM1 16550A and the i8042 reset path, driven the way Linux's 8250 and
 * i8042 drivers drive them, plus random abuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nectl/i8042.h"
#include "nectl/uart.h"

enum {
	RBR = 0,
	THR = 0,
	DLL = 0,
	IER = 1,
	DLM = 1,
	IIR = 2,
	FCR = 2,
	LCR = 3,
	MCR = 4,
	LSR = 5,
	MSR = 6,
	SCR = 7
};

struct sink {
	uint8_t out[4096];
	size_t len;
	unsigned tx_calls, tx_empty_calls;
	int level;
	unsigned irq_calls, irq_repeats;
	unsigned resets;
};

static void sink_tx(void *ctx, const uint8_t *buf, size_t len)
{
	struct sink *s = ctx;

	s->tx_calls++;
	if (!len)
		s->tx_empty_calls++;
	for (size_t i = 0; i < len; i++)
		s->out[s->len++ % sizeof(s->out)] = buf[i];
}

static void sink_irq(void *ctx, int level)
{
	struct sink *s = ctx;

	if (level == s->level)
		s->irq_repeats++;
	s->level = level;
	s->irq_calls++;
}

static void sink_reset(void *ctx)
{
	((struct sink *)ctx)->resets++;
}

static void setup(struct uart *u, struct sink *s)
{
	memset(s, 0, sizeof(*s));
	uart_init(u, sink_tx, sink_irq, s);
}

static void test_reset_state(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	assert_int_equal(uart_read(&u, LSR), 0x60);
	assert_int_equal(uart_read(&u, IIR), 0x01);
	assert_int_equal(uart_read(&u, MSR), 0xb0); /* DCD, DSR, CTS */
	assert_int_equal(uart_read(&u, IER), 0);
	assert_int_equal(uart_read(&u, 8), 0xff);
	assert_int_equal(s.irq_calls, 0);
	assert_int_equal(s.tx_calls, 0);
}

/* serial8250 autoconfig(), step by step. */
static void test_linux_probe(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	/* IER: only the low nibble exists. */
	uart_write(&u, IER, 0);
	assert_int_equal(uart_read(&u, IER) & 0x0f, 0);
	uart_write(&u, IER, 0x0f);
	assert_int_equal(uart_read(&u, IER) & 0x0f, 0x0f);
	uart_write(&u, IER, 0);
	/* Loopback test: RTS|OUT2 come back as CTS|DCD. */
	uart_write(&u, MCR, 0x10 | 0x0a);
	assert_int_equal(uart_read(&u, MSR) & 0xf0, 0x90);
	uart_write(&u, MCR, 0);
	assert_int_equal(uart_read(&u, MSR) & 0xf0, 0xb0);
	/* EFR probe lands in FCR on a plain 16550A; then FIFO detection. */
	uart_write(&u, LCR, 0xbf);
	uart_write(&u, FCR, 0);
	uart_write(&u, LCR, 0);
	uart_write(&u, FCR, 0x01);
	assert_int_equal(uart_read(&u, IIR) >> 6, 3);
	/* Not an ST16C650 / XR16C850 (EFR reads as IIR). */
	uart_write(&u, LCR, 0xbf);
	assert_int_not_equal(uart_read(&u, IIR), 0);
	uart_write(&u, LCR, 0x80);
	assert_int_not_equal(uart_read(&u, IIR), 0);
	/* Not a 16750: the 64-byte bit never shows in IIR. */
	uart_write(&u, LCR, 0);
	uart_write(&u, FCR, 0x21);
	assert_int_equal(uart_read(&u, IIR) & 0xe0, 0xc0);
	uart_write(&u, LCR, 0x80);
	uart_write(&u, FCR, 0x21);
	assert_int_equal(uart_read(&u, IIR) & 0xe0, 0xc0);
	uart_write(&u, LCR, 0);
	/* Not an XScale: IER bit 6 does not stick. */
	uart_write(&u, IER, 0x40);
	assert_int_equal(uart_read(&u, IER) & 0x40, 0);
	/* Scratch register. */
	uart_write(&u, SCR, 0xa5);
	assert_int_equal(uart_read(&u, SCR), 0xa5);
	uart_write(&u, SCR, 0x5a);
	assert_int_equal(uart_read(&u, SCR), 0x5a);
	/* FIFO clear, then the startup sanity check: LSR is not 0xff. */
	uart_write(&u, FCR, 0x01);
	uart_write(&u, FCR, 0x07);
	uart_write(&u, FCR, 0);
	assert_int_equal(uart_read(&u, IIR), 0x01);
	assert_int_equal(uart_read(&u, LSR), 0x60);
	assert_int_equal(s.tx_calls, 0);
}

static void test_divisor(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	/* A probe of the current baud rate must not find divisor 0. */
	uart_write(&u, LCR, 0x83);
	assert_int_not_equal(uart_read(&u, DLL) | (uart_read(&u, DLM) << 8), 0);
	uart_write(&u, DLL, 0x01);
	uart_write(&u, DLM, 0x00);
	uart_write(&u, LCR, 0x03);
	assert_int_equal(uart_read(&u, LCR), 0x03);
	/* Offsets 0 and 1 are THR and IER again; the divisor is kept. */
	assert_int_equal(uart_read(&u, IER), 0);
	uart_write(&u, LCR, 0x83);
	assert_int_equal(uart_read(&u, DLL), 0x01);
	assert_int_equal(uart_read(&u, DLM), 0x00);
	uart_write(&u, DLM, 0x12);
	assert_int_equal(uart_read(&u, DLM), 0x12);
	uart_write(&u, LCR, 0x03);
	assert_int_equal(uart_read(&u, IER), 0); /* DLM did not leak into IER */
	assert_int_equal(s.tx_calls, 0);	 /* nor DLL writes into TX */
}

/* serial8250_do_startup's THRE test, and start/stop tx. */
static void test_thre_interrupt(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	uart_write(&u, FCR, 0x81);
	uart_write(&u, MCR, 0x0b); /* DTR | RTS | OUT2 */
	uart_write(&u, IER, 0x02);
	assert_int_equal(uart_read(&u, LSR) & 0x60, 0x60);
	assert_int_equal(s.level, 1);
	assert_int_equal(uart_read(&u, IIR), 0xc2);
	/* Reading IIR acknowledged it. */
	assert_int_equal(s.level, 0);
	assert_int_equal(uart_read(&u, IIR), 0xc1);
	uart_write(&u, IER, 0);
	uart_write(&u, IER, 0x02);
	assert_int_equal(uart_read(&u, IIR), 0xc2); /* re-raised: no UART_BUG_THRE */
	/* A write re-arms it: the byte left at once. */
	uart_write(&u, THR, 'x');
	assert_int_equal(s.level, 1);
	assert_int_equal(uart_read(&u, LSR) & 0x60, 0x60);
	/* stop_tx: clearing THRI drops the line and forgets the interrupt. */
	uart_write(&u, IER, 0);
	assert_int_equal(s.level, 0);
	assert_int_equal(uart_read(&u, IIR), 0xc1);
	assert_int_equal(s.irq_repeats, 0);
}

static void test_tx_order(void **state)
{
	static const char msg[] = "Linux version 6.12 (enclave) #1 SMP\r\n";
	struct uart u;
	struct sink s;

	setup(&u, &s);
	for (size_t i = 0; i < sizeof(msg) - 1; i++) {
		uart_write(&u, THR, (uint8_t)msg[i]);
		/* Console polling: THRE and TEMT right away. */
		assert_int_equal(uart_read(&u, LSR) & 0x60, 0x60);
	}
	assert_int_equal(s.len, sizeof(msg) - 1);
	assert_memory_equal(s.out, msg, sizeof(msg) - 1);
	assert_int_equal(s.tx_empty_calls, 0);
	/* IRQ stays low without OUT2 and IER. */
	assert_int_equal(s.irq_calls, 0);
}

static void test_rx_fifo(void **state)
{
	uint8_t big[100];
	struct uart u;
	struct sink s;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	setup(&u, &s);
	uart_write(&u, FCR, 0x81);
	uart_write(&u, MCR, 0x08);
	uart_write(&u, IER, 0x05); /* RDI | RLSI, as Linux sets */
	assert_int_equal(uart_receive(&u, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(uart_read(&u, LSR), 0x61);
	assert_int_equal(uart_read(&u, IIR), 0xc4);
	assert_int_equal(s.level, 1);
	assert_int_equal(uart_read(&u, RBR), 'a');
	assert_int_equal(uart_read(&u, RBR), 'b');
	assert_int_equal(uart_read(&u, IIR), 0xc4); /* data left: still pending */
	assert_int_equal(uart_read(&u, RBR), 'c');
	assert_int_equal(uart_read(&u, LSR), 0x60);
	assert_int_equal(uart_read(&u, IIR), 0xc1);
	assert_int_equal(s.level, 0);
	assert_int_equal(uart_read(&u, RBR), 0); /* empty reads are harmless */

	/* Full FIFO pushes back; nothing is lost, no overrun is claimed. */
	assert_int_equal(uart_receive(&u, big, sizeof(big)), UART_RX_FIFO);
	assert_int_equal(uart_receive(&u, big, 1), 0);
	assert_int_equal(uart_read(&u, LSR), 0x61);
	assert_int_equal(uart_read(&u, IIR), 0xc4);
	for (unsigned i = 0; i < UART_RX_FIFO; i++)
		assert_int_equal(uart_read(&u, RBR), i);
	assert_int_equal(uart_read(&u, LSR) & 0x01, 0);
	assert_int_equal(uart_receive(&u, big + UART_RX_FIFO, 5), 5);
	assert_int_equal(uart_read(&u, RBR), UART_RX_FIFO);

	/* FCR bit 1 empties the receive FIFO. */
	uart_write(&u, FCR, 0x83);
	assert_int_equal(uart_read(&u, LSR), 0x60);
	assert_int_equal(uart_read(&u, IIR), 0xc1);
	assert_int_equal(s.level, 0);

	/* FIFOs off: a single holding register. */
	uart_write(&u, FCR, 0);
	assert_int_equal(uart_receive(&u, big, 3), 1);
	assert_int_equal(uart_read(&u, IIR), 0x04);
	assert_int_equal(uart_read(&u, RBR), 0);
	assert_int_equal(s.irq_repeats, 0);
}

/* A genuine overrun only happens in loopback, where nothing pushes back. */
static void test_loopback_overrun(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	uart_write(&u, FCR, 0x01);
	uart_write(&u, MCR, 0x18); /* LOOP | OUT2 */
	uart_write(&u, IER, 0x05);
	assert_int_equal(uart_receive(&u, (const uint8_t *)"z", 1), 0);
	for (unsigned i = 0; i <= UART_RX_FIFO; i++)
		uart_write(&u, THR, (uint8_t)(i + 1));
	assert_int_equal(s.tx_calls, 0);
	/* Line status outranks received data. */
	assert_int_equal(uart_read(&u, IIR), 0xc6);
	assert_int_equal(s.level, 1);
	assert_int_equal(uart_read(&u, LSR), 0x63); /* OE | DR | THRE | TEMT */
	assert_int_equal(uart_read(&u, LSR), 0x61); /* OE clears on read */
	assert_int_equal(uart_read(&u, IIR), 0xc4);
	assert_int_equal(uart_read(&u, RBR), 1);
	uart_write(&u, FCR, 0x03);
	assert_int_equal(uart_read(&u, IIR), 0xc1);
	assert_int_equal(s.level, 0);
	/* Leaving loopback: TX reaches the host again. */
	uart_write(&u, MCR, 0x08);
	uart_write(&u, THR, 'k');
	assert_int_equal(s.len, 1);
	assert_int_equal(s.out[0], 'k');
	assert_int_equal(s.irq_repeats, 0);
}

static void test_modem_status(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	uart_write(&u, MCR, 0x08);
	uart_write(&u, IER, 0x08);
	assert_int_equal(uart_read(&u, IIR), 0x01);
	/* Entering loopback with DTR and RTS low drops DSR and CTS. */
	uart_write(&u, MCR, 0x18);
	assert_int_equal(uart_read(&u, IIR), 0x00);
	assert_int_equal(s.level, 1);
	assert_int_equal(uart_read(&u, MSR), 0x80 | 0x03);
	assert_int_equal(uart_read(&u, MSR), 0x80);
	assert_int_equal(uart_read(&u, IIR), 0x01);
	assert_int_equal(s.level, 0);
	/* RI falls: trailing-edge indicator. */
	uart_write(&u, MCR, 0x1c);
	assert_int_equal(uart_read(&u, MSR), 0xc0);
	uart_write(&u, MCR, 0x18);
	assert_int_equal(uart_read(&u, MSR), 0x84);
	assert_int_equal(s.irq_repeats, 0);
}

static void test_irq_out2(void **state)
{
	struct uart u;
	struct sink s;

	setup(&u, &s);
	uart_write(&u, IER, 0x02);
	/* Pending, but OUT2 holds the line low. */
	assert_int_equal(s.irq_calls, 0);
	uart_write(&u, MCR, 0x08);
	assert_int_equal(s.irq_calls, 1);
	assert_int_equal(s.level, 1);
	assert_int_equal(u.irq_level, 1);
	uart_write(&u, MCR, 0x09); /* no change of level: no call */
	assert_int_equal(s.irq_calls, 1);
	uart_write(&u, MCR, 0x00);
	assert_int_equal(s.irq_calls, 2);
	assert_int_equal(s.level, 0);
	/* The interrupt is still identified in IIR without OUT2. */
	assert_int_equal(uart_read(&u, IIR), 0x02);
	assert_int_equal(uart_read(&u, IIR), 0x01);
	uart_write(&u, MCR, 0x08);
	assert_int_equal(s.irq_calls, 2);
	assert_int_equal(s.irq_repeats, 0);
}

static void test_null_callbacks(void **state)
{
	struct uart u;

	uart_init(&u, NULL, NULL, NULL);
	uart_write(&u, MCR, 0x08);
	uart_write(&u, IER, 0x0f);
	uart_write(&u, THR, 'a');
	assert_int_equal(uart_receive(&u, (const uint8_t *)"b", 1), 1);
	assert_int_equal(uart_read(&u, IIR), 0x04);
	assert_int_equal(u.irq_level, 1);
}

static void test_i8042(void **state)
{
	struct i8042 k;
	struct sink s;

	memset(&s, 0, sizeof(s));
	i8042_init(&k, sink_reset, &s);
	/* i8042_flush / kb_wait: no data, input buffer empty. */
	assert_int_equal(i8042_read(&k, 0x64) & 0x03, 0);
	assert_int_equal(i8042_read(&k, 0x64) & 0x10, 0x10); /* not inhibited */
	assert_int_equal(i8042_read(&k, 0x60), 0);
	/* i8042_controller_init: two equal CTR reads, then the write back. */
	i8042_write(&k, 0x64, 0x20);
	assert_int_equal(i8042_read(&k, 0x64) & 0x01, 0x01);
	uint8_t ctr = i8042_read(&k, 0x60);
	assert_int_equal(i8042_read(&k, 0x64) & 0x01, 0);
	i8042_write(&k, 0x64, 0x20);
	assert_int_equal(i8042_read(&k, 0x60), ctr);
	i8042_write(&k, 0x64, 0x60);
	i8042_write(&k, 0x60, 0x30);
	i8042_write(&k, 0x64, 0x20);
	assert_int_equal(i8042_read(&k, 0x60), 0x30);
	/* A20 via the output port and keyboard bytes are ignored. */
	i8042_write(&k, 0x64, 0xd1);
	i8042_write(&k, 0x60, 0xdf);
	i8042_write(&k, 0x60, 0xff);
	i8042_write(&k, 0x64, 0x20);
	assert_int_equal(i8042_read(&k, 0x60), 0x30);
	/* Self test answers 0x55. */
	i8042_write(&k, 0x64, 0xaa);
	assert_int_equal(i8042_read(&k, 0x60), 0x55);
	assert_int_equal(i8042_read(&k, 0x61), 0xff);
	assert_int_equal(s.resets, 0);
	/* reboot=k: 0xfe on the command port, and only there. */
	i8042_write(&k, 0x60, 0xfe);
	assert_int_equal(s.resets, 0);
	i8042_write(&k, 0x64, 0xfe);
	assert_int_equal(s.resets, 1);
	assert_int_equal(i8042_read(&k, 0x64) & 0x02, 0);
	i8042_init(&k, NULL, NULL);
	i8042_write(&k, 0x64, 0xfe); /* no callback: nothing happens */
}

static void check_sane(const struct uart *u, const struct sink *s)
{
	uint8_t id = u->iir & 0x0f;

	assert_true(u->rx_count <= UART_RX_FIFO);
	assert_true(u->rx_head < UART_RX_FIFO);
	assert_int_equal(u->lsr & 0x60, 0x60);
	assert_int_equal(!!(u->lsr & 0x01), u->rx_count > 0);
	assert_int_equal(u->ier & 0xf0, 0);
	assert_int_equal(u->mcr & 0xe0, 0);
	assert_true(id == 0 || id == 1 || id == 2 || id == 4 || id == 6);
	assert_int_equal(u->iir & 0x30, 0);
	assert_int_equal(u->irq_level, s->level);
	assert_int_equal(u->irq_level, id != 1 && (u->mcr & 0x08));
	assert_int_equal(s->irq_repeats, 0);
	assert_int_equal(s->tx_empty_calls, 0);
}

static void test_fuzz(void **state)
{
	struct uart u;
	struct sink s;
	struct i8042 k;
	uint8_t in[80];

	srand(1234);
	setup(&u, &s);
	i8042_init(&k, sink_reset, &s);
	for (unsigned i = 0; i < 200000; i++) {
		unsigned op = (unsigned)rand() % 8;
		unsigned off = (unsigned)rand() % 10;
		uint8_t val = (uint8_t)rand();

		if (op < 3) {
			uart_write(&u, off, val);
		} else if (op < 6) {
			(void)uart_read(&u, off);
		} else if (op == 6) {
			size_t n = (size_t)rand() % sizeof(in);

			for (size_t j = 0; j < n; j++)
				in[j] = (uint8_t)rand();
			assert_true(uart_receive(&u, in, n) <= n);
		} else if (val & 1) {
			i8042_write(&k, (val & 2) ? 0x64 : 0x60, val == 0xfe ? 0 : val);
		} else {
			(void)i8042_read(&k, (val & 2) ? 0x64 : 0x60);
		}
		check_sane(&u, &s);
		assert_int_equal(i8042_read(&k, 0x64) & 0x02, 0);
	}
	assert_int_equal(s.resets, 0);
	/* Still a working UART afterwards. */
	uart_init(&u, sink_tx, sink_irq, &s);
	s.len = 0;
	uart_write(&u, THR, 'O');
	uart_write(&u, THR, 'K');
	assert_int_equal(s.len, 2);
	assert_memory_equal(s.out, "OK", 2);
}

/* Two UARTs brought to the same state: a byte received, IER,
 * LCR and the scratch register set. */
static void wide_pair(struct uart u[2], struct sink *s)
{
	for (unsigned i = 0; i < 2; i++) {
		uart_init(&u[i], sink_tx, sink_irq, s);
		uart_write(&u[i], LCR, 0x03);
		uart_write(&u[i], IER, 0x05);
		uart_write(&u[i], SCR, 0x5a);
		assert_int_equal(uart_receive(&u[i], (const uint8_t *)"A", 1), 1);
	}
}

/* A 2- or 4-byte IN from a byte-wide port fills every byte, as the ISA bus
 * splits it: byte i is the register at port + i (0xff where nothing
 * decodes), never what the buffer held before. */
static void test_uart_wide_port_reads_fill_every_byte(void **state)
{
	static const unsigned offs[] = {0, 2, 5, 6, 7};
	struct sink s = {0};

	(void)state;
	for (unsigned w = 2; w <= 4; w += 2) {
		for (unsigned o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
			struct uart u[2];
			uint8_t got[4], want[4];

			wide_pair(u, &s);
			memset(got, 0xa5, sizeof(got));
			uart_read_bytes(&u[0], offs[o], got, w);
			for (unsigned i = 0; i < w; i++)
				want[i] = uart_read(&u[1], offs[o] + i);
			assert_memory_equal(got, want, w);
			/* With the same side effects (the FIFO popped once). */
			for (unsigned r = 0; r < 8; r++)
				assert_int_equal(uart_read(&u[0], r), uart_read(&u[1], r));
		}
	}
}

static void test_i8042_wide_port_reads_fill_every_byte(void **state)
{
	struct sink s = {0};
	struct i8042 k;
	uint8_t b[4];

	(void)state;
	i8042_init(&k, sink_reset, &s);
	i8042_write(&k, 0x64, 0xaa);
	memset(b, 0xa5, sizeof(b));
	i8042_read_bytes(&k, 0x64, b, 2);
	assert_int_equal(b[0], 0x15); /* SYS, unlocked, output full */
	assert_int_equal(b[1], 0xff); /* 0x65: nothing there */
	memset(b, 0xa5, sizeof(b));
	i8042_read_bytes(&k, 0x60, b, 4);
	assert_memory_equal(b, "\x55\xff\xff\xff", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reset_state),
	    cmocka_unit_test(test_linux_probe),
	    cmocka_unit_test(test_divisor),
	    cmocka_unit_test(test_thre_interrupt),
	    cmocka_unit_test(test_tx_order),
	    cmocka_unit_test(test_rx_fifo),
	    cmocka_unit_test(test_loopback_overrun),
	    cmocka_unit_test(test_modem_status),
	    cmocka_unit_test(test_irq_out2),
	    cmocka_unit_test(test_null_callbacks),
	    cmocka_unit_test(test_i8042),
	    cmocka_unit_test(test_uart_wide_port_reads_fill_every_byte),
	    cmocka_unit_test(test_i8042_wide_port_reads_fill_every_byte),
	    cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
