/*
 * type = "s3" store: a released bundle into an S3-compatible object store
 * (MinIO, Ceph RGW, AWS), path-style: ENDPOINT/BUCKET/KEY with KEY =
 * PREFIX NAME/VERSION/PATH, every segment URL-encoded, '/' kept.
 *
 * Order keeps one promise to readers: NAME/VERSION/.sluice/manifest exists
 * only once every file and .sluice/approvals is in the store and verified,
 * so a reader that sees the manifest sees a complete version.  A repair of
 * a damaged version deletes the manifest object first for the same reason.
 *
 * Requests are signed by libcurl (CURLOPT_AWS_SIGV4), never by us; but
 * libcurl 7.88 (Debian 12) signs what it is handed, so three things are
 * ours to get right (each request checked against botocore's signer, see
 * tests/tools/s3-sigv4-proxy.py):
 *   - every request carries x-amz-content-sha256 with the SHA-256 of its
 *     body: curl then signs that value instead of the hash of an empty
 *     body (it cannot see a body sent by a read callback), S3 requires the
 *     header, and S3 refuses a body whose bytes do not match it;
 *   - query parameters are written already in canonical form: sorted,
 *     values escaped, and "uploads=" rather than "uploads" (7.88 signs the
 *     query string exactly as written);
 *   - keys are escaped once, per segment, as SigV4's UriEncode does.
 *
 * Verification, and why not more: each PUT and each part is signed with
 * the SHA-256 of its bytes, which S3 and MinIO check on receipt; the parts
 * of a file are hashed into its whole SHA-256 on the way, compared with the
 * manifest before CompleteMultipartUpload.  After the upload, a HEAD of
 * every object compares Content-Length and x-amz-meta-sha256 with the
 * manifest, and every object of at most part_size bytes (and the two
 * .sluice objects) is read back and hashed: cheap, and it catches servers
 * that do not check payload hashes (s3rver, some gateways).  Objects above
 * part_size are not read back: for multi-GB weights that would double the
 * traffic of every publish, and their bytes are already checked part by
 * part by the server.
 *
 * Nothing is kept between calls: the credentials file is read on each
 * publish (a rotated key is picked up without a restart) and wiped after.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/manifest.h"
#include "common/util.h"
#include "receiver/publish/publish.h"

#define S3_CRED_MAX          4096
#define S3_MIN_PART          (5ull << 20)   /* S3's smallest part but the last */
#define S3_MAX_PART          (5ull << 30)   /* and its largest */
#define S3_MAX_PARTS         10000
#define S3_KEY_MAX           1024           /* bytes of an object key */
#define S3_ANSWER_MAX        (64u << 10)    /* XML answers and error bodies */
#define S3_READ_BLOCK        (1u << 20)
/* Timeouts: a dead peer or a stalled transfer fails the publish (to be
 * retried) instead of hanging the publisher. */
#define S3_CONNECT_TIMEOUT   15L
#define S3_LOW_SPEED_BYTES   1024L          /* below this many bytes/s ... */
#define S3_LOW_SPEED_SECS    60L            /* ... for this long: abort */
#define S3_SHORT_TIMEOUT     120L           /* HEAD, DELETE, create */
/* CompleteMultipartUpload of a large object can take minutes, and S3
 * keeps the connection alive with a few spaces: no low-speed limit. */
#define S3_COMPLETE_TIMEOUT  900L
#define S3_PART_TRIES        3              /* one part, before giving up */

/* The objects' Content-Type: files are bytes to S3; the .sluice ones
 * are the manifest's text. */
#define S3_TYPE_FILE "application/octet-stream"
#define S3_TYPE_TEXT "text/plain; charset=utf-8"

static const char EMPTY_SHA256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/* One object to publish: a bundle file, or a .sluice object from memory. */
struct s3_object {
	const char *path;       /* in the bundle */
	uint64_t size;
	char sha[2 * HASH_LEN + 1];
	const void *mem;        /* .sluice objects: the verified manifest */
	char *key;              /* unescaped, for messages */
	char *ekey;             /* escaped, for URLs */
};

struct s3_req {
	const char *method;     /* HEAD GET PUT POST DELETE */
	const char *ekey;
	const char *query;      /* canonical, or NULL */
	const char *payload_sha; /* hex SHA-256 of the body; NULL: empty */
	const char *meta_sha;   /* x-amz-meta-sha256, or NULL */
	const char *type;       /* Content-Type, or NULL */
	int fd;                 /* PUT body: bytes [off, off + len) of fd, */
	uint64_t off, len;
	const void *mem;        /* or of mem (PUT, POST) */
	bool hash_answer;       /* GET: hash the body instead of keeping it */
	long timeout;           /* 0: the low-speed limit only */
};

