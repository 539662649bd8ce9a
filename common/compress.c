/*
 * Chunk compression with zlib; see compress.h for the policy.  The two
 * z_streams are set up once and reset per chunk.
 */
#include "common/compress.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SAMPLE_LEN 4096
#define SAMPLE_KEEP_RATIO 0.90 /* sample must shrink below this */
/*
 * A 4 KiB sample of uniformly random bytes measures about 7.95 bits per
 * byte; text is near 4.5, float32 weights near 7.2.  Above this the
 * sample is not even deflated.  (Data made of repeats of a random block
 * of 2 KiB or more would also measure this high and be sent stored: a
 * lost saving, never a wrong byte.)
 */
#define SAMPLE_MAX_ENTROPY 7.9
#define CHUNK_KEEP_RATIO 0.90  /* and the chunk too, or it is sent stored */

struct compress {
	z_stream def;
	z_stream inf;
	bool def_ok, inf_ok;
	uint8_t sample_out[SAMPLE_LEN + 256];
};

struct compress *
compress_new(void)
{
	struct compress *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (deflateInit2(&c->def, 1, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK ||
	    !(c->def_ok = true) ||
	    inflateInit2(&c->inf, -15) != Z_OK) {
		compress_free(c);
		return NULL;
	}
	c->inf_ok = true;
	return c;
}

void
compress_free(struct compress *c)
{
	if (c == NULL)
		return;
	if (c->def_ok)
		deflateEnd(&c->def);
	if (c->inf_ok)
		inflateEnd(&c->inf);
	free(c);
}

/* Deflates in into out; returns the compressed length or 0 if it did not
 * fit in outcap. */
static size_t
deflate_all(struct compress *c, const uint8_t *in, size_t inlen, uint8_t *out,
    size_t outcap)
{
	int rc;

	deflateReset(&c->def);
	c->def.next_in = (Bytef *)(uintptr_t)in;
	c->def.avail_in = (uInt)inlen;
	c->def.next_out = out;
	c->def.avail_out = (uInt)outcap;
	rc = deflate(&c->def, Z_FINISH);
	if (rc != Z_STREAM_END)
		return 0;
	return outcap - c->def.avail_out;
}

/* Order-0 entropy of buf in bits per byte. */
static double
byte_entropy(const uint8_t *buf, size_t len)
{
	uint32_t count[256] = { 0 };
	double h = 0;
	size_t i;

	for (i = 0; i < len; i++)
		count[buf[i]]++;
	for (i = 0; i < 256; i++)
		if (count[i] != 0)
			h -= (double)count[i] * log2((double)count[i] /
			    (double)len);
	return h / (double)len;
}

enum compress_codec
compress_chunk(struct compress *c, enum compress_mode mode, const uint8_t *in,
    size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	size_t n;

	if (mode == COMPRESS_OFF || inlen == 0)
		return CODEC_STORED;
	if (mode == COMPRESS_AUTO) {
		size_t s = inlen < SAMPLE_LEN ? inlen : SAMPLE_LEN;

		/* Random-looking bytes never pay; a histogram says so for a
		 * fraction of a deflate's cost. */
		if (s == SAMPLE_LEN && byte_entropy(in, s) >= SAMPLE_MAX_ENTROPY)
			return CODEC_STORED;
		n = deflate_all(c, in, s, c->sample_out,
		    sizeof(c->sample_out));
		if (n == 0 || (double)n >= SAMPLE_KEEP_RATIO * (double)s)
			return CODEC_STORED;
	}
	/* Output must be strictly smaller than the input to be worth it. */
	n = deflate_all(c, in, inlen, out, outcap < inlen - 1 ? outcap :
	    inlen - 1);
	if (n == 0)
		return CODEC_STORED;
	if (mode == COMPRESS_AUTO && (double)n > CHUNK_KEEP_RATIO *
	    (double)inlen)
		return CODEC_STORED;
	*outlen = n;
	return CODEC_DEFLATE;
}

int
compress_inflate(struct compress *c, const uint8_t *in, size_t inlen,
    uint8_t *out, size_t outlen)
{
	int rc;

	inflateReset(&c->inf);
	c->inf.next_in = (Bytef *)(uintptr_t)in;
	c->inf.avail_in = (uInt)inlen;
	c->inf.next_out = out;
	c->inf.avail_out = (uInt)outlen;
	rc = inflate(&c->inf, Z_FINISH);
	/* Exactly outlen bytes, the end of the stream, and no input left. */
	if (rc != Z_STREAM_END || c->inf.avail_out != 0 ||
	    c->inf.avail_in != 0)
		return -EBADMSG;
	return 0;
}
