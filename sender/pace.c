/*
 * Token-bucket pacing; see pace.h.
 */
#include "sender/pace.h"
#include "common/util.h"

#include <time.h>

void
pace_init(struct pace *p, uint64_t rate_bps, double depth_bits)
{
	p->rate = (double)rate_bps;
	p->depth = depth_bits;
	p->tokens = depth_bits;
	p->last_ns = util_now_ns();
}

static void
refill(struct pace *p)
{
	uint64_t now = util_now_ns();

	p->tokens += (double)(now - p->last_ns) * 1e-9 * p->rate;
	if (p->tokens > p->depth)
		p->tokens = p->depth;
	p->last_ns = now;
}

void
pace_take(struct pace *p, uint64_t bits)
{
	refill(p);
	while (p->tokens < 0) {
		double wait_ns = -p->tokens / p->rate * 1e9;

		if (wait_ns > 20000) {
			struct timespec ts = {
				.tv_sec = (time_t)(wait_ns / 1e9),
				.tv_nsec = (long)((uint64_t)wait_ns % 1000000000),
			};

			clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		}
		refill(p);
	}
	p->tokens -= (double)bits;
}
