/*
 * Reed-Solomon erasure coding with ISA-L; see fec.h.  The sender encodes
 * every chunk of k source symbols into m repair symbols; the receiver
 * decodes only when a source symbol is missing.
 *
 * Encoding matrix A = gf_gen_cauchy1_matrix(k + m, k): identity on top,
 * row k + i, column j below it is 1 / ((k + i) ^ j) in GF(2^8) (polynomial
 * 0x11d).  That matrix is part of the wire format: both ends must build
 * the same one.
 *
 * Decoding with e missing source symbols E picks e received repair rows R
 * and inverts only B = A[R][E] (e x e; invertible because every square
 * submatrix of a Cauchy matrix is).  From
 *
 *   p_R = A[R][E] d_E + A[R][K] d_K          (K: the received sources)
 *
 * follows d_E = B^-1 A[R][K] d_K + B^-1 p_R, so one ec_encode_data() pass
 * over the k inputs (d_K, p_R) with the e x k matrix [B^-1 A[R][K] | B^-1]
 * rebuilds every missing source symbol.  The product B^-1 A[R] is itself
 * an e x e "encode" of the k-byte rows of A[R], so ISA-L computes it too:
 * at k = 128, e = 16 that takes a few microseconds where a gf_mul() loop
 * takes about 55, twice the time of the data pass at 1428-byte symbols.
 *
 * Memory: fec_new() allocates all decode scratch; the data path allocates
 * only when a (k, m) not in the small LRU cache of encoding tables shows
 * up.  Nothing here is thread safe.
 */
#include "common/fec.h"

#include <errno.h>
#include <isa-l/erasure_code.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * Chunks of one transfer share one (k, m) except the last; a few transfers
 * in flight at once still fit.
 */
#define FEC_CACHE 8

/*
 * Scratch bounds.  Every missing source needs a repair row of its own, so
 * e <= min(k, m) <= 255 / 2 = 127, and the e x k decode matrix has at most
 * max k (255 - k) = 127 * 128 entries.  ISA-L tables take 32 bytes per
 * matrix entry.
 */
#define MAX_E (FEC_MAX_SYMBOLS / 2)
#define MAX_EK (MAX_E * (FEC_MAX_SYMBOLS - MAX_E))
#define TBL_ALIGN 64

_Static_assert(FEC_MAX_K < FEC_MAX_SYMBOLS && FEC_MAX_SYMBOLS <= 256,
    "GF(2^8) Cauchy matrix needs k + m <= 256");
_Static_assert(MAX_E * MAX_E <= MAX_EK, "B^-1 tables fit in tbls");

struct fec_tables {
	unsigned k, m;
	uint64_t used;    /* LRU clock; 0 when the slot is empty */
	uint8_t *matrix;  /* (k + m) x k; one allocation with gftbls */
	uint8_t *gftbls;  /* ec_init_tables() of the m repair rows */
};

struct fec {
	struct fec_tables cache[FEC_CACHE];
	uint64_t clock;
	uint8_t b[MAX_E * MAX_E];     /* A[R][E], destroyed by the inversion */
	uint8_t binv[MAX_E * MAX_E];  /* B^-1 */
	uint8_t dm[MAX_EK];           /* B^-1 A[R], then the decode matrix */
	_Alignas(TBL_ALIGN) uint8_t tbls[32 * MAX_EK];
};

struct fec *
fec_new(void)
{
	void *p;

	if (posix_memalign(&p, _Alignof(struct fec), sizeof(struct fec)) != 0)
		return NULL;
	memset(p, 0, sizeof(struct fec));
	return p;
}

void
fec_free(struct fec *f)
{
	unsigned i;

	if (f == NULL)
		return;
	for (i = 0; i < FEC_CACHE; i++)
		free(f->cache[i].matrix);
	free(f);
}

/* ISA-L takes int lengths; k <= FEC_MAX_K also keeps k + m <= 255. */
static bool
params_ok(unsigned k, unsigned m, size_t len)
{
	return k >= 1 && k <= FEC_MAX_K && m <= FEC_MAX_SYMBOLS - k &&
	    len > 0 && len <= INT32_MAX;
}

