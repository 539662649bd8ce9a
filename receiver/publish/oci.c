/*
 * type = "oci" store: pushes the container images a bundle carries into
 * an OCI registry, with skopeo, and checks the registry's manifest digest
 * against the bundle's.
 *
 * An image is an OCI image layout directory images/REPO/ (oci-layout +
 * index.json) or an oci-archive tarball images/REPO.tar; it is pushed as
 * REGISTRY/REPO:TAG for every org.opencontainers.image.ref.name in its
 * index.json.  Everything about a bundle is read and checked before the
 * first push, so a malformed image refuses the bundle as a whole instead
 * of publishing half of it.
 *
 * What must stay true:
 *   - index.json is the only JSON read here, through a small bounded
 *     scanner that keeps three fields and refuses duplicates of them
 *     (Go's decoder, which skopeo uses, would take the last).  The bundle
 *     is signed, but a signature says who sent it, not that it is sane.
 *   - A layout's blobs are named by their digest; the signed manifest
 *     already holds every file's SHA-256, so a blob whose name is not its
 *     hash is refused without reading it again.
 *   - The digest that counts is the one in index.json: --preserve-digests
 *     makes skopeo fail rather than convert, and after the copy the
 *     registry's raw manifest must hash to it.  A tag already at that
 *     digest costs one inspect, not a copy (idempotent).
 *   - skopeo runs without a shell, argv built here, from the bundle's
 *     directory (relative image paths: a ':' in store_dir would split an
 *     oci: reference), in a process group of its own that is killed at a
 *     deadline.  Credentials go to it in an auth.json in a private 0700
 *     directory, never on argv (which /proc shows) and never in a result.
 */
#include "receiver/publish/publish.h"
#include "common/hash.h"
#include "common/manifest.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define OCI_INDEX_MAX      (1u << 20) /* index.json holds descriptors only */
#define OCI_TAGS_MAX       256        /* per image */
#define OCI_JSON_DEPTH     32
#define OCI_MANIFEST_MAX   (4u << 20) /* distribution refuses larger ones */
#define OCI_REPO_MAX       255        /* distribution's name limit */
#define OCI_TAG_MAX        128        /* the reference grammar's */
#define OCI_CRED_MAX       4096
#define OCI_TAIL_MAX       2048       /* stderr kept for the detail line */
#define OCI_INSPECT_SECONDS 120
/* A copy may take long for big images: ten minutes plus 4 MiB/s. */
#define OCI_COPY_SECONDS   600
#define OCI_COPY_RATE      (4u << 20)
#define OCI_DIGEST_LEN     (7 + 64)   /* "sha256:" + hex */

struct oci_tag {
	char tag[OCI_TAG_MAX + 1];
	char digest[OCI_DIGEST_LEN + 1];
};

struct oci_image {
	char repo[OCI_REPO_MAX + 1];
	char src[PATH_MAX];     /* skopeo source, relative to the bundle */
	uint64_t bytes;         /* for the copy's deadline */
	struct oci_tag *tags;
	size_t n_tags;
};

/* ---- checks on names ----------------------------------------------------- */

static bool
is_lalnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * distribution's repository grammar: components of [a-z0-9]+ joined by
 * '.', '_', "__" or runs of '-', separated by '/'.  A name outside it
 * could never be pushed, and a ':' in it would confuse skopeo's parsing
 * of the oci: source.
 */
static bool
repo_ok(const char *r)
{
	size_t i = 0, n = strlen(r);

	if (n == 0 || n > OCI_REPO_MAX)
		return false;
	while (i < n) {
		if (!is_lalnum(r[i]))
			return false;
		while (i < n && is_lalnum(r[i]))
			i++;
		if (i == n)
			break;
		if (r[i] == '/') {
			if (++i == n)
				return false;
			continue;
		}
		if (r[i] == '.' || (r[i] == '_' && r[i + 1] != '_'))
			i++;
		else if (r[i] == '_')
			i += 2;
		else if (r[i] == '-')
			while (i < n && r[i] == '-')
				i++;
		else
			return false;
		if (i == n || !is_lalnum(r[i]))
			return false;
	}
	return true;
}

