/* Off-CPU workload: threads that wait in known functions.
 * Usage: sleeper [MODE [SECONDS]]  (default: sleep, forever).
 *   sleep: main -> sleeper -> usleep(20 ms), in a loop.
 *   mixed: main -> short_naps -> 50 x usleep(1 ms), then
 *          main -> long_naps -> usleep(200 ms), in a loop.
 * Prints "ready" once running. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) void sleeper(void) {
    usleep(20000);
}

__attribute__((noinline)) void short_naps(void) {
    for (int i = 0; i < 50; i++)
        usleep(1000);
}

__attribute__((noinline)) void long_naps(void) {
    usleep(200000);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int mixed = argc > 1 && strcmp(argv[1], "mixed") == 0;
    double secs = argc > 2 ? atof(argv[2]) : 1e9;
    double start = now();
    printf("ready\n");
    fflush(stdout);
    while (now() - start < secs) {
        if (mixed) {
            short_naps();
            long_naps();
        } else {
            sleeper();
        }
    }
    return 0;
}
