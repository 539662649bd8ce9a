/*
 * Reed-Solomon erasure coding with ISA-L; see fec.h.
 *
 * Encoding matrix: gf_gen_cauchy1_matrix(k + m, k), identity on top, a
 * Cauchy matrix below.  Decoding with e missing source symbols picks e
 * received repair rows R and inverts only B = A[R][E] (e x e; invertible
 * because every square submatrix of a Cauchy matrix is).  From
 *
 *   p_R = A[R][E] d_E + A[R][K] d_K          (K: the received sources)
 *
 * follows d_E = B^-1 p_R + B^-1 A[R][K] d_K, so one ec_encode_data() pass
 * over the k inputs (d_K, p_R) with the e x k matrix [B^-1 A[R][K] | B^-1]
 * rebuilds every missing source symbol.
 */
#include "common/fec.h"

#include <errno.h>
#include <isa-l/erasure_code.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FEC_CACHE 8

struct fec_tables {
	unsigned k, m;
	uint64_t used;
	uint8_t *matrix;  /* (k + m) x k */
	uint8_t *gftbls;  /* encode tables for the m repair rows */
};

struct fec {
	struct fec_tables cache[FEC_CACHE];
	uint64_t clock;
	uint8_t b[FEC_MAX_SYMBOLS * FEC_MAX_SYMBOLS];
	uint8_t binv[FEC_MAX_SYMBOLS * FEC_MAX_SYMBOLS];
	uint8_t dm[FEC_MAX_SYMBOLS * FEC_MAX_SYMBOLS];
	uint8_t dtbls[32 * FEC_MAX_SYMBOLS * FEC_MAX_SYMBOLS];
};

struct fec *
fec_new(void)
{
	return calloc(1, sizeof(struct fec));
}

void
fec_free(struct fec *f)
{
	unsigned i;

	if (f == NULL)
		return;
	for (i = 0; i < FEC_CACHE; i++) {
		free(f->cache[i].matrix);
		free(f->cache[i].gftbls);
	}
	free(f);
}

static bool
params_ok(unsigned k, unsigned m, size_t len)
{
	return k >= 1 && k <= FEC_MAX_K && k + m <= FEC_MAX_SYMBOLS &&
	    len > 0 && len <= INT32_MAX;
}

static struct fec_tables *
tables(struct fec *f, unsigned k, unsigned m)
{
	struct fec_tables *t, *victim = &f->cache[0];
	unsigned i;

	for (i = 0; i < FEC_CACHE; i++) {
		t = &f->cache[i];
		if (t->matrix != NULL && t->k == k && t->m == m) {
			t->used = ++f->clock;
			return t;
		}
		if (t->used < victim->used)
			victim = t;
	}
	t = victim;
	free(t->matrix);
	free(t->gftbls);
	t->matrix = malloc((size_t)(k + m) * k);
	t->gftbls = malloc((size_t)32 * k * (m > 0 ? m : 1));
	if (t->matrix == NULL || t->gftbls == NULL) {
		free(t->matrix);
		free(t->gftbls);
		t->matrix = t->gftbls = NULL;
		return NULL;
	}
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
	t = tables(f, k, m);
	if (t == NULL)
		return -ENOMEM;
	ec_encode_data((int)len, (int)k, (int)m, t->gftbls,
	    (unsigned char **)data, repair);
	return 0;
}

int
fec_decode(struct fec *f, unsigned k, unsigned m, size_t len, uint8_t **sym,
    const uint8_t *present)
{
	unsigned miss[FEC_MAX_SYMBOLS], rows[FEC_MAX_SYMBOLS];
	uint8_t *in[FEC_MAX_SYMBOLS], *out[FEC_MAX_SYMBOLS];
	struct fec_tables *t;
	unsigned e = 0, nr = 0, i, j, c, n;

	if (!params_ok(k, m, len))
		return -EINVAL;
	for (i = 0; i < k; i++)
		if (!present[i])
			miss[e++] = i;
	if (e == 0)
		return 0;
	for (i = k; i < k + m && nr < e; i++)
		if (present[i])
			rows[nr++] = i;
	if (nr < e)
		return -ENOSPC;
	t = tables(f, k, m);
	if (t == NULL)
		return -ENOMEM;

	/* B = A[R][E], then its inverse. */
	for (i = 0; i < e; i++)
		for (j = 0; j < e; j++)
			f->b[i * e + j] = t->matrix[(size_t)rows[i] * k +
			    miss[j]];
	if (gf_invert_matrix(f->b, f->binv, (int)e) != 0)
		return -EINVAL; /* cannot happen for a Cauchy submatrix */

	/*
	 * Decode matrix, e x k, over inputs ordered as the received sources
	 * (ascending) followed by the e repair symbols of R.
	 */
	n = 0;
	for (c = 0; c < k; c++) {
		if (!present[c])
			continue;
		for (i = 0; i < e; i++) {
			uint8_t acc = 0;

			for (j = 0; j < e; j++)
				acc ^= gf_mul(f->binv[i * e + j],
				    t->matrix[(size_t)rows[j] * k + c]);
			f->dm[(size_t)i * k + n] = acc;
		}
		in[n++] = sym[c];
	}
	for (j = 0; j < e; j++) {
		for (i = 0; i < e; i++)
			f->dm[(size_t)i * k + n] = f->binv[i * e + j];
		in[n++] = sym[rows[j]];
	}
	for (i = 0; i < e; i++)
		out[i] = sym[miss[i]];
	ec_init_tables((int)k, (int)e, f->dm, f->dtbls);
	ec_encode_data((int)len, (int)k, (int)e, f->dtbls, in, out);
	return 0;
}