/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool
tag_ok(const char *t)
{
	size_t i, n = strlen(t);

	if (n == 0 || n > OCI_TAG_MAX || t[0] == '.' || t[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = t[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* "sha256:" and 64 lower-case hex digits; other algorithms are refused. */
static bool
digest_ok(const char *d)
{
	size_t i;

	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != OCI_DIGEST_LEN)
		return false;
	for (i = 7; i < OCI_DIGEST_LEN; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return false;
	return true;
}

/* host:port or host, no '/', '@', quote or space: it goes into a
 * reference and into auth.json. */
static bool
registry_ok(const char *r)
{
	size_t i, n;

	if (r == NULL || (n = strlen(r)) == 0 || n > 128)
		return false;
	for (i = 0; i < n; i++) {
		char c = r[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		    c == ':' || c == '[' || c == ']'))
			return false;
	}
	return true;
}

/* ---- index.json ---------------------------------------------------------- */

/*
 * A cursor over untrusted JSON with a sticky error: every step checks
 * what is left before it reads, and nothing is read once err is set.
 */
struct json {
	const char *p;
	size_t len, off;
	unsigned depth;
	const char *err;
};

static void
json_fail(struct json *j, const char *why)
{
	if (j->err == NULL)
		j->err = why;
}

static void
json_ws(struct json *j)
{
	while (j->off < j->len && (j->p[j->off] == ' ' ||
	    j->p[j->off] == '\t' || j->p[j->off] == '\n' ||
	    j->p[j->off] == '\r'))
		j->off++;
}

/* Consumes c after white space; false (without an error) if it is not
 * there. */
static bool
json_eat(struct json *j, char c)
{
	json_ws(j);
	if (j->err == NULL && j->off < j->len && j->p[j->off] == c) {
		j->off++;
		return true;
	}
	return false;
}

static void
json_expect(struct json *j, char c, const char *why)
{
	if (!json_eat(j, c))
		json_fail(j, why);
}

static long
json_u4(struct json *j)
{
	char digits[5];
	uint8_t b[2];

	if (j->len - j->off < 4) {
		json_fail(j, "short \\u escape");
		return -1;
	}
	memcpy(digits, j->p + j->off, 4);
	digits[4] = '\0';
	if (util_unhex(b, sizeof(b), digits) != 0) {
		json_fail(j, "bad \\u escape");
		return -1;
	}
	j->off += 4;
	return (long)b[0] << 8 | b[1];
}

static void
put(char *out, size_t cap, size_t *n, bool *trunc, char c)
{
	if (out != NULL && *n + 1 < cap)
		out[*n] = c;
	else
		*trunc = true;
	(*n)++;
}

/*
 * A string, unescaped into out (NUL terminated) when out is not NULL.
 * Returns false when it did not fit (the string is still consumed): such
 * a value never matches a key and is never a valid tag or digest.  NUL
 * (\u0000) and lone surrogates are refused, so out is always a C string
 * of the JSON's text.
 */
static bool
json_string(struct json *j, char *out, size_t cap)
{
	size_t n = 0;
	bool trunc = false;

	json_ws(j);
	if (j->err != NULL || j->off >= j->len || j->p[j->off] != '"') {
		json_fail(j, "string expected");
		return false;
	}
	j->off++;
	for (;;) {
		unsigned char c;
		long u;

		if (j->off >= j->len) {
			json_fail(j, "unterminated string");
			return false;
		}
		c = (unsigned char)j->p[j->off++];
		if (c == '"')
			break;
		if (c < 0x20) {
			json_fail(j, "control character in string");
			return false;
		}
		if (c != '\\') {
			put(out, cap, &n, &trunc, (char)c);
			continue;
		}
		if (j->off >= j->len) {
			json_fail(j, "unterminated string");
			return false;
		}
		c = (unsigned char)j->p[j->off++];
		switch (c) {
		case '"': case '\\': case '/':
			put(out, cap, &n, &trunc, (char)c);
			continue;
		case 'b': put(out, cap, &n, &trunc, '\b'); continue;
		case 'f': put(out, cap, &n, &trunc, '\f'); continue;
		case 'n': put(out, cap, &n, &trunc, '\n'); continue;
		case 'r': put(out, cap, &n, &trunc, '\r'); continue;
		case 't': put(out, cap, &n, &trunc, '\t'); continue;
		case 'u': break;
		default:
			json_fail(j, "bad escape");
			return false;
		}
		if ((u = json_u4(j)) < 0)
			return false;
		if (u >= 0xdc00 && u <= 0xdfff) {
			json_fail(j, "lone surrogate");
			return false;
		}
		if (u >= 0xd800 && u <= 0xdbff) {
			long lo;

			if (j->len - j->off < 2 || j->p[j->off] != '\\' ||
			    j->p[j->off + 1] != 'u') {
				json_fail(j, "lone surrogate");
				return false;
			}
			j->off += 2;
			if ((lo = json_u4(j)) < 0)
				return false;
			if (lo < 0xdc00 || lo > 0xdfff) {
				json_fail(j, "lone surrogate");
				return false;
			}
			u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (u == 0) {
			json_fail(j, "NUL in string");
			return false;
		}
		if (u < 0x80) {
			put(out, cap, &n, &trunc, (char)u);
		} else if (u < 0x800) {
			put(out, cap, &n, &trunc, (char)(0xc0 | (u >> 6)));
			put(out, cap, &n, &trunc, (char)(0x80 | (u & 0x3f)));
		} else if (u < 0x10000) {
			put(out, cap, &n, &trunc, (char)(0xe0 | (u >> 12)));
			put(out, cap, &n, &trunc, (char)(0x80 | ((u >> 6) & 0x3f)));
			put(out, cap, &n, &trunc, (char)(0x80 | (u & 0x3f)));
		} else {
			put(out, cap, &n, &trunc, (char)(0xf0 | (u >> 18)));
			put(out, cap, &n, &trunc, (char)(0x80 | ((u >> 12) & 0x3f)));
			put(out, cap, &n, &trunc, (char)(0x80 | ((u >> 6) & 0x3f)));
			put(out, cap, &n, &trunc, (char)(0x80 | (u & 0x3f)));
		}
	}
	if (out != NULL && cap > 0)
		out[UTIL_MIN(n, cap - 1)] = '\0';
	return out != NULL && !trunc;
}

static void json_skip(struct json *j);

/* The literal or number at the cursor: its characters, loosely. */
static void
json_skip_scalar(struct json *j)
{
	size_t start = j->off;

	while (j->off < j->len) {
		char c = j->p[j->off];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    c == '-' || c == '+' || c == '.' || c == 'E'))
			break;
		j->off++;
	}
	if (j->off == start)
		json_fail(j, "value expected");
}

/* Any value, not kept; nesting is bounded. */
static void
json_skip(struct json *j)
{
	json_ws(j);
	if (j->err != NULL)
		return;
	if (j->off >= j->len) {
		json_fail(j, "value expected");
		return;
	}
	switch (j->p[j->off]) {
	case '"':
		json_string(j, NULL, 0);
		return;
	case '{':
	case '[': {
		char close = j->p[j->off] == '{' ? '}' : ']';

		if (++j->depth > OCI_JSON_DEPTH) {
			json_fail(j, "nested too deep");
			return;
		}
		j->off++;
		if (!json_eat(j, close)) {
			do {
				if (close == '}') {
					json_string(j, NULL, 0);
					json_expect(j, ':', "':' expected");
				}
				json_skip(j);
			} while (j->err == NULL && json_eat(j, ','));
			json_expect(j, close, "',' or end expected");
		}
		j->depth--;
		return;
	}
	default:
		json_skip_scalar(j);
	}
}

#define REF_NAME_KEY "org.opencontainers.image.ref.name"

/*
 * One descriptor of index.json's manifests: its digest and, when it has
 * one, its ref.name.  *has_tag tells whether the annotation was there.
 */
static void
json_descriptor(struct json *j, struct oci_tag *t, bool *has_tag)
{
	char key[40];
	bool seen_digest = false, seen_ann = false;

	*has_tag = false;
	t->digest[0] = t->tag[0] = '\0';
	json_expect(j, '{', "descriptor: object expected");
	if (json_eat(j, '}'))
		goto out;
	do {
		bool fits = json_string(j, key, sizeof(key));

		json_expect(j, ':', "':' expected");
		if (fits && strcmp(key, "digest") == 0) {
			if (seen_digest)
				json_fail(j, "duplicate digest");
			seen_digest = true;
			if (!json_string(j, t->digest, sizeof(t->digest)))
				t->digest[0] = '\0';
		} else if (fits && strcmp(key, "annotations") == 0) {
			if (seen_ann)
				json_fail(j, "duplicate annotations");
			seen_ann = true;
			json_expect(j, '{', "annotations: object expected");
			if (json_eat(j, '}'))
				continue;
			do {
				char akey[sizeof(REF_NAME_KEY) + 1];

				fits = json_string(j, akey, sizeof(akey));
				json_expect(j, ':', "':' expected");
				if (fits && strcmp(akey, REF_NAME_KEY) == 0) {
					if (*has_tag)
						json_fail(j, "duplicate ref.name");
					*has_tag = true;
					/* too long: an empty tag, refused */
					if (!json_string(j, t->tag, sizeof(t->tag)))
						t->tag[0] = '\0';
				} else
					json_skip(j);
			} while (j->err == NULL && json_eat(j, ','));
			json_expect(j, '}', "',' or '}' expected");
		} else
			json_skip(j);
	} while (j->err == NULL && json_eat(j, ','));
	json_expect(j, '}', "',' or '}' expected");
out:
	if (j->err == NULL && !seen_digest)
		json_fail(j, "descriptor without digest");
}

/*
 * The tagged descriptors of an index.json into img->tags.  0, or -1 with
 * res filled in (all permanent: the bytes are what the bundle carries).
 */
static int
parse_index(const char *what, const uint8_t *buf, size_t len,
    struct oci_image *img, struct pub_result *res)
{
	struct json j = { .p = (const char *)buf, .len = len };
	char key[16];
	bool seen = false;
	size_t i, untagged = 0;

	json_expect(&j, '{', "object expected");
	if (!json_eat(&j, '}')) {
		do {
			bool fits = json_string(&j, key, sizeof(key));

			json_expect(&j, ':', "':' expected");
			if (!fits || strcmp(key, "manifests") != 0) {
				json_skip(&j);
				continue;
			}
			if (seen)
				json_fail(&j, "duplicate manifests");
			seen = true;
			json_expect(&j, '[', "manifests: array expected");
			if (json_eat(&j, ']'))
				continue;
			do {
				struct oci_tag t;
				bool has_tag;

				json_descriptor(&j, &t, &has_tag);
				if (j.err != NULL)
					break;
				if (!has_tag) {
					untagged++;
					continue;
				}
				if (!tag_ok(t.tag))
					return pub_fail(res, true, "bad_tag",
					    "%s: ref.name is not a valid tag",
					    what);
				if (!digest_ok(t.digest))
					return pub_fail(res, true,
					    "unsupported_digest", "%s: tag %s: "
					    "digest is not sha256:<64 hex>",
					    what, t.tag);
				for (i = 0; i < img->n_tags; i++)
					if (strcmp(img->tags[i].tag, t.tag) == 0)
						return pub_fail(res, true,
						    "duplicate_tag",
						    "%s: tag %s twice", what,
						    t.tag);
				if (img->n_tags == OCI_TAGS_MAX)
					return pub_fail(res, true, "bad_index",
					    "%s: more than %d tags", what,
					    OCI_TAGS_MAX);
				img->tags[img->n_tags++] = t;
			} while (json_eat(&j, ','));
			json_expect(&j, ']', "',' or ']' expected");
		} while (j.err == NULL && json_eat(&j, ','));
		json_expect(&j, '}', "',' or '}' expected");
	}
	json_ws(&j);
	if (j.err == NULL && j.off != j.len)
		json_fail(&j, "bytes after the object");
	if (j.err == NULL && !seen)
		json_fail(&j, "no manifests");
	if (j.err != NULL)
		return pub_fail(res, true, "bad_index", "%s: byte %zu: %s",
		    what, j.off, j.err);
	if (img->n_tags == 0)
		return pub_fail(res, true, "no_tag", "%s: %zu manifest(s), "
		    "none with an " REF_NAME_KEY " annotation", what,
		    untagged);
	return 0;
}

/* ---- oci-archive tarballs ------------------------------------------------ */

/* A tar number: octal (NUL or space ended) or GNU base-256. */
static int
tar_number(const uint8_t *f, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {
		if (f[0] != 0x80 || n < 9)
			return -1;
		for (i = 1; i < n; i++) {
			if (v >> 56)
				return -1;
			v = v << 8 | f[i];
		}
		*out = v;
		return 0;
	}
	while (i < n && f[i] == ' ')
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v * 8 + (f[i] - '0');
	}
	if (i < n && f[i] != '\0' && f[i] != ' ')
		return -1;
	*out = v;
	return 0;
}

/* "./index.json", "/index.json" and "index.json" are one file when
 * skopeo unpacks the archive. */
static const char *
tar_base(const char *name)
{
	for (;;) {
		if (name[0] == '/')
			name++;
		else if (name[0] == '.' && name[1] == '/')
			name += 2;
		else
			return name;
	}
}

/* The "path" record of a pax header, if any, into name. */
static void
pax_path(const char *buf, size_t len, char *name, size_t cap)
{
	size_t off = 0;

	while (off < len) {
		char *end;
		unsigned long n = strtoul(buf + off, &end, 10);
		const char *kv = end + 1;

		if (end == buf + off || *end != ' ' || n == 0 ||
		    n > len - off)
			return;
		if (buf[off + n - 1] == '\n' &&
		    (size_t)(buf + off + n - kv) > 5 &&
		    strncmp(kv, "path=", 5) == 0) {
			size_t vl = (size_t)(buf + off + n - 1 - (kv + 5));

			if (vl < cap) {
				memcpy(name, kv + 5, vl);
				name[vl] = '\0';
			}
		}
		off += n;
	}
}

/*
 * Reads what an archive says it is: is there an oci-layout, a
 * manifest.json (docker-archive), and index.json's bytes (the last copy,
 * as unpacking would leave it).  Headers are checksummed, every size is
 * checked against the file's, and only names needed here are kept.
 */
static int
tar_scan(const char *path, const char *what, bool *oci_layout,
    bool *docker_manifest, uint8_t **index, size_t *index_len,
    struct pub_result *res)
{
	uint8_t h[512];
	char name[512], next[512] = "";
	char *meta = NULL;
	struct stat st;
	uint64_t off = 0;
	int fd, rc = -1;

	*oci_layout = *docker_manifest = false;
	*index = NULL;
	*index_len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    fstat(fd, &st) != 0) {
		pub_fail(res, false, "read_failed", "%s: %s", what,
		    strerror(errno));
		goto out;
	}
	for (;;) {
		uint64_t size, sum = 0, want = 0;
		char type;
		size_t i;
		ssize_t r;

		if ((uint64_t)st.st_size - off < sizeof(h)) {
			if (off == (uint64_t)st.st_size)
				break; /* no end blocks: unpacking accepts it */
			pub_fail(res, true, "bad_archive", "%s: truncated", what);
			goto out;
		}
		if ((r = pread(fd, h, sizeof(h), (off_t)off)) != sizeof(h)) {
			pub_fail(res, false, "read_failed", "%s: %s", what,
			    r < 0 ? strerror(errno) : "short read");
			goto out;
		}
		for (i = 0; i < sizeof(h) && h[i] == 0; i++)
			;
		if (i == sizeof(h))
			break;
		for (i = 0; i < sizeof(h); i++)
			sum += (i >= 148 && i < 156) ? ' ' : h[i];
		if (tar_number(h + 148, 8, &want) != 0 || want != sum ||
		    tar_number(h + 124, 12, &size) != 0 ||
		    size > (uint64_t)st.st_size - off - sizeof(h)) {
			pub_fail(res, true, "bad_archive",
			    "%s: bad tar header at byte %" PRIu64, what, off);
			goto out;
		}
		type = (char)h[156];
		off += sizeof(h);
		if (type == 'x' || type == 'L') {
			/* long names: pax path or GNU long name, for the next */
			if (size >= 65536) {
				pub_fail(res, true, "bad_archive",
				    "%s: extended header too large", what);
				goto out;
			}
			free(meta);
			if ((meta = calloc(1, size + 1)) == NULL ||
			    pread(fd, meta, size, (off_t)off) != (ssize_t)size) {
				pub_fail(res, false, "read_failed", "%s: %s",
				    what, strerror(errno ? errno : EIO));
				goto out;
			}
			if (type == 'L')
				snprintf(next, sizeof(next), "%s", meta);
			else
				pax_path(meta, size, next, sizeof(next));
		} else {
			if (next[0] != '\0') {
				snprintf(name, sizeof(name), "%s", next);
				next[0] = '\0';
			} else if (memcmp(h + 257, "ustar", 6) == 0 &&
			    h[345] != '\0')
				snprintf(name, sizeof(name), "%.155s/%.100s",
				    (const char *)h + 345, (const char *)h);
			else
				snprintf(name, sizeof(name), "%.100s",
				    (const char *)h);
			if (type == '0' || type == '\0') {
				const char *base = tar_base(name);

				if (strcmp(base, "oci-layout") == 0)
					*oci_layout = true;
				else if (strcmp(base, "manifest.json") == 0)
					*docker_manifest = true;
				else if (strcmp(base, "index.json") == 0) {
					if (size > OCI_INDEX_MAX) {
						pub_fail(res, true, "bad_index",
						    "%s: index.json larger "
						    "than %u bytes", what,
						    OCI_INDEX_MAX);
						goto out;
					}
					free(*index);
					*index_len = 0;
					if ((*index = malloc(size + 1)) == NULL ||
					    pread(fd, *index, size, (off_t)off) !=
					    (ssize_t)size) {
						pub_fail(res, false,
						    "read_failed", "%s: %s",
						    what, strerror(errno ?
						    errno : EIO));
						goto out;
					}
					*index_len = size;
				}
			}
		}
		off += (size + 511) / 512 * 512;
		if (off > (uint64_t)st.st_size)
			off = (uint64_t)st.st_size; /* checked next round */
	}
	rc = 0;
out:
	free(meta);
	if (rc != 0) {
		free(*index);
		*index = NULL;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- the bundle's images ------------------------------------------------- */

static bool
has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);

	return n >= k && strcmp(s + n - k, suf) == 0;
}

