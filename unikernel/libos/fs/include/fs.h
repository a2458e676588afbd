/* fs: UKFS, a read-only flat file system on a virtio-blk disk.
 *
 * Format (little-endian; build one with unikernel/tools/mkukfs.py):
 *   offset 0, one 512-byte sector: "UKFS", u32 version (1), u32 entry count,
 *     u32 directory offset in bytes, u64 image size in bytes, zero padding;
 *   the directory: one 64-byte entry per file: u64 data offset, u64 size,
 *     char path[48] ('/'-separated, relative, NUL-terminated), sorted by path;
 *   file data, each file starting on a 512-byte boundary.
 * Directories are implied by the paths. */
#ifndef LIBOS_FS_H
#define LIBOS_FS_H

#include <stddef.h>
#include <stdint.h>

#define FS_PATH_MAX 48

struct fs_file {
    uint64_t offset;
    uint64_t size;
    char path[FS_PATH_MAX];
};

/* Mounts the UKFS image on the n-th virtio-blk disk. Returns 0 on success. */
int fs_mount(unsigned disk);
unsigned fs_count(void);
const struct fs_file *fs_entry(unsigned i);
const struct fs_file *fs_open(const char *path);
/* Reads up to len bytes at offset off; returns the number read, or -1 on an I/O error. */
long fs_read(const struct fs_file *f, uint64_t off, void *buf, size_t len);

#endif
