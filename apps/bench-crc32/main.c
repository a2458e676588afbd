/* Compute benchmark: table-driven CRC-32 (IEEE) over a pseudo-random buffer, repeated. */
#include <stdint.h>
#include <stdio.h>

#define SIZE 65536
#define ROUNDS 200

static uint8_t buf[SIZE];
static uint32_t table[256];

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
    for (int i = 0; i < SIZE; i++)
        buf[i] = (uint8_t)xorshift32(&seed);
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1));
        table[n] = c;
    }
    /* The CRC of the buffer repeated ROUNDS times, as one stream. */
    uint32_t crc = 0xffffffffu;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < SIZE; i++)
            crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
    printf("crc32: %d x %d bytes, crc 0x%08lx\n", ROUNDS, SIZE,
           (unsigned long)(crc ^ 0xffffffffu));
    return 0;
}
