/*
 * SHA-256: FIPS 180-2 known answers, streaming equal to one-shot for any
 * split (randomised: the seed is printed, SLUICE_TEST_SEED replays one),
 * and hash_fd over files of 0 bytes, 1,000,000 bytes and several 1 MiB
 * blocks, whatever the descriptor's own offset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/util.h"

#define MILLION 1000000u

static const char empty_sha[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
static const char abc_sha[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char two_block_sha[] =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char million_a_sha[] =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

static char dir[] = "/tmp/sluice-test-hash.XXXXXX";
static unsigned seed;

static void
assert_hash_hex(const uint8_t h[HASH_LEN], const char *hex)
{
	char out[2 * HASH_LEN + 1];

	util_hex(out, h, HASH_LEN);
	assert_string_equal(out, hex);
}

static uint8_t *
million_a(void)
{
	uint8_t *a = malloc(MILLION);

	assert_non_null(a);
	memset(a, 'a', MILLION);
	return a;
}

static void
test_known_answers(void **state)
{
	static const char two_block[] =
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	uint8_t h[HASH_LEN], *a = million_a();

	hash_sha256(h, "", 0);
	assert_hash_hex(h, empty_sha);
	hash_sha256(h, NULL, 0);
	assert_hash_hex(h, empty_sha);
	hash_sha256(h, "abc", 3);
	assert_hash_hex(h, abc_sha);
	hash_sha256(h, two_block, strlen(two_block));
	assert_hash_hex(h, two_block_sha);
	hash_sha256(h, a, MILLION);
	assert_hash_hex(h, million_a_sha);
	free(a);
}

static void
test_streaming(void **state)
{
	struct hash_ctx *c = hash_new();
	uint8_t h[HASH_LEN], one[HASH_LEN], *a = million_a(), *buf;
	size_t len, off, n, i, round;

	assert_non_null(c);
	/* A fresh context is ready to use: hash_new initialises it. */
	hash_update(c, "abc", 3);
	hash_final(c, h);
	assert_hash_hex(h, abc_sha);
	/* hash_init starts over whatever was fed before. */
	hash_init(c);
	hash_update(c, "garbage", 7);
	hash_init(c);
	hash_final(c, h);
	assert_hash_hex(h, empty_sha);

	hash_init(c);
	for (i = 0; i < MILLION; i += 4096)
		hash_update(c, a + i, UTIL_MIN(4096, MILLION - i));
	hash_final(c, h);
	assert_hash_hex(h, million_a_sha);
	hash_init(c);
	hash_update(c, a, 1);
	hash_update(c, a, 0);
	hash_update(c, a + 1, MILLION - 1);
	hash_final(c, h);
	assert_hash_hex(h, million_a_sha);

	/* Random lengths split at random points, across the 64-byte block
	 * boundaries and the empty update. */
	buf = malloc(70000);
	assert_non_null(buf);
	for (i = 0; i < 70000; i++)
		buf[i] = (uint8_t)rand();
	for (round = 0; round < 300; round++) {
		len = round < 130 ? round : (size_t)rand() % 70000;
		hash_sha256(one, buf, len);
		hash_init(c);
		for (off = 0; off < len; off += n) {
			n = (size_t)rand() % (round < 130 ? 70 : 9000);
			n = UTIL_MIN(n, len - off);
			hash_update(c, buf + off, n);
		}
		hash_final(c, h);
		if (memcmp(h, one, HASH_LEN) != 0)
			fail_msg("streaming != one-shot for %zu bytes (seed %u)",
			    len, seed);
	}
	hash_free(c);
	hash_free(NULL);
	free(buf);
	free(a);
}

static int
temp_file(const char *name, const void *buf, size_t len)
{
	char path[256];
	int fd;

	assert_int_equal(util_path_join(path, sizeof(path), dir, name), 0);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(util_write_all(fd, buf, len), 0);
	return fd; /* its offset is at the end */
}

