/* arch: RV64 M-mode helpers shared by every library. */
#ifndef LIBOS_ARCH_H
#define LIBOS_ARCH_H

#include <stdint.h>

/* Boot-latency mark: a HINT (architectural no-op) that rvemu records. */
#define RVEMU_MARK_MAIN() __asm__ volatile("slti x0, x0, 1")

#define MSTATUS_MIE (1UL << 3)
#define MIE_MSIE (1UL << 3)
#define MIE_MTIE (1UL << 7)
#define MIE_MEIE (1UL << 11)
#define MCAUSE_INTERRUPT (1UL << 63)

#define csr_read(csr)                                         \
    ({                                                        \
        unsigned long __v;                                    \
        __asm__ volatile("csrr %0, " #csr : "=r"(__v));       \
        __v;                                                  \
    })
#define csr_write(csr, val) __asm__ volatile("csrw " #csr ", %0" ::"rK"(val))
#define csr_set(csr, bits) __asm__ volatile("csrs " #csr ", %0" ::"rK"(bits))
#define csr_clear(csr, bits) __asm__ volatile("csrc " #csr ", %0" ::"rK"(bits))

static inline void mmio_write32(uintptr_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }
static inline uint32_t mmio_read32(uintptr_t addr) { return *(volatile uint32_t *)addr; }
static inline void mmio_write8(uintptr_t addr, uint8_t v) { *(volatile uint8_t *)addr = v; }
static inline uint8_t mmio_read8(uintptr_t addr) { return *(volatile uint8_t *)addr; }
static inline void mmio_write64(uintptr_t addr, uint64_t v) { *(volatile uint64_t *)addr = v; }
static inline uint64_t mmio_read64(uintptr_t addr) { return *(volatile uint64_t *)addr; }

static inline void fence(void) { __asm__ volatile("fence" ::: "memory"); }
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

/* Masks machine interrupts and returns the previous state for irq_restore. */
static inline unsigned long irq_save(void)
{
    unsigned long s;
    __asm__ volatile("csrrc %0, mstatus, %1" : "=r"(s) : "i"(MSTATUS_MIE) : "memory");
    return s & MSTATUS_MIE;
}
static inline void irq_restore(unsigned long s)
{
    if (s)
        csr_set(mstatus, MSTATUS_MIE);
}
static inline void irq_enable(void) { csr_set(mstatus, MSTATUS_MIE); }

/* Saved by the trap vector, in this order, on the stack. */
struct trap_frame {
    unsigned long x[32]; /* x[0] holds mepc */
    unsigned long mstatus, mcause, mtval;
};

/* Provided by the kernel library: called from the trap vector. */
void trap_dispatch(struct trap_frame *frame);
/* Provided by the kernel library: called from _start with a0/a1 from reset. */
void libos_start(unsigned long hartid, const void *dtb) __attribute__((noreturn));

/* Linker-script symbols. */
extern char __heap_start[];
extern char __ram_end[];

#endif
