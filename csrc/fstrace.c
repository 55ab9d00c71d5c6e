/*
 * pyfarm-fstrace: run a command and record the paths that every process and thread of
 * it opens, executes or probes (open/openat/openat2, execve/execveat, the stat and access
 * families, readlink), whoever makes the call: Python, a C extension, or glibc itself
 * (locales, gconv, NSS), which LD_PRELOAD cannot interpose.
 *
 *   pyfarm-fstrace -o LOG -- COMMAND [ARG...]
 *
 * How: ptrace, with a seccomp filter so that only the calls above stop the tracee (every
 * other system call runs at full speed). Docker's default seccomp profile allows both on
 * Linux >= 4.8, for a tracer that is the tracee's ancestor, without extra capabilities.
 * When ptrace is refused, the command runs untraced and LOG says why.
 * A traced command finds PYFARM_TRACE_NATIVE=1 in its environment (the trace shim then
 * leaves the libraries to this tracer).
 *
 * LOG gets one line per distinct (kind, path), written as it happens so a killed run
 * keeps what it saw: "KIND\tERRNO\tEXE\tPATH\n": KIND one of read, write, dir, exec, probe;
 * ERRNO 0 on success; EXE the calling process's program (/proc/PID/exe); PATH absolute
 * (relative paths are joined to the caller's cwd or directory descriptor). Backslash,
 * tab and newline are escaped in EXE and PATH. The first line is "traced\t0\t\t" or
 * "untraced\tERRNO\t\tREASON".
 *
 * Exits with the command's status (re-raising its fatal signal). Signals sent to the
 * tracer itself (SIGINT, SIGTERM, SIGHUP, SIGQUIT) do not stop it: they reach the
 * command's process group from the caller; the tracer ends when the command does.
 * Tracees left when it ends are killed (PTRACE_O_EXITKILL): their seccomp filter would
 * fail the traced calls without a tracer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "pyfarm-fstrace reads x86_64 registers; other architectures are not supported yet"
#endif

enum kind { K_OPEN, K_EXEC, K_PROBE };
struct call { long nr; int dirfd_arg; int path_arg; enum kind kind; };

/* dirfd_arg -1: the path is relative to the cwd. */
static const struct call CALLS[] = {
    {SYS_open, -1, 0, K_OPEN},       {SYS_openat, 0, 1, K_OPEN},
    {SYS_openat2, 0, 1, K_OPEN},     {SYS_execve, -1, 0, K_EXEC},
    {SYS_execveat, 0, 1, K_EXEC},    {SYS_stat, -1, 0, K_PROBE},
    {SYS_lstat, -1, 0, K_PROBE},     {SYS_newfstatat, 0, 1, K_PROBE},
    {SYS_statx, 0, 1, K_PROBE},      {SYS_access, -1, 0, K_PROBE},
    {SYS_faccessat, 0, 1, K_PROBE},  {SYS_faccessat2, 0, 1, K_PROBE},
    {SYS_readlink, -1, 0, K_PROBE},  {SYS_readlinkat, 0, 1, K_PROBE},
};
#define NCALLS (sizeof CALLS / sizeof CALLS[0])

static const char *KIND_NAMES[] = {"read", "write", "dir", "exec", "probe"};
enum event { E_READ, E_WRITE, E_DIR, E_EXEC, E_PROBE };

static int log_fd = -1;

/* ---- the log ------------------------------------------------------------------------ */

static void write_all(const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(log_fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  /* a full disk loses records, never the app's run */
        data += n;
        size -= (size_t)n;
    }
}

