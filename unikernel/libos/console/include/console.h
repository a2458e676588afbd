/* console: NS16550A UART driver; picolibc's stdin/stdout/stderr go through it. */
#ifndef LIBOS_CONSOLE_H
#define LIBOS_CONSOLE_H

void console_init(void);
void console_putc(char c);
/* Returns the next received byte, or -1 if none is waiting. */
int console_getc(void);
void console_write(const char *s);
void console_puthex(unsigned long v);

#endif