/* The encoding matrix and tables of (k, m), from the cache or built. */
static struct fec_tables *
tables(struct fec *f, unsigned k, unsigned m)
{
	struct fec_tables *t, *victim = &f->cache[0];
	size_t msize, off;
	void *p;
	unsigned i;

	for (i = 0; i < FEC_CACHE; i++) {
		t = &f->cache[i];
		if (t->used != 0 && t->k == k && t->m == m) {
			t->used = ++f->clock;
			return t;
		}
		if (t->used < victim->used)
			victim = t;
	}
	t = victim;
	free(t->matrix);
	t->matrix = t->gftbls = NULL;
	t->used = 0;

	msize = (size_t)(k + m) * k;
	off = (msize + TBL_ALIGN - 1) / TBL_ALIGN * TBL_ALIGN;
	if (posix_memalign(&p, TBL_ALIGN, off + (size_t)32 * k * m) != 0)
		return NULL;
	t->matrix = p;
	t->gftbls = t->matrix + off;
	gf_gen_cauchy1_matrix(t->matrix, (int)(k + m), (int)k);
	if (m > 0)
		ec_init_tables((int)k, (int)m, t->matrix + (size_t)k * k,
		    t->gftbls);
	t->k = k;
	t->m = m;
	t->used = ++f->clock;
	return t;
}

int
fec_encode(struct fec *f, unsigned k, unsigned m, size_t len,
    uint8_t *const *data, uint8_t **repair)
{
	struct fec_tables *t;

	if (!params_ok(k, m, len))
		return -EINVAL;
	if (m == 0)
		return 0;
	if ((t = tables(f, k, m)) == NULL)
		return -ENOMEM;
	ec_encode_data((int)len, (int)k, (int)m, t->gftbls,
	    (unsigned char **)data, repair);
	return 0;
}

int
fec_decode(struct fec *f, unsigned k, unsigned m, size_t len, uint8_t **sym,
    const uint8_t *present)
{
	unsigned miss[FEC_MAX_SYMBOLS], rows[MAX_E];
	uint8_t *in[FEC_MAX_SYMBOLS], *out[MAX_E], *arow[MAX_E], *drow[MAX_E];
	struct fec_tables *t;
	unsigned e = 0, nr = 0, i, j, c, n;

	if (!params_ok(k, m, len))
		return -EINVAL;
	for (i = 0; i < k; i++)
		if (!present[i])
			miss[e++] = i;
	if (e == 0)
		return 0;
	/* e > m: fewer than k present whatever the repairs; keeps e <= MAX_E. */
	if (e > m)
		return -ENOSPC;
	for (i = k; i < k + m && nr < e; i++)
		if (present[i])
			rows[nr++] = i;
	if (nr < e)
		return -ENOSPC;
	if ((t = tables(f, k, m)) == NULL)
		return -ENOMEM;

	/* B = A[R][E] and its inverse. */
	for (i = 0; i < e; i++) {
		arow[i] = t->matrix + (size_t)rows[i] * k;
		for (j = 0; j < e; j++)
			f->b[i * e + j] = arow[i][miss[j]];
	}
	if (gf_invert_matrix(f->b, f->binv, (int)e) != 0)
		return -EINVAL; /* not for a Cauchy submatrix: a broken A */

	/* Row i of B^-1 A[R] into dm row i: sum over j of B^-1[i][j] A[R_j]. */
	for (i = 0; i < e; i++)
		drow[i] = f->dm + (size_t)i * k;
	ec_init_tables((int)e, (int)e, f->binv, f->tbls);
	ec_encode_data((int)k, (int)e, (int)e, f->tbls, arow, drow);

	/*
	 * Keep the columns of the received sources (in place: n <= c), then
	 * B^-1 for the repair inputs; the input order must match.
	 */
	for (i = 0; i < e; i++) {
		for (c = 0, n = 0; c < k; c++)
			if (present[c])
				drow[i][n++] = drow[i][c];
		memcpy(drow[i] + n, f->binv + i * e, e);
	}
	for (c = 0, n = 0; c < k; c++)
		if (present[c])
			in[n++] = sym[c];
	for (j = 0; j < e; j++)
		in[n++] = sym[rows[j]];
	for (i = 0; i < e; i++)
		out[i] = sym[miss[i]];
	ec_init_tables((int)k, (int)e, f->dm, f->tbls);
	ec_encode_data((int)len, (int)k, (int)e, f->tbls, in, out);
	return 0;
}