static struct oci_image *
image_add(struct oci_image **imgs, size_t *n)
{
	struct oci_image *a, *img;

	if ((a = realloc(*imgs, (*n + 1) * sizeof(*a))) == NULL)
		return NULL;
	*imgs = a;
	img = &a[(*n)++];
	memset(img, 0, sizeof(*img));
	if ((img->tags = calloc(OCI_TAGS_MAX, sizeof(*img->tags))) == NULL) {
		(*n)--;
		return NULL;
	}
	return img;
}

static void
images_free(struct oci_image *imgs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(imgs[i].tags);
	free(imgs);
}

/*
 * A layout's files as the signed manifest lists them: every blob named
 * by its own SHA-256, each tagged manifest present among them.
 */
static int
check_layout(const struct manifest *m, const char *prefix,
    struct oci_image *img, struct pub_result *res)
{
	size_t i, k, plen = strlen(prefix);
	char hex[65], path[PATH_MAX];

	for (i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		const char *rest;

		if (strncmp(f->path, prefix, plen) != 0)
			continue;
		img->bytes += f->size;
		rest = f->path + plen;
		if (strncmp(rest, "blobs/", 6) != 0)
			continue;
		if (strlen(rest) != 13 + 64 || strncmp(rest, "blobs/sha256/",
		    13) != 0)
			return pub_fail(res, true, "unsupported_digest",
			    "%s: not a sha256 blob", f->path);
		util_hex(hex, f->sha256, sizeof(f->sha256));
		if (strcmp(hex, rest + 13) != 0)
			return pub_fail(res, true, "blob_digest_mismatch",
			    "%s: content has sha256:%s", f->path, hex);
	}
	for (k = 0; k < img->n_tags; k++) {
		snprintf(path, sizeof(path), "%sblobs/sha256/%s", prefix,
		    img->tags[k].digest + 7);
		if (manifest_find(m, path) < 0)
			return pub_fail(res, true, "missing_blob",
			    "%s%s: tag %s: manifest %s not in the layout",
			    prefix, "index.json", img->tags[k].tag,
			    img->tags[k].digest);
	}
	return 0;
}

