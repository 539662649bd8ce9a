/*
 * Systematic Reed-Solomon erasure code over GF(2^8) (ISA-L, Cauchy matrix):
 * k source symbols and m repair symbols of equal length, k + m <= 255.
 * This file and fec.c are the only ones that include ISA-L.
 *
 * Decoding inverts only the e x e system of the e missing source symbols
 * (any square submatrix of a Cauchy matrix is invertible), never the full
 * k x k matrix: at k = 128 that is about 200 times cheaper.
 *
 * A struct fec caches the encode tables per (k, m) and scratch space; it is
 * not thread safe: use one per thread.
 */
#ifndef SLUICE_FEC_H
#define SLUICE_FEC_H

#include <stddef.h>
#include <stdint.h>

#define FEC_MAX_SYMBOLS 255
#define FEC_MAX_K 254

struct fec;

struct fec *fec_new(void);
void fec_free(struct fec *f);

/*
 * Computes m repair symbols from k source symbols, each len bytes.
 * data[0..k-1] are read, repair[0..m-1] written.  0 or -EINVAL.
 */
int fec_encode(struct fec *f, unsigned k, unsigned m, size_t len,
    uint8_t *const *data, uint8_t **repair);

/*
 * Recovers missing source symbols.  sym[0..k+m-1] point to len-byte
 * buffers; present[i] != 0 marks symbol i as received (source i < k,
 * repair k + i' for repair index i').  At least k symbols must be present.
 * On return every sym[i], i < k, holds its source symbol.  Repair buffers
 * are only read.  0, -EINVAL, -ENOSPC when fewer than k are present, or
 * -ENOMEM when tables for a new (k, m) cannot be allocated.
 */
int fec_decode(struct fec *f, unsigned k, unsigned m, size_t len,
    uint8_t **sym, const uint8_t *present);

#endif
