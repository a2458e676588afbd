/* UART through the PLIC: transmit driven by THR-empty interrupts, then receive a line
   driven by receive-data interrupts (IRQ 10), then check the PLIC is quiet. */
#include "guest.h"

static const char tx_msg[] = "uart: this line was sent by THR-empty interrupts\r\n";
static volatile int tx_index, rx_count, line_done, uart_claims, other_claims;
static char rx_buf[64];

void trap(u64 cause)
{
    if (cause != ((1UL << 63) | 11)) {
        puts("uart: unexpected trap ");
        puthex(cause);
        puts("\r\n");
        poweroff_code(2);
    }
    u32 irq = plic_claim_m();
    if (irq != 10) {
        other_claims++;
    } else {
        uart_claims++;
        for (;;) {
            u8 iir = rd8(UART0 + 2) & 0x0f;
            if (iir & 1)
                break;
            if (iir == 0x04 || iir == 0x0c) {
                while (rd8(UART0 + 5) & 1) {
                    char c = rd8(UART0);
                    if (rx_count < (int)sizeof(rx_buf))
                        rx_buf[rx_count++] = c;
                    if (c == '\n')
                        line_done = 1;
                }
            } else if (iir == 0x02) {
                if (tx_msg[tx_index])
                    wr8(UART0, tx_msg[tx_index++]);
                else
                    wr8(UART0 + 1, 0x01); /* done sending: receive interrupts only */
            } else if (iir == 0x06) {
                rd8(UART0 + 5);
            } else {
                break;
            }
        }
    }
    if (irq)
        plic_complete_m(irq);
}

static void wait_until(volatile int *flag)
{
    /* interrupts off around the check so one cannot slip in between it and the wfi */
    __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    while (!*flag) {
        wfi();
        __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
        __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    }
    __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
}

static volatile int tx_done_flag;

int main(void)
{
    puts("uart: interrupt test\r\n");
    wr8(UART0 + 3, 0x03);  /* 8N1 */
    wr8(UART0 + 2, 0x01);  /* FIFO on, trigger level 1 */
    wr8(UART0 + 4, 0x08);  /* OUT2 */
    plic_enable_m(10, 1);
    enable_external_interrupts();
    wr8(UART0 + 1, 0x02); /* THR-empty interrupts */
    __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    while (rd8(UART0 + 1) & 0x02) {
        wfi();
        __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
        __asm__ volatile("csrc mstatus, %0" ::"r"(1UL << 3));
    }
    __asm__ volatile("csrs mstatus, %0" ::"r"(1UL << 3));
    puts("uart: waiting for a line\r\n");
    wait_until(&line_done);
    puts("uart: received ");
    putdec(rx_count);
    puts(" bytes: ");
    for (int i = 0; i < rx_count; i++)
        if (rx_buf[i] != '\n' && rx_buf[i] != '\r')
            putc(rx_buf[i]);
    puts("\r\n");
    wr8(UART0 + 1, 0x00);
    puts("uart: interrupts came from irq 10 only: ");
    puts(uart_claims > 0 && other_claims == 0 ? "yes" : "no");
    puts("\r\n");
    puts("uart: claim with nothing pending returns ");
    putdec(plic_claim_m());
    puts("\r\n");
    return 0;
}
