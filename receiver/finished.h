/*
 * The receiver's memory of finished transfers: a set of transfer ids with
 * the verdict each one got, kept for good in one append-only file, so a
 * transfer the sender repeats after we released, rejected or dropped it as
 * a duplicate is recognised however long ago that was.  It replaces a
 * 4096-entry FIFO and a directory of marker files.
 *
 * Only the receiver's lifecycle thread touches a set: no locks.
 *
 * The file is a sequence of 16-byte records, no header:
 *
 *   id (8, big-endian, never 0) | verdict (1, 1..3) | reason (1) |
 *   reserved (2, zero) | crc32 of the 12 bytes before (4, big-endian)
 *
 * An id is appended once; a record is durable (fdatasync) before the id is
 * in memory.  In memory, one million ids cost about 12.5 MiB (an
 * open-addressing table of 8-byte ids plus 2 bytes of verdict and reason
 * per slot at load factor 0.8) and load in about 0.1 s
 * (tests/bin/finished-fill --measure).
 */
#ifndef SLUICE_RECEIVER_FINISHED_H
#define SLUICE_RECEIVER_FINISHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Verdicts remembered for good. */
enum finished_verdict {
	FINISHED_RELEASED = 1,
	FINISHED_REJECTED = 2,
	FINISHED_DUPLICATE = 3,
};

#define FINISHED_RECORD_SIZE 16

struct finished;

/*
 * Opens (creating, mode 0600) the set file `name` under directory fd
 * dirfd and loads it.  NULL with *rc = -errno.  A torn last record (file
 * size not a multiple of the record size, or a bad check value on the
 * last record) is cut off; a bad record elsewhere is skipped and counted
 * (log_warnx once with the count).  If more than 25% of the records are
 * redundant (same id more than once), the file is compacted: written to
 * name.tmp, fsynced, renamed over, directory fsynced.  A failed compaction
 * is logged and the set works on from the old file.  dirfd is borrowed
 * for the lifetime of the set.
 */
struct finished *finished_open(int dirfd, const char *name, int *rc);

/* NULL is a no-op. */
void finished_close(struct finished *f);

/*
 * Remembers id (never 0) with its verdict and a reason code (0..255,
 * opaque to this module).  Appends one record with one write(2), then
 * fdatasync.  Already present: 0 and nothing written.  0 or -errno
 * (-EINVAL for id 0 or a verdict outside the enum); the in-memory set is
 * updated only if the append and fdatasync succeeded.
 */
int finished_add(struct finished *f, uint64_t id, uint8_t verdict,
    uint8_t reason);

/*
 * The same for n ids at once, for bulk loads: ids already present (or
 * repeated within ids) are written once at most, one write(2) per 64 KiB
 * of records, one fdatasync at the end.  0 or -errno.  On an error, the
 * ids of blocks already written stay in the set (their records are in the
 * file, if perhaps not yet durable); later ones are neither written nor
 * remembered.
 */
int finished_add_many(struct finished *f, const uint64_t *ids, size_t n,
    uint8_t verdict, uint8_t reason);

/*
 * true if id is in the set; *verdict and *reason (either may be NULL)
 * receive what was recorded.  O(1).
 */
bool finished_get(const struct finished *f, uint64_t id, uint8_t *verdict,
    uint8_t *reason);

size_t finished_count(const struct finished *f);

#endif
