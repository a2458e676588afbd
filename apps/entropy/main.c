/* Reads entropy from virtio-rng. The bytes differ on every run, so it prints only facts
 * that do not: how many bytes arrived and that they are not all the same. */
#include <rng.h>
#include <stdio.h>

int main(void)
{
    unsigned char buf[256];
    if (rng_read(buf, sizeof(buf)) != 0) {
        printf("entropy: no virtio-rng device\n");
        return 1;
    }
    int distinct = 0;
    for (int v = 0; v < 256; v++) {
        for (unsigned i = 0; i < sizeof(buf); i++) {
            if (buf[i] == v) {
                distinct++;
                break;
            }
        }
    }
    printf("entropy: read %u bytes, %s\n", (unsigned)sizeof(buf),
           distinct > 64 ? "they look random" : "NOT RANDOM");
    return distinct > 64 ? 0 : 1;
}
