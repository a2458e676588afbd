/* Perf guests: the same kernels run in M-mode, S-mode without translation, and S-mode
 * under Sv39 with identity-mapped 2 MiB or 4 KiB pages; floating point against the same
 * work in integers. The host picks the kernel and the mode by writing `config` before the
 * run (tests/perf/run_perf.py) and reads `result` (a checksum) and `trap_cause` after it.
 */
#include <stdint.h>

enum { MODE_M, MODE_S_BARE, MODE_S_SV39_2M, MODE_S_SV39_4K };
enum { K_INT_MEM, K_INT_MATMUL, K_FP_MATMUL, K_FP_MIX, K_INT_MIX, K_INT_MEM_BIG };

struct config {
    uint64_t kernel, mode, iterations, frm;
};
volatile struct config config = {K_INT_MEM, MODE_M, 1, 0};
volatile uint64_t result;
volatile uint64_t trap_cause = ~0ull;


/* ------------------------------------------------------------------ kernels */

#define MEM_WORDS (128 * 1024)       /* 512 KiB: 128 pages, within the 256-entry TLB */
#define BIG_WORDS (1024 * 1024)      /* 4 MiB: 1024 pages, so scattered accesses miss it */
static uint32_t mem[MEM_WORDS];
static uint32_t big[BIG_WORDS];

/* Integer work that walks memory: a sequential pass mixed with scattered updates. */
static uint64_t int_mem(uint32_t *m, uint32_t words, uint64_t iterations) {
    uint32_t x = 12345;
    uint64_t sum = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        for (uint32_t i = 0; i < words; i += 4) {
            x = x * 1103515245u + 12345u;
            uint32_t j = (x >> 7) & (words - 1);
            m[i] += x;
            m[j] ^= i;
            sum += m[i] + (m[j] >> 3);
        }
    }
    return sum;
}

#define N 32
static int64_t ia[N][N], ib[N][N], ic[N][N];
static double da[N][N], db[N][N], dc[N][N];

static uint64_t int_matmul(uint64_t iterations) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            ia[i][j] = (i * 7 + j * 3) % 17 - 8;
            ib[i][j] = (i * 5 + j * 11) % 13 - 6;
        }
    uint64_t sum = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                int64_t s = (int64_t)it;
                for (int k = 0; k < N; k++) s += ia[i][k] * ib[k][j];
                ic[i][j] = s;
            }
        sum += (uint64_t)ic[it % N][(it * 7) % N];
    }
    return sum;
}

static uint64_t fp_matmul(uint64_t iterations) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            da[i][j] = ((i * 7 + j * 3) % 17 - 8) * 0.1;
            db[i][j] = ((i * 5 + j * 11) % 13 - 6) * 0.3;
        }
    double sum = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double s = (double)it;
                for (int k = 0; k < N; k++) s += da[i][k] * db[k][j]; /* fmadd.d */
                dc[i][j] = s;
            }
        sum += dc[it % N][(it * 7) % N];
    }
    union { double d; uint64_t u; } v = {sum};
    return v.u;
}

/* Floating point with divisions and square roots, and its integer shadow (the same loop
 * with div and an integer update in place of fdiv and fsqrt). */
static uint64_t fp_mix(uint64_t iterations) {
    double acc = 0.0, x = 1.0;
    for (uint64_t it = 0; it < iterations * 4096; it++) {
        x = x * 1.000001 + 0.5;
        double y = __builtin_sqrt(x) / (x + 1.0);
        acc += y;
        if (x > 1e6) x = 1.0;
    }
    union { double d; uint64_t u; } v = {acc};
    return v.u;
}

static uint64_t int_mix(uint64_t iterations) {
    uint64_t acc = 0, x = 1;
    for (uint64_t it = 0; it < iterations * 4096; it++) {
        x = x * 1000001 / 1000000 + 5;
        uint64_t y = (x >> 1) / (x + 1 + (x >> 3));
        acc += y;
        if (x > 1000000) x = 1;
    }
    return acc;
}

static uint64_t run_kernel(void) {
    uint64_t n = config.iterations;
    switch (config.kernel) {
    case K_INT_MEM: return int_mem(mem, MEM_WORDS, n);
    case K_INT_MEM_BIG: return int_mem(big, BIG_WORDS, n);
    case K_INT_MATMUL: return int_matmul(n);
    case K_FP_MATMUL: return fp_matmul(n);
    case K_FP_MIX: return fp_mix(n);
    default: return int_mix(n);
    }
}

/* ------------------------------------------------------------------ modes */

#define PTE_V 1
#define PTE_RWXAD (2 | 4 | 8 | 64 | 128)
#define RAM_BASE 0x80000000ull
#define MAPPED (16ull << 20) /* the first 16 MiB of RAM hold everything */

static uint64_t root[512] __attribute__((aligned(4096)));
static uint64_t l1[512] __attribute__((aligned(4096)));
static uint64_t l0[MAPPED >> 21][512] __attribute__((aligned(4096)));

static uint64_t pointer(void *table) { return ((uint64_t)table >> 12) << 10 | PTE_V; }

static void build_page_tables(int small_pages) {
    root[RAM_BASE >> 30] = pointer(l1);
    for (uint64_t mb = 0; mb < (MAPPED >> 21); mb++) {
        uint64_t pa = RAM_BASE + (mb << 21);
        if (!small_pages) {
            l1[(pa >> 21) & 511] = (pa >> 12) << 10 | PTE_RWXAD | PTE_V;
            continue;
        }
        l1[(pa >> 21) & 511] = pointer(l0[mb]);
        for (uint64_t p = 0; p < 512; p++)
            l0[mb][p] = ((pa + (p << 12)) >> 12) << 10 | PTE_RWXAD | PTE_V;
    }
}

static void s_main(void) {
    asm volatile("csrw frm, %0" ::"r"(config.frm));
    result = run_kernel();
    asm volatile("ecall");
}

void boot(void) {
    if (config.mode == MODE_M) {
        asm volatile("csrw frm, %0" ::"r"(config.frm));
        result = run_kernel();
        *(volatile uint32_t *)0x100000 = 0x5555;
        for (;;) {}
    }
    uint64_t satp = 0;
    if (config.mode != MODE_S_BARE) {
        build_page_tables(config.mode == MODE_S_SV39_4K);
        satp = 8ull << 60 | (uint64_t)root >> 12;
    }
    asm volatile("csrw satp, %0; sfence.vma" ::"r"(satp));
    asm volatile("csrc mstatus, %0; csrs mstatus, %1" ::"r"(3ull << 11), "r"(1ull << 11));
    asm volatile("csrw mepc, %0; mret" ::"r"(s_main));
}
