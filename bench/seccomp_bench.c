/*
 * seccomp_bench: cost of a seccomp filter per system call.
 *
 * Usage: seccomp_bench [-n ITERS] [-b BATCHES] FILTER.bpf|-
 *
 * Loads a raw classic-BPF program (an array of struct sock_filter, 8 bytes
 * each, little-endian: u16 code, u8 jt, u8 jf, u32 k) from FILTER.bpf, or
 * nothing for "-", sets no_new_privs (in both cases), installs the program
 * with seccomp(SECCOMP_SET_MODE_FILTER, 0, ...) -- flags 0, as cordon does --
 * then times ITERS back-to-back raw syscall() calls of each of:
 *
 *   getppid       allowed by the Docker default profile, no argument check
 *   personality   personality(0xffffffff): allowed by an argument check
 *                 (the profile allows personality only for 0, 8, 0x20000,
 *                 0x20008, 0xffffffff); 0xffffffff only queries the persona
 *   syslog        syslog(SYSLOG_ACTION_SIZE_BUFFER, NULL, 0): refused by the
 *                 profile (it needs CAP_SYSLOG/CAP_SYS_ADMIN, which a
 *                 default container lacks) with EPERM; read-only without a
 *                 filter
 *
 * One batch times each call ITERS times with clock_gettime(CLOCK_MONOTONIC)
 * around the loop; the calls alternate within a batch.  One untimed warm-up
 * batch comes first.  For each call it prints the median over BATCHES of
 * the per-call time, plus the fastest and slowest batch:
 *
 *   call=getppid ns=41.27 min=40.90 max=43.02 iters=200000 batches=5
 *
 * Every return value is checked.  Before timing: getppid must return the
 * parent's pid and personality(0xffffffff) the persona read before the
 * filter went in; with a filter, syslog must fail with EPERM, and
 * personality(0x0200000) -- an argument the profile does not allow -- must
 * fail with EPERM too (so the argument check is really there).  While
 * timing, every call's result must equal the first one.  Any surprise is an
 * error (exit status 1), so a wrong filter is noticed, not measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SYSLOG_ACTION_SIZE_BUFFER 10
#define PERSONA_QUERY 0xffffffffUL
#define PERSONA_REFUSED 0x0200000UL /* ADDR_COMPAT_LAYOUT: not in the profile */

