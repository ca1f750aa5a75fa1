/*
 * The harness's stopwatch: a small process that runs commands on request and reports,
 * for each, its exit status, its peak RSS (wait4's ru_maxrss) and how long it took from
 * fork to the moment wait4 returned.
 *
 * Why a separate C process: the kernel folds the RSS of the memory a process had before
 * exec into its ru_maxrss. Spawned from Python (15+ MiB), every command would report at
 * least Python's size. Forked from this process, the floor is this process's ~1 MiB.
 * It also keeps the harness's own overhead out of the timed window.
 *
 * Protocol on stdin, every field ending in a NUL byte:
 *   count, timeout_ms, then per command: output_path, argc, argv[0..argc-1]
 * The commands of one request are started back to back, then all are waited for.
 * Reply on stdout, one line per command in request order, then a total:
 *   "<status> <maxrss_kib> <ns>\n" ... "total <ns>\n"
 * status is the exit code, -N for death by signal N, or "hung" when killed at the
 * timeout; ns runs from the first fork to this command's exit being collected.
 * Exits on end of input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct command {
    char *output;
    char **argv;
    pid_t pid;
    int status;  /* raw wait status, valid once done */
    int done;
    int hung;
    long maxrss_kib;
    long long ns;
};

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reads one NUL-terminated field; NULL at end of input. */
static char *field(void) {
    char *line = NULL;
    size_t cap = 0;
    if (getdelim(&line, &cap, '\0', stdin) < 0) {
        free(line);
        return NULL;
    }
    return line;
}

static long number_field(void) {
    char *text = field();
    if (!text)
        exit(0);
    long value = strtol(text, NULL, 10);
    free(text);
    return value;
}

/* In the child: stdin from /dev/null, stdout and stderr to the output file, then exec. */
static void exec_command(const struct command *c) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(c->output, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(126);
    close(in);
    close(out);
    execv(c->argv[0], c->argv);
    dprintf(2, "spawner: cannot execute %s: %s\n", c->argv[0], strerror(errno));
    _exit(127);
}

static void arm_timer(long timeout_ms) {
    struct itimerval t = {0};
    t.it_value.tv_sec = timeout_ms / 1000;
    t.it_value.tv_usec = (timeout_ms % 1000) * 1000;
    timed_out = 0;
    setitimer(ITIMER_REAL, &t, NULL);
}

static void kill_unfinished(struct command *cmds, long n) {
    for (long i = 0; i < n; i++) {
        if (!cmds[i].done && cmds[i].pid > 0) {
            kill(cmds[i].pid, SIGKILL);
            cmds[i].hung = 1;
        }
    }
}

static void run_request(struct command *cmds, long n, long timeout_ms) {
    long long start = now_ns();
    for (long i = 0; i < n; i++) {
        cmds[i].pid = fork();
        if (cmds[i].pid == 0)
            exec_command(&cmds[i]);
    }
    arm_timer(timeout_ms);
    long left = 0;
    for (long i = 0; i < n; i++) {
        if (cmds[i].pid > 0)
            left++;
        else
            cmds[i].done = 1, cmds[i].status = 127 << 8;
    }
    while (left > 0) {
        int status;
        struct rusage usage;
        pid_t pid = wait4(-1, &status, 0, &usage);
        long long at = now_ns();
        if (pid < 0) {
            if (errno == EINTR && timed_out) {
                kill_unfinished(cmds, n);
                timed_out = 0;
                continue;
            }
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nothing left to wait for */
        }
        for (long i = 0; i < n; i++) {
            if (cmds[i].pid == pid && !cmds[i].done) {
                cmds[i].done = 1;
                cmds[i].status = status;
                cmds[i].maxrss_kib = usage.ru_maxrss;
                cmds[i].ns = at - start;
                left--;
            }
        }
    }
    long long total = now_ns() - start;
    arm_timer(0);
    for (long i = 0; i < n; i++) {
        const struct command *c = &cmds[i];
        if (c->hung)
            printf("hung %ld %lld\n", c->maxrss_kib, c->ns);
        else if (WIFSIGNALED(c->status))
            printf("%d %ld %lld\n", -WTERMSIG(c->status), c->maxrss_kib, c->ns);
        else
            printf("%d %ld %lld\n", WEXITSTATUS(c->status), c->maxrss_kib, c->ns);
    }
    printf("total %lld\n", total);
    fflush(stdout);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm; /* no SA_RESTART: the alarm must interrupt wait4 */
    sigaction(SIGALRM, &sa, NULL);
    for (;;) {
        long n = number_field();
        long timeout_ms = number_field();
        struct command *cmds = calloc((size_t)n, sizeof *cmds);
        if (!cmds)
            return 1;
        for (long i = 0; i < n; i++) {
            cmds[i].output = field();
            long argc = number_field();
            cmds[i].argv = calloc((size_t)argc + 1, sizeof(char *));
            if (!cmds[i].output || !cmds[i].argv)
                return 1;
            for (long a = 0; a < argc; a++)
                cmds[i].argv[a] = field();
        }
        run_request(cmds, n, timeout_ms);
        for (long i = 0; i < n; i++) {
            for (char **a = cmds[i].argv; *a; a++)
                free(*a);
            free(cmds[i].argv);
            free(cmds[i].output);
        }
        free(cmds);
    }
}