/* One line: "KIND\tERRNO\t" and REST, already escaped. */
static void emit(const char *kind, int err, const char *rest) {
    char line[6 * PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s\t%d\t%s\n", kind, err, rest);
    if (n > 0 && (size_t)n < sizeof line) write_all(line, (size_t)n);
}

/* ---- what has been recorded: a set of "KIND\tEXE\tPATH" keys ------------------------- */

static char **seen;
static size_t seen_cap, seen_len;

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static char **slot(char **table, size_t cap, const char *key) {
    size_t i = hash(key) & (cap - 1);
    while (table[i] && strcmp(table[i], key) != 0) i = (i + 1) & (cap - 1);
    return &table[i];
}

static void grow(void) {
    size_t cap = seen_cap ? seen_cap * 2 : 4096;
    char **table = calloc(cap, sizeof *table);
    if (!table) return;
    for (size_t i = 0; i < seen_cap; i++)
        if (seen[i]) *slot(table, cap, seen[i]) = seen[i];
    free(seen);
    seen = table;
    seen_cap = cap;
}

static int was_seen(const char *key) {
    return seen_cap && *slot(seen, seen_cap, key) != NULL;
}

static void remember(const char *key) {
    if (2 * (seen_len + 1) > seen_cap) grow();
    if (!seen_cap) return;
    char **s = slot(seen, seen_cap, key);
    if (!*s && (*s = strdup(key))) seen_len++;
}

/* ---- calls waiting for their result, by thread id ------------------------------------ */

struct pending { pid_t tid; enum event event; char *key; };
static struct pending *waiting;
static size_t waiting_cap;

static struct pending *pending_of(pid_t tid, int create) {
    for (size_t i = 0; i < waiting_cap; i++)
        if (waiting[i].tid == tid) return &waiting[i];
    if (!create) return NULL;
    for (size_t i = 0; i < waiting_cap; i++)
        if (waiting[i].tid == 0) return &waiting[i];
    size_t cap = waiting_cap ? waiting_cap * 2 : 64;
    struct pending *more = realloc(waiting, cap * sizeof *more);
    if (!more) return NULL;
    memset(more + waiting_cap, 0, (cap - waiting_cap) * sizeof *more);
    waiting = more;
    waiting_cap = cap;
    return pending_of(tid, 1);
}

static void forget(pid_t tid) {
    struct pending *p = pending_of(tid, 0);
    if (p) {
        free(p->key);
        memset(p, 0, sizeof *p);
    }
}

/* ---- reading the tracee -------------------------------------------------------------- */

/* Docker's default seccomp profile allows ptrace but may refuse process_vm_readv: then
 * words are peeked one at a time. */
static int use_peek;

static ssize_t read_memory(pid_t tid, unsigned long addr, void *out, size_t size) {
    if (!use_peek) {
        struct iovec local = {out, size};
        struct iovec remote = {(void *)addr, size};
        ssize_t n = process_vm_readv(tid, &local, 1, &remote, 1, 0);
        if (n >= 0 || (errno != EPERM && errno != ENOSYS)) return n;
        use_peek = 1;
    }
    size_t done = 0;
    while (done < size) {
        errno = 0;
        long word = ptrace(PTRACE_PEEKDATA, tid, (void *)((addr + done) & ~7UL), 0);
        if (errno != 0) return done ? (ssize_t)done : -1;
        size_t skip = (addr + done) & 7UL, take = sizeof word - skip;
        if (take > size - done) take = size - done;
        memcpy((char *)out + done, (char *)&word + skip, take);
        done += take;
    }
    return (ssize_t)done;
}

/* Copy a NUL-terminated string out of the tracee, a page at a time (the next page may
 * be unmapped). Returns 0 on success. */
static int read_string(pid_t tid, unsigned long addr, char *out, size_t size) {
    size_t done = 0;
    while (done < size - 1) {
        size_t room = (use_peek ? 64 : 4096) - ((addr + done) & (use_peek ? 63 : 4095));
        if (room > size - 1 - done) room = size - 1 - done;
        ssize_t n = read_memory(tid, addr + done, out + done, room);
        if (n <= 0) return -1;
        if (memchr(out + done, 0, (size_t)n)) return 0;
        done += (size_t)n;
    }
    out[size - 1] = 0;
    return 0;
}

static unsigned long long openat2_flags(pid_t tid, unsigned long how) {
    struct open_how value = {0};
    return read_memory(tid, how, &value.flags, sizeof value.flags) > 0 ? value.flags : 0;
}

/* Make PATH absolute against the tracee's cwd or directory descriptor. */
static int absolute(pid_t tid, int dirfd, const char *path, char *out, size_t size) {
    if (path[0] == '/') {
        snprintf(out, size, "%s", path);
        return 0;
    }
    char link[64], base[PATH_MAX];
    if (dirfd == AT_FDCWD)
        snprintf(link, sizeof link, "/proc/%d/cwd", tid);
    else
        snprintf(link, sizeof link, "/proc/%d/fd/%d", tid, dirfd);
    ssize_t n = readlink(link, base, sizeof base - 1);
    if (n <= 0 || base[0] != '/') return -1;
    base[n] = 0;
    snprintf(out, size, "%s/%s", strcmp(base, "/") == 0 ? "" : base, path);
    return 0;
}

/* The calling process's program. */
static int program(pid_t tid, char *out, size_t size) {
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", tid);
    ssize_t n = readlink(link, out, size - 1);
    if (n <= 0) return -1;
    out[n] = 0;
    return 0;
}

/* Copy IN to OUT with backslash, tab and newline escaped; returns the length written. */
static size_t escape(const char *in, char *out, size_t size) {
    size_t n = 0;
    for (; *in && n + 3 < size; in++) {
        if (*in == '\\' || *in == '\t' || *in == '\n') {
            out[n++] = '\\';
            out[n++] = *in == '\t' ? 't' : *in == '\n' ? 'n' : '\\';
        } else {
            out[n++] = *in;
        }
    }
    out[n] = 0;
    return n;
}

/* A read-write open of a file that exists (a database) reads it: the image needs it. One
 * that creates the file, truncates it or only writes does not. */
static enum event open_event(unsigned long long flags, const char *path) {
    if (flags & O_PATH) return E_PROBE;
    if ((flags & O_ACCMODE) == O_WRONLY || (flags & O_TRUNC)) return E_WRITE;
    if (((flags & O_ACCMODE) == O_RDWR || (flags & O_CREAT)) && access(path, F_OK) != 0)
        return E_WRITE;
    return (flags & O_DIRECTORY) ? E_DIR : E_READ;
}

/* At a traced call's entry: leaves it pending when its result is still to be recorded. */
static void on_entry(pid_t tid) {
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) != 0) return;
    unsigned long args[6] = {regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9};
    const struct call *call = NULL;
    for (size_t i = 0; i < NCALLS; i++)
        if (CALLS[i].nr == (long)regs.orig_rax) call = &CALLS[i];
    if (!call) return;
    char raw[PATH_MAX], path[2 * PATH_MAX + 2], exe[PATH_MAX], key[6 * PATH_MAX + 32];
    if (read_string(tid, args[call->path_arg], raw, sizeof raw) != 0 || raw[0] == 0) return;
    int dirfd = call->dirfd_arg < 0 ? AT_FDCWD : (int)args[call->dirfd_arg];
    if (absolute(tid, dirfd, raw, path, sizeof path) != 0) return;
    if (program(tid, exe, sizeof exe) != 0) return;
    enum event event = E_PROBE;
    if (call->kind == K_EXEC) event = E_EXEC;
    if (call->kind == K_OPEN) {
        unsigned long long flags = call->nr == SYS_open ? args[1]
                                   : call->nr == SYS_openat ? args[2]
                                   : openat2_flags(tid, args[2]);
        event = open_event(flags, path);
    }
    size_t n = (size_t)snprintf(key, sizeof key, "%s\t", KIND_NAMES[event]);
    n += escape(exe, key + n, sizeof key - n);
    key[n++] = '\t';
    escape(path, key + n, sizeof key - n);
    if (was_seen(key)) return;
    struct pending *p = pending_of(tid, 1);
    if (!p) return;
    free(p->key);
    p->tid = tid;
    p->event = event;
    p->key = strdup(key);
    if (!p->key) forget(tid);
}

