#include <rng.h>
#include <virtio.h>

static struct virtio_dev dev;
static struct virtq q;
static int opened;

static int open_once(void)
{
    if (!opened) {
        if (virtio_open(&dev, VIRTIO_ID_RNG, 0) != 0 || virtq_init(&q, &dev, 0, 4) != 0)
            return -1;
        virtio_ready(&dev);
        opened = 1;
    }
    return 0;
}

int rng_read(void *buf, size_t len)
{
    if (open_once() != 0)
        return -1;
    /* The device may return fewer bytes than asked for: ask again for the rest. */
    for (size_t done = 0; done < len;) {
        struct virtio_buf b = {(char *)buf + done, (uint32_t)(len - done), 1};
        done += virtq_transfer(&q, &b, 1);
    }
    return 0;
}