static void
test_hash_fd(void **state)
{
	uint8_t h[HASH_LEN], one[HASH_LEN], *a = million_a(), *big;
	size_t biglen = 3 * (1u << 20) + 17, i;
	uint64_t size = 12345;
	int fd;

	fd = temp_file("empty", "", 0);
	assert_int_equal(hash_fd(fd, h, &size), 0);
	assert_int_equal(size, 0);
	assert_hash_hex(h, empty_sha);
	close(fd);

	fd = temp_file("a", a, MILLION);
	assert_int_equal(hash_fd(fd, h, &size), 0);
	assert_int_equal(size, MILLION);
	assert_hash_hex(h, million_a_sha);
	/* From offset 0 whatever the descriptor's offset, which it leaves
	 * alone (pread). */
	assert_int_equal(lseek(fd, 12345, SEEK_SET), 12345);
	assert_int_equal(hash_fd(fd, h, &size), 0);
	assert_hash_hex(h, million_a_sha);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 12345);
	close(fd);

	/* Several 1 MiB blocks and a partial one. */
	big = malloc(biglen);
	assert_non_null(big);
	for (i = 0; i < biglen; i++)
		big[i] = (uint8_t)rand();
	hash_sha256(one, big, biglen);
	fd = temp_file("big", big, biglen);
	assert_int_equal(hash_fd(fd, h, &size), 0);
	assert_int_equal(size, biglen);
	assert_memory_equal(h, one, HASH_LEN);
	close(fd);

	/* Errors come back as -errno. */
	assert_int_equal(hash_fd(-1, h, &size), -EBADF);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(hash_fd(fd, h, &size), -EISDIR);
	close(fd);
	free(big);
	free(a);
}

static int
setup(void **state)
{
	const char *s = getenv("SLUICE_TEST_SEED");

	seed = s != NULL ? (unsigned)strtoul(s, NULL, 0) :
	    (unsigned)time(NULL) ^ (unsigned)getpid();
	printf("seed %u (SLUICE_TEST_SEED=%u replays it)\n", seed, seed);
	srand(seed);
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	return util_rmtree(dir);
}

/*
 * hash_fd_range_disk (O_DIRECT where the file system allows, else the
 * cache dropped) gives the same bytes as a plain read, from unaligned
 * offsets, in pieces, to the end of a file whose size is not a multiple
 * of the block size; in /var/tmp (a disk) and in /dev/shm (tmpfs: the
 * fallback).
 */
static void
test_hash_fd_disk(void **state)
{
	static const char *const dirs[] = { "/var/tmp", "/dev/shm" };
	static const uint64_t cuts[] = { 0, 1, 4095, 4097, 1000003, 2300001 };
	size_t len = 3 * 1048576 + 12345, i, d, c;
	uint8_t *data = malloc(len), want[HASH_LEN], got[HASH_LEN];
	char path[64];

	(void)state;
	assert_non_null(data);
	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	hash_sha256(want, data, len);
	for (d = 0; d < 2; d++) {
		int fd;

		snprintf(path, sizeof(path), "%s/sluice-hash.XXXXXX", dirs[d]);
		fd = mkstemp(path);
		if (fd < 0)
			continue;
		assert_int_equal(util_write_all(fd, data, len), 0);
		assert_int_equal(fdatasync(fd), 0);
		for (c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			struct hash_ctx *h = hash_new();
			uint64_t off = 0, mid = cuts[c] + 777777;

			/* Up to the cut with a plain read, then from disk in
			 * two pieces, the second to the end of the file. */
			assert_int_equal(hash_fd_range(fd, h, &off, cuts[c]), 0);
			assert_int_equal(hash_fd_range_disk(fd, h, &off, mid),
			    0);
			assert_true(off == mid);
			assert_int_equal(hash_fd_range_disk(fd, h, &off,
			    UINT64_MAX), 0);
			assert_true(off == len);
			hash_final(h, got);
			hash_free(h);
			assert_memory_equal(got, want, HASH_LEN);
		}
		/* Past the end of the file: an error, not a short hash. */
		{
			struct hash_ctx *h = hash_new();
			uint64_t off = 0;

			assert_int_equal(hash_fd_range_disk(fd, h, &off,
			    len + 1), -EIO);
			hash_free(h);
		}
		close(fd);
		unlink(path);
	}
	free(data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_hash_fd),
		cmocka_unit_test(test_hash_fd_disk),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
