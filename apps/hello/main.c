#include <stdio.h>

int main(void)
{
    printf("Hello from the rvemu unikernel!\n");
    return 0;
}
