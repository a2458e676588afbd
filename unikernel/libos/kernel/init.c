#include <kernel.h>
#include <console.h>

static const void *device_tree;

const void *os_device_tree(void) { return device_tree; }

void libos_start(unsigned long hartid, const void *dtb)
{
    (void)hartid;
    device_tree = dtb;
    console_init();
    RVEMU_MARK_MAIN();
    os_shutdown(main());
}
