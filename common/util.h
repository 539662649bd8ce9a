/*
 * Small helpers shared by every program: clocks, hex, sizes and rates,
 * socket addresses, whole-file reads and durable writes.  Functions that do
 * I/O return 0 or -errno.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/socket.h>

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* In a forked child: a process group of its own, no blocked signals,
 * stdin /dev/null, then execvpe (PATH from envp); _exit(127) if that
 * fails.  For hooks (receiver/hooks.c, tools/sluice-hookd.c). */
void util_exec_hook(char *const *argv, char *const *envp)
    __attribute__((noreturn));

/* The release, printed by every program's --version. */
#define SLUICE_VERSION_STRING "0.10.0"
#define UTIL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define UTIL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds. */
uint64_t util_now_ns(void);
uint64_t util_realtime_ns(void);

/* "2026-11-23T05:25:47Z" (UTC, second precision); buf >= 32 bytes. */
void util_rfc3339(char *buf, size_t len, uint64_t realtime_ns);
/* "YYYY-MM-DDTHH:MM:SSZ", as util_rfc3339 writes it, to seconds since
 * the epoch; -1 if malformed. */
int64_t util_parse_rfc3339(const char *s);
/* "20261123T052547Z"; buf >= 20 bytes. */
void util_compact_utc(char *buf, size_t len, uint64_t realtime_ns);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void util_hex(char *out, const void *in, size_t n);
/* Parses exactly 2n hex digits; returns 0 or -EINVAL. */
int util_unhex(void *out, size_t n, const char *in);

/*
 * "800M", "1.5G", "2000000": bits (or bytes) with optional K/M/G/T
 * suffix (powers of 1000).  Returns 0, -EINVAL (not a number, negative,
 * "nan", "inf") or -ERANGE (2^64 or more).
 */
int util_parse_si(const char *s, uint64_t *out);

/* "127.0.0.1:7700" or "[::1]:7700" into a sockaddr; 0 or -EINVAL. */
/* "host:port" with a host name or a numeric address: syntax only. */
int util_check_hostport(const char *s);
/* util_parse_addr, or a host name resolved (getaddrinfo, first answer);
 * 0 or -errno with a reason in err. */
int util_resolve_addr(const char *s, struct sockaddr_storage *ss,
    socklen_t *sslen, char *err, size_t errlen);
int util_parse_addr(const char *s, struct sockaddr_storage *ss,
    socklen_t *sslen);
/* The port of a util_parse_addr address (host order). */
unsigned util_addr_port(const struct sockaddr_storage *ss);
void util_format_addr(char *buf, size_t len, const struct sockaddr *sa);

/* Reads a whole file of at most max bytes into a malloc'd buffer (NUL
 * terminated, not counted in *len).  0 or -errno (-EFBIG when too large). */
int util_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);

/* write(2) and pwrite(2) until done; 0 or -errno. */
int util_write_all(int fd, const void *buf, size_t len);
int util_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* mkdir -p with mode for each created component; 0 or -errno. */
int util_mkdirs(const char *path, unsigned mode);
/* The directory name under dirfd as a stream (not following a symbolic
 * link), or NULL with errno set; closedir() closes it. */
DIR *util_opendirat(int dirfd, const char *name);
/* fsyncs dirfd and every directory below it (no symlinks followed). */
int util_fsync_tree(int dirfd);
/* fsync the directory holding path (or path itself if a directory). */
int util_fsync_dir(const char *path);

/*
 * Writes a file durably: temp file in the same directory, fsync, rename,
 * fsync the directory.  0 or -errno.
 */
int util_write_file_atomic(const char *path, const void *buf, size_t len,
    unsigned mode);

/* Joins dir and a relative name into buf; -ENAMETOOLONG if it won't fit. */
int util_path_join(char *buf, size_t len, const char *dir, const char *name);

/*
 * Resolves a path from a configuration file: absolute paths stay, relative
 * ones are taken relative to the configuration file's directory.  Returns
 * malloc'd memory or NULL.
 */
char *util_path_relative_to(const char *conf_path, const char *path);

/*
 * Tells the service manager about our state ("READY=1", "STOPPING=1")
 * when started with NOTIFY_SOCKET (systemd Type=notify), without
 * libsystemd.  A local AF_UNIX datagram, never a network one.  0 when not
 * under systemd, else 0 or -errno.
 */
int util_notify(const char *state);

/* snprintf into err (if err is not NULL), for functions that report why. */
void util_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Lowers the calling thread's CPU priority (nice 10): for threads whose
 * work can wait, so that the one reading the socket never waits for them.
 * Best effort: a seccomp filter may refuse it.
 */
void util_background_thread(void);

/* User plus system CPU seconds used by this process so far. */
double util_cpu_seconds(void);

/* Removes a directory tree (no symlinks followed); 0 or -errno. */
int util_rmtree(const char *path);

#endif
