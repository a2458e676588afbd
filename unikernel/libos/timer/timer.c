#include <arch.h>
#include <timer.h>

void clint_set_compare(uint64_t when);

#define TICKS_PER_US (TIMER_HZ / 1000000)
#define NEVER UINT64_MAX

static struct timer *pending; /* sorted by deadline */
static int run_posted;        /* timers_run is queued: do not re-arm the compare register */
static uint64_t sleep_deadline = NEVER;

/* Deadlines already passed are left out, or their interrupt would stay pending forever. */
static void rearm(void)
{
    uint64_t when = NEVER;
    if (sleep_deadline > time_ticks())
        when = sleep_deadline;
    if (pending && !run_posted && pending->deadline < when)
        when = pending->deadline;
    clint_set_compare(when);
}

static void insert(struct timer *t)
{
    struct timer **p = &pending;
    while (*p && (*p)->deadline <= t->deadline)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

static void timers_run(void *unused)
{
    (void)unused;
    unsigned long s = irq_save();
    run_posted = 0;
    uint64_t now = time_ticks();
    while (pending && pending->deadline <= now) {
        struct timer *t = pending;
        pending = t->next;
        if (t->period) {
            t->deadline += t->period;
            insert(t);
        } else {
            t->armed = 0;
            os_release();
        }
        irq_restore(s);
        t->fn(t->arg);
        s = irq_save();
    }
    rearm();
    irq_restore(s);
}

static void on_timer_irq(unsigned cause)
{
    (void)cause;
    if (pending && pending->deadline <= time_ticks() && !run_posted) {
        run_posted = 1;
        os_post(timers_run, 0);
    }
    rearm();
}

static void start(struct timer *t, uint64_t delay_us, uint64_t period_us, os_callback fn,
                  void *arg)
{
    irq_set_handler(7, on_timer_irq);
    csr_set(mie, MIE_MTIE);
    unsigned long s = irq_save();
    if (t->armed)
        timer_stop(t);
    t->deadline = time_ticks() + delay_us * TICKS_PER_US;
    t->period = period_us * TICKS_PER_US;
    t->fn = fn;
    t->arg = arg;
    t->armed = 1;
    os_hold();
    insert(t);
    rearm();
    irq_restore(s);
}

void timer_oneshot(struct timer *t, uint64_t delay_us, os_callback fn, void *arg)
{
    start(t, delay_us, 0, fn, arg);
}

void timer_periodic(struct timer *t, uint64_t period_us, os_callback fn, void *arg)
{
    start(t, period_us, period_us, fn, arg);
}

void timer_stop(struct timer *t)
{
    unsigned long s = irq_save();
    for (struct timer **p = &pending; *p; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            t->armed = 0;
            os_release();
            break;
        }
    }
    rearm();
    irq_restore(s);
}

void sleep_us(uint64_t us)
{
    irq_set_handler(7, on_timer_irq);
    csr_set(mie, MIE_MTIE);
    uint64_t deadline = time_ticks() + us * TICKS_PER_US;
    unsigned long s = irq_save();
    sleep_deadline = deadline;
    while (time_ticks() < deadline) {
        rearm();
        wfi();
        /* Let the timer interrupt (if that is what woke us) run its handler. */
        irq_enable();
        irq_save();
    }
    sleep_deadline = NEVER;
    rearm();
    irq_restore(s);
}
