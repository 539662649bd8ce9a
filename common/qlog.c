/*
 * The quarantine log; see qlog.h.
 */
#include "common/qlog.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QLOG_LINE_MAX 4096
#define QLOG_VALUE_MAX 1536

struct qlog {
	char *path;
	int fd;
};

static int
open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0640);

	return fd < 0 ? -errno : fd;
}

struct qlog *
qlog_open(const char *path, int *rc)
{
	struct qlog *q = calloc(1, sizeof(*q));

	if (q == NULL || (q->path = strdup(path)) == NULL) {
		free(q);
		*rc = -ENOMEM;
		return NULL;
	}
	q->fd = open_log(path);
	if (q->fd < 0) {
		*rc = q->fd;
		free(q->path);
		free(q);
		return NULL;
	}
	*rc = 0;
	return q;
}

int
qlog_reopen(struct qlog *q)
{
	int fd = open_log(q->path), rc = 0;

	if (fd < 0)
		return fd;
	/* dup2 replaces the descriptor in one step: a writer on another
	 * thread sees the old file or the new one, never a closed or
	 * reused descriptor. */
	if (dup3(fd, q->fd, O_CLOEXEC) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

void
qlog_close(struct qlog *q)
{
	if (q == NULL)
		return;
	close(q->fd);
	free(q->path);
	free(q);
}

void
qlog_event(struct qlog *q, uint64_t transfer, const char *bundle,
    const char *version, const char *state, const char *reason,
    const char *detail)
{
	char line[QLOG_LINE_MAX], ts[32], id[17], b[QLOG_VALUE_MAX / 4],
	    v[QLOG_VALUE_MAX / 4], r[128], d[QLOG_VALUE_MAX];
	int n;

	util_rfc3339(ts, sizeof(ts), util_realtime_ns());
	if (transfer != 0)
		snprintf(id, sizeof(id), "%016llx",
		    (unsigned long long)transfer);
	else
		strcpy(id, "-");
	logfmt_escape(b, sizeof(b), bundle != NULL ? bundle : "-");
	logfmt_escape(v, sizeof(v), version != NULL ? version : "-");
	logfmt_escape(r, sizeof(r), reason != NULL ? reason : "-");
	n = snprintf(line, sizeof(line), "ts=%s transfer=%s bundle=%s "
	    "version=%s state=%s reason=%s", ts, id, b, v, state, r);
	if (detail != NULL && n > 0 && (size_t)n < sizeof(line)) {
		logfmt_escape(d, sizeof(d), detail);
		n += snprintf(line + n, sizeof(line) - (size_t)n, " detail=%s",
		    d);
	}
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (q != NULL)
		(void)!write(q->fd, line, (size_t)n);
}

int
qlog_write(struct qlog *q, const char *line, size_t len)
{
	return util_write_all(q->fd, line, len);
}

int
qlog_find(const char *path, uint64_t transfer, const char *state)
{
	struct logfmt_record *rec;
	char id[32];
	uint8_t *buf;
	size_t len, off = 0;
	int rc, found = 0;

	snprintf(id, sizeof(id), "%016llx", (unsigned long long)transfer);
	rc = util_read_file(path, (size_t)1 << 30, &buf, &len);
	if (rc != 0)
		return rc == -ENOENT ? 0 : rc;
	rec = malloc(sizeof(*rec));
	if (rec == NULL) {
		free(buf);
		return -ENOMEM;
	}
	/* Each line with the one logfmt parser: a value that holds
	 * " transfer=" or " state=" cannot fake a match, and a malformed
	 * line (torn by a crash) counts as no line. */
	while (off < len && !found) {
		const char *line = (const char *)buf + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - off;
		const char *t, *s;

		if (logfmt_parse(rec, line, n) == 0 &&
		    (t = logfmt_get(rec, "transfer")) != NULL &&
		    (s = logfmt_get(rec, "state")) != NULL &&
		    strcmp(t, id) == 0 && strcmp(s, state) == 0)
			found = 1;
		off += n + 1;
	}
	free(rec);
	free(buf);
	return found;
}
