/* A first-fit free-list allocator. Blocks carry a 16-byte header; freed blocks are kept
 * sorted by address and merged with their neighbours. New memory comes from a bump
 * pointer, set up on first use, so the heap costs no time before main. */
#include <alloc.h>
#include <arch.h>
#include <fdt.h>
#include <kernel.h>
#include <stdint.h>
#include <string.h>

#define ALIGN 16

struct block {
    size_t size; /* bytes after the header */
    struct block *next;
};

static struct block *free_list;
static char *brk, *heap_end;

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* The heap runs from the end of the image to the end of RAM (from the device tree, else
 * the linker script's 128 MiB), stopping short of the device tree if it sits up there. */
static void heap_init(void)
{
    const char *dtb = os_device_tree();
    uint64_t base, size;
    brk = (char *)round_up((uintptr_t)__heap_start, ALIGN);
    heap_end = __ram_end;
    if (fdt_memory(dtb, &base, &size) == 0 && base <= (uintptr_t)brk)
        heap_end = (char *)(uintptr_t)(base + size);
    if (dtb >= brk && dtb < heap_end)
        heap_end = (char *)dtb;
}

static struct block *carve(size_t size)
{
    if (!brk)
        heap_init();
    if ((size_t)(heap_end - brk) < sizeof(struct block) ||
        size > (size_t)(heap_end - brk) - sizeof(struct block))
        return NULL;
    struct block *b = (struct block *)brk;
    b->size = size;
    brk += sizeof(struct block) + size;
    return b;
}

static struct block *alloc_block(size_t n)
{
    size_t size = round_up(n ? n : 1, ALIGN);
    for (struct block **p = &free_list; *p; p = &(*p)->next) {
        struct block *b = *p;
        if (b->size < size)
            continue;
        if (b->size >= size + sizeof(struct block) + ALIGN) {
            struct block *rest = (struct block *)((char *)(b + 1) + size);
            rest->size = b->size - size - sizeof(struct block);
            rest->next = b->next;
            b->size = size;
            *p = rest;
        } else {
            *p = b->next;
        }
        return b;
    }
    return carve(size);
}

static char *end_of(struct block *b) { return (char *)(b + 1) + b->size; }

static void release(struct block *b)
{
    struct block **link = &free_list, **prev_link = NULL;
    while (*link && *link < b) {
        prev_link = link;
        link = &(*link)->next;
    }
    b->next = *link;
    *link = b;
    if (b->next && end_of(b) == (char *)b->next) {
        b->size += sizeof(struct block) + b->next->size;
        b->next = b->next->next;
    }
    if (prev_link && end_of(*prev_link) == (char *)b) {
        struct block *prev = *prev_link;
        prev->size += sizeof(struct block) + b->size;
        prev->next = b->next;
        b = prev;
        link = prev_link;
    }
    /* A free block at the top goes back to the bump pointer. */
    if (!b->next && end_of(b) == brk) {
        brk = (char *)b;
        *link = NULL;
    }
}

void *calloc(size_t count, size_t n)
{
    if (n && count > SIZE_MAX / n)
        return NULL;
    void *p = malloc(count * n);
    if (p)
        memset(p, 0, count * n);
    return p;
}

void *realloc(void *ptr, size_t n)
{
    if (!ptr)
        return malloc(n);
    struct block *b = (struct block *)ptr - 1;
    if (b->size >= n)
        return ptr;
    void *q = malloc(n);
    if (q) {
        memcpy(q, ptr, b->size);
        free(ptr);
    }
    return q;
}

void *aligned_alloc(size_t alignment, size_t n)
{
    if (alignment <= ALIGN)
        return malloc(n);
    /* Over-allocate, then give the unaligned head back to the free list as its own block. */
    struct block *orig = alloc_block(n + alignment + sizeof(struct block));
    if (!orig)
        return NULL;
    uintptr_t user = round_up((uintptr_t)(orig + 2), alignment);
    struct block *aligned = (struct block *)user - 1;
    size_t head = (uintptr_t)aligned - (uintptr_t)orig;
    aligned->size = orig->size - head;
    orig->size = head - sizeof(struct block);
    release(orig);
    return aligned + 1;
}

void *malloc(size_t n)
{
    struct block *b = alloc_block(n);
    return b ? b + 1 : NULL;
}

void free(void *ptr)
{
    if (ptr)
        release((struct block *)ptr - 1);
}

size_t heap_free_bytes(void)
{
    if (!brk)
        heap_init();
    size_t n = (size_t)(heap_end - brk);
    for (struct block *b = free_list; b; b = b->next)
        n += b->size;
    return n;
}
