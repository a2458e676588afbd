/* Compute benchmark: Sieve of Eratosthenes below LIMIT, run ROUNDS times. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define LIMIT 2000000
#define ROUNDS 4

static uint8_t composite[LIMIT];

static uint32_t sieve(uint64_t *sum)
{
    memset(composite, 0, sizeof(composite));
    uint32_t count = 0;
    uint64_t s = 0;
    for (uint32_t i = 2; i < LIMIT; i++) {
        if (composite[i])
            continue;
        count++;
        s += i;
        for (uint64_t j = (uint64_t)i * i; j < LIMIT; j += i)
            composite[j] = 1;
    }
    *sum = s;
    return count;
}

int main(void)
{
    uint32_t count = 0;
    uint64_t sum = 0;
    for (int r = 0; r < ROUNDS; r++)
        count = sieve(&sum);
    printf("sieve: %lu primes below %d, sum %llu\n", (unsigned long)count, LIMIT,
           (unsigned long long)sum);
    return 0;
}
