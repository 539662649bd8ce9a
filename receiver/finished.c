/*
 * The set of finished transfer ids (see finished.h for the file format and
 * who may call in).  Invariants:
 *
 *   - f->end is the length of the file's good prefix, a multiple of the
 *     record size; every append starts there (O_APPEND, and a failed or
 *     short write is cut back to it), so one bad append never misaligns
 *     the records after it.
 *   - An id is in the table only once its record is in the file; an id in
 *     the file is in the table after open unless its record was bad.
 *   - The table is open addressing with linear probing, 0 marks an empty
 *     slot (id 0 is never stored), and count <= cap * 4 / 5 at all times,
 *     so a probe always ends at an empty slot.  cap need not be a power of
 *     two: the slot is the high half of (mixed hash * cap), which spreads
 *     a good 64-bit hash evenly over any cap without a division.
 *
 * Open presizes the table from the file size so loading never grows it,
 * and reads the file 1 MiB at a time.  Verdict and reason share one
 * uint16_t per slot: 10 bytes a slot, 12.5 bytes an id at the load limit.
 * Measured with tests/bin/finished-fill on one million random ids:
 * 12.5 MiB more RSS and about 0.1 s to load (0.15 s with a cold page
 * cache), nearly all of it cache misses on the inserts; a compacted file
 * is in table order and loads in about 35 ms.  A file whose records are
 * mostly repeats is presized for every record, and the table is shrunk
 * to fit after compaction.
 */
#include "receiver/finished.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FINISHED_READ_BLOCK	(1u << 20)
/* 64 KiB of records per write(2) in compaction and finished_add_many. */
#define FINISHED_WRITE_RECORDS	4096
#define FINISHED_MIN_CAP	1024

_Static_assert(FINISHED_READ_BLOCK % FINISHED_RECORD_SIZE == 0,
    "read blocks hold whole records");

struct finished {
	int dirfd;		/* borrowed */
	int fd;
	char *name;
	uint64_t end;		/* bytes of good records in the file */
	uint64_t *ids;		/* cap slots, 0 = empty */
	uint16_t *meta;		/* verdict << 8 | reason, per slot */
	size_t cap;
	size_t count;
};

