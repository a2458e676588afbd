#include <kernel.h>
#include <console.h>

static const void *device_tree;

const void *os_device_tree(void) { return device_tree; }

#ifdef LIBOS_SV39
/* Benchmark variant (built with -DLIBOS_SV39): main runs in S-mode with Sv39 paging on,
 * through an identity map of 1 GiB pages (devices in the first GiB, RAM from 2 GiB), so the
 * same image measures what paging costs. Only for apps that take no interrupts: traps still
 * go to the M-mode vector. */
static unsigned long sv39_root[512] __attribute__((aligned(4096)));

static void enter_supervisor_with_sv39(void)
{
    const unsigned long leaf = 0xcf; /* V R W X A D */
    for (unsigned long gib = 0; gib < 4; gib++)
        sv39_root[gib] = ((gib << 30) >> 2) | leaf;
    unsigned long satp = (8UL << 60) | ((unsigned long)sv39_root >> 12);
    __asm__ volatile(
        /* One PMP region over everything: S-mode has no access without one (QEMU). */
        "li t0, -1\n"
        "csrw pmpaddr0, t0\n"
        "li t0, 0x1f\n" /* NAPOT, R W X */
        "csrw pmpcfg0, t0\n"
        "li t0, 7\n" /* cycle, time, instret readable from S-mode */
        "csrw mcounteren, t0\n"
        "csrw satp, %0\n"
        "sfence.vma\n"
        "li t0, 3 << 11\n"
        "csrc mstatus, t0\n"
        "li t0, 1 << 11\n" /* MPP = S */
        "csrs mstatus, t0\n"
        "la t0, 1f\n"
        "csrw mepc, t0\n"
        "mret\n"
        "1:\n"
        :
        : "r"(satp)
        : "t0", "memory");
}
#endif

void libos_start(unsigned long hartid, const void *dtb)
{
    (void)hartid;
    device_tree = dtb;
    console_init();
#ifdef LIBOS_SV39
    enter_supervisor_with_sv39();
#endif
    RVEMU_MARK_MAIN();
    os_shutdown(main());
}
