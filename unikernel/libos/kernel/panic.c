#include <kernel.h>
#include <console.h>

static const char *const reg_names[32] = {
    "pc", "ra", "sp", "gp", "tp",  "t0",  "t1", "t2", "s0", "s1", "a0",
    "a1", "a2", "a3", "a4", "a5",  "a6",  "a7", "s2", "s3", "s4", "s5",
    "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
};

static void put_reg(const char *name, unsigned long v)
{
    console_write(name);
    console_write("=");
    console_puthex(v);
}

/* Writes straight to the UART (not stdio), so it works even if stdio state is broken. */
void panic_frame(const char *msg, const struct trap_frame *f)
{
    console_write("\n*** PANIC: ");
    console_write(msg);
    console_write("\n");
    if (f) {
        for (int i = 0; i < 32; i++) {
            put_reg(reg_names[i], f->x[i]);
            console_write(i % 4 == 3 ? "\n" : "  ");
        }
        put_reg("mcause", f->mcause);
        console_write("  ");
        put_reg("mtval", f->mtval);
        console_write("  ");
        put_reg("mstatus", f->mstatus);
        console_write("\n");
    }
    os_shutdown(255);
}

void panic(const char *msg) { panic_frame(msg, 0); }
