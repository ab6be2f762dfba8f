/*
 * busy.c - the profiling target for bench/profile-overhead.sh.
 *
 * Two threads spin on the CPU forever, each through a few levels of
 * distinct functions, so that every sample has a deep-ish user stack with
 * frame pointers (build: gcc -O0 -fno-omit-frame-pointer -pthread).
 * The functions are noinline and do plain integer work: no syscalls, so
 * almost every sample lands in user space, as in a CPU-bound service.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static volatile uint64_t sink;

#define LEAF(name, mul)                                                  \
    __attribute__((noinline)) static uint64_t name(uint64_t x) {         \
        for (int i = 0; i < 2000; i++) x = x * (mul) + (uint64_t)i;      \
        return x;                                                        \
    }

LEAF(hash_a, 6364136223846793005ULL)
LEAF(hash_b, 2862933555777941757ULL)
LEAF(hash_c, 3935559000370003845ULL)

__attribute__((noinline)) static uint64_t mix(uint64_t x, int which) {
    switch (which % 3) {
    case 0: return hash_a(x);
    case 1: return hash_b(x);
    default: return hash_c(x);
    }
}

__attribute__((noinline)) static uint64_t stage_two(uint64_t x, int n) {
    for (int i = 0; i < n; i++) x = mix(x, i);
    return x;
}

__attribute__((noinline)) static uint64_t stage_one(uint64_t x) {
    return stage_two(x, 3) ^ mix(x, 7);
}

__attribute__((noinline)) static void *worker_left(void *arg) {
    uint64_t x = (uintptr_t)arg;
    for (;;) sink = x = stage_one(x);
    return NULL;
}

__attribute__((noinline)) static void *worker_right(void *arg) {
    uint64_t x = (uintptr_t)arg;
    for (;;) sink = x = stage_two(x, 5);
    return NULL;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, worker_left, (void *)1);
    pthread_create(&b, NULL, worker_right, (void *)2);
    pthread_join(a, NULL); /* never returns: killed by the bench script */
    pthread_join(b, NULL);
    return 0;
}
