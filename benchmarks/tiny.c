/* The tiny program every command-child benchmark supervises (otp_py, a bare
 * subprocess loop, supervisord, circus).
 *
 *   tiny LOG LOW_US HIGH_US   stamp START, sleep, stamp EXIT, exit with status 1
 *   tiny - 0 0                sleep until killed (the idle benchmark)
 *
 * Records are the ones benchmarks/targets.py writes: three little-endian int64s
 * (kind, pid, CLOCK_MONOTONIC ns) appended with O_APPEND. The lifetime is varied by
 * pid between LOW_US and HIGH_US, as targets.life_s does. Built static, so starting
 * it costs an exec and no dynamic linking.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void stamp(int fd, int64_t kind, int64_t ns) {
    int64_t record[3] = {kind, (int64_t)getpid(), ns};
    if (write(fd, record, sizeof record) != sizeof record) _exit(3);
}

int main(int argc, char **argv) {
    int64_t started = now_ns();
    if (argc != 4) return 2;
    if (argv[1][0] == '-' && argv[1][1] == '\0') {
        for (;;) pause();
    }
    int fd = open(argv[1], O_WRONLY | O_APPEND);
    if (fd < 0) return 2;
    stamp(fd, 1, started);
    int64_t low = atoll(argv[2]), high = atoll(argv[3]);
    int64_t life_us = low + ((int64_t)getpid() * 7919 % 1000) * (high - low) / 1000;
    struct timespec ts = {life_us / 1000000, (life_us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    stamp(fd, 2, now_ns());
    _exit(1);
}