static uint64_t
mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t
slot_of(size_t cap, uint64_t id)
{
	return (size_t)(((unsigned __int128)mix(id) * cap) >> 64);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t
probe(const uint64_t *ids, size_t cap, uint64_t id)
{
	size_t i = slot_of(cap, id);

	while (ids[i] != 0 && ids[i] != id)
		if (++i == cap)
			i = 0;
	return i;
}

/* The smallest capacity that keeps n ids within the load factor. */
static size_t
cap_for(size_t n)
{
	size_t cap = n / 4 * 5 + n % 4 * 5 / 4 + 1;

	return UTIL_MAX(cap, (size_t)FINISHED_MIN_CAP);
}

static bool
over_load(size_t count, size_t cap)
{
	return count > cap / 5 * 4 + cap % 5 * 4 / 5;
}

static int
table_alloc(struct finished *f, size_t cap)
{
	uint64_t *ids, *old_ids = f->ids;
	uint16_t *meta, *old_meta = f->meta;
	size_t i, j;

	ids = calloc(cap, sizeof(*ids));
	meta = calloc(cap, sizeof(*meta));
	if (ids == NULL || meta == NULL) {
		free(ids);
		free(meta);
		return -ENOMEM;
	}
	for (i = 0; i < f->cap; i++) {
		if (old_ids[i] == 0)
			continue;
		j = probe(ids, cap, old_ids[i]);
		ids[j] = old_ids[i];
		meta[j] = old_meta[i];
	}
	free(old_ids);
	free(old_meta);
	f->ids = ids;
	f->meta = meta;
	f->cap = cap;
	return 0;
}

/* Makes room for n more ids, growing by 1.5x at a time. */
static int
reserve(struct finished *f, size_t n)
{
	size_t cap = f->cap;

	if (SIZE_MAX - f->count < n)
		return -ENOMEM;
	while (over_load(f->count + n, cap)) {
		if (cap > SIZE_MAX / 3)
			return -ENOMEM;
		cap = cap / 2 * 3 + cap % 2;
	}
	return cap == f->cap ? 0 : table_alloc(f, cap);
}

/* Inserts id (room reserved); false if it was already there. */
static bool
insert(struct finished *f, uint64_t id, uint8_t verdict, uint8_t reason)
{
	size_t i = probe(f->ids, f->cap, id);

	if (f->ids[i] != 0)
		return false;
	f->ids[i] = id;
	f->meta[i] = (uint16_t)(verdict << 8 | reason);
	f->count++;
	return true;
}

static bool
verdict_ok(uint8_t verdict)
{
	return verdict >= FINISHED_RELEASED && verdict <= FINISHED_DUPLICATE;
}

static void
record_encode(uint8_t *p, uint64_t id, uint8_t verdict, uint8_t reason)
{
	struct pwr w;

	pwr_init(&w, p, FINISHED_RECORD_SIZE);
	pwr_u64(&w, id);
	pwr_u8(&w, verdict);
	pwr_u8(&w, reason);
	pwr_u16(&w, 0);
	pwr_u32(&w, (uint32_t)crc32(0, p, 12));
}

/* false for a record that is torn, corrupt or not one we would write. */
static bool
record_decode(const uint8_t *p, uint64_t *id, uint8_t *verdict,
    uint8_t *reason)
{
	struct pcur c;
	uint16_t reserved;
	uint32_t check;

	pcur_init(&c, p, FINISHED_RECORD_SIZE);
	*id = pcur_u64(&c);
	*verdict = pcur_u8(&c);
	*reason = pcur_u8(&c);
	reserved = pcur_u16(&c);
	check = pcur_u32(&c);
	return check == (uint32_t)crc32(0, p, 12) && *id != 0 &&
	    verdict_ok(*verdict) && reserved == 0;
}

/*
 * Appends len bytes of whole records with one write(2).  A failed or short
 * write is cut back to f->end so that the next append starts on a record
 * boundary.
 */
static int
append(struct finished *f, const uint8_t *buf, size_t len)
{
	ssize_t n;
	int rc;

	do
		n = write(f->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n == len) {
		f->end += len;
		return 0;
	}
	rc = n < 0 ? -errno : -EIO;
	if (n != 0 && ftruncate(f->fd, (off_t)f->end) < 0)
		log_warn("finished set %s: cannot cut back to %llu bytes",
		    f->name, (unsigned long long)f->end);
	return rc;
}

/* pread until len bytes or end of file; the count read or -errno. */
static ssize_t
read_block(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got,
		    (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/*
 * Loads the records of [0, size) into the (presized) table.  A bad last
 * record is cut off; bad ones elsewhere are counted in *bad.  *redundant
 * counts good records whose id came earlier.
 */
static int
load(struct finished *f, uint64_t size, size_t *bad, size_t *redundant)
{
	uint8_t *buf;
	uint64_t off = 0, id;
	uint8_t verdict, reason;
	size_t i, len;
	ssize_t n;
	int rc = 0;

	buf = malloc(FINISHED_READ_BLOCK);
	if (buf == NULL)
		return -ENOMEM;
	while (off < size) {
		len = (size_t)UTIL_MIN(size - off,
		    (uint64_t)FINISHED_READ_BLOCK);
		n = read_block(f->fd, buf, len, off);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if ((size_t)n != len) {
			rc = -EIO;	/* shrank under us */
			goto out;
		}
		for (i = 0; i < len; i += FINISHED_RECORD_SIZE) {
			if (!record_decode(buf + i, &id, &verdict, &reason)) {
				if (off + i + FINISHED_RECORD_SIZE == size)
					size -= FINISHED_RECORD_SIZE;
				else
					(*bad)++;
				continue;
			}
			if (!insert(f, id, verdict, reason))
				(*redundant)++;
		}
		off += len;
	}
	f->end = size;
out:
	free(buf);
	return rc;
}

/*
 * Rewrites the file with each id once: name.tmp, fsync, rename over,
 * fsync the directory.  On success f->fd is the new file.
 */
static int
compact(struct finished *f)
{
	char tmp[NAME_MAX + 1];
	uint8_t *buf = NULL;
	size_t i, used = 0;
	uint64_t written = 0;
	int fd = -1, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", f->name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	buf = malloc(FINISHED_WRITE_RECORDS * FINISHED_RECORD_SIZE);
	if (buf == NULL)
		return -ENOMEM;
	if (unlinkat(f->dirfd, tmp, 0) < 0 && errno != ENOENT) {
		rc = -errno;
		goto out;
	}
	fd = openat(f->dirfd, tmp, O_RDWR | O_APPEND | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	for (i = 0; i <= f->cap; i++) {
		if (used == FINISHED_WRITE_RECORDS ||
		    (i == f->cap && used > 0)) {
			rc = util_write_all(fd, buf,
			    used * FINISHED_RECORD_SIZE);
			if (rc < 0)
				goto out;
			written += used * FINISHED_RECORD_SIZE;
			used = 0;
		}
		if (i == f->cap || f->ids[i] == 0)
			continue;
		record_encode(buf + used++ * FINISHED_RECORD_SIZE, f->ids[i],
		    (uint8_t)(f->meta[i] >> 8), (uint8_t)f->meta[i]);
	}
	if (fsync(fd) < 0 || renameat(f->dirfd, tmp, f->dirfd, f->name) < 0) {
		rc = -errno;
		goto out;
	}
	close(f->fd);
	f->fd = fd;
	f->end = written;
	fd = -1;
	if (fsync(f->dirfd) < 0)
		rc = -errno;	/* renamed already: keep the new file */
	else
		rc = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlinkat(f->dirfd, tmp, 0);
	}
	free(buf);
	return rc;
}

struct finished *
finished_open(int dirfd, const char *name, int *rc)
{
	struct finished *f;
	struct stat st;
	size_t bad = 0, redundant = 0, records;
	int r;

	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		*rc = -ENOMEM;
		return NULL;
	}
	f->dirfd = dirfd;
	f->fd = -1;
	f->name = strdup(name);
	if (f->name == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	f->fd = openat(dirfd, name, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (f->fd < 0 || fstat(f->fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto fail;
	}
	records = (size_t)((uint64_t)st.st_size / FINISHED_RECORD_SIZE);
	if ((r = table_alloc(f, cap_for(records))) < 0)
		goto fail;
	if ((r = load(f, (uint64_t)records * FINISHED_RECORD_SIZE, &bad,
	    &redundant)) < 0)
		goto fail;
	if ((uint64_t)st.st_size != f->end) {
		log_warnx("finished set %s: cutting a torn last record "
		    "(%llu bytes to %llu)", name,
		    (unsigned long long)st.st_size,
		    (unsigned long long)f->end);
		if (ftruncate(f->fd, (off_t)f->end) < 0) {
			r = -errno;
			goto fail;
		}
	}
	if (bad > 0)
		log_warnx("finished set %s: skipped %zu bad records", name,
		    bad);
	if (redundant > records / 4) {
		if ((r = compact(f)) < 0) {
			errno = -r;
			log_warn("finished set %s: compaction failed", name);
		} else if (cap_for(f->count) < f->cap) {
			/* Presized for the repeats too: give that back. */
			(void)table_alloc(f, cap_for(f->count));
		}
	}
	*rc = 0;
	return f;
fail:
	finished_close(f);
	*rc = r;
	return NULL;
}

void
finished_close(struct finished *f)
{
	if (f == NULL)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->ids);
	free(f->meta);
	free(f->name);
	free(f);
}

int
finished_add(struct finished *f, uint64_t id, uint8_t verdict,
    uint8_t reason)
{
	uint8_t rec[FINISHED_RECORD_SIZE];
	int rc;

	if (id == 0 || !verdict_ok(verdict))
		return -EINVAL;
	if (finished_get(f, id, NULL, NULL))
		return 0;
	if ((rc = reserve(f, 1)) < 0)
		return rc;
	record_encode(rec, id, verdict, reason);
	if ((rc = append(f, rec, sizeof(rec))) < 0)
		return rc;
	if (fdatasync(f->fd) < 0)
		return -errno;
	insert(f, id, verdict, reason);
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int
finished_add_many(struct finished *f, const uint64_t *ids, size_t n,
    uint8_t verdict, uint8_t reason)
{
	uint64_t *batch = NULL;
	uint8_t *buf = NULL;
	size_t done, i, m, k;
	int rc;

	if (!verdict_ok(verdict))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (ids[i] == 0)
			return -EINVAL;
	if ((rc = reserve(f, n)) < 0)
		return rc;
	batch = malloc(FINISHED_WRITE_RECORDS * sizeof(*batch));
	buf = malloc(FINISHED_WRITE_RECORDS * FINISHED_RECORD_SIZE);
	if (batch == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* Sorting a block finds its repeats; file order does not matter. */
	for (done = 0; done < n; done += m) {
		m = UTIL_MIN(n - done, (size_t)FINISHED_WRITE_RECORDS);
		memcpy(batch, ids + done, m * sizeof(*batch));
		qsort(batch, m, sizeof(*batch), cmp_u64);
		for (i = k = 0; i < m; i++) {
			if ((i > 0 && batch[i] == batch[i - 1]) ||
			    finished_get(f, batch[i], NULL, NULL))
				continue;
			batch[k] = batch[i];
			record_encode(buf + k++ * FINISHED_RECORD_SIZE,
			    batch[i], verdict, reason);
		}
		if (k == 0)
			continue;
		if ((rc = append(f, buf, k * FINISHED_RECORD_SIZE)) < 0)
			goto out;
		for (i = 0; i < k; i++)
			insert(f, batch[i], verdict, reason);
	}
	rc = fdatasync(f->fd) < 0 ? -errno : 0;
out:
	free(batch);
	free(buf);
	return rc;
}

bool
finished_get(const struct finished *f, uint64_t id, uint8_t *verdict,
    uint8_t *reason)
{
	size_t i;

	if (id == 0)
		return false;
	i = probe(f->ids, f->cap, id);
	if (f->ids[i] == 0)
		return false;
	if (verdict != NULL)
		*verdict = (uint8_t)(f->meta[i] >> 8);
	if (reason != NULL)
		*reason = (uint8_t)f->meta[i];
	return true;
}

size_t
finished_count(const struct finished *f)
{
	return f->count;
}
