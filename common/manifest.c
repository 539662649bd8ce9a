/*
 * Bundle manifests in memory; see manifest.h.  The text form is rendered
 * here and parsed only by proto/manifest.c.  Both sides apply the same
 * name and path rules, so a sender refuses what a receiver would reject.
 */
#include "common/manifest.h"
#include "common/hash.h"
#include "common/sign.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX_DEPTH 64

struct manifest *
manifest_new(const char *name, const char *version)
{
	struct manifest *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->priority = -1;
	m->name = strdup(name);
	m->version = strdup(version);
	if (m->name == NULL || m->version == NULL) {
		manifest_free(m);
		return NULL;
	}
	return m;
}

void
manifest_free(struct manifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	free(m->name);
	free(m->version);
	free(m->created);
	free(m->expires);
	free(m->rollback_to);
	free(m->changes);
	free(m->reason);
	free(m->destination);
	for (i = 0; i < m->n_meta; i++) {
		free(m->meta[i].key);
		free(m->meta[i].value);
	}
	free(m->meta);
	for (i = 0; i < m->n_files; i++) {
		free(m->files[i].path);
		free(m->files[i].src);
	}
	free(m->files);
	free(m->approvals);
	free(m->text);
	free(m);
}

static char **
field_slot(struct manifest *m, const char *field)
{
	if (strcmp(field, "created") == 0)
		return &m->created;
	if (strcmp(field, "expires") == 0)
		return &m->expires;
	if (strcmp(field, "rollback-to") == 0)
		return &m->rollback_to;
	if (strcmp(field, "changes") == 0)
		return &m->changes;
	if (strcmp(field, "reason") == 0)
		return &m->reason;
	if (strcmp(field, "destination") == 0)
		return &m->destination;
	return NULL;
}

