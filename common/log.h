/*
 * Diagnostic logging for the daemons and tools: one API, printf-checked.
 * Lines go to stderr (journald captures it under systemd) with the program
 * name and a level.  log_warn appends strerror(errno); log_warnx does not.
 * log_err/log_errx print "error:" instead of "warning:": for a failure
 * the caller then reports through its exit status (a command that did not
 * do what was asked), so an operator never reads a failure as a warning.
 * fatal/fatalx are for start-up, configuration and broken invariants only:
 * the data path never calls them on input.
 *
 * Secrets never reach these functions.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *progname, int verbosity);
void log_set_verbosity(int verbosity);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_err(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_errx(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * A token bucket for log lines about hostile input: at most `burst` lines,
 * refilled at `per_sec`; the number suppressed is reported with the next
 * line that gets through.
 */
struct log_ratelimit {
	double tokens;
	double per_sec;
	double burst;
	uint64_t last_ns;
	uint64_t suppressed;
};

#define LOG_RATELIMIT_INIT(per_sec, burst) \
	{ (burst), (per_sec), (burst), 0, 0 }

/*
 * Returns true when a line may be printed now; *suppressed receives the
 * count of lines refused since the last one allowed (and is reset).
 */
bool log_ratelimit(struct log_ratelimit *rl, uint64_t *suppressed);

#endif
