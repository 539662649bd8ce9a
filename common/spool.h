/*
 * The sender's spool: a directory whose entries are prepared bundles
 * (each with .sluice/manifest), put there by an atomic rename, like
 * Maildir's new/.  The queue is the directory itself, so it survives any
 * restart; nothing else records it.  Entries whose name begins with '.'
 * are not bundles ('.incoming' is where `sluice spool add` copies a
 * bundle before renaming it in).
 *
 * Order: the manifest's priority, highest first (absent counts as 0), then
 * age (the entry's ctime, which the rename sets), then name.  A bundle
 * that has been sent moves to sent_dir with a record beside it; one that
 * cannot be sent moves to failed_dir with the reason beside it.  All three
 * directories are on one file system, so each move is one rename.
 */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPOOL_INCOMING ".incoming"

struct spool_entry {
	char name[NAME_MAX + 1];
	dev_t dev;
	ino_t ino;
	int64_t ctime_ns;
	int priority;        /* 0..999 */
	unsigned failures;   /* failed send attempts in this process */
	bool ignored;        /* not a bundle directory; warned about once */
	bool seen;           /* scan bookkeeping */
};

struct spool {
	char *dir;
	char *sent;
	char *failed;
	struct spool_entry *e;
	size_t n, cap;
	bool quiet;          /* no log line per newly seen entry */
};

/*
 * Checks that the three directories exist and share a file system, and
 * creates dir/.incoming.  0, or -errno with a message in err.
 */
int spool_open(struct spool *sp, const char *dir, const char *sent,
    const char *failed, char *err, size_t errlen);
void spool_close(struct spool *sp);

/* Re-reads the directory; 0 or -errno. */
int spool_scan(struct spool *sp);

/* The entry to send next, or NULL when the queue is empty. */
struct spool_entry *spool_next(struct spool *sp);

/* The queue in order, for listing: fills up to max pointers. */
size_t spool_order(struct spool *sp, struct spool_entry **out, size_t max);

/*
 * Moves a sent entry to sent_dir as NAME (or NAME.1, NAME.2 ... when
 * taken) after writing NAME.record there with the given text; or a failed
 * one to failed_dir with NAME.reason.  0 or -errno.
 */
int spool_sent(struct spool *sp, struct spool_entry *e, const char *record);
int spool_failed(struct spool *sp, struct spool_entry *e, const char *reason);

/*
 * Puts a prepared bundle into the spool dir as a new entry: copies the
 * files its manifest lists (after checking them) into dir/.incoming,
 * fsyncs, and renames the copy into place.  With move, the bundle is
 * renamed in instead when it is on the same file system, and removed
 * after copying when it is not.  Writes the entry's name to entry.
 * 0, or -errno with a message in err.
 */
int spool_add(const char *dir, const char *bundle, bool move, char *entry,
    size_t entrylen, char *err, size_t errlen);

/*
 * sent_retention: removes the bundle trees in sent/ whose NAME.record is
 * older than max_age seconds (the records stay, for the audit trail);
 * note (may be NULL) is told each name.  How many were removed, or
 * -errno.
 */
int spool_expire_sent(struct spool *sp, double max_age,
    void (*note)(const char *, void *), void *arg);

#endif
