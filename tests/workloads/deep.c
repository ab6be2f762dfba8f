/* Deep recursion without frame pointers: main -> descend x 200 -> spin,
 * which prints "ready" and spins forever, so every sample has a stack of
 * 200+ frames. Built with -O2 -fomit-frame-pointer by the unwinder's tests. */
#include <stdio.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void spin(void) {
    printf("ready\n");
    fflush(stdout);
    for (;;)
        sink++;
}

__attribute__((noinline)) static int descend(int depth) {
    if (depth == 0)
        spin();
    else
        descend(depth - 1);
    /* Work after the call keeps it from being a tail call. */
    return (int)sink + depth;
}

int main(void) {
    sink = (unsigned long)descend(200);
    return 0;
}
