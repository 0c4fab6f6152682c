/*
 * sdk_exit: exit(status) through the guest SDK (case sdk and arm64_sdk): exit runs the
 * atexit handlers, flushes stdout (the handler's last line has no newline: Keel prints it
 * when the VM stops) and ends the VM with status 7. Built with SDK_ABORT (sdk_abort): abort()
 * ends the VM with 134 (128 + SIGABRT).
 */
#include <stdio.h>
#include <stdlib.h>

static void bye(void)
{
        printf("sdk_exit: atexit handler ran\n");
        printf("sdk_exit: this line has no newline");
}

int main(void)
{
#ifdef SDK_ABORT
        printf("sdk_abort: calling abort()\n");
        abort();
#endif
        atexit(bye);
        printf("sdk_exit: calling exit(7)\n");
        exit(7);
}