struct s3 {
	const struct pub_store *s;
	CURL *curl;
	char sigv4[96];
	char *base;             /* ENDPOINT/BUCKET/ */
	uint8_t *cred;          /* sodium_malloc: the credentials file text */
	const char *key_id, *secret, *token; /* into cred */
	uint64_t part_size;
	/* The answer to the last request. */
	CURLcode cc;
	char curl_err[CURL_ERROR_SIZE];
	long status;
	char etag[128];
	char meta_sha[2 * HASH_LEN + 8];
	uint64_t length;
	bool have_length;
	char *answer;           /* S3_ANSWER_MAX + 1 */
	size_t answer_len;
	bool hash_answer;
	struct hash_ctx *hash;
	uint64_t hashed;
	/* The body of the request being sent. */
	const struct s3_req *rq;
	uint64_t pos;
	int read_errno;
};

/* ---- credentials ------------------------------------------------------ */

/* "  x  " -> "x", in place. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * The credentials file: "name = value" lines, '#' comments, names
 * access_key_id, secret_access_key and the optional session_token (the
 * aws_ prefixed spellings of ~/.aws/credentials are accepted too).  It
 * must be a regular file owned by the publisher's user, mode 0600 or
 * stricter: a key readable by others is refused, permanently (retrying
 * cannot fix a mode).  Messages name lines, never values.
 */
static int
load_credentials(struct s3 *c, struct pub_result *res)
{
	const char *path = c->s->credentials;
	char *line, *next;
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, lineno = 0;

	if (path == NULL || path[0] == '\0')
		return pub_fail(res, true, "credentials",
		    "no credentials file configured");
	/* O_NONBLOCK: a FIFO in the file's place must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return pub_fail(res, true, "credentials",
		    "credentials file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return pub_fail(res, true, "credentials",
		    "credentials file %s: not a regular file", path);
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		return pub_fail(res, true, "credentials", "credentials file "
		    "%s has mode %04o; must be 0600 or stricter", path,
		    (unsigned)(st.st_mode & 07777));
	}
	if (st.st_uid != geteuid()) {
		close(fd);
		return pub_fail(res, true, "credentials", "credentials file "
		    "%s is owned by uid %u, not by the publisher (uid %u)",
		    path, (unsigned)st.st_uid, (unsigned)geteuid());
	}
	c->cred = sodium_malloc(S3_CRED_MAX);
	if (c->cred == NULL) {
		close(fd);
		return pub_fail(res, false, "credentials", "out of memory");
	}
	while ((n = read(fd, c->cred + len, S3_CRED_MAX - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n < 0 || len == S3_CRED_MAX - 1)
		return pub_fail(res, true, "credentials",
		    "credentials file %s: %s", path,
		    n < 0 ? strerror(errno) : "too large");
	c->cred[len] = '\0';
	for (line = (char *)c->cred; line != NULL; line = next) {
		char *eq, *name, *value;

		lineno++;
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		line = trim(line);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL)
			return pub_fail(res, true, "credentials", "credentials "
			    "file %s:%d: not \"name = value\"", path, lineno);
		*eq = '\0';
		name = trim(line);
		value = trim(eq + 1);
		if (strncmp(name, "aws_", 4) == 0)
			name += 4;
		if (value[0] == '\0')
			return pub_fail(res, true, "credentials", "credentials "
			    "file %s:%d: empty value", path, lineno);
		if (strcmp(name, "access_key_id") == 0)
			c->key_id = value;
		else if (strcmp(name, "secret_access_key") == 0)
			c->secret = value;
		else if (strcmp(name, "session_token") == 0)
			c->token = value;
		else
			return pub_fail(res, true, "credentials", "credentials "
			    "file %s:%d: unknown setting (access_key_id, "
			    "secret_access_key, session_token)", path, lineno);
	}
	if (c->key_id == NULL || c->secret == NULL)
		return pub_fail(res, true, "credentials", "credentials file %s: "
		    "access_key_id and secret_access_key are both needed",
		    path);
	return 0;
}

/* ---- one request ------------------------------------------------------ */

/* Copies the value of header `name` from a raw header line, if it is that
 * header; values that do not fit are dropped rather than cut. */
static void
header_value(const char *buf, size_t len, const char *name, char *out,
    size_t outlen)
{
	size_t nl = strlen(name), vl;
	const char *v;

	if (len <= nl || strncasecmp(buf, name, nl) != 0 || buf[nl] != ':')
		return;
	v = buf + nl + 1;
	vl = len - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
	    v[vl - 1] == ' '))
		vl--;
	if (vl >= outlen)
		return;
	memcpy(out, v, vl);
	out[vl] = '\0';
}

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	struct s3 *c = arg;
	size_t len = size * n;
	char num[32] = "";

	/* A new status line (after a "100 Continue") starts a new answer. */
	if (len > 5 && memcmp(buf, "HTTP/", 5) == 0) {
		const char *sp = memchr(buf, ' ', len);

		c->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
		c->etag[0] = c->meta_sha[0] = '\0';
		c->have_length = false;
		return len;
	}
	header_value(buf, len, "etag", c->etag, sizeof(c->etag));
	header_value(buf, len, "x-amz-meta-sha256", c->meta_sha,
	    sizeof(c->meta_sha));
	header_value(buf, len, "content-length", num, sizeof(num));
	if (num[0] != '\0') {
		char *end;

		errno = 0;
		c->length = strtoull(num, &end, 10);
		c->have_length = errno == 0 && *end == '\0' && num[0] != '-';
	}
	return len;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *arg)
{
	struct s3 *c = arg;
	size_t len = size * n, room = S3_ANSWER_MAX - c->answer_len;

	if (c->hash_answer && c->status == 200) {
		hash_update(c->hash, buf, len);
		c->hashed += len;
		return len;
	}
	/* Only the start of an answer is needed (an XML answer, the code of
	 * an error): the rest is dropped, never accumulated. */
	if (room > len)
		room = len;
	memcpy(c->answer + c->answer_len, buf, room);
	c->answer_len += room;
	c->answer[c->answer_len] = '\0';
	return len;
}

