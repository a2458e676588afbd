/* Compute benchmark: N x N integer matrix multiply, arithmetic modulo 2^32. */
#include <stdint.h>
#include <stdio.h>

#define N 240

static uint32_t a[N][N], b[N][N], c[N][N];

static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

int main(void)
{
    uint32_t seed = 2463534242u;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            a[i][j] = xorshift32(&seed) & 0xffff;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            b[i][j] = xorshift32(&seed) & 0xffff;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            uint32_t s = 0;
            for (int k = 0; k < N; k++)
                s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
    uint32_t check = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            check += c[i][j] * (uint32_t)(i * N + j + 1);
    printf("matmul: %dx%d, checksum 0x%08lx\n", N, N, (unsigned long)check);
    return 0;
}
