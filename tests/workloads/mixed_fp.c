/* One call chain of code with and without frame pointers: main and
 * second_fp are in this file, built with frame pointers; first_nofp and
 * spin_nofp in mixed_nofp.c, built without. main -> first_nofp ->
 * second_fp -> spin_nofp, which prints "ready" and spins forever. */
#include "mixed.h"

__attribute__((noipa)) int second_fp(int n) {
    /* Work after the call keeps it from being a tail call. */
    return spin_nofp(n + 1) + n;
}

int main(void) {
    return first_nofp(1) == 0;
}