/* The request body, streamed from the file by offset (or from memory):
 * a file is never read whole into memory. */
static size_t
on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct s3 *c = arg;
	const struct s3_req *rq = c->rq;
	size_t want = size * n;
	ssize_t got;

	if (want > rq->len - c->pos)
		want = (size_t)(rq->len - c->pos);
	if (want == 0)
		return 0;
	if (rq->mem != NULL) {
		memcpy(buf, (const uint8_t *)rq->mem + c->pos, want);
		c->pos += want;
		return want;
	}
	do
		got = pread(rq->fd, buf, want, (off_t)(rq->off + c->pos));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		c->read_errno = got < 0 ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	c->pos += (uint64_t)got;
	return (size_t)got;
}

/* curl rewinds the body when it must send it again (a redirect refused,
 * an Expect: 100-continue answered late). */
static int
on_seek(void *arg, curl_off_t offset, int origin)
{
	struct s3 *c = arg;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > c->rq->len)
		return CURL_SEEKFUNC_CANTSEEK;
	c->pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* Appends a header line (curl copies it); false when out of memory. */
static bool
add_header(struct curl_slist **hdrs, const char *line)
{
	struct curl_slist *h = curl_slist_append(*hdrs, line);

	if (h == NULL)
		return false;
	*hdrs = h;
	return true;
}

/*
 * Sends one request and collects the answer in c (status, ETag,
 * x-amz-meta-sha256, Content-Length, the start of the body).  0 when an
 * HTTP answer came, whatever its status; -1 for a transport failure
 * (c->cc, c->curl_err).
 */
static int
s3_do(struct s3 *c, const struct s3_req *rq)
{
	struct curl_slist *hdrs = NULL;
	char line[256], *url = NULL, *token = NULL;
	bool ok = true;

	c->status = 0;
	c->etag[0] = c->meta_sha[0] = c->curl_err[0] = '\0';
	c->have_length = false;
	c->answer_len = 0;
	c->answer[0] = '\0';
	c->hash_answer = rq->hash_answer;
	c->hashed = 0;
	c->rq = rq;
	c->pos = 0;
	c->read_errno = 0;
	if (rq->hash_answer)
		hash_init(c->hash);
	if (asprintf(&url, "%s%s%s%s", c->base, rq->ekey,
	    rq->query != NULL ? "?" : "", rq->query != NULL ? rq->query : "")
	    < 0) {
		c->cc = CURLE_OUT_OF_MEMORY;
		return -1;
	}
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s",
	    rq->payload_sha != NULL ? rq->payload_sha : EMPTY_SHA256);
	ok = add_header(&hdrs, line);
	if (ok && rq->meta_sha != NULL) {
		snprintf(line, sizeof(line), "x-amz-meta-sha256: %s",
		    rq->meta_sha);
		ok = add_header(&hdrs, line);
	}
	if (ok && rq->type != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", rq->type);
		ok = add_header(&hdrs, line);
	}
	if (ok && c->token != NULL) {
		/* curl copies the line; our copy is wiped at once. */
		size_t tl = strlen(c->token) + 32;

		token = sodium_malloc(tl);
		ok = token != NULL;
		if (ok) {
			snprintf(token, tl, "x-amz-security-token: %s",
			    c->token);
			ok = add_header(&hdrs, token);
			sodium_free(token);
		}
	}
	if (!ok) {
		curl_slist_free_all(hdrs);
		free(url);
		c->cc = CURLE_OUT_OF_MEMORY;
		return -1;
	}

	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_err);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT,
	    "sluice-publish/" SLUICE_VERSION_STRING);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, S3_CONNECT_TIMEOUT);
	if (rq->timeout > 0)
		curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, rq->timeout);
	else {
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT,
		    S3_LOW_SPEED_BYTES);
		curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME,
		    S3_LOW_SPEED_SECS);
	}
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->curl, CURLOPT_AWS_SIGV4, c->sigv4);
	/* USERNAME and PASSWORD apart, not USERPWD: a secret key may hold
	 * a ':' (USERPWD splits at the first). */
	curl_easy_setopt(c->curl, CURLOPT_USERNAME, c->key_id);
	curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->secret);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	if (strcmp(rq->method, "HEAD") == 0)
		curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
	else if (strcmp(rq->method, "PUT") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c->curl, CURLOPT_READDATA, c);
		curl_easy_setopt(c->curl, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c->curl, CURLOPT_SEEKDATA, c);
		curl_easy_setopt(c->curl, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)rq->len);
	} else if (strcmp(rq->method, "POST") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS,
		    rq->mem != NULL ? rq->mem : "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)rq->len);
	} else if (strcmp(rq->method, "DELETE") == 0)
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, "DELETE");
	c->cc = curl_easy_perform(c->curl);
	if (c->cc == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
	/* Nothing of ours may outlive the call in the handle. */
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	free(url);
	return c->cc == CURLE_OK ? 0 : -1;
}

