/* Thousands of short-lived processes that each leave the profiler state to
 * keep: every child names itself `shortlived`, writes a perf map of ENTRIES
 * made-up JIT functions (as a JIT runtime does), burns BUSY_MS of CPU in
 * short_task -> spin, stays alive until LIFE_MS (so a profiler can capture
 * it) and exits. PARALLEL children run at a time; the parent deletes each
 * child's perf map once it has exited.
 *
 * Usage: spawner COUNT PARALLEL BUSY_MS LIFE_MS ENTRIES
 * Prints "ready" at start and "done CHILDREN PERF_MAP_BYTES" at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile unsigned long sink;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void spin(void) {
    for (unsigned long i = 0; i < 20000; i++)
        sink += i * i;
}

__attribute__((noinline)) void short_task(double until) {
    while (now() < until)
        spin();
}

static long write_perf_map(int entries) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
    FILE *map = fopen(path, "w");
    if (!map)
        return -1;
    for (int i = 0; i < entries; i++)
        fprintf(map, "%lx 10 jit_function_%d_of_a_runtime_that_names_many\n",
                0x10000000UL + 16UL * i, i);
    long bytes = ftell(map);
    fclose(map);
    return bytes;
}

static void child(double busy, double life, int entries) {
    double start = now();
    prctl(PR_SET_NAME, "shortlived");
    if (write_perf_map(entries) < 0)
        _exit(1);
    short_task(start + busy);
    double left = start + life - now();
    if (left > 0)
        usleep((useconds_t)(left * 1e6));
    _exit(0);
}

static void reap(long *done) {
    int status;
    pid_t pid = wait(&status);
    if (pid <= 0) {
        perror("wait");
        exit(1);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child %d failed\n", pid);
        exit(1);
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", pid);
    unlink(path);
    (*done)++;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: spawner COUNT PARALLEL BUSY_MS LIFE_MS ENTRIES\n");
        return 2;
    }
    long count = atol(argv[1]);
    int parallel = atoi(argv[2]);
    double busy = atof(argv[3]) / 1e3, life = atof(argv[4]) / 1e3;
    int entries = atoi(argv[5]);
    printf("ready\n");
    fflush(stdout);
    long started = 0, done = 0, running = 0;
    while (started < count) {
        if (running == parallel) {
            reap(&done);
            running--;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            child(busy, life, entries);
        started++;
        running++;
    }
    while (running-- > 0)
        reap(&done);
    /* Every map has the same size; measure one in the parent. */
    long per_map = write_perf_map(entries);
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
    unlink(path);
    printf("done %ld %ld\n", done, done * per_map);
    return 0;
}