static void record(struct pending *p, int err) {
    remember(p->key);
    emit(KIND_NAMES[p->event], err, strchr(p->key, '\t') + 1);
}

/* The kernel's "restart this call" results (ERESTARTSYS..ERESTART_RESTARTBLOCK). */
#define RESTART_FIRST 512
#define RESTART_LAST 516

static void on_exit_of_call(pid_t tid) {
    struct pending *p = pending_of(tid, 0);
    if (!p) return;
    long ret = ptrace(PTRACE_PEEKUSER, tid, offsetof(struct user_regs_struct, rax), 0);
    int err = ret < 0 && ret > -4096 ? (int)-ret : 0;
    /* An interrupted call says nothing of its path; it is made again, and stops again. */
    if (err != EINTR && (err < RESTART_FIRST || err > RESTART_LAST)) record(p, err);
    forget(tid);
}

/* A successful exec never returns to its caller: record it at the exec event. A thread
 * other than the leader that execs takes over the leader's id. */
static void on_exec(pid_t tid) {
    unsigned long former = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, 0, &former);
    struct pending *p = pending_of((pid_t)former, 0);
    if (!p) p = pending_of(tid, 0);
    if (p) {
        record(p, 0);
        forget(p->tid);
    }
}

/* ---- the seccomp filter: stop at the calls above, let every other call run ------------ */

#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define LOAD_ARG_LOW(n) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[n]))

