/*
 * The quarantine log: one logfmt line per state change of a transfer, for
 * operators and their log shippers.
 *
 *   ts=2026-11-23T05:25:47Z transfer=0123456789abcdef bundle=llama
 *   version=1.2 state=RELEASED reason=ok detail="..."
 *
 * (one line).  Every value is escaped by logfmt_escape(): a value from the
 * wire (a bundle name, a file name) can never start a new line or forge a
 * key.  Lines are written with one write(2) to an O_APPEND descriptor, so
 * concurrent writers and log rotation never split a line.
 */
#ifndef SLUICE_QLOG_H
#define SLUICE_QLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/logfmt.h" /* logfmt_escape(), for the callers */

struct qlog;

/* Opens (creates, mode 0640) for appending.  NULL with *rc = -errno. */
struct qlog *qlog_open(const char *path, int *rc);
/* Reopens the same path (after logrotate moved it away).  0 or -errno. */
int qlog_reopen(struct qlog *q);
void qlog_close(struct qlog *q);

/*
 * Appends one event.  bundle/version/detail may be NULL ("-" is written
 * for bundle and version, detail is then omitted).  transfer 0 writes
 * transfer=- (events that belong to no transfer, such as LINK_UP).
 */
void qlog_event(struct qlog *q, uint64_t transfer, const char *bundle,
    const char *version, const char *state, const char *reason,
    const char *detail);

/*
 * Appends one whole line (len bytes, ending in '\n') with one write(2):
 * for a log in the same style with other keys (sluice-publish's
 * publish_log), whose writer builds the line with logfmt_escape.
 * 0 or -errno.
 */
int qlog_write(struct qlog *q, const char *line, size_t len);

/* 1 if the log at path has a line of that state for that transfer, 0 if
 * not, or -errno.  For recovery at start only: it reads the whole file. */
int qlog_find(const char *path, uint64_t transfer, const char *state);

#endif
