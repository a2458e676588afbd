/* Periodic and one-shot timers driven by the event loop, then a clean shutdown. */
#include <kernel.h>
#include <stdio.h>
#include <timer.h>

#define PERIOD_US 10000
#define TICKS 5

static struct timer periodic, oneshot;
static int ticks;
static uint64_t start;

static void on_tick(void *arg)
{
    (void)arg;
    ticks++;
    uint64_t elapsed = time_us() - start;
    /* Print whether the tick came on time rather than the raw time, which differs per run. */
    printf("tick %d %s\n", ticks, elapsed >= (uint64_t)ticks * PERIOD_US ? "on time" : "EARLY");
    if (ticks == TICKS)
        timer_stop(&periodic);
}

static void on_oneshot(void *arg)
{
    printf("one-shot after %s ticks\n", (const char *)arg);
}

int main(void)
{
    printf("timers: %d ticks every %d us\n", TICKS, PERIOD_US);
    start = time_us();
    sleep_us(1000);
    printf("slept %s\n", time_us() - start >= 1000 ? "at least 1000 us" : "TOO SHORT");
    start = time_us();
    timer_periodic(&periodic, PERIOD_US, on_tick, 0);
    timer_oneshot(&oneshot, PERIOD_US * 5 / 2, on_oneshot, "2.5");
    os_run();
    printf("event loop done after %d ticks\n", ticks);
    return ticks == TICKS ? 0 : 1;
}