static int install_filter(void) {
    struct sock_filter code[8 + 2 * NCALLS + 8];
    size_t n = 0;
    code[n++] = (struct sock_filter)LOAD(arch);
    code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    code[n++] = (struct sock_filter)LOAD(nr);
    /* fstat() is fstatat(fd, "", AT_EMPTY_PATH) in glibc >= 2.33: no path, no stop. */
    code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_newfstatat, 0, 3);
    code[n++] = (struct sock_filter)LOAD_ARG_LOW(3);
    code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, 0, 2 * NCALLS + 6);
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_statx, 0, 3);
    code[n++] = (struct sock_filter)LOAD_ARG_LOW(2);
    code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, 0, 2 * NCALLS + 2);
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    for (size_t i = 0; i < NCALLS; i++) {
        code[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CALLS[i].nr, 0, 1);
        code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    }
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    code[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
    struct sock_fprog prog = {(unsigned short)n, code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* ---- process control ----------------------------------------------------------------- */

static void ignore_for_now(int sig) { (void)sig; }

static void keep_running_on_signals(void) {
    struct sigaction action = {0};
    action.sa_handler = ignore_for_now;  /* a handler, not SIG_IGN: exec resets it */
    sigemptyset(&action.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &action, NULL);
}

/* The command's process: wait until traced, install the filter, run the command. Without
 * the filter nothing stops it: the run goes on untraced, and the log says so last. */
static void child(int gate, char **argv) {
    char traced = 0;
    kill(getpid(), SIGSTOP);
    if (read(gate, &traced, 1) != 1) traced = 0;
    close(gate);
    if (traced == 'T' && install_filter() != 0)
        emit("untraced", errno, "\tthe kernel refused the seccomp filter");
    else if (traced == 'T')
        setenv("PYFARM_TRACE_NATIVE", "1", 1);  /* the trace shim leaves the maps to us */
    execvp(argv[0], argv);
    fprintf(stderr, "pyfarm-fstrace: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int pass_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    int sig = WTERMSIG(status);
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);  /* the app's core, if any, was dumped already */
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    return 128 + sig;
}

static int is_stop_signal(int sig) {
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/* Known tids: the first stop of an automatically attached tracee is its start, not a
 * group-stop. */
static pid_t *known;
static size_t known_len, known_cap;

static int first_sight(pid_t tid) {
    for (size_t i = 0; i < known_len; i++)
        if (known[i] == tid) return 0;
    if (known_len == known_cap) {
        size_t cap = known_cap ? known_cap * 2 : 64;
        pid_t *more = realloc(known, cap * sizeof *more);
        if (!more) return 0;
        known = more;
        known_cap = cap;
    }
    known[known_len++] = tid;
    return 1;
}

static void drop_known(pid_t tid) {
    for (size_t i = 0; i < known_len; i++)
        if (known[i] == tid) known[i] = known[--known_len];
}

/* Let a tracee go on: to the end of its call when that call's result is still to come
 * (a signal may stop it in between). */
static void resume(pid_t tid, int sig) {
    ptrace(pending_of(tid, 0) ? PTRACE_SYSCALL : PTRACE_CONT, tid, 0, sig);
}

/* One stopped tracee: record, then let it go on. */
static void on_stop(pid_t tid, int status) {
    int sig = WSTOPSIG(status), event = (unsigned)status >> 16;
    int fresh = first_sight(tid);
    if (sig == (SIGTRAP | 0x80)) {
        on_exit_of_call(tid);
        resume(tid, 0);
    } else if (event == PTRACE_EVENT_SECCOMP) {
        on_entry(tid);
        resume(tid, 0);
    } else if (event == PTRACE_EVENT_EXEC) {
        on_exec(tid);
        resume(tid, 0);
    } else if (event == PTRACE_EVENT_STOP) {
        if (!fresh && is_stop_signal(sig))
            ptrace(PTRACE_LISTEN, tid, 0, 0);  /* a real group-stop: stay stopped */
        else
            resume(tid, 0);
    } else {
        /* fork, vfork, clone (the child reports itself), or a signal to deliver */
        resume(tid, event != 0 ? 0 : sig);
    }
}

static int trace(pid_t main_pid) {
    for (;;) {
        int status;
        pid_t tid = waitpid(-1, &status, __WALL);
        if (tid < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            forget(tid);
            drop_known(tid);
            if (tid == main_pid) return pass_status(status);
        } else if (WIFSTOPPED(status)) {
            on_stop(tid, status);
        }
    }
}

static int run_untraced(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return 1;
    return pass_status(status);
}

static void usage(void) {
    fprintf(stderr, "usage: pyfarm-fstrace -o LOG -- COMMAND [ARG...]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[1], "-o") != 0 || strcmp(argv[3], "--") != 0) usage();
    log_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        fprintf(stderr, "pyfarm-fstrace: cannot write %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    int gate[2];
    if (pipe2(gate, O_CLOEXEC) != 0) return 2;
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        close(gate[1]);
        child(gate[0], argv + 4);
    }
    close(gate[0]);
    keep_running_on_signals();
    int status;
    while (waitpid(pid, &status, WSTOPPED) < 0 && errno == EINTR) {
    }
    long options = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC |
                   PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                   PTRACE_O_EXITKILL;
    int traced = ptrace(PTRACE_SEIZE, pid, 0, options) == 0;
    if (traced)
        emit("traced", 0, "\t");
    else
        emit("untraced", errno, "\tptrace is not permitted here");
    if (write(gate[1], traced ? "T" : "U", 1) != 1) return 2;
    close(gate[1]);
    kill(pid, SIGCONT);
    return traced ? trace(pid) : run_untraced(pid);
}
