/* Compute benchmark: quicksort (our own, not libc's) of pseudo-random 32-bit keys. */
#include <stdint.h>
#include <stdio.h>

#define N 800000

static uint32_t v[N];

static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void insertion_sort(uint32_t *lo, uint32_t *hi)
{
    for (uint32_t *p = lo + 1; p <= hi; p++) {
        uint32_t key = *p, *q = p;
        while (q > lo && q[-1] > key) {
            *q = q[-1];
            q--;
        }
        *q = key;
    }
}

/* Hoare partition around the median of three; recurse on the smaller side. */
static void quicksort(uint32_t *lo, uint32_t *hi)
{
    while (hi - lo > 16) {
        uint32_t *mid = lo + (hi - lo) / 2;
        uint32_t x = *lo, y = *mid, z = *hi;
        uint32_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        uint32_t *i = lo - 1, *j = hi + 1;
        for (;;) {
            do
                i++;
            while (*i < pivot);
            do
                j--;
            while (*j > pivot);
            if (i >= j)
                break;
            uint32_t t = *i;
            *i = *j;
            *j = t;
        }
        if (j - lo < hi - j) {
            quicksort(lo, j);
            lo = j + 1;
        } else {
            quicksort(j + 1, hi);
            hi = j;
        }
    }
    insertion_sort(lo, hi);
}

int main(void)
{
    uint32_t seed = 2463534242u;
    for (int i = 0; i < N; i++)
        v[i] = xorshift32(&seed);
    quicksort(v, v + N - 1);
    uint32_t check = 0;
    int sorted = 1;
    for (int i = 0; i < N; i++) {
        check += v[i] * (uint32_t)(i + 1);
        if (i && v[i - 1] > v[i])
            sorted = 0;
    }
    printf("qsort: %d keys, %s, checksum 0x%08lx\n", N, sorted ? "sorted" : "NOT SORTED",
           (unsigned long)check);
    return sorted ? 0 : 1;
}
