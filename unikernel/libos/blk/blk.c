#include <blk.h>
#include <stdlib.h>
#include <virtio.h>

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_S_OK 0

struct blk_dev {
    struct virtio_dev dev;
    struct virtq q;
    uint64_t sectors;
};

struct blk_req_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct blk_dev *blk_open(unsigned n)
{
    struct blk_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    if (virtio_open(&d->dev, VIRTIO_ID_BLOCK, n) != 0 || virtq_init(&d->q, &d->dev, 0, 8) != 0) {
        free(d);
        return NULL;
    }
    virtio_ready(&d->dev);
    d->sectors = virtio_config32(&d->dev, 0) | (uint64_t)virtio_config32(&d->dev, 4) << 32;
    return d;
}

uint64_t blk_sectors(struct blk_dev *d) { return d->sectors; }

static int transfer(struct blk_dev *d, uint32_t type, uint64_t sector, void *buf,
                    uint32_t count)
{
    if (sector + count > d->sectors)
        return -1;
    struct blk_req_header h = {.type = type, .sector = sector};
    volatile uint8_t status = 0xff;
    struct virtio_buf bufs[3] = {
        {&h, sizeof(h), 0},
        {buf, count * BLK_SECTOR_SIZE, type == VIRTIO_BLK_T_IN},
        {(void *)&status, 1, 1},
    };
    virtq_transfer(&d->q, bufs, 3);
    return status == VIRTIO_BLK_S_OK ? 0 : -1;
}

int blk_read(struct blk_dev *d, uint64_t sector, void *buf, uint32_t count)
{
    return transfer(d, VIRTIO_BLK_T_IN, sector, buf, count);
}

int blk_write(struct blk_dev *d, uint64_t sector, const void *buf, uint32_t count)
{
    return transfer(d, VIRTIO_BLK_T_OUT, sector, (void *)buf, count);
}
