/* rng: virtio-rng (entropy from the host). */
#ifndef LIBOS_RNG_H
#define LIBOS_RNG_H

#include <stddef.h>

/* Fills buf with len random bytes from the first virtio-rng device.
 * Returns 0 on success, -1 if there is no device. */
int rng_read(void *buf, size_t len);

#endif
