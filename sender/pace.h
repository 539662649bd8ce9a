/*
 * Token-bucket pacing of the sender's output to the configured link rate.
 * The bucket may go into debt by one batch; the caller then sleeps until
 * the debt is paid, so the long-run rate is exact and bursts are bounded
 * by the bucket depth.
 */
#ifndef SLUICE_PACE_H
#define SLUICE_PACE_H

#include <stdint.h>

struct pace {
	double rate;    /* bits per second */
	double depth;   /* bits */
	double tokens;  /* bits; negative while in debt */
	uint64_t last_ns;
};

void pace_init(struct pace *p, uint64_t rate_bps, double depth_bits);
/* Takes bits from the bucket, sleeping first if it is in debt. */
void pace_take(struct pace *p, uint64_t bits);

#endif
