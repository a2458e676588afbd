/* Hooks the UART into picolibc's tinystdio. */
#include <console.h>
#include <stdio.h>

static int put(char c, FILE *f)
{
    (void)f;
    console_putc(c);
    return (unsigned char)c;
}

static int get(FILE *f)
{
    (void)f;
    int c;
    while ((c = console_getc()) < 0)
        ;
    return c;
}

static FILE console_file = FDEV_SETUP_STREAM(put, get, NULL, _FDEV_SETUP_RW);

FILE *const stdin = &console_file;
FILE *const stdout = &console_file;
FILE *const stderr = &console_file;