/* The <Code> of an S3 error answer, for messages: letters and digits
 * only, so a hostile server cannot write into our logs. */
static void
error_code(const struct s3 *c, char *out, size_t outlen)
{
	const char *p = strstr(c->answer, "<Code>");
	size_t n = 0;

	out[0] = '\0';
	if (p == NULL)
		return;
	for (p += 6; *p != '<' && *p != '\0' && n + 1 < outlen; p++)
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9'))
			out[n++] = *p;
	out[n] = '\0';
}

/*
 * Fills res for a failed request.  Everything a server or a network does
 * is retryable: a server down, refusing or timing out comes back.  403
 * gets reason "credentials" and is retryable too: it is also what a
 * skewed clock or a key not yet granted on the bucket gets, and an
 * operator who fixes the key need not force the retry.  A body that does
 * not match the SHA-256 we signed for it is "digest_mismatch".
 */
static int
request_failed(struct s3 *c, struct pub_result *res, const char *reason,
    const char *what, const char *key)
{
	char code[64];

	if (c->read_errno != 0)
		return pub_fail(res, false, reason, "%s %s: reading the file: "
		    "%s", what, key, strerror(c->read_errno));
	if (c->cc != CURLE_OK)
		return pub_fail(res, false, reason, "%s %s: %s", what, key,
		    c->curl_err[0] != '\0' ? c->curl_err :
		    curl_easy_strerror(c->cc));
	error_code(c, code, sizeof(code));
	if (c->status == 403)
		return pub_fail(res, false, "credentials", "%s %s: HTTP 403 %s",
		    what, key, code[0] != '\0' ? code : "Forbidden");
	if (strcmp(code, "XAmzContentSHA256Mismatch") == 0 ||
	    strcmp(code, "BadDigest") == 0)
		reason = "digest_mismatch";
	return pub_fail(res, false, reason, "%s %s: HTTP %ld%s%s", what, key,
	    c->status, code[0] != '\0' ? " " : "", code);
}

/* ---- objects ---------------------------------------------------------- */

/*
 * HEAD: is the object there with o's size and SHA-256?  0 with *same set
 * (false also when it is absent), or -1 with res filled in.
 */
static int
head_object(struct s3 *c, const struct s3_object *o, bool *same,
    const char *reason, struct pub_result *res)
{
	struct s3_req rq = { .method = "HEAD", .ekey = o->ekey,
	    .timeout = S3_SHORT_TIMEOUT };

	*same = false;
	if (s3_do(c, &rq) != 0 || (c->status != 200 && c->status != 404))
		return request_failed(c, res, reason, "HEAD", o->key);
	*same = c->status == 200 && c->have_length && c->length == o->size &&
	    strcasecmp(c->meta_sha, o->sha) == 0;
	return 0;
}

/* GET, hashed on the way: does the object hold o's bytes?  0 with *same
 * set, or -1 when the GET failed. */
static int
read_back(struct s3 *c, const struct s3_object *o, bool *same,
    struct pub_result *res)
{
	struct s3_req rq = { .method = "GET", .ekey = o->ekey,
	    .hash_answer = true };
	uint8_t got[HASH_LEN];
	char hex[2 * HASH_LEN + 1];

	*same = false;
	if (s3_do(c, &rq) != 0 || c->status != 200)
		return request_failed(c, res, "verify_failed", "GET", o->key);
	hash_final(c->hash, got);
	util_hex(hex, got, HASH_LEN);
	*same = c->hashed == o->size && strcmp(hex, o->sha) == 0;
	if (!*same)
		pub_fail(res, false, "digest_mismatch", "%s: read back %"
		    PRIu64 " bytes with SHA-256 %.16s..., the manifest says %"
		    PRIu64 " bytes %.16s...", o->key, c->hashed, hex, o->size,
		    o->sha);
	return 0;
}

/* HEAD, then for the smaller objects a read-back. */
static int
verify_object(struct s3 *c, const struct s3_object *o, bool full,
    struct pub_result *res)
{
	struct s3_req rq = { .method = "DELETE", .ekey = o->ekey,
	    .timeout = S3_SHORT_TIMEOUT };
	bool same;