enum { C_GETPPID, C_PERSONALITY, C_SYSLOG, NCALLS };
static const char *const call_name[NCALLS] = {"getppid", "personality", "syslog"};

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("seccomp_bench: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die("clock_gettime: %s", strerror(errno));
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long do_call(int c)
{
    switch (c) {
    case C_GETPPID:
        return syscall(SYS_getppid);
    case C_PERSONALITY:
        return syscall(SYS_personality, PERSONA_QUERY);
    default:
        return syscall(SYS_syslog, SYSLOG_ACTION_SIZE_BUFFER, NULL, 0);
    }
}

/* ITERS calls of one syscall; returns elapsed ns.  *bad counts results that
 * differ from `want`.  One loop per call so the loop body is just the call. */
static uint64_t time_call(int c, long iters, long want, long *bad)
{
    long n_bad = 0;
    uint64_t t0 = now_ns();
    switch (c) {
    case C_GETPPID:
        for (long i = 0; i < iters; i++)
            n_bad += syscall(SYS_getppid) != want;
        break;
    case C_PERSONALITY:
        for (long i = 0; i < iters; i++)
            n_bad += syscall(SYS_personality, PERSONA_QUERY) != want;
        break;
    default:
        for (long i = 0; i < iters; i++)
            n_bad += syscall(SYS_syslog, SYSLOG_ACTION_SIZE_BUFFER, NULL, 0) != want;
        break;
    }
    uint64_t t1 = now_ns();
    *bad += n_bad;
    return t1 - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct sock_filter *load_filter(const char *path, unsigned short *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("%s: %s", path, strerror(errno));
    static struct sock_filter prog[BPF_MAXINSNS + 1];
    size_t n = fread(prog, 1, sizeof prog, f);
    if (ferror(f))
        die("%s: read error", path);
    fclose(f);
    if (n == 0 || n % sizeof(struct sock_filter))
        die("%s: size %zu is not a positive multiple of 8", path, n);
    n /= sizeof(struct sock_filter);
    if (n > BPF_MAXINSNS)
        die("%s: more than %d instructions (BPF_MAXINSNS)", path, BPF_MAXINSNS);
    *len = (unsigned short)n;
    return prog;
}

int main(int argc, char **argv)
{
    _Static_assert(sizeof(struct sock_filter) == 8, "struct sock_filter is 8 bytes");
    long iters = 200000, batches = 5;
    int opt;
    while ((opt = getopt(argc, argv, "n:b:h")) != -1) {
        switch (opt) {
        case 'n':
        case 'b': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || v <= 0)
                die("-%c needs a positive integer, got '%s'", opt, optarg);
            if (opt == 'n')
                iters = v;
            else
                batches = v;
            break;
        }
        case 'h':
            printf("usage: %s [-n ITERS] [-b BATCHES] FILTER.bpf|-\n", argv[0]);
            return 0;
        default:
            fprintf(stderr, "usage: %s [-n ITERS] [-b BATCHES] FILTER.bpf|-\n", argv[0]);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: %s [-n ITERS] [-b BATCHES] FILTER.bpf|-\n", argv[0]);
        return 2;
    }
    const char *path = argv[optind];
    int filtered = strcmp(path, "-") != 0;

    /* Expected results, read before any filter is installed. */
    long ppid = syscall(SYS_getppid);
    long persona = syscall(SYS_personality, PERSONA_QUERY);
    if (persona < 0)
        die("personality(0xffffffff) failed without a filter: %s", strerror(errno));

    unsigned short len = 0;
    struct sock_filter *prog = filtered ? load_filter(path, &len) : NULL;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
    if (filtered) {
        struct sock_fprog fprog = {.len = len, .filter = prog};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0)
            die("seccomp(SECCOMP_SET_MODE_FILTER): %s", strerror(errno));
    }
    printf("filter=%s insns=%u\n", filtered ? path : "none", (unsigned)len);

    /* Sanity checks, untimed. */
    long want[NCALLS];
    for (int c = 0; c < NCALLS; c++) {
        errno = 0;
        want[c] = do_call(c);
        int e = errno;
        printf("check call=%s ret=%ld errno=%d\n", call_name[c], want[c], want[c] == -1 ? e : 0);
        if (c == C_GETPPID && want[c] != ppid)
            die("getppid returned %ld, not the parent's pid %ld", want[c], ppid);
        if (c == C_PERSONALITY && want[c] != persona)
            die("personality(0xffffffff) returned %ld (errno %d), not the current persona %#lx "
                "(refused by the filter?)", want[c], e, persona);
        if (c == C_SYSLOG && filtered && !(want[c] == -1 && e == EPERM))
            die("syslog(SIZE_BUFFER) was not refused with EPERM by the filter (ret %ld, errno %d)", want[c], e);
    }
    if (filtered) {
        errno = 0;
        long r = syscall(SYS_personality, PERSONA_REFUSED);
        int e = errno;
        if (r != -1 || e != EPERM) {
            if (r >= 0)
                syscall(SYS_personality, (unsigned long)persona);
            die("personality(0x200000) was not refused with EPERM: the filter does not check "
                "personality's argument (ret %ld, errno %d)", r, e);
        }
        printf("check call=personality(0x200000) ret=-1 errno=%d\n", e);
    }

    double *ns = calloc((size_t)(NCALLS * batches), sizeof *ns);
    if (!ns)
        die("out of memory");
    long bad = 0;
    /* Warm-up batch (untimed), then the timed batches; the call order
     * rotates from batch to batch. */
    for (long b = -1; b < batches; b++) {
        for (int j = 0; j < NCALLS; j++) {
            int c = (int)((b + 1 + j) % NCALLS);
            uint64_t t = time_call(c, iters, want[c], &bad);
            if (b >= 0)
                ns[c * batches + b] = (double)t / (double)iters;
        }
    }
    if (bad)
        die("%ld timed calls returned something other than their first call", bad);

    for (int c = 0; c < NCALLS; c++) {
        double *v = ns + c * batches;
        qsort(v, (size_t)batches, sizeof *v, cmp_double);
        double med = batches % 2 ? v[batches / 2] : (v[batches / 2 - 1] + v[batches / 2]) / 2;
        printf("call=%s ns=%.2f min=%.2f max=%.2f iters=%ld batches=%ld\n", call_name[c], med, v[0],
               v[batches - 1], iters, batches);
    }
    free(ns);
    return 0;
}
