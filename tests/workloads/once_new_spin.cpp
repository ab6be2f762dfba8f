/* A C++ chain through libstdc++ and libc, built without frame pointers:
 * main -> std::call_once (pthread_once in libc, __once_proxy in
 * libstdc++) -> the once lambda -> work::allocate_everything ->
 * operator new (libstdc++), whose malloc fails, so it calls the new
 * handler work::spin, which prints "ready" and spins forever.
 * Built with g++ -O2 -fomit-frame-pointer by the unwinder's tests. */
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>

namespace work {

volatile unsigned long sink;

[[noreturn]] __attribute__((noinline)) void spin() {
    std::puts("ready");
    std::fflush(stdout);
    for (;;)
        sink = sink + 1;
}

__attribute__((noinline)) void *allocate_everything() {
    std::set_new_handler(spin);
    /* More than the address space: malloc fails every time. */
    void *p = ::operator new(static_cast<std::size_t>(-1) / 2);
    /* Work after the call keeps it from being a tail call. */
    sink = sink + reinterpret_cast<unsigned long>(p);
    return p;
}

} // namespace work

int main() {
    static std::once_flag once;
    void *p = nullptr;
    std::call_once(once, [&p] { p = work::allocate_everything(); });
    return p == nullptr;
}
