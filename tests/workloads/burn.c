/* CPU burner with a known call chain: main -> outer -> inner.
 * Usage: burn [SECONDS]  (default: forever). Prints "ready" once running. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void inner(void) {
    for (unsigned long i = 0; i < 200000; i++)
        sink += i * i;
}

__attribute__((noinline)) void outer(void) {
    for (int i = 0; i < 10; i++)
        inner();
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1e9;
    double start = now();
    printf("ready\n");
    fflush(stdout);
    while (now() - start < secs)
        outer();
    return 0;
}
