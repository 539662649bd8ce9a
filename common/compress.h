/*
 * Chunk compression (zlib, raw deflate, level 1), used only when it pays.
 * This file and compress.c are the only ones that include zlib.
 *
 * "auto" first looks at a 4 KiB sample of the chunk: random-looking bytes
 * (order-0 entropy of 7.9 bits per byte or more) are sent stored at once;
 * otherwise the sample is deflated, and incompressible data (float32
 * weights: ratio >= 0.90 on the sample) is sent stored without
 * compressing the rest.  Otherwise the whole chunk is
 * deflated and kept only if it saved at least 10%.
 */
#ifndef SLUICE_COMPRESS_H
#define SLUICE_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

enum compress_mode {
	COMPRESS_OFF,
	COMPRESS_AUTO,
	COMPRESS_ON,
};

enum compress_codec {
	CODEC_STORED = 0,
	CODEC_DEFLATE = 1,
};

struct compress;
struct compress *compress_new(void);
void compress_free(struct compress *c);

/*
 * Decides and compresses.  Returns CODEC_DEFLATE with *outlen bytes
 * written to out, always fewer than inlen; or CODEC_STORED: send the input
 * as is.  out is scratch space either way: a STORED verdict reached after
 * trying to deflate the whole chunk (incompressible past the sample, or
 * saving under 10%) leaves up to min(outcap, inlen - 1) bytes of abandoned
 * deflate output in it, so never keep anything in out across a call and
 * never let in and out overlap.  *outlen is only written for DEFLATE.
 * With outcap below inlen - 1, output that does not fit in outcap makes
 * the chunk STORED.
 */
enum compress_codec compress_chunk(struct compress *c, enum compress_mode mode,
    const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap,
    size_t *outlen);

/*
 * Inflates exactly outlen bytes from in; anything else (short output, more
 * output than outlen, trailing input, a corrupt stream) is -EBADMSG.  Never
 * writes more than outlen bytes.  0 or -errno.
 */
int compress_inflate(struct compress *c, const uint8_t *in, size_t inlen,
    uint8_t *out, size_t outlen);

#endif