/*
 * Every image in the bundle, read and checked.  0 (possibly with none),
 * or -1 with res filled in.
 */
static int
collect_images(const struct pub_bundle *b, size_t reg_len,
    struct oci_image **out, size_t *n_out, struct pub_result *res)
{
	const struct manifest *m = b->m;
	struct oci_image *imgs = NULL, *img;
	size_t n = 0, i, k;
	int rc = -1;

	/* layouts first: images/REPO/oci-layout with images/REPO/index.json */
	for (i = 0; i < m->n_files; i++) {
		const char *p = m->files[i].path;
		char prefix[PATH_MAX], what[PATH_MAX], full[PATH_MAX];
		size_t rl;
		uint8_t *buf = NULL;
		size_t len;
		int e;

		if (strncmp(p, "images/", 7) != 0 ||
		    !has_suffix(p, "/oci-layout") ||
		    strlen(p) <= 7 + strlen("/oci-layout"))
			continue;
		rl = strlen(p) - 7 - strlen("/oci-layout");
		snprintf(prefix, sizeof(prefix), "%.*s/", (int)(rl + 7), p);
		snprintf(what, sizeof(what), "%sindex.json", prefix);
		if (manifest_find(m, what) < 0) {
			/* an image that would silently not be pushed */
			pub_fail(res, true, "bad_layout", "%s: an oci-layout "
			    "without index.json", p);
			goto out;
		}
		if ((img = image_add(&imgs, &n)) == NULL) {
			pub_fail(res, false, "no_memory", "out of memory");
			goto out;
		}
		snprintf(img->repo, sizeof(img->repo), "%.*s", (int)rl, p + 7);
		if (rl > OCI_REPO_MAX - reg_len - 1 || !repo_ok(img->repo)) {
			pub_fail(res, true, "bad_repo", "%.*s: not a valid "
			    "repository name", (int)(rl + 7), p);
			goto out;
		}
		snprintf(img->src, sizeof(img->src), "oci:images/%s",
		    img->repo);
		if ((e = util_path_join(full, sizeof(full), b->dir, what)) != 0 ||
		    (e = util_read_file(full, OCI_INDEX_MAX, &buf, &len)) != 0) {
			pub_fail(res, e == -EFBIG, e == -EFBIG ? "bad_index" :
			    "read_failed", "%s: %s", what, strerror(-e));
			goto out;
		}
		e = parse_index(what, buf, len, img, res);
		free(buf);
		if (e != 0 || check_layout(m, prefix, img, res) != 0)
			goto out;
	}
	/* then archives: images/REPO.tar, outside any layout */
	for (i = 0; i < m->n_files; i++) {
		const struct manifest_file *f = &m->files[i];
		char full[PATH_MAX];
		bool oci, docker, inside = false;
		uint8_t *buf;
		size_t len, rl;
		int e;

		if (strncmp(f->path, "images/", 7) != 0 ||
		    !has_suffix(f->path, ".tar"))
			continue;
		for (k = 0; k < n && !inside; k++)
			inside = strncmp(f->path + 7, imgs[k].repo,
			    strlen(imgs[k].repo)) == 0 &&
			    f->path[7 + strlen(imgs[k].repo)] == '/' &&
			    strncmp(imgs[k].src, "oci:", 4) == 0;
		if (inside)
			continue;
		if (util_path_join(full, sizeof(full), b->dir, f->path) != 0) {
			pub_fail(res, true, "bad_repo", "%s: name too long",
			    f->path);
			goto out;
		}
		if (tar_scan(full, f->path, &oci, &docker, &buf, &len,
		    res) != 0)
			goto out;
		if (!oci) {
			free(buf);
			if (docker)
				pub_fail(res, true, "docker_archive_refused",
				    "%s: a docker-archive; converting it would "
				    "change the image's digests: send it as "
				    "an oci-archive or an OCI layout", f->path);
			else
				pub_fail(res, true, "bad_archive",
				    "%s: no oci-layout in the tarball",
				    f->path);
			goto out;
		}
		if (buf == NULL) {
			pub_fail(res, true, "bad_archive",
			    "%s: no index.json in the tarball", f->path);
			goto out;
		}
		if ((img = image_add(&imgs, &n)) == NULL) {
			free(buf);
			pub_fail(res, false, "no_memory", "out of memory");
			goto out;
		}
		rl = strlen(f->path) - 7 - 4;
		snprintf(img->repo, sizeof(img->repo), "%.*s", (int)rl,
		    f->path + 7);
		img->bytes = f->size;
		if (rl > OCI_REPO_MAX - reg_len - 1 || !repo_ok(img->repo)) {
			free(buf);
			pub_fail(res, true, "bad_repo", "%s: not a valid "
			    "repository name", f->path);
			goto out;
		}
		snprintf(img->src, sizeof(img->src), "oci-archive:%s",
		    f->path);
		e = parse_index(f->path, buf, len, img, res);
		free(buf);
		if (e != 0)
			goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		images_free(imgs, n);
		imgs = NULL;
		n = 0;
	}
	*out = imgs;
	*n_out = n;
	return rc;
}

