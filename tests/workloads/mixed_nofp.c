/* The half of mixed_fp.c's chain built without frame pointers. */
#include <stdio.h>

#include "mixed.h"

static volatile unsigned long sink;

__attribute__((noipa)) int first_nofp(int n) {
    /* Work after the call keeps it from being a tail call. */
    return second_fp(n + 1) + n;
}

__attribute__((noipa)) int spin_nofp(int n) {
    printf("ready\n");
    fflush(stdout);
    for (;;)
        sink += (unsigned long)n;
}
