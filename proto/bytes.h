/*
 * Bounds-checked cursors over untrusted bytes, and their writers.
 *
 * A cursor has a sticky error: once a read would pass the end, every later
 * read returns zero and the error stays set, so a parser checks once at the
 * end.  Lengths are compared as `len - off < n`, which cannot overflow.
 * Multi-byte integers are big-endian on the wire, always loaded and stored
 * byte by byte, never by casting to a packed struct.
 */
#ifndef SLUICE_PROTO_BYTES_H
#define SLUICE_PROTO_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pcur {
	const uint8_t *buf;
	size_t len;
	size_t off;
	bool err;
};

static inline void
pcur_init(struct pcur *c, const void *buf, size_t len)
{
	c->buf = buf;
	c->len = len;
	c->off = 0;
	c->err = false;
}

static inline size_t
pcur_left(const struct pcur *c)
{
	return c->err ? 0 : c->len - c->off;
}

/* Returns a pointer to the next n bytes and advances, or NULL (sticky). */
static inline const uint8_t *
pcur_bytes(struct pcur *c, size_t n)
{
	const uint8_t *p;

	if (c->err || c->len - c->off < n) {
		c->err = true;
		return NULL;
	}
	p = c->buf + c->off;
	c->off += n;
	return p;
}

static inline uint8_t
pcur_u8(struct pcur *c)
{
	const uint8_t *p = pcur_bytes(c, 1);

	return p == NULL ? 0 : p[0];
}

static inline uint16_t
pcur_u16(struct pcur *c)
{
	const uint8_t *p = pcur_bytes(c, 2);

	return p == NULL ? 0 : (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
pcur_u32(struct pcur *c)
{
	const uint8_t *p = pcur_bytes(c, 4);

	return p == NULL ? 0 :
	    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t
pcur_u64(struct pcur *c)
{
	uint64_t hi = pcur_u32(c);

	return hi << 32 | pcur_u32(c);
}

struct pwr {
	uint8_t *buf;
	size_t cap;
	size_t off;
	bool err;
};

static inline void
pwr_init(struct pwr *w, void *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->off = 0;
	w->err = false;
}

static inline uint8_t *
pwr_reserve(struct pwr *w, size_t n)
{
	uint8_t *p;

	if (w->err || w->cap - w->off < n) {
		w->err = true;
		return NULL;
	}
	p = w->buf + w->off;
	w->off += n;
	return p;
}

static inline void
pwr_bytes(struct pwr *w, const void *src, size_t n)
{
	uint8_t *p = pwr_reserve(w, n);

	if (p != NULL && n > 0)
		memcpy(p, src, n);
}

static inline void
pwr_u8(struct pwr *w, uint8_t v)
{
	uint8_t *p = pwr_reserve(w, 1);

	if (p != NULL)
		p[0] = v;
}

static inline void
pwr_u16(struct pwr *w, uint16_t v)
{
	uint8_t *p = pwr_reserve(w, 2);

	if (p != NULL) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

static inline void
pwr_u32(struct pwr *w, uint32_t v)
{
	uint8_t *p = pwr_reserve(w, 4);

	if (p != NULL) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

static inline void
pwr_u64(struct pwr *w, uint64_t v)
{
	pwr_u32(w, (uint32_t)(v >> 32));
	pwr_u32(w, (uint32_t)v);
}

#endif