/* ---- running skopeo ------------------------------------------------------ */

struct run {
	uint8_t *out;           /* stdout, when wanted; malloc'd */
	size_t out_len;
	bool out_over;          /* more than OCI_MANIFEST_MAX */
	char tail[OCI_TAIL_MAX]; /* the end of stderr */
	size_t tail_len;
	int status;             /* from waitpid */
	bool timed_out;
};

static void
tail_add(struct run *r, const char *buf, size_t n)
{
	if (n >= sizeof(r->tail)) {
		memcpy(r->tail, buf + n - sizeof(r->tail), sizeof(r->tail));
		r->tail_len = sizeof(r->tail);
		return;
	}
	if (r->tail_len + n > sizeof(r->tail)) {
		size_t drop = r->tail_len + n - sizeof(r->tail);

		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, buf, n);
	r->tail_len += n;
}

/*
 * The last non-empty line of stderr, made printable, into buf: what
 * skopeo says last is why it failed ("level=fatal msg=...").  The msg
 * value is Go-quoted (logrus): its \" and \\ are undone here, or the
 * publish_log line, which quotes the detail itself, would show them
 * doubled (Get \\\"http://...).
 */
static void
last_line(const struct run *r, char *buf, size_t len)
{
	size_t end = r->tail_len, start, i, o = 0;
	bool quoted = false;

	while (end > 0 && (r->tail[end - 1] == '\n' || r->tail[end - 1] == '\r'))
		end--;
	start = end;
	while (start > 0 && r->tail[start - 1] != '\n')
		start--;
	/* time="..." level=fatal msg="WHY": WHY is the part worth 512 bytes */
	for (i = start; end - i > 5; i++)
		if (memcmp(r->tail + i, " msg=\"", 6) == 0) {
			start = i + 6;
			if (end > start && r->tail[end - 1] == '"')
				end--;
			quoted = true;
			break;
		}
	for (i = start; i < end && o + 1 < len; i++) {
		unsigned char c = (unsigned char)r->tail[i];

		if (quoted && c == '\\' && i + 1 < end) {
			c = (unsigned char)r->tail[++i];
			if (c == 'n' || c == 't')
				c = ' ';
		}
		buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (len > 0)
		buf[o] = '\0';
	if (o == 0)
		snprintf(buf, len, "%s", WIFSIGNALED(r->status) ?
		    "killed by a signal" : "no message");
}

/* An executable file named name in PATH. */
static bool
in_path(const char *name)
{
	const char *path = getenv("PATH"), *p, *e;
	char buf[PATH_MAX];

	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = e + 1) {
		size_t n;

		e = strchrnul(p, ':');
		n = (size_t)(e - p);
		if (n == 0)
			n = 1, p = ".";
		if ((size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p,
		    name) < sizeof(buf) && access(buf, X_OK) == 0)
			return true;
		if (*e == '\0')
			return false;
	}
}