int
manifest_set(struct manifest *m, const char *field, const char *value)
{
	char **slot, *copy;

	if (strcmp(field, "priority") == 0) {
		char *end;
		long p = strtol(value, &end, 10);

		if (*value == '\0' || *end != '\0' || p < 0 || p > 999)
			return -EINVAL;
		m->priority = (int)p;
		return 0;
	}
	slot = field_slot(m, field);
	if (slot == NULL || *value == '\0')
		return -EINVAL;
	copy = strdup(value);
	if (copy == NULL)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

int
manifest_add_meta(struct manifest *m, const char *key, const char *value)
{
	struct manifest_meta *n;

	if (*key == '\0' || strchr(key, '=') != NULL || *value == '\0')
		return -EINVAL;
	n = realloc(m->meta, (m->n_meta + 1) * sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	m->meta = n;
	n[m->n_meta].key = strdup(key);
	n[m->n_meta].value = strdup(value);
	if (n[m->n_meta].key == NULL || n[m->n_meta].value == NULL) {
		free(n[m->n_meta].key);
		free(n[m->n_meta].value);
		return -ENOMEM;
	}
	m->n_meta++;
	return 0;
}

int
manifest_add_file(struct manifest *m, const char *path, uint64_t size,
    bool exec, const uint8_t sha256[32], const char *src)
{
	struct manifest_file *n, *f;

	n = realloc(m->files, (m->n_files + 1) * sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	m->files = n;
	f = &n[m->n_files];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	f->src = src != NULL ? strdup(src) : NULL;
	if (f->path == NULL || (src != NULL && f->src == NULL)) {
		free(f->path);
		free(f->src);
		return -ENOMEM;
	}
	f->size = size;
	f->exec = exec;
	memcpy(f->sha256, sha256, 32);
	m->n_files++;
	m->total_bytes += size;
	return 0;
}

/* hash false: size and mode only, the SHA-256 left zero (see
 * manifest_open_bundle). */
static int
add_open_file(struct manifest *m, int fd, const char *rel, const char *src,
    bool hash, char *err, size_t errlen)
{
	struct stat st;
	uint8_t digest[HASH_LEN] = { 0 };
	uint64_t size;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!hash) {
		if (!S_ISREG(st.st_mode))
			return -EINVAL;
		return manifest_add_file(m, rel, (uint64_t)st.st_size,
		    (st.st_mode & S_IXUSR) != 0, digest, src);
	}
	rc = hash_fd(fd, digest, &size);
	if (rc != 0) {
		util_seterr(err, errlen,
		    "%s: cannot read: %s", src, strerror(-rc));
		return rc;
	}
	if (size != (uint64_t)st.st_size) {
		util_seterr(err, errlen, "%s: changed while being read", src);
		return -EAGAIN;
	}
	return manifest_add_file(m, rel, size, (st.st_mode & S_IXUSR) != 0,
	    digest, src);
}

static int
walk(struct manifest *m, int dirfd, const char *src_dir, const char *rel,
    int depth, bool hash, char *err, size_t errlen)
{
	struct dirent **names = NULL;
	int n, i, rc = 0, fd;

	if (depth > MANIFEST_MAX_DEPTH) {
		util_seterr(err, errlen, "%s: directories nested too deeply",
		    src_dir);
		return -ELOOP;
	}
	/* scandir needs a path; the dirfd guards against swaps below. */
	n = scandir(src_dir, &names, NULL, alphasort);
	if (n < 0) {
		rc = -errno;
		util_seterr(err, errlen, "%s: %s", src_dir, strerror(errno));
		return rc;
	}
	for (i = 0; i < n && rc == 0; i++) {
		const char *nm = names[i]->d_name;
		char src[PATH_MAX], child_rel[PATH_MAX];
		struct stat st;

		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
			continue;
		if (depth == 0 && strcmp(nm, PMAN_RESERVED_DIR) == 0)
			continue;
		if (util_path_join(src, sizeof(src), src_dir, nm) != 0 ||
		    (rel[0] == '\0' ? snprintf(child_rel, sizeof(child_rel),
		    "%s", nm) : snprintf(child_rel, sizeof(child_rel), "%s/%s",
		    rel, nm)) >= (int)sizeof(child_rel)) {
			util_seterr(err, errlen,
			    "%s/%s: path too long", src_dir, nm);
			rc = -ENAMETOOLONG;
			break;
		}
		if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			util_seterr(err, errlen,
			    "%s: %s", src, strerror(errno));
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			fd = openat(dirfd, nm, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				rc = -errno;
				util_seterr(err, errlen, "%s: %s", src,
				    strerror(errno));
				break;
			}
			rc = walk(m, fd, src, child_rel, depth + 1, hash, err,
			    errlen);
			close(fd);
		} else if (S_ISREG(st.st_mode)) {
			fd = openat(dirfd, nm, O_RDONLY | O_NOFOLLOW |
			    O_CLOEXEC);
			if (fd < 0) {
				rc = -errno;
				util_seterr(err, errlen, "%s: %s", src,
				    strerror(errno));
				break;
			}
			rc = add_open_file(m, fd, child_rel, src, hash, err,
			    errlen);
			close(fd);
		} else {
			util_seterr(err, errlen, "%s: not a regular file or "
			    "directory (%s); refusing to send it", src,
			    S_ISLNK(st.st_mode) ? "symbolic link" :
			    S_ISFIFO(st.st_mode) ? "FIFO" :
			    S_ISSOCK(st.st_mode) ? "socket" : "device");
			rc = -EINVAL;
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int
add_dir(struct manifest *m, const char *dir, bool hash, char *err,
    size_t errlen)
{
	struct stat st;
	int fd, rc;

	if (lstat(dir, &st) < 0) {
		util_seterr(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		util_seterr(err, errlen, "%s: not a directory", dir);
		return -ENOTDIR;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		util_seterr(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	rc = walk(m, fd, dir, "", 0, hash, err, errlen);
	close(fd);
	return rc;
}

int
manifest_add_dir(struct manifest *m, const char *dir, char *err,
    size_t errlen)
{
	return add_dir(m, dir, true, err, errlen);
}

int
manifest_add_path(struct manifest *m, const char *path, char *err,
    size_t errlen)
{
	const char *base = strrchr(path, '/');
	struct stat st;
	int fd, rc;

	base = base == NULL ? path : base + 1;
	if (lstat(path, &st) < 0) {
		util_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		util_seterr(err, errlen, "%s: not a regular file; refusing to "
		    "send it", path);
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		util_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	rc = add_open_file(m, fd, base, path, true, err, errlen);
	close(fd);
	return rc;
}

static int
cmp_file(const void *a, const void *b)
{
	const struct manifest_file *fa = a, *fb = b;

	return strcmp(fa->path, fb->path);
}

static int
cmp_meta(const void *a, const void *b)
{
	const struct manifest_meta *ma = a, *mb = b;

	return strcmp(ma->key, mb->key);
}

/*
 * Duplicate paths, paths equal after ASCII case folding (which a
 * case-insensitive store would merge), and a file that is also another
 * file's parent directory are refused.
 *
 * Linear in the bytes of the paths, whatever their depth: the folded
 * paths go into a hash set, then every directory prefix of every path is
 * looked up in it, each prefix's hash being the running hash of its path
 * (a binary search per prefix took 1.9 s for 20,000 files 500
 * directories deep).  The hash is polynomial modulo 2^61 - 1 with a base
 * drawn at random for each check, so a sender cannot choose paths that
 * collide or crowd one bucket.
 */
#define COLL_MOD ((UINT64_C(1) << 61) - 1)

struct coll_slot {
	uint64_t h;
	size_t file; /* index + 1; 0: empty */
};

struct coll_set {
	struct coll_slot *slot;
	size_t mask;
	char **folded;
	size_t *len;
};

static uint64_t
coll_mul(uint64_t a, uint64_t b)
{
	unsigned __int128 p = (unsigned __int128)a * b;
	uint64_t r = (uint64_t)(p & COLL_MOD) + (uint64_t)(p >> 61);

	return r >= COLL_MOD ? r - COLL_MOD : r;
}

static uint64_t
coll_step(uint64_t h, uint64_t base, unsigned char c)
{
	h = coll_mul(h, base) + c + 1;
	return h >= COLL_MOD ? h - COLL_MOD : h;
}

/* The file whose folded path is s[0..len) (hash h), or -1. */
static long
coll_find(const struct coll_set *cs, uint64_t h, const char *s, size_t len)
{
	size_t i = (size_t)((h * UINT64_C(0x9e3779b97f4a7c15)) >> 20) &
	    cs->mask;

	for (; cs->slot[i].file != 0; i = (i + 1) & cs->mask) {
		size_t f = cs->slot[i].file - 1;

		if (cs->slot[i].h == h && cs->len[f] == len &&
		    memcmp(cs->folded[f], s, len) == 0)
			return (long)f;
	}
	return -1;
}

static void
coll_add(struct coll_set *cs, uint64_t h, size_t file)
{
	size_t i = (size_t)((h * UINT64_C(0x9e3779b97f4a7c15)) >> 20) &
	    cs->mask;

	while (cs->slot[i].file != 0)
		i = (i + 1) & cs->mask;
	cs->slot[i].h = h;
	cs->slot[i].file = file + 1;
}

static int
check_collisions(const struct manifest *m, char *err, size_t errlen)
{
	struct coll_set cs = { NULL, 0, NULL, NULL };
	uint64_t base = 0, h;
	size_t i, j, cap = 16;
	int rc = 0;

	if (m->n_files < 2)
		return 0;
	while (cap < 2 * m->n_files)
		cap *= 2;
	cs.mask = cap - 1;
	cs.slot = calloc(cap, sizeof(*cs.slot));
	cs.folded = calloc(m->n_files, sizeof(*cs.folded));
	cs.len = calloc(m->n_files, sizeof(*cs.len));
	if (cs.slot == NULL || cs.folded == NULL || cs.len == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (getrandom(&base, sizeof(base), 0) != (ssize_t)sizeof(base))
		base = util_now_ns() ^ (uint64_t)(uintptr_t)&base;
	base = (base % (COLL_MOD - 257)) + 257;
	for (i = 0; i < m->n_files; i++) {
		char *f = strdup(m->files[i].path);

		if ((cs.folded[i] = f) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		for (h = 0, j = 0; f[j] != '\0'; j++) {
			f[j] = (char)tolower((unsigned char)f[j]);
			h = coll_step(h, base, (unsigned char)f[j]);
		}
		cs.len[i] = j;
		if (coll_find(&cs, h, f, j) >= 0) {
			util_seterr(err, errlen, "two files named \"%s\" when "
			    "case is ignored", f);
			rc = -EINVAL;
			goto out;
		}
		coll_add(&cs, h, i);
	}
	for (i = 0; i < m->n_files; i++) {
		const char *f = cs.folded[i];

		for (h = 0, j = 0; j < cs.len[i]; j++) {
			if (f[j] == '/' && coll_find(&cs, h, f, j) >= 0) {
				util_seterr(err, errlen, "\"%.*s\" is both a "
				    "file and a directory", (int)j, f);
				rc = -EINVAL;
				goto out;
			}
			h = coll_step(h, base, (unsigned char)f[j]);
		}
	}
out:
	if (cs.folded != NULL)
		for (i = 0; i < m->n_files; i++)
			free(cs.folded[i]);
	free(cs.folded);
	free(cs.len);
	free(cs.slot);
	return rc;
}

struct sbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->cap - b->len <= n) {
		size_t cap = (b->cap + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (p == NULL) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_esc(struct sbuf *b, const char *s)
{
	char tmp[3 * PMAN_MAX_VALUE + 1];
	size_t n = pman_escape(s, strlen(s), tmp, sizeof(tmp));

	if (n == 0) {
		b->err = -EINVAL;
		return;
	}
	sb_add(b, tmp, n);
}

static void
sb_field(struct sbuf *b, const char *key, const char *value)
{
	if (value == NULL)
		return;
	sb_str(b, key);
	sb_str(b, " ");
	sb_esc(b, value);
	sb_str(b, "\n");
}

int
manifest_finish(struct manifest *m, char *err, size_t errlen)
{
	struct sbuf b = { 0 };
	struct pman_cursor c;
	struct pman_line l;
	enum pman_verdict v;
	char num[32];
	size_t i;
	int rc;

	if (m->name[0] == '\0' || m->version[0] == '\0' ||
	    strlen(m->name) > PMAN_MAX_VALUE ||
	    strlen(m->version) > PMAN_MAX_VALUE) {
		util_seterr(err, errlen, "bundle name and version must be "
		    "non-empty and at most %d bytes", PMAN_MAX_VALUE);
		return -EINVAL;
	}
	if (m->n_files > 1)
		qsort(m->files, m->n_files, sizeof(*m->files), cmp_file);
	if (m->n_meta > 1)
		qsort(m->meta, m->n_meta, sizeof(*m->meta), cmp_meta);
	for (i = 0; i < m->n_files; i++) {
		const char *p = m->files[i].path;

		if (pman_path_check(p, strlen(p), PMAN_MAX_VALUE) != PMAN_OK) {
			util_seterr(err, errlen, "unsafe file name \"%s\"", p);
			return -EINVAL;
		}
	}
	rc = check_collisions(m, err, errlen);
	if (rc != 0)
		return rc;

	sb_str(&b, PMAN_MAGIC_LINE "\n");
	sb_field(&b, "name", m->name);
	sb_field(&b, "version", m->version);
	sb_field(&b, "created", m->created);
	sb_field(&b, "expires", m->expires);
	if (m->priority >= 0) {
		snprintf(num, sizeof(num), "%d", m->priority);
		sb_field(&b, "priority", num);
	}
	sb_field(&b, "rollback-to", m->rollback_to);
	sb_field(&b, "changes", m->changes);
	sb_field(&b, "reason", m->reason);
	sb_field(&b, "destination", m->destination);
	for (i = 0; i < m->n_meta; i++) {
		sb_str(&b, "meta ");
		sb_esc(&b, m->meta[i].key);
		sb_str(&b, "=");
		sb_esc(&b, m->meta[i].value);
		sb_str(&b, "\n");
	}
	for (i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		char hex[65];

		util_hex(hex, f->sha256, 32);
		snprintf(num, sizeof(num), " %llu %c ",
		    (unsigned long long)f->size, f->exec ? 'x' : '-');
		sb_str(&b, "file ");
		sb_str(&b, hex);
		sb_str(&b, num);
		sb_esc(&b, f->path);
		sb_str(&b, "\n");
	}
	sb_str(&b, "end\n");
	if (b.err != 0) {
		free(b.p);
		util_seterr(err, errlen, "cannot render the manifest");
		return b.err;
	}
	/* What we render must be what the receiver's parser accepts. */
	pman_init(&c, b.p, b.len);
	while ((v = pman_next(&c, &l)) == PMAN_OK)
		;
	if (v != PMAN_DONE) {
		util_seterr(err, errlen, "manifest does not parse back: %s "
		    "(line %u)", pman_verdict_name(v), l.lineno);
		free(b.p);
		return -EINVAL;
	}
	free(m->text);
	m->text = b.p;
	m->text_len = b.len;
	hash_sha256(m->digest, m->text, m->text_len);
	return 0;
}

static char *
unescape_dup(const char *s, size_t len)
{
	char tmp[PMAN_MAX_VALUE + 1];
	size_t n;

	if (pman_unescape(s, len, tmp, sizeof(tmp), &n) != PMAN_OK)
		return NULL;
	return strndup(tmp, n);
}

int
manifest_parse(const void *buf, size_t len, const struct manifest_limits *lim,
    struct manifest **out, const char **reason, char *err, size_t errlen)
{
	struct manifest *m = NULL;
	struct pman_cursor c;
	struct pman_line l;
	enum pman_verdict v;
	char *name = NULL, *version = NULL;
	int rc = -EBADMSG;

	*out = NULL;
	*reason = "manifest_syntax";
	pman_init(&c, buf, len);
	while ((v = pman_next(&c, &l)) == PMAN_OK) {
		if (l.kind == PMAN_FIELD && l.field == PMAN_F_NAME) {
			name = unescape_dup(l.val, l.val_len);
		} else if (l.kind == PMAN_FIELD && l.field == PMAN_F_VERSION) {
			version = unescape_dup(l.val, l.val_len);
			if (name == NULL || version == NULL)
				goto nomem;
			m = manifest_new(name, version);
			if (m == NULL)
				goto nomem;
		} else if (l.kind == PMAN_FIELD && l.field == PMAN_F_META) {
			const char *eq = memchr(l.val, '=', l.val_len);
			char *k = unescape_dup(l.val, (size_t)(eq - l.val));
			char *val = unescape_dup(eq + 1,
			    l.val_len - (size_t)(eq - l.val) - 1);
			int r = (k == NULL || val == NULL) ? -EINVAL :
			    manifest_add_meta(m, k, val);

			free(k);
			free(val);
			if (r != 0) {
				util_seterr(err, errlen, "line %u: bad meta",
				    l.lineno);
				goto fail;
			}
		} else if (l.kind == PMAN_FIELD) {
			char *val = unescape_dup(l.val, l.val_len);
			int r = val == NULL ? -ENOMEM :
			    manifest_set(m, pman_field_name(l.field), val);

			free(val);
			if (r != 0)
				goto nomem;
		} else if (l.kind == PMAN_FILE) {
			char path[PMAN_MAX_VALUE + 1];
			size_t plen;

			if (m->n_files >= lim->max_files) {
				*reason = "too_many_files";
				util_seterr(err, errlen, "more than %zu files",
				    lim->max_files);
				goto fail;
			}
			(void)pman_unescape(l.path, l.path_len, path,
			    sizeof(path), &plen);
			if (pman_path_check(path, plen, lim->max_path_len) !=
			    PMAN_OK) {
				*reason = "unsafe_path";
				util_seterr(err, errlen,
				    "line %u: path over %zu "
				    "bytes", l.lineno, lim->max_path_len);
				goto fail;
			}
			if (l.size > lim->max_bytes ||
			    m->total_bytes > lim->max_bytes - l.size) {
				*reason = "too_large";
				util_seterr(err, errlen,
				    "bundle over %llu bytes",
				    (unsigned long long)lim->max_bytes);
				goto fail;
			}
			if (manifest_add_file(m, path, l.size, l.exec,
			    l.sha256, NULL) != 0)
				goto nomem;
		} else if (l.kind == PMAN_END) {
			m->text = malloc(l.signed_len + 1);
			if (m->text == NULL)
				goto nomem;
			memcpy(m->text, buf, l.signed_len);
			m->text[l.signed_len] = '\0';
			m->text_len = l.signed_len;
			hash_sha256(m->digest, m->text, m->text_len);
		} else if (l.kind == PMAN_APPROVAL) {
			struct manifest_approval *a;

			if (m->n_approvals >= 64) {
				*reason = "too_many_approvals";
				goto fail;
			}
			a = realloc(m->approvals,
			    (m->n_approvals + 1) * sizeof(*a));
			if (a == NULL)
				goto nomem;
			m->approvals = a;
			memcpy(a[m->n_approvals].key_id, l.key_id, 8);
			memcpy(a[m->n_approvals].sig, l.sig, 64);
			m->n_approvals++;
		}
	}
	if (v != PMAN_DONE) {
		*reason = v == PMAN_ERR_PATH ? "unsafe_path" :
		    pman_verdict_name(v);
		util_seterr(err, errlen, "line %u: %s", l.lineno,
		    pman_verdict_name(v));
		goto fail;
	}
	if (check_collisions(m, err, errlen) != 0) {
		*reason = "case_collision";
		goto fail;
	}
	*out = m;
	m = NULL;
	rc = 0;
	goto done;
nomem:
	*reason = "manifest_syntax";
	util_seterr(err, errlen, "out of memory or bad value");
fail:
	rc = -EBADMSG;
done:
	free(name);
	free(version);
	manifest_free(m);
	return rc;
}

int
manifest_render_object(const struct manifest *m, uint8_t **buf, size_t *len)
{
	struct sbuf b = { 0 };
	size_t i;

	sb_add(&b, m->text, m->text_len);
	for (i = 0; i < m->n_approvals; i++) {
		char id[17], sig[129];

		util_hex(id, m->approvals[i].key_id, 8);
		util_hex(sig, m->approvals[i].sig, 64);
		sb_str(&b, "approval ");
		sb_str(&b, id);
		sb_str(&b, " ");
		sb_str(&b, sig);
		sb_str(&b, "\n");
	}
	if (b.err != 0) {
		free(b.p);
		return b.err;
	}
	*buf = (uint8_t *)b.p;
	*len = b.len;
	return 0;
}

long
manifest_find(const struct manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n_files;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->files[mid].path, path);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- approvals -------------------------------------------------------- */

static uint8_t *
approval_message(const struct manifest *m, size_t *len)
{
	size_t ctx = 24;
	uint8_t *msg = calloc(1, ctx + m->text_len);

	if (msg == NULL)
		return NULL;
	memcpy(msg, MANIFEST_APPROVAL_CONTEXT,
	    sizeof(MANIFEST_APPROVAL_CONTEXT) - 1);
	memcpy(msg + ctx, m->text, m->text_len);
	*len = ctx + m->text_len;
	return msg;
}

int
manifest_approve(struct manifest *m, const struct sign_seckey *sk)
{
	struct manifest_approval *a = NULL;
	uint8_t *msg;
	size_t len, i;

	msg = approval_message(m, &len);
	if (msg == NULL)
		return -ENOMEM;
	for (i = 0; i < m->n_approvals; i++)
		if (memcmp(m->approvals[i].key_id, sign_seckey_id(sk), 8) == 0)
			a = &m->approvals[i];
	if (a == NULL) {
		a = realloc(m->approvals, (m->n_approvals + 1) * sizeof(*a));
		if (a == NULL) {
			free(msg);
			return -ENOMEM;
		}
		m->approvals = a;
		a = &m->approvals[m->n_approvals++];
	}
	memcpy(a->key_id, sign_seckey_id(sk), 8);
	sign_detached(sk, a->sig, msg, len);
	free(msg);
	return 0;
}

unsigned
manifest_count_approvals(const struct manifest *m,
    const struct sign_pubkey *keys, size_t n, char *ids, size_t idslen)
{
	uint8_t *msg;
	size_t len, k, i, off = 0;
	unsigned count = 0;

	if (ids != NULL && idslen > 0)
		ids[0] = '\0';
	msg = approval_message(m, &len);
	if (msg == NULL)
		return 0;
	for (k = 0; k < n; k++) {
		/* A key listed again (a copied .pub file) is one person:
		 * compare the key bytes, not the file it came from. */
		for (i = 0; i < k; i++)
			if (memcmp(keys[i].pk, keys[k].pk, sizeof(keys[k].pk)) ==
			    0)
				break;
		if (i < k)
			continue;
		for (i = 0; i < m->n_approvals; i++) {
			const struct manifest_approval *a = &m->approvals[i];

			if (memcmp(a->key_id, keys[k].id, 8) != 0 ||
			    !sign_verify(&keys[k], a->sig, msg, len))
				continue;
			count++;
			if (ids != NULL && off + 18 < idslen) {
				if (off > 0)
					ids[off++] = ',';
				util_hex(ids + off, keys[k].id, 8);
				off += 16;
			}
			break; /* each key once */
		}
	}
	free(msg);
	return count;
}

/* ---- bundles on disk ---------------------------------------------------- */

bool
manifest_bundle_exists(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;

	return util_path_join(p, sizeof(p), dir, MANIFEST_BUNDLE_FILE) == 0 &&
	    lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* How much of the tree load_bundle checks against the manifest. */
enum bundle_check {
	BUNDLE_PEEK,   /* nothing: the manifest and approvals only */
	BUNDLE_LIST,   /* file list, sizes, modes; not the contents */
	BUNDLE_FULL,   /* and every file's SHA-256 */
};

static int
load_bundle(const char *dir, enum bundle_check check, struct manifest **out,
    char *err, size_t errlen)
{
	static const struct manifest_limits lim = { 1000000, PMAN_MAX_VALUE,
		UINT64_MAX / 2 };
	char p[PATH_MAX];
	uint8_t *text = NULL, *apv = NULL, *all = NULL;
	size_t tlen, alen = 0, i;
	struct manifest *m = NULL, *disk = NULL;
	const char *reason;
	int rc;

	*out = NULL;
	if (util_path_join(p, sizeof(p), dir, MANIFEST_BUNDLE_FILE) != 0 ||
	    (rc = util_read_file(p, 64u << 20, &text, &tlen)) != 0) {
		util_seterr(err, errlen, "%s/%s: cannot read", dir,
		    MANIFEST_BUNDLE_FILE);
		return -EINVAL;
	}
	if (util_path_join(p, sizeof(p), dir, MANIFEST_APPROVALS_FILE) == 0 &&
	    util_read_file(p, 1u << 20, &apv, &alen) != 0)
		alen = 0;
	all = malloc(tlen + alen + 1);
	if (all == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(all, text, tlen);
	if (alen > 0)
		memcpy(all + tlen, apv, alen);
	rc = manifest_parse(all, tlen + alen, &lim, &m, &reason, err, errlen);
	if (rc != 0) {
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "%s", err);
		util_seterr(err, errlen,
		    "%s/.sluice: %s (%s)", dir, tmp, reason);
		rc = -EINVAL;
		goto out;
	}
	if (m->text_len != tlen) {
		util_seterr(err, errlen, "%s/%s: text after the end line", dir,
		    MANIFEST_BUNDLE_FILE);
		rc = -EINVAL;
		goto out;
	}
	if (check == BUNDLE_PEEK) {
		*out = m;
		m = NULL;
		goto out;
	}
	/* The tree must be exactly what the manifest lists. */
	disk = manifest_new(m->name, m->version);
	if (disk == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = add_dir(disk, dir, check == BUNDLE_FULL, err, errlen);
	if (rc == 0)
		rc = manifest_finish(disk, err, errlen);
	if (rc != 0)
		goto out;
	for (i = 0; i < m->n_files || i < disk->n_files; i++) {
		const struct manifest_file *a = i < m->n_files ?
		    &m->files[i] : NULL;
		const struct manifest_file *b = i < disk->n_files ?
		    &disk->files[i] : NULL;

		if (a == NULL || b == NULL || strcmp(a->path, b->path) != 0) {
			util_seterr(err, errlen, "%s: \"%s\" is %s", dir,
			    a == NULL ? b->path : b == NULL ? a->path :
			    strcmp(a->path, b->path) < 0 ? a->path : b->path,
			    a == NULL || (b != NULL &&
			    strcmp(a->path, b->path) > 0) ?
			    "not in the manifest" : "missing");
			rc = -EINVAL;
			goto out;
		}
		if (a->size != b->size || a->exec != b->exec ||
		    (check == BUNDLE_FULL &&
		    memcmp(a->sha256, b->sha256, 32) != 0)) {
			util_seterr(err, errlen, "%s: \"%s\" differs from the "
			    "manifest (%s)", dir, a->path, a->size != b->size ?
			    "size" : a->exec != b->exec ? "executable bit" :
			    "SHA-256");
			rc = -EINVAL;
			goto out;
		}
		m->files[i].src = b->src;
		disk->files[i].src = NULL;
	}
	*out = m;
	m = NULL;
out:
	free(text);
	free(apv);
	free(all);
	manifest_free(m);
	manifest_free(disk);
	return rc;
}

int
manifest_load_bundle(const char *dir, struct manifest **out, char *err,
    size_t errlen)
{
	return load_bundle(dir, BUNDLE_FULL, out, err, errlen);
}

int
manifest_open_bundle(const char *dir, struct manifest **out, char *err,
    size_t errlen)
{
	return load_bundle(dir, BUNDLE_LIST, out, err, errlen);
}

int
manifest_peek_bundle(const char *dir, struct manifest **out, char *err,
    size_t errlen)
{
	return load_bundle(dir, BUNDLE_PEEK, out, err, errlen);
}

int
manifest_write_bundle(const struct manifest *m, const char *dir)
{
	char p[PATH_MAX];
	uint8_t *obj;
	size_t len;
	int rc;

	if (util_path_join(p, sizeof(p), dir, PMAN_RESERVED_DIR) != 0)
		return -ENAMETOOLONG;
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (util_path_join(p, sizeof(p), dir, MANIFEST_BUNDLE_FILE) != 0)
		return -ENAMETOOLONG;
	rc = util_write_file_atomic(p, m->text, m->text_len, 0644);
	if (rc != 0)
		return rc;
	rc = manifest_render_object(m, &obj, &len);
	if (rc != 0)
		return rc;
	if (util_path_join(p, sizeof(p), dir, MANIFEST_APPROVALS_FILE) == 0)
		rc = util_write_file_atomic(p, obj + m->text_len,
		    len - m->text_len, 0644);
	free(obj);
	return rc;
}

/* ---- version order ------------------------------------------------------ */

/* Next identifier of a version: up to '.', '-' or '+'. */
static size_t
ident(const char *s, size_t *len, bool *numeric)
{
	size_t n = strcspn(s, ".-+");
	size_t i;

	*numeric = n > 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			*numeric = false;
	*len = n;
	return n;
}

static int
cmp_ident(const char *a, size_t al, bool an, const char *b, size_t bl,
    bool bn)
{
	int c;

	if (an && bn) {
		while (al > 1 && *a == '0') {
			a++;
			al--;
		}
		while (bl > 1 && *b == '0') {
			b++;
			bl--;
		}
		if (al != bl)
			return al < bl ? -1 : 1;
		c = memcmp(a, b, al);
		return c < 0 ? -1 : c > 0;
	}
	if (an != bn)
		return an ? -1 : 1; /* numbers before words */
	c = memcmp(a, b, al < bl ? al : bl);
	if (c != 0)
		return c < 0 ? -1 : 1;
	return al == bl ? 0 : al < bl ? -1 : 1;
}

/* Compares dot-separated identifier lists; stops at '-' or '+'. */
static int
cmp_list(const char **pa, const char **pb)
{
	const char *a = *pa, *b = *pb;

	for (;;) {
		size_t al, bl;
		bool an, bn;
		int c;

		ident(a, &al, &an);
		ident(b, &bl, &bn);
		c = cmp_ident(a, al, an, b, bl, bn);
		if (c != 0)
			return c;
		a += al;
		b += bl;
		if (*a == '.' && *b == '.') {
			a++;
			b++;
			continue;
		}
		if (*a == '.')
			return 1; /* 1.0.1 > 1.0 */
		if (*b == '.')
			return -1;
		*pa = a;
		*pb = b;
		return 0;
	}
}

int
manifest_version_cmp(const char *a, const char *b)
{
	const char *whole_a = a, *whole_b = b;
	int c = cmp_list(&a, &b);
	bool apre, bpre;

	if (c != 0)
		return c;
	apre = *a == '-';
	bpre = *b == '-';
	if (apre != bpre)
		return apre ? -1 : 1; /* 1.0-rc1 < 1.0 */
	if (apre) {
		a++;
		b++;
		c = cmp_list(&a, &b);
		if (c != 0)
			return c;
	}
	/*
	 * A tie (build metadata, or numbers spelt with leading zeros:
	 * 1.01 and 1.1) is broken by the whole strings, bytewise: the order
	 * is (value, bytes) lexicographically, so it stays total and two
	 * different strings never compare equal.  Comparing only what is
	 * left after the last identifier would call 1.01 and 1.1 equal.
	 */
	c = strcmp(whole_a, whole_b);
	return c < 0 ? -1 : c > 0;
}
