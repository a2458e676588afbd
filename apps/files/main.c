/* Lists the files on the UKFS disk it was given, with sizes and CRC-32s, and prints the
 * text (.txt) ones. */
#include <fs.h>
#include <stdio.h>
#include <string.h>

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return crc;
}

static int is_text(const char *path)
{
    size_t n = strlen(path);
    return n >= 4 && strcmp(path + n - 4, ".txt") == 0;
}

static unsigned char buf[4096];

int main(void)
{
    if (fs_mount(0) != 0) {
        printf("files: no UKFS disk found\n");
        return 1;
    }
    unsigned long total = 0;
    for (unsigned i = 0; i < fs_count(); i++)
        total += fs_entry(i)->size;
    printf("disk: %u files, %lu bytes\n", fs_count(), total);
    for (unsigned i = 0; i < fs_count(); i++) {
        const struct fs_file *f = fs_entry(i);
        uint32_t crc = 0xffffffffu;
        long n;
        for (uint64_t off = 0; (n = fs_read(f, off, buf, sizeof(buf))) > 0; off += n)
            crc = crc32_update(crc, buf, (size_t)n);
        if (n < 0) {
            printf("read error: %s\n", f->path);
            return 1;
        }
        printf("%8lu %08lx %s\n", (unsigned long)f->size, (unsigned long)(crc ^ 0xffffffffu),
               f->path);
    }
    for (unsigned i = 0; i < fs_count(); i++) {
        const struct fs_file *f = fs_entry(i);
        if (!is_text(f->path))
            continue;
        printf("--- %s ---\n", f->path);
        long n;
        for (uint64_t off = 0; (n = fs_read(f, off, buf, sizeof(buf))) > 0; off += n)
            fwrite(buf, 1, (size_t)n, stdout);
    }
    return 0;
}
