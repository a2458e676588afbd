/* blk: virtio-blk driver. Sectors are 512 bytes. */
#ifndef LIBOS_BLK_H
#define LIBOS_BLK_H

#include <stdint.h>

#define BLK_SECTOR_SIZE 512

struct blk_dev;

/* Opens the n-th virtio-blk device; NULL if there is none. */
struct blk_dev *blk_open(unsigned n);
uint64_t blk_sectors(struct blk_dev *d);
/* Reads / writes `count` sectors starting at `sector`. Return 0 on success. */
int blk_read(struct blk_dev *d, uint64_t sector, void *buf, uint32_t count);
int blk_write(struct blk_dev *d, uint64_t sector, const void *buf, uint32_t count);

#endif
