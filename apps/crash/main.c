/* Takes a breakpoint exception on purpose, to show the kernel's panic: a register dump,
 * then power-off with failure status 255. */
#include <stdio.h>

int main(void)
{
    printf("crash: about to execute ebreak\n");
    __asm__ volatile("li a0, 0x1234\n\tebreak" ::: "a0");
    printf("crash: still alive?\n");
    return 0;
}