	if (head_object(c, o, &same, "verify_failed", res) != 0)
		return -1;
	if (!same)
		return pub_fail(res, false, "verify_failed", "%s: %s", o->key,
		    c->status == 404 ? "missing after upload" :
		    "size or x-amz-meta-sha256 differs from the manifest");
	if (!full)
		return 0;
	if (read_back(c, o, &same, res) != 0)
		return -1;
	if (same)
		return 0;
	/* Its metadata says the object is right, so the retry would skip
	 * it and fail here again: delete it, and the retry uploads it.  res
	 * keeps saying digest_mismatch. */
	if (s3_do(c, &rq) != 0 || c->status >= 300)
		log_debug("s3: DELETE %s failed", o->key);
	return -1;
}

/* One PUT of a whole object. */
static int
put_object(struct s3 *c, const struct s3_object *o, int fd,
    struct pub_result *res)
{
	struct s3_req rq = { .method = "PUT", .ekey = o->ekey,
	    .payload_sha = o->sha, .meta_sha = o->sha, .fd = fd,
	    .len = o->size, .mem = o->mem,
	    .type = o->mem != NULL ? S3_TYPE_TEXT : S3_TYPE_FILE };

	if (s3_do(c, &rq) != 0 || c->status != 200)
		return request_failed(c, res, "upload_failed", "PUT", o->key);
	return 0;
}

/* Text between <tag> and </tag> in the answer, if it fits out. */
static bool
answer_field(const struct s3 *c, const char *tag, char *out, size_t outlen)
{
	char open[32], close[32];
	const char *p, *e;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	p = strstr(c->answer, open);
	if (p == NULL)
		return false;
	p += strlen(open);
	e = strstr(p, close);
	if (e == NULL || e == p || (size_t)(e - p) >= outlen)
		return false;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return true;
}

/* Is s made only of bytes safe to echo into a query or an XML document? */
static bool
plain_token(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x21 || *s > 0x7e || *s == '<' || *s == '>' ||
		    *s == '&')
			return false;
	return true;
}

/* Bytes [off, off + len) of fd into the part's hash and the file's. */
static int
hash_part(int fd, uint64_t off, uint64_t len, struct hash_ctx *part,
    struct hash_ctx *whole, uint8_t *buf)
{
	uint64_t end = off + len;

	hash_init(part);
	while (off < end) {
		size_t want = end - off < S3_READ_BLOCK ? (size_t)(end - off) :
		    S3_READ_BLOCK;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		hash_update(part, buf, (size_t)n);
		hash_update(whole, buf, (size_t)n);
		off += (uint64_t)n;
	}
	return 0;
}

/*
 * Multipart upload: CreateMultipartUpload, each part read from the file
 * by offset and signed with its own SHA-256, CompleteMultipartUpload with
 * the ETags; AbortMultipartUpload on any failure, so no parts are left
 * billed (an upload cut by a crash is left to the bucket's
 * AbortIncompleteMultipartUpload lifecycle rule).
 */
static int
put_multipart(struct s3 *c, const struct s3_object *o, int fd,
    struct pub_result *res)
{
	/* Create carries what the object will have: its metadata, its
	 * Content-Type. */
	struct s3_req rq = { .method = "POST", .ekey = o->ekey,
	    .meta_sha = o->sha, .type = S3_TYPE_FILE,
	    .timeout = S3_SHORT_TIMEOUT };
	struct hash_ctx *part = NULL, *whole = NULL;
	uint64_t psize = c->part_size, nparts, i;
	char upload_id[512], *eid = NULL, *query = NULL, **etags = NULL;
	char sha[2 * HASH_LEN + 1];
	char *xml = NULL;
	size_t xml_len = 0;
	uint8_t *buf = NULL, digest[HASH_LEN];
	FILE *f;
	int rc = -1, e;

