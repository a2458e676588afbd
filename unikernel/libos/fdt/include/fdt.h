/* fdt: just enough of a flattened device tree reader to find RAM and the command line. */
#ifndef LIBOS_FDT_H
#define LIBOS_FDT_H

#include <stdint.h>

/* Total size of the blob at dtb, or 0 if it is not a device tree. */
uint32_t fdt_size(const void *dtb);
/* Base and size of the first /memory node's first "reg" range. Returns 0 on success. */
int fdt_memory(const void *dtb, uint64_t *base, uint64_t *size);
/* The kernel command line (/chosen/bootargs: rvemu --append, QEMU -append), or NULL. */
const char *fdt_bootargs(const void *dtb);

#endif
