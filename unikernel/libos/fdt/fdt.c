/* Walks the structure block of a flattened device tree (devicetree specification v0.4,
 * chapter 5). Assumes the root's #address-cells and #size-cells are 2, as on QEMU virt. */
#include <fdt.h>
#include <string.h>

#define FDT_MAGIC 0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

static uint32_t be32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t be64(const void *p) { return (uint64_t)be32(p) << 32 | be32((const char *)p + 4); }

uint32_t fdt_size(const void *dtb)
{
    return dtb && be32(dtb) == FDT_MAGIC ? be32((const char *)dtb + 4) : 0;
}

/* The value of property `prop` of the first child of the root whose name starts with
 * `node` (up to its unit address: "memory" finds memory@80000000), and its length. */
static const char *root_child_property(const void *dtb, const char *node, const char *prop,
                                       uint32_t *len)
{
    if (!fdt_size(dtb))
        return 0;
    const char *blob = dtb;
    const char *p = blob + be32(blob + 8);
    const char *strings = blob + be32(blob + 12);
    size_t node_len = strlen(node);
    int depth = 0, in_node = 0;
    for (;;) {
        uint32_t token = be32(p);
        p += 4;
        if (token == FDT_BEGIN_NODE) {
            depth++;
            in_node = depth == 2 && strncmp(p, node, node_len) == 0 &&
                      (p[node_len] == 0 || p[node_len] == '@');
            p += (strlen(p) + 4) & ~3UL;
        } else if (token == FDT_END_NODE) {
            depth--;
            in_node = 0;
        } else if (token == FDT_PROP) {
            uint32_t n = be32(p), name = be32(p + 4);
            const char *value = p + 8;
            if (in_node && strcmp(strings + name, prop) == 0) {
                *len = n;
                return value;
            }
            p = value + ((n + 3) & ~3UL);
        } else if (token != FDT_NOP) {
            return 0; /* FDT_END or garbage */
        }
    }
}

int fdt_memory(const void *dtb, uint64_t *base, uint64_t *size)
{
    uint32_t len;
    const char *reg = root_child_property(dtb, "memory", "reg", &len);
    if (!reg || len < 16)
        return -1;
    *base = be64(reg);
    *size = be64(reg + 8);
    return 0;
}

const char *fdt_bootargs(const void *dtb)
{
    uint32_t len;
    const char *args = root_child_property(dtb, "chosen", "bootargs", &len);
    return args && len > 0 && args[len - 1] == 0 ? args : 0;
}
