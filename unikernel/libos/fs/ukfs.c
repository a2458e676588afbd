#include <blk.h>
#include <fs.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "UKFS"
#define VERSION 1

struct header {
    char magic[4];
    uint32_t version;
    uint32_t count;
    uint32_t dir_offset;
    uint64_t image_size;
};

_Static_assert(sizeof(struct fs_file) == 64, "UKFS directory entries are 64 bytes");

static struct blk_dev *disk;
static struct fs_file *dir;
static unsigned count;
static uint8_t sector[BLK_SECTOR_SIZE] __attribute__((aligned(16)));

static long read_bytes(uint64_t off, void *buf, size_t len)
{
    char *out = buf;
    for (size_t done = 0; done < len;) {
        uint64_t pos = off + done;
        if (blk_read(disk, pos / BLK_SECTOR_SIZE, sector, 1) != 0)
            return -1;
        size_t in = pos % BLK_SECTOR_SIZE;
        size_t n = BLK_SECTOR_SIZE - in;
        if (n > len - done)
            n = len - done;
        memcpy(out + done, sector + in, n);
        done += n;
    }
    return (long)len;
}

int fs_mount(unsigned n)
{
    struct header h;
    disk = blk_open(n);
    if (!disk || read_bytes(0, &h, sizeof(h)) < 0)
        return -1;
    if (memcmp(h.magic, MAGIC, 4) != 0 || h.version != VERSION ||
        h.image_size > blk_sectors(disk) * BLK_SECTOR_SIZE)
        return -1;
    dir = malloc(h.count * sizeof(struct fs_file));
    if (!dir || read_bytes(h.dir_offset, dir, h.count * sizeof(struct fs_file)) < 0)
        return -1;
    for (unsigned i = 0; i < h.count; i++)
        dir[i].path[FS_PATH_MAX - 1] = 0;
    count = h.count;
    return 0;
}

unsigned fs_count(void) { return count; }

const struct fs_file *fs_entry(unsigned i) { return i < count ? &dir[i] : NULL; }

const struct fs_file *fs_open(const char *path)
{
    for (unsigned i = 0; i < count; i++)
        if (strcmp(dir[i].path, path) == 0)
            return &dir[i];
    return NULL;
}

long fs_read(const struct fs_file *f, uint64_t off, void *buf, size_t len)
{
    if (off >= f->size)
        return 0;
    if (len > f->size - off)
        len = f->size - off;
    return read_bytes(f->offset + off, buf, len);
}
