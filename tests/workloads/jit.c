/* A JIT-like workload: it writes machine code into an anonymous executable
 * mapping, names it in /tmp/perf-PID.map as JIT runtimes do, and runs it. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* push rbp; mov rbp,rsp; mov ecx,1000000; l: dec ecx; jnz l; pop rbp; ret */
static const unsigned char code[] = {
    0x55, 0x48, 0x89, 0xe5, 0xb9, 0x40, 0x42, 0x0f, 0x00,
    0xff, 0xc9, 0x75, 0xfc, 0x5d, 0xc3,
};

int main(void) {
    unsigned char *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return 1;
    memcpy(mem, code, sizeof code);
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
    FILE *map = fopen(path, "w");
    if (!map)
        return 1;
    fprintf(map, "%lx %zx jitted_hot_loop\n", (unsigned long)mem, sizeof code);
    fclose(map);
    printf("ready\n");
    fflush(stdout);
    void (*fn)(void) = (void (*)(void))mem;
    for (;;)
        fn();
}
