// steptrace: single-step a program, and every process and thread it
// clones until that one execs something else, and write each distinct
// instruction address inside the program's own executable mapping, as an
// offset from its load address (the ELF virtual address), in hex, in the
// order first executed. bench/link-order.sh maps them to functions.
//
// Usage: steptrace OUT -- PROGRAM ARGS...
//
// About a million instructions take a minute under single-stepping; only
// for bench/link-order.sh, never on a launch path.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long text_lo, text_hi, load;
static unsigned char *seen;

// The program's executable mapping and load address, from /proc/PID/maps
// of the process that just exec'd it.
static void find_text(pid_t pid, const char *real) {
    char path[64], line[PATH_MAX + 128];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b, off;
        char perm[8], name[PATH_MAX] = "";
        // The path is the rest of the line (it may hold spaces).
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095[^\n]", &a, &b, perm, &off, name) < 4)
            continue;
        if (strcmp(name, real) != 0)
            continue;
        if (off == 0)
            load = a;
        if (perm[2] == 'x') {
            text_lo = a;
            text_hi = b;
        }
    }
    fclose(f);
    if (!text_hi) {
        fprintf(stderr, "steptrace: no executable mapping of %s\n", real);
        exit(1);
    }
    seen = calloc(text_hi - text_lo, 1);
    if (!seen) {
        perror("calloc");
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: steptrace OUT -- PROGRAM ARGS...\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    char **cmd = argv + 3;
    char real[PATH_MAX];
    if (!realpath(cmd[0], real)) {
        perror(cmd[0]);
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(cmd[0], cmd);
        _exit(127);
    }
    int st;
    if (waitpid(child, &st, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    ptrace(PTRACE_SETOPTIONS, child, 0,
           PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC |
               PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, child, 0, 0);
    int started = 0, status = 0;
    long steps = 0;
    for (;;) {
        pid_t p = waitpid(-1, &st, __WALL);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ECHILD)
                perror("waitpid");
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (p == child)
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            continue;
        }
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st), event = st >> 16;
        if (event == PTRACE_EVENT_EXEC) {
            if (!started) {
                // The program itself: step it from its first instruction.
                find_text(p, real);
                started = 1;
                ptrace(PTRACE_SINGLESTEP, p, 0, 0);
            } else {
                // A child became another program: not ours to record.
                ptrace(PTRACE_DETACH, p, 0, 0);
            }
            continue;
        }
        if (event) {
            // A clone, fork or vfork event: the new task is traced too.
            ptrace(PTRACE_SINGLESTEP, p, 0, 0);
            continue;
        }
        if (!started) {
            ptrace(PTRACE_CONT, p, 0, sig == SIGTRAP ? 0 : sig);
            continue;
        }
        // SIGSTOP: a new clone's first stop (a SIGSTOP the program sends
        // itself is swallowed too; cordon sends none).
        if (sig == SIGTRAP || sig == SIGSTOP) {
            struct user_regs_struct r;
            if (ptrace(PTRACE_GETREGS, p, 0, &r) == 0 && r.rip >= text_lo && r.rip < text_hi) {
                unsigned long o = r.rip - text_lo;
                if (!seen[o]) {
                    seen[o] = 1;
                    fprintf(out, "%llx\n", (unsigned long long)(r.rip - load));
                }
            }
            steps++;
            ptrace(PTRACE_SINGLESTEP, p, 0, 0);
        } else {
            // Deliver the program's own signals.
            ptrace(PTRACE_SINGLESTEP, p, 0, sig);
        }
    }
    fprintf(stderr, "steptrace: %ld steps, exit status %d\n", steps, status);
    if (fclose(out) != 0) {
        perror(argv[1]);
        return 1;
    }
    return status;
}
