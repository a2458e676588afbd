/* Prints a line, then waits for an interrupt with every interrupt disabled: halted. */
#include "guest.h"

void trap(u64 cause) { (void)cause; }

int main(void)
{
    puts("halting\r\n");
    for (;;)
        wfi();
}
