/* A first-fit free-list allocator. Blocks carry a 16-byte header; freed blocks are kept
 * sorted by address and merged with their neighbours. New memory comes from a bump
 * pointer, so the heap needs no initialisation (and no time before main). */
#include <alloc.h>
#include <arch.h>
#include <kernel.h>
#include <stdint.h>
#include <string.h>

#define ALIGN 16

struct block {
    size_t size; /* bytes after the header */
    struct block *next;
};

static struct block *free_list;
static char *brk;

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

static struct block *carve(size_t size)
{
    if (!brk)
        brk = (char *)round_up((uintptr_t)__heap_start, ALIGN);
    if (size > (size_t)(__ram_end - brk) - sizeof(struct block))
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

static void release(struct block *b)
{
    struct block **p = &free_list;
    while (*p && *p < b)
        p = &(*p)->next;
    b->next = *p;
    *p = b;
    if (b->next && (char *)(b + 1) + b->size == (char *)b->next) {
        b->size += sizeof(struct block) + b->next->size;
        b->next = b->next->next;
    }
    if (p != &free_list) {
        struct block *prev = (struct block *)((char *)p - offsetof(struct block, next));
        if ((char *)(prev + 1) + prev->size == (char *)b) {
            prev->size += sizeof(struct block) + b->size;
            prev->next = b->next;
        }
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
    size_t n = (size_t)(__ram_end - (brk ? brk : __heap_start));
    for (struct block *b = free_list; b; b = b->next)
        n += b->size;
    return n;
}
