/* kernel: init sequence, panic, interrupt dispatch, event loop, shutdown. */
#ifndef LIBOS_KERNEL_H
#define LIBOS_KERNEL_H

#include <arch.h>
#include <stdint.h>

typedef void (*os_callback)(void *arg);
typedef void (*irq_handler)(unsigned cause);

/* The app's entry point; its return value is the machine's exit status. */
int main(void);

/* Powers the machine off through sifive_test: 0 = success, anything else = failure code. */
void os_shutdown(int code) __attribute__((noreturn));
/* Prints a message and a register dump, then powers off with failure. */
void panic(const char *msg) __attribute__((noreturn));
void panic_frame(const char *msg, const struct trap_frame *frame) __attribute__((noreturn));

/* The device tree the machine passed in a1 at reset. */
const void *os_device_tree(void);

/* Routes machine interrupt `cause` (3 = software, 7 = timer, 11 = external). */
void irq_set_handler(unsigned cause, irq_handler handler);

/* Event loop: callbacks posted here run one after another in thread context. */
void os_post(os_callback fn, void *arg);
/* Event sources (armed timers, pending I/O) keep os_run() alive while they exist. */
void os_hold(void);
void os_release(void);
/* Runs posted callbacks, sleeping in WFI when idle; returns when no source remains. */
void os_run(void);
/* Sleeps in WFI until done(arg) is true; done is checked with interrupts masked, so an
 * interrupt that makes it true cannot slip in between the check and the WFI. */
void os_wait(int (*done)(void *arg), void *arg);

#endif
