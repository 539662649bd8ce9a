/*
 * SHA-256, the only thing Sluice takes from OpenSSL's libcrypto: it uses
 * the CPU's SHA extensions (1.7 GB/s per core here against 0.385 GB/s for
 * libsodium's).  This file is the only one that includes OpenSSL headers.
 */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_LEN 32

/* One-shot SHA-256. */
void hash_sha256(uint8_t out[HASH_LEN], const void *buf, size_t len);

/* Streaming SHA-256; the context is opaque and owned by the caller. */
struct hash_ctx;
struct hash_ctx *hash_new(void);
void hash_free(struct hash_ctx *ctx);
void hash_init(struct hash_ctx *ctx);
void hash_update(struct hash_ctx *ctx, const void *buf, size_t len);
void hash_final(struct hash_ctx *ctx, uint8_t out[HASH_LEN]);

/*
 * SHA-256 of a whole file read from fd (from offset 0, with pread); *size
 * receives the number of bytes hashed.  0 or -errno.
 */
int hash_fd(int fd, uint8_t out[HASH_LEN], uint64_t *size);

/*
 * Feeds bytes [*off, end) of fd into ctx and advances *off; end ==
 * UINT64_MAX reads to the end of the file.  0 or -errno; -EIO if the
 * file ends before end.
 */
int hash_fd_range(int fd, struct hash_ctx *ctx, uint64_t *off, uint64_t end);

/*
 * hash_fd_range reading what the device holds: O_DIRECT where the file
 * system allows (no page cache, no copy through it), else the cached
 * pages dropped first.  For bytes already made durable (fdatasync).
 */
int hash_fd_range_disk(int fd, struct hash_ctx *ctx, uint64_t *off,
    uint64_t end);

#endif
