/*
 * Test job for the sandbox (tests/tee/test_sandbox.c): argv[1] picks a
 * misbehaviour (or a harmless check) so that each sandbox rule can be shown to
 * hold. Built static like the demo jobs (demo/demo.cmake).
 *
 *   echo            copy stdin to stdout
 *   socket          socket(AF_INET, ...)                 -> killed (SIGSYS)
 *   forkbomb        fork() in a loop                     -> killed (SIGSYS)
 *   mem N           allocate and touch N MiB, print "ok" -> fails beyond limits.memory_mb
 *   spin            busy loop forever                    -> CPU limit or timeout
 *   sleep           sleep forever                        -> timeout
 *   flood           write to stdout forever              -> output too large
 *   segv            write through a null pointer         -> crashed (SIGSEGV)
 *   exit N          "bad input" on stderr, exit code N
 *   open            open("/etc/passwd")                  -> killed (SIGSYS)
 *   exec            execve("/bin/sh")                    -> killed (SIGSYS)
 *   execfd          execveat(3, NULL, AT_EMPTY_PATH) again: must fail (EBADF)
 *   execmem         mmap(PROT_EXEC)                      -> killed (SIGSYS)
 *   kill            kill(getppid(), SIGKILL): prints the errno name (EPERM)
 *   noread          exit 0 at once without reading stdin
 *   fds             prints "closed" if fds 3..1023 are all closed
 *   stat            prints "absent" if /bin/sh cannot be seen, else "present"
 *   ids             prints "uid gid"
 */
#define _GNU_SOURCE /* syscall, execveat flags, MAP_ANONYMOUS */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../../demo/jobs/job_io.h"

static unsigned long arg_num(const char *s)
{
    unsigned long v = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (unsigned long)(*s - '0');
    return v;
}

static void say(const char *s)
{
    if (job_puts(1, s) != 0)
        exit(9);
}

static void print_num(unsigned long long v)
{
    char t[21];
    job_u64_text(v, t);
    say(t);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "echo";

    if (strcmp(mode, "echo") == 0) {
        size_t n;
        unsigned char *in = job_read_all(&n);
        if (job_write_all(1, in, n) != 0)
            return 9;
        free(in);
    } else if (strcmp(mode, "socket") == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        say(s >= 0 ? "socket created" : "socket refused");
    } else if (strcmp(mode, "forkbomb") == 0) {
        for (;;)
            (void)fork();
    } else if (strcmp(mode, "mem") == 0) {
        unsigned long mib = argc > 2 ? arg_num(argv[2]) : 1;
        for (unsigned long i = 0; i < mib; i++) {
            char *p = malloc(1u << 20);
            if (p == NULL)
                job_fail("allocation failed");
            memset(p, (int)i, 1u << 20);
        }
        say("ok");
    } else if (strcmp(mode, "spin") == 0) {
        volatile unsigned long x = 0;
        for (;;)
            x++;
    } else if (strcmp(mode, "sleep") == 0) {
        for (;;) {
            struct timespec ts = {.tv_sec = 100, .tv_nsec = 0};
            (void)nanosleep(&ts, NULL);
        }
    } else if (strcmp(mode, "flood") == 0) {
        static char buf[65536];
        memset(buf, 'x', sizeof(buf));
        for (;;)
            if (job_write_all(1, buf, sizeof(buf)) != 0)
                return 9;
    } else if (strcmp(mode, "segv") == 0) {
        volatile int *p = NULL;
        *p = 1;
    } else if (strcmp(mode, "exit") == 0) {
        (void)job_puts(2, "bad input");
        return (int)(argc > 2 ? arg_num(argv[2]) : 1);
    } else if (strcmp(mode, "open") == 0) {
        int fd = open("/etc/passwd", O_RDONLY);
        say(fd >= 0 ? "opened" : "open refused");
    } else if (strcmp(mode, "exec") == 0) {
        char *const sh[] = {(char *)(uintptr_t) "sh", NULL};
        execve("/bin/sh", sh, sh + 1);
        say("exec refused");
    } else if (strcmp(mode, "execfd") == 0) {
        char *const a[] = {NULL};
        long r = syscall(SYS_execveat, 3, NULL, a, a, AT_EMPTY_PATH);
        say(r == -1 && errno == EBADF ? "EBADF" : "other");
    } else if (strcmp(mode, "execmem") == 0) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        say(p == MAP_FAILED ? "mmap refused" : "mapped");
    } else if (strcmp(mode, "kill") == 0) {
        int r = kill(getppid(), SIGKILL);
        say(r == 0 ? "killed" : errno == EPERM ? "EPERM" : "other");
    } else if (strcmp(mode, "noread") == 0) {
        say("bye");
    } else if (strcmp(mode, "fds") == 0) {
        struct stat st;
        int open_fds = 0;
        for (int fd = 3; fd < 1024; fd++)
            if (fstat(fd, &st) == 0)
                open_fds++;
        say(open_fds == 0 ? "closed" : "open");
    } else if (strcmp(mode, "stat") == 0) {
        struct stat st;
        say(stat("/bin/sh", &st) != 0 && errno == ENOENT ? "absent" : "present");
    } else if (strcmp(mode, "ids") == 0) {
        print_num(getuid());
        say(" ");
        print_num(getgid());
    } else {
        job_fail("unknown mode");
    }
    return 0;
}
