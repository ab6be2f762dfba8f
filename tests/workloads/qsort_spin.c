/* A callback through libc, built without frame pointers: main -> sort_all
 * -> qsort (libc) -> ... -> compare, which prints "ready" on its first call
 * and then spins forever, so a stopped process shows that exact chain.
 * Usage: qsort_spin [signal]. With "signal", compare raises SIGUSR1 instead
 * and the handler spins: handler -> __restore_rt -> (raise, in libc) ->
 * compare -> ... -> main.
 * Built with -O2 -fomit-frame-pointer by the unwinder's tests. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned long sink;
static int use_signal;

__attribute__((noinline)) static void handler(int sig) {
    (void)sig;
    printf("ready\n");
    fflush(stdout);
    for (;;)
        sink++;
}

__attribute__((noinline)) static int compare(const void *a, const void *b) {
    if (use_signal) {
        raise(SIGUSR1);
    } else {
        printf("ready\n");
        fflush(stdout);
        for (;;)
            sink++;
    }
    return *(const int *)a - *(const int *)b;
}

__attribute__((noinline)) static int sort_all(int *v, size_t n) {
    qsort(v, n, sizeof *v, compare);
    /* Work after the call keeps qsort from being a tail call. */
    return v[0] + v[n - 1];
}

int main(int argc, char **argv) {
    int v[64];
    use_signal = argc > 1 && strcmp(argv[1], "signal") == 0;
    signal(SIGUSR1, handler);
    for (int i = 0; i < 64; i++)
        v[i] = 64 - i;
    sink = (unsigned long)sort_all(v, 64);
    return 0;
}