	/* S3 takes at most 10000 parts: a larger file gets larger parts. */
	if ((o->size + psize - 1) / psize > S3_MAX_PARTS)
		psize = ((o->size + S3_MAX_PARTS - 1) / S3_MAX_PARTS +
		    (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	nparts = (o->size + psize - 1) / psize;

	rq.query = "uploads=";
	if (s3_do(c, &rq) != 0 || c->status != 200)
		return request_failed(c, res, "upload_failed",
		    "CreateMultipartUpload", o->key);
	if (!answer_field(c, "UploadId", upload_id, sizeof(upload_id)) ||
	    !plain_token(upload_id))
		return pub_fail(res, false, "upload_failed", "Create"
		    "MultipartUpload %s: no usable UploadId in the answer",
		    o->key);
	eid = curl_easy_escape(c->curl, upload_id, 0);
	etags = calloc(nparts, sizeof(*etags));
	part = hash_new();
	whole = hash_new();
	buf = malloc(S3_READ_BLOCK);
	if (eid == NULL || etags == NULL || part == NULL || whole == NULL ||
	    buf == NULL) {
		pub_fail(res, false, "upload_failed", "out of memory");
		goto abort;
	}
	hash_init(whole);
	for (i = 0; i < nparts; i++) {
		uint64_t off = i * psize;
		struct s3_req prq = { .method = "PUT", .ekey = o->ekey,
		    .payload_sha = sha, .fd = fd, .off = off,
		    .len = UTIL_MIN(psize, o->size - off) };
		int try;

		e = hash_part(fd, off, prq.len, part, whole, buf);
		if (e != 0) {
			pub_fail(res, false, "upload_failed", "%s: reading "
			    "part %" PRIu64 ": %s", o->key, i + 1,
			    strerror(-e));
			goto abort;
		}
		hash_final(part, digest);
		util_hex(sha, digest, HASH_LEN);
		free(query);
		if (asprintf(&query, "partNumber=%" PRIu64 "&uploadId=%s",
		    i + 1, eid) < 0) {
			query = NULL;
			pub_fail(res, false, "upload_failed", "out of memory");
			goto abort;
		}
		prq.query = query;
		/* A part that fails for the network is sent again here: the
		 * caller's retry would start the whole file over. */
		for (try = 1;; try++) {
			if (s3_do(c, &prq) == 0 && c->status == 200 &&
			    c->etag[0] != '\0' && plain_token(c->etag))
				break;
			if (try == S3_PART_TRIES ||
			    (c->cc == CURLE_OK && c->status < 500)) {
				if (c->cc == CURLE_OK && c->status == 200)
					pub_fail(res, false, "upload_failed",
					    "UploadPart %s: no usable ETag",
					    o->key);
				else
					request_failed(c, res, "upload_failed",
					    "UploadPart", o->key);
				goto abort;
			}
			log_debug("s3: %s part %" PRIu64 " try %d failed",
			    o->key, i + 1, try);
			sleep((unsigned)try);
		}
		etags[i] = strdup(c->etag);
		if (etags[i] == NULL) {
			pub_fail(res, false, "upload_failed", "out of memory");
			goto abort;
		}
	}
	/* The bytes sent are the bytes the manifest describes: the file
	 * did not change under us since its check. */
	hash_final(whole, digest);
	util_hex(sha, digest, HASH_LEN);
	if (strcmp(sha, o->sha) != 0) {
		pub_fail(res, false, "digest_mismatch", "%s: the file's "
		    "SHA-256 is %.16s..., the manifest says %.16s...", o->key,
		    sha, o->sha);
		goto abort;
	}

	f = open_memstream(&xml, &xml_len);
	if (f == NULL) {
		pub_fail(res, false, "upload_failed", "out of memory");
		goto abort;
	}
	fputs("<CompleteMultipartUpload>", f);
	for (i = 0; i < nparts; i++)
		fprintf(f, "<Part><PartNumber>%" PRIu64 "</PartNumber>"
		    "<ETag>%s</ETag></Part>", i + 1, etags[i]);
	fputs("</CompleteMultipartUpload>", f);
	if (fclose(f) != 0) {
		pub_fail(res, false, "upload_failed", "out of memory");
		goto abort;
	}
	hash_sha256(digest, xml, xml_len);
	util_hex(sha, digest, HASH_LEN);
	free(query);
	if (asprintf(&query, "uploadId=%s", eid) < 0) {
		query = NULL;
		pub_fail(res, false, "upload_failed", "out of memory");
		goto abort;
	}
	rq.query = query;
	rq.meta_sha = NULL;
	rq.type = "application/xml";
	rq.payload_sha = sha;
	rq.mem = xml;
	rq.len = xml_len;
	rq.timeout = S3_COMPLETE_TIMEOUT;
	/* S3 may answer 200 and report the error in the body. */
	if (s3_do(c, &rq) != 0 || c->status != 200 ||
	    strstr(c->answer, "<Error>") != NULL) {
		request_failed(c, res, "upload_failed",
		    "CompleteMultipartUpload", o->key);
		goto abort;
	}
	rc = 0;
	goto done;
abort:
	free(query);
	query = NULL;
	if (eid != NULL && asprintf(&query, "uploadId=%s", eid) >= 0) {
		struct s3_req arq = { .method = "DELETE", .ekey = o->ekey,
		    .query = query, .timeout = S3_SHORT_TIMEOUT };

		/* Best effort: res already says what failed. */
		if (s3_do(c, &arq) != 0 || c->status >= 300)
			log_debug("s3: AbortMultipartUpload %s failed",
			    o->key);
	}
done:
	if (etags != NULL)
		for (i = 0; i < nparts; i++)
			free(etags[i]);
	free(etags);
	free(query);
	free(xml);
	free(buf);
	hash_free(part);
	hash_free(whole);
	curl_free(eid);
	return rc;
}

/* Uploads o unless it is already there with the same size and SHA-256. */
static int
upload_object(struct s3 *c, const struct pub_bundle *b,
    const struct s3_object *o, struct pub_result *res)
{
	char p[PATH_MAX];
	struct stat st;
	bool same;
	int fd, rc;

	if (head_object(c, o, &same, "upload_failed", res) != 0)
		return -1;
	if (same) {
		log_debug("s3: %s already there", o->key);
		return 0;
	}
	if (o->mem != NULL)
		return put_object(c, o, -1, res);
	if (util_path_join(p, sizeof(p), b->dir, o->path) != 0)
		return pub_fail(res, true, "upload_failed", "%s: path too long",
		    o->path);
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return pub_fail(res, false, "upload_failed", "%s: %s", p,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != o->size) {
		close(fd);
		return pub_fail(res, false, "digest_mismatch", "%s: not the "
		    "regular file of %" PRIu64 " bytes the manifest lists", p,
		    o->size);
	}
	log_debug("s3: uploading %s (%" PRIu64 " bytes%s)", o->key, o->size,
	    o->size > c->part_size ? ", multipart" : "");
	rc = o->size > c->part_size ? put_multipart(c, o, fd, res) :
	    put_object(c, o, fd, res);
	close(fd);
	return rc;
}

/* ---- the bundle ------------------------------------------------------- */

/* KEY escaped per segment, '/' kept, as SigV4's UriEncode wants it. */
static char *
escape_key(CURL *curl, const char *key)
{
	char *out = NULL, *seg;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	const char *p = key, *slash;

	if (f == NULL)
		return NULL;
	for (;;) {
		slash = strchr(p, '/');
		seg = curl_easy_escape(curl, p, slash != NULL ?
		    (int)(slash - p) : (int)strlen(p));
		if (seg == NULL)
			break;
		fputs(seg, f);
		curl_free(seg);
		if (slash == NULL)
			break;
		fputc('/', f);
		p = slash + 1;
	}
	if (fclose(f) != 0 || seg == NULL) {
		free(out);
		return NULL;
	}
	return out;
}

/* Fills o's keys: PREFIX NAME/VERSION/PATH, plain and escaped. */
static int
object_keys(struct s3 *c, const struct pub_bundle *b, struct s3_object *o,
    struct pub_result *res)
{
	const char *prefix = c->s->prefix != NULL ? c->s->prefix : "";
	size_t pl = strlen(prefix);

	if (asprintf(&o->key, "%s%s%s/%s/%s", prefix,
	    pl > 0 && prefix[pl - 1] != '/' ? "/" : "", b->name, b->version,
	    o->path) < 0) {
		o->key = NULL;
		return pub_fail(res, false, "upload_failed", "out of memory");
	}
	if (strlen(o->key) > S3_KEY_MAX)
		return pub_fail(res, true, "key_too_long", "%s: longer than "
		    "S3's %d bytes", o->key, S3_KEY_MAX);
	o->ekey = escape_key(c->curl, o->key);
	if (o->ekey == NULL)
		return pub_fail(res, false, "upload_failed", "out of memory");
	return 0;
}

/* The store's settings, as far as this module relies on them. */
static int
check_store(const struct pub_store *s, struct pub_result *res)
{
	if (s->endpoint == NULL || (strncmp(s->endpoint, "http://", 7) != 0 &&
	    strncmp(s->endpoint, "https://", 8) != 0))
		return pub_fail(res, true, "config", "endpoint must be "
		    "http://HOST:PORT or https://HOST:PORT");
	if (s->bucket == NULL || s->bucket[0] == '\0' ||
	    strchr(s->bucket, '/') != NULL)
		return pub_fail(res, true, "config", "bucket must be a name");
	if (s->part_size < S3_MIN_PART || s->part_size > S3_MAX_PART)
		return pub_fail(res, true, "config", "part_size %" PRIu64
		    " is outside S3's 5 MiB to 5 GiB", s->part_size);
	return 0;
}

/*
 * Is the version already published and whole?  *done when the manifest
 * object holds these very bytes and every other object checks (HEAD:
 * size and x-amz-meta-sha256).  A manifest object with other bytes is a
 * different bundle under the same name and version: refused, never
 * overwritten.  One with ours but a damaged version is deleted before the
 * repair, so no reader trusts it meanwhile.
 */
static int
check_published(struct s3 *c, struct s3_object *objs, size_t n,
    bool *done, struct pub_result *res)
{
	struct s3_object *man = &objs[n - 1];
	struct s3_req rq = { .method = "DELETE", .ekey = man->ekey,
	    .timeout = S3_SHORT_TIMEOUT };
	bool same;
	size_t i;

	*done = false;
	if (head_object(c, man, &same, "upload_failed", res) != 0)
		return -1;
	if (c->status == 404)
		return 0;
	if (same && read_back(c, man, &same, res) != 0)
		return -1;
	if (!same)
		return pub_fail(res, true, "version_conflict", "%s exists with "
		    "other bytes: another bundle was published under this "
		    "name and version", man->key);
	for (i = 0; i + 1 < n; i++) {
		if (head_object(c, &objs[i], &same, "upload_failed", res) != 0)
			return -1;
		if (!same)
			break;
	}
	if (i + 1 == n) {
		*done = true;
		return 0;
	}
	log_debug("s3: %s incomplete (%s): repairing", man->key, objs[i].key);
	if (s3_do(c, &rq) != 0 || (c->status != 204 && c->status != 200))
		return request_failed(c, res, "upload_failed", "DELETE",
		    man->key);
	return 0;
}

int
store_s3_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res)
{
	const struct manifest *m = b->m;
	struct s3 c = { .s = s };
	struct s3_object *objs = NULL;
	uint8_t *approvals = NULL, digest[HASH_LEN];
	size_t n = 0, alen, i, elen;
	char *ebucket = NULL;
	bool done;
	int rc = -1;

	if (check_store(s, res) != 0)
		return -1;
	c.part_size = s->part_size;
	snprintf(c.sigv4, sizeof(c.sigv4), "aws:amz:%s:s3",
	    s->region != NULL && s->region[0] != '\0' ? s->region :
	    "us-east-1");
	c.curl = curl_easy_init();
	c.hash = hash_new();
	c.answer = malloc(S3_ANSWER_MAX + 1);
	objs = calloc(m->n_files + 2, sizeof(*objs));
	if (c.curl == NULL || c.hash == NULL || c.answer == NULL ||
	    objs == NULL) {
		pub_fail(res, false, "upload_failed", "out of memory");
		goto out;
	}
	if (load_credentials(&c, res) != 0)
		goto out;
	ebucket = curl_easy_escape(c.curl, s->bucket, 0);
	elen = strlen(s->endpoint);
	while (elen > 0 && s->endpoint[elen - 1] == '/')
		elen--;
	if (ebucket == NULL || asprintf(&c.base, "%.*s/%s/", (int)elen,
	    s->endpoint, ebucket) < 0) {
		c.base = NULL;
		pub_fail(res, false, "upload_failed", "out of memory");
		goto out;
	}

	/* The objects in upload order; the manifest last.  The .sluice
	 * objects come from the manifest as loaded and checked, so what is
	 * published is what was verified. */
	if (manifest_render_object(m, &approvals, &alen) != 0) {
		pub_fail(res, false, "upload_failed", "out of memory");
		goto out;
	}
	for (i = 0; i < m->n_files; i++, n++) {
		objs[n].path = m->files[i].path;
		objs[n].size = m->files[i].size;
		util_hex(objs[n].sha, m->files[i].sha256, HASH_LEN);
	}
	objs[n].path = MANIFEST_APPROVALS_FILE;
	objs[n].mem = approvals + m->text_len;
	objs[n].size = alen - m->text_len;
	hash_sha256(digest, objs[n].mem, objs[n].size);
	util_hex(objs[n].sha, digest, HASH_LEN);
	n++;
	objs[n].path = MANIFEST_BUNDLE_FILE;
	objs[n].mem = m->text;
	objs[n].size = m->text_len;
	util_hex(objs[n].sha, m->digest, HASH_LEN);
	n++;
	for (i = 0; i < n; i++)
		if (object_keys(&c, b, &objs[i], res) != 0)
			goto out;

	if (check_published(&c, objs, n, &done, res) != 0)
		goto out;
	if (done) {
		log_debug("s3: %s/%s already published", b->name, b->version);
		rc = 0;
		goto out;
	}
	for (i = 0; i + 1 < n; i++)
		if (upload_object(&c, b, &objs[i], res) != 0)
			goto out;
	for (i = 0; i + 1 < n; i++)
		if (verify_object(&c, &objs[i], objs[i].size <= c.part_size,
		    res) != 0)
			goto out;
	if (put_object(&c, &objs[n - 1], -1, res) != 0 ||
	    verify_object(&c, &objs[n - 1], true, res) != 0)
		goto out;
	rc = 0;
out:
	for (i = 0; objs != NULL && i < n; i++) {
		free(objs[i].key);
		free(objs[i].ekey);
	}
	free(objs);
	free(approvals);
	free(c.base);
	free(c.answer);
	curl_free(ebucket);
	hash_free(c.hash);
	if (c.curl != NULL)
		curl_easy_cleanup(c.curl);
	sodium_free(c.cred);
	return rc;
}

int
store_s3_init(void)
{
	CURL *probe;
	CURLcode cc;

	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return -1;
	/* A libcurl built without SigV4 (CURL_DISABLE_AWS) would send the
	 * requests unsigned: find out now, not at the first upload. */
	probe = curl_easy_init();
	if (probe == NULL)
		return -1;
	cc = curl_easy_setopt(probe, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
	curl_easy_cleanup(probe);
	if (cc != CURLE_OK) {
		log_warnx("s3: this libcurl cannot sign requests "
		    "(CURLOPT_AWS_SIGV4: %s)", curl_easy_strerror(cc));
		curl_global_cleanup();
		return -1;
	}
	return 0;
}

void
store_s3_cleanup(void)
{
	curl_global_cleanup();
}
