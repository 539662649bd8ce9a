/*
 * SHA-256 through OpenSSL's libcrypto (see hash.h for why), with the
 * low-level SHA256_* functions: they run the same SHA-NI code as EVP
 * without a provider lookup per call, which at one hash per 1428-byte
 * symbol costs more than the hashing.
 */
#include "common/hash.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <unistd.h>

#define HASH_FD_BLOCK (1u << 20)

struct hash_ctx {
	SHA256_CTX c;
};

/* Deprecated in OpenSSL 3, still supported, and the fast path. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

void
hash_sha256(uint8_t out[HASH_LEN], const void *buf, size_t len)
{
	SHA256_CTX c;

	/* Not SHA256(): in OpenSSL 3 it fetches an EVP_MD under a lock on
	 * every call. */
	SHA256_Init(&c);
	SHA256_Update(&c, buf, len);
	SHA256_Final(out, &c);
}

struct hash_ctx *
hash_new(void)
{
	struct hash_ctx *ctx = malloc(sizeof(*ctx));

	if (ctx != NULL)
		SHA256_Init(&ctx->c);
	return ctx;
}

void
hash_free(struct hash_ctx *ctx)
{
	free(ctx);
}

void
hash_init(struct hash_ctx *ctx)
{
	SHA256_Init(&ctx->c);
}

void
hash_update(struct hash_ctx *ctx, const void *buf, size_t len)
{
	SHA256_Update(&ctx->c, buf, len);
}

void
hash_final(struct hash_ctx *ctx, uint8_t out[HASH_LEN])
{
	SHA256_Final(out, &ctx->c);
}

int
hash_fd(int fd, uint8_t out[HASH_LEN], uint64_t *size)
{
	struct hash_ctx c;
	uint64_t off = 0;
	int rc;

	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	hash_init(&c);
	rc = hash_fd_range(fd, &c, &off, UINT64_MAX);
	if (rc != 0)
		return rc;
	hash_final(&c, out);
	*size = off;
	return 0;
}

int
hash_fd_range(int fd, struct hash_ctx *ctx, uint64_t *off, uint64_t end)
{
	uint8_t *buf;

	buf = malloc(HASH_FD_BLOCK);
	if (buf == NULL)
		return -ENOMEM;
	while (*off < end) {
		size_t want = end - *off < HASH_FD_BLOCK ? (size_t)(end - *off) :
		    HASH_FD_BLOCK;
		ssize_t n = pread(fd, buf, want, (off_t)*off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			return -e;
		}
		if (n == 0) {
			free(buf);
			return end == UINT64_MAX ? 0 : -EIO;
		}
		hash_update(ctx, buf, (size_t)n);
		*off += (uint64_t)n;
	}
	free(buf);
	return 0;
}

int
hash_fd_range_disk(int fd, struct hash_ctx *ctx, uint64_t *off, uint64_t end)
{
	const size_t align = 4096, block = HASH_FD_BLOCK;
	uint64_t pos;
	uint8_t *buf;
	int flags;

	/*
	 * O_DIRECT: the bytes come from the device, never from the page
	 * cache, and cost no copy through it.  Where the file system cannot
	 * (tmpfs), the cached pages are dropped and read back instead.
	 */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_DIRECT) < 0 ||
	    posix_memalign((void **)&buf, align, block) != 0) {
		(void)posix_fadvise(fd, (off_t)*off, 0, POSIX_FADV_DONTNEED);
		return hash_fd_range(fd, ctx, off, end);
	}
	pos = *off & ~(uint64_t)(align - 1);
	while (*off < end) {
		ssize_t n = pread(fd, buf, block, (off_t)pos);
		uint64_t from, to;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && pos == (*off & ~(uint64_t)
		    (align - 1))) {
			/* The file system refused after all. */
			(void)fcntl(fd, F_SETFL, flags);
			free(buf);
			(void)posix_fadvise(fd, (off_t)*off, 0,
			    POSIX_FADV_DONTNEED);
			return hash_fd_range(fd, ctx, off, end);
		}
		if (n < 0) {
			int e = errno;

			(void)fcntl(fd, F_SETFL, flags);
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		from = *off > pos ? *off - pos : 0;
		to = UTIL_MIN((uint64_t)n, end - pos);
		if (to > from) {
			hash_update(ctx, buf + from, (size_t)(to - from));
			*off = pos + to;
		}
		pos += (uint64_t)n;
		if ((size_t)n < block)
			break; /* the end of the file */
	}
	(void)fcntl(fd, F_SETFL, flags);
	free(buf);
	return *off < end && end != UINT64_MAX ? -EIO : 0;
}
