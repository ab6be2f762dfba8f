/* CPU burner whose functions have one-letter names that read as C++ type
 * codes when demangled blindly (a: signed char, b: bool, c: char):
 * main -> a -> b -> c, forever. Prints "ready" once running. */
#include <stdio.h>

volatile unsigned long sink;

__attribute__((noinline)) void c(void) {
    for (unsigned long i = 0; i < 200000; i++)
        sink += i * i;
}

__attribute__((noinline)) void b(void) {
    c();
}

__attribute__((noinline)) void a(void) {
    b();
}

int main(void) {
    printf("ready\n");
    fflush(stdout);
    for (;;)
        a();
}
