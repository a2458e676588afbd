/* Exercises the heap: random-sized allocations filled with a pattern, frees in a shuffled
 * order, realloc and aligned_alloc, then checks that everything coalesced back. */
#include <alloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BLOCKS 500

static void *block[BLOCKS];
static size_t length[BLOCKS];
static uint32_t seed = 12345;

static uint32_t next(void)
{
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
}

static int intact(int i)
{
    const uint8_t *p = block[i];
    for (size_t k = 0; k < length[i]; k++)
        if (p[k] != (uint8_t)(i + k))
            return 0;
    return 1;
}

static void fill(int i, size_t n)
{
    length[i] = n;
    for (size_t k = 0; k < n; k++)
        ((uint8_t *)block[i])[k] = (uint8_t)(i + k);
}

int main(void)
{
    size_t before = heap_free_bytes();
    printf("heap: %s 100 MiB free at start\n", before > (100u << 20) ? "more than" : "LESS than");
    int errors = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < BLOCKS; i++) {
            if (block[i])
                continue;
            size_t n = 1 + next() % 3000;
            block[i] = malloc(n);
            if (block[i])
                fill(i, n);
            else
                errors++;
        }
        for (int i = 0; i < BLOCKS; i++)
            errors += !intact(i);
        for (int k = 0; k < BLOCKS / 2; k++) {
            int i = next() % BLOCKS;
            if (block[i] && k % 3 == 0) {
                size_t n = 1 + next() % 6000;
                size_t keep = n < length[i] ? n : length[i];
                block[i] = realloc(block[i], n);
                length[i] = keep;
                errors += !intact(i);
                fill(i, n);
            } else {
                free(block[i]);
                block[i] = NULL;
            }
        }
    }
    void *aligned = aligned_alloc(4096, 100);
    errors += ((uintptr_t)aligned & 4095) != 0;
    free(aligned);
    for (int i = 0; i < BLOCKS; i++)
        free(block[i]);
    /* Everything handed back must have merged into free space again (headers included). */
    void *all = malloc(before - 4096);
    errors += all == NULL;
    free(all);
    printf("heap: %d errors after %d rounds of %d blocks\n", errors, 4, BLOCKS);
    return errors != 0;
}