/*
 * Runs argv in cwd, stdin /dev/null, collecting stdout (when want_out)
 * and the tail of stderr, killing its process group at the deadline.
 * 0 when it ran (whatever its status, in r), -errno when it could not.
 */
static int
run(char *const argv[], const char *cwd, uint64_t seconds, bool want_out,
    struct run *r)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, rc = -1;
	size_t cap = 0;
	uint64_t deadline;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		rc = -errno;
		goto out;
	}
	if ((pid = fork()) < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		/* async-signal-safe calls only: the caller may have threads */
		if (chdir(cwd) != 0 || dup2(po[1], STDOUT_FILENO) < 0 ||
		    dup2(pe[1], STDERR_FILENO) < 0)
			_exit(126);
		util_exec_hook(argv, environ);
	}
	(void)setpgid(pid, pid); /* no race with the kill below */
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	deadline = util_now_ns() + seconds * 1000000000ull;
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd pfd[2] = { { po[0], POLLIN, 0 },
		    { pe[0], POLLIN, 0 } };
		uint64_t now = util_now_ns();
		char buf[16384];
		int k;

		if (now >= deadline) {
			r->timed_out = true;
			kill(-pid, SIGKILL);
			break;
		}
		k = poll(pfd, 2, (int)UTIL_MIN((deadline - now) / 1000000 + 1,
		    1000));
		if (k < 0 && errno != EINTR) {
			kill(-pid, SIGKILL);
			break;
		}
		for (k = 0; k < 2; k++) {
			int *fd = k == 0 ? &po[0] : &pe[0];
			ssize_t n;

			if (*fd < 0 || pfd[k].revents == 0)
				continue;
			n = read(*fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (k == 1) {
				tail_add(r, buf, (size_t)n);
				continue;
			}
			if (!want_out || r->out_over)
				continue;
			if (r->out_len + (size_t)n > OCI_MANIFEST_MAX) {
				r->out_over = true;
				continue;
			}
			if (r->out_len + (size_t)n > cap) {
				size_t ncap = UTIL_MAX(cap * 2, 65536);
				uint8_t *nb;

				while (ncap < r->out_len + (size_t)n)
					ncap *= 2;
				if ((nb = realloc(r->out, ncap)) == NULL) {
					r->out_over = true;
					continue;
				}
				r->out = nb;
				cap = ncap;
			}
			memcpy(r->out + r->out_len, buf, (size_t)n);
			r->out_len += (size_t)n;
		}
	}
	while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
		;
	rc = 0;
