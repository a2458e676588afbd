/* alloc: the heap, from the end of the image to the end of RAM. Provides malloc, free,
 * calloc, realloc and aligned_alloc for the whole image (picolibc's are not linked). */
#ifndef LIBOS_ALLOC_H
#define LIBOS_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

/* Bytes never handed out yet plus bytes on the free list. */
size_t heap_free_bytes(void);

#endif
