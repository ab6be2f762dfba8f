/* Syscall-heavy workload: most of its time is in the kernel. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    char buf[4096] = {0};
    int fd = open("/dev/null", O_WRONLY);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        if (write(fd, buf, sizeof buf) < 0)
            return 1;
        getppid();
    }
}
