/* Ends through sifive_test's fail path with exit code 42. */
#include "guest.h"

void trap(u64 cause) { (void)cause; }

int main(void)
{
    puts("exiting with 42\r\n");
    poweroff_code(42);
    return 0;
}
