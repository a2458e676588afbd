#include <arch.h>
#include <console.h>

#define UART 0x10000000UL
#define RBR 0 /* receive buffer (read) */
#define THR 0 /* transmit holding (write) */
#define IER 1
#define FCR 2
#define LCR 3
#define LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void console_init(void)
{
    mmio_write8(UART + IER, 0);
    mmio_write8(UART + LCR, 0x03); /* 8 data bits, no parity, 1 stop bit */
    mmio_write8(UART + FCR, 0x07); /* enable and clear both FIFOs */
}

static void transmit(char c)
{
    while (!(mmio_read8(UART + LSR) & LSR_THR_EMPTY))
        ;
    mmio_write8(UART + THR, (unsigned char)c);
}

/* Terminals in raw mode (QEMU -nographic) need a carriage return before each newline. */
void console_putc(char c)
{
    if (c == '\n')
        transmit('\r');
    transmit(c);
}

int console_getc(void)
{
    if (!(mmio_read8(UART + LSR) & LSR_DATA_READY))
        return -1;
    return mmio_read8(UART + RBR);
}

void console_write(const char *s)
{
    while (*s)
        console_putc(*s++);
}

void console_puthex(unsigned long v)
{
    for (int shift = 60; shift >= 0; shift -= 4)
        console_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}