out:
	if (po[0] >= 0)
		close(po[0]);
	if (po[1] >= 0)
		close(po[1]);
	if (pe[0] >= 0)
		close(pe[0]);
	if (pe[1] >= 0)
		close(pe[1]);
	return rc;
}

static bool
run_ok(const struct run *r)
{
	return !r->timed_out && WIFEXITED(r->status) &&
	    WEXITSTATUS(r->status) == 0;
}

/* ---- credentials --------------------------------------------------------- */

/*
 * A private directory holding auth.json for skopeo, made from the
 * "user:password" file.  The secret lives in sodium_malloc memory while
 * it is read and encoded, and is wiped with it.  0, or -1 with res.
 */
static int
make_authfile(const struct pub_store *s, char *dir, size_t dirlen,
    char *file, size_t filelen, struct pub_result *res)
{
	const char *tmp = getenv("TMPDIR");
	char *cred = NULL, *b64 = NULL, *json = NULL;
	size_t len = 0, b64len, jlen;
	struct stat st;
	int fd = -1, out = -1, rc = -1;
	ssize_t n;

	dir[0] = file[0] = '\0';
	if (sodium_init() < 0)
		return pub_fail(res, false, "credentials", "libsodium init");
	/* O_NONBLOCK: a FIFO in the file's place must not hang us (it is
	 * then refused as not a regular file). */
	if ((fd = open(s->oci_credentials, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW | O_NONBLOCK)) < 0 || fstat(fd, &st) != 0) {
		pub_fail(res, false, "credentials", "%s: %s",
		    s->oci_credentials, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
	    st.st_uid != geteuid()) {
		pub_fail(res, false, "credentials", "%s: must be a regular "
		    "file of ours, mode 0600 or stricter",
		    s->oci_credentials);
		goto out;
	}
	if ((cred = sodium_malloc(OCI_CRED_MAX + 1)) == NULL ||
	    (b64 = sodium_malloc(OCI_CRED_MAX * 2)) == NULL ||
	    (json = sodium_malloc(OCI_CRED_MAX * 3)) == NULL) {
		pub_fail(res, false, "no_memory", "sodium_malloc");
		goto out;
	}
	while ((n = read(fd, cred + len, OCI_CRED_MAX + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0 || len > OCI_CRED_MAX) {
		pub_fail(res, false, "credentials", "%s: %s",
		    s->oci_credentials, n < 0 ? strerror(errno) : "too long");
		goto out;
	}
	while (len > 0 && (cred[len - 1] == '\n' || cred[len - 1] == '\r'))
		len--;
	cred[len] = '\0';
	if (len == 0 || cred[0] == ':' || memchr(cred, ':', len) == NULL ||
	    strlen(cred) != len) {
		pub_fail(res, false, "credentials", "%s: not user:password",
		    s->oci_credentials);
		goto out;
	}
	sodium_bin2base64(b64, OCI_CRED_MAX * 2, (const unsigned char *)cred,
	    len, sodium_base64_VARIANT_ORIGINAL);
	b64len = strlen(b64);
	jlen = (size_t)snprintf(json, OCI_CRED_MAX * 3,
	    "{\"auths\":{\"%s\":{\"auth\":\"%.*s\"}}}\n", s->registry,
	    (int)b64len, b64);
	snprintf(dir, dirlen, "%s/sluice-oci.XXXXXX",
	    tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		pub_fail(res, false, "credentials", "mkdtemp %s: %s", dir,
		    strerror(errno));
		dir[0] = '\0';
		goto out;
	}
	snprintf(file, filelen, "%s/auth.json", dir);
	if ((out = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		pub_fail(res, false, "credentials", "%s: %s", file,
		    strerror(errno));
		goto out;
	}
	if ((n = util_write_all(out, json, jlen)) != 0) {
		pub_fail(res, false, "credentials", "%s: %s", file,
		    strerror((int)-n));
		goto out;
	}
	rc = 0;
out:
	if (out >= 0)
		close(out);
	if (fd >= 0)
		close(fd);
	sodium_free(cred);
	sodium_free(b64);
	sodium_free(json);
	return rc;
}

static void
drop_authfile(const char *dir, const char *file)
{
	if (file[0] != '\0')
		(void)unlink(file);
	if (dir[0] != '\0')
		(void)rmdir(dir);
}

/* ---- the store ----------------------------------------------------------- */

struct push {
	const struct pub_store *s;
	const struct pub_bundle *b;
	const char *authfile;   /* NULL: skopeo's defaults */
};

/*
 * The registry's manifest digest for ref ("sha256:..." into digest), from
 * the raw bytes skopeo fetched.  0; 1 when skopeo failed (absent, or the
 * registry unreachable: the copy that follows tells which); -1 with res
 * when it could not run or answered too much.
 */
static int
registry_digest(const struct push *p, const char *ref, char *digest,
    size_t len, struct run *r, struct pub_result *res)
{
	char *argv[12];
	char tls[32], auth[PATH_MAX + 16];
	uint8_t h[HASH_LEN];
	char hex[2 * HASH_LEN + 1];
	int a = 0, e;

	snprintf(tls, sizeof(tls), "--tls-verify=%s",
	    p->s->tls_verify ? "true" : "false");
	argv[a++] = "skopeo";
	argv[a++] = "inspect";
	argv[a++] = "--raw";
	argv[a++] = tls;
	if (p->authfile != NULL) {
		snprintf(auth, sizeof(auth), "--authfile=%s", p->authfile);
		argv[a++] = auth;
	}
	argv[a++] = (char *)ref;
	argv[a] = NULL;
	if ((e = run(argv, p->b->dir, OCI_INSPECT_SECONDS, true, r)) != 0)
		return pub_fail(res, false, "push_failed", "run skopeo: %s",
		    strerror(-e));
	if (!run_ok(r))
		return 1;
	if (r->out_over)
		return pub_fail(res, false, "verify_failed", "%s: manifest "
		    "larger than %u bytes", ref, OCI_MANIFEST_MAX);
	hash_sha256(h, r->out, r->out_len);
	util_hex(hex, h, sizeof(h));
	snprintf(digest, len, "sha256:%s", hex);
	return 0;
}

static int
push_tag(const struct push *p, const struct oci_image *img,
    const struct oci_tag *t, struct pub_result *res)
{
	const struct pub_store *s = p->s;
	char ref[16 + OCI_REPO_MAX + OCI_TAG_MAX + 300];
	char src[PATH_MAX + OCI_TAG_MAX + 2];
	char tls[32], auth[PATH_MAX + 24], got[OCI_DIGEST_LEN + 1];
	char line[400];
	char *argv[16];
	struct run r = { 0 };
	int a = 0, e, rc = -1;

	snprintf(ref, sizeof(ref), "docker://%s/%s:%s", s->registry,
	    img->repo, t->tag);
	e = registry_digest(p, ref, got, sizeof(got), &r, res);
	free(r.out);
	r.out = NULL;
	if (e < 0)
		return -1;
	if (e == 0 && strcmp(got, t->digest) == 0)
		return 0; /* already there: a check, not a copy */

	snprintf(src, sizeof(src), "%s:%s", img->src, t->tag);
	snprintf(tls, sizeof(tls), "--dest-tls-verify=%s",
	    s->tls_verify ? "true" : "false");
	argv[a++] = "skopeo";
	/* No signature policy to apply: the receiver has checked the
	 * bundle's signatures and hashes, which cover every blob. */
	argv[a++] = "--insecure-policy";
	argv[a++] = "copy";
	argv[a++] = "--all";
	argv[a++] = "--preserve-digests";
	argv[a++] = "--quiet";
	argv[a++] = tls;
	if (p->authfile != NULL) {
		snprintf(auth, sizeof(auth), "--dest-authfile=%s", p->authfile);
		argv[a++] = auth;
	}
	argv[a++] = src;
	argv[a++] = ref;
	argv[a] = NULL;
	if ((e = run(argv, p->b->dir, OCI_COPY_SECONDS + img->bytes /
	    OCI_COPY_RATE, false, &r)) != 0)
		return pub_fail(res, false, "push_failed", "run skopeo: %s",
		    strerror(-e));
	if (!run_ok(&r)) {
		if (r.timed_out)
			snprintf(line, sizeof(line), "timed out");
		else
			last_line(&r, line, sizeof(line));
		return pub_fail(res, false, "push_failed", "%s/%s:%s: %s",
		    s->registry, img->repo, t->tag, line);
	}

	e = registry_digest(p, ref, got, sizeof(got), &r, res);
	if (e < 0)
		goto out;
	if (e > 0) {
		if (r.timed_out)
			snprintf(line, sizeof(line), "timed out");
		else
			last_line(&r, line, sizeof(line));
		pub_fail(res, false, "verify_failed", "%s/%s:%s: inspect "
		    "after the copy: %s", s->registry, img->repo, t->tag,
		    line);
		goto out;
	}
	if (strcmp(got, t->digest) != 0) {
		pub_fail(res, true, "digest_mismatch", "%s/%s:%s: registry "
		    "has %s, the bundle %s", s->registry, img->repo, t->tag,
		    got, t->digest);
		goto out;
	}
	rc = 0;
out:
	free(r.out);
	return rc;
}

int
store_oci_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res)
{
	struct oci_image *imgs = NULL;
	char adir[PATH_MAX] = "", afile[PATH_MAX] = "";
	struct push p = { .s = s, .b = b };
	size_t n = 0, i, k;
	int rc = -1;

	if (!registry_ok(s->registry))
		return pub_fail(res, true, "config", "registry: not host:port");
	if (collect_images(b, strlen(s->registry), &imgs, &n, res) != 0)
		return -1;
	if (n == 0)
		return 0; /* no images: nothing this store holds */
	if (!in_path("skopeo")) {
		pub_fail(res, false, "skopeo_missing", "no skopeo in PATH "
		    "(Debian package skopeo)");
		goto out;
	}
	if (s->oci_credentials != NULL) {
		if (make_authfile(s, adir, sizeof(adir), afile, sizeof(afile),
		    res) != 0)
			goto out;
		p.authfile = afile;
	}
	for (i = 0; i < n; i++)
		for (k = 0; k < imgs[i].n_tags; k++)
			if (push_tag(&p, &imgs[i], &imgs[i].tags[k], res) != 0)
				goto out;
	rc = 0;
out:
	drop_authfile(adir, afile);
	images_free(imgs, n);
	return rc;
}
