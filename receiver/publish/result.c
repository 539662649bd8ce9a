/* The failure report every store module fills in. */
#include <stdarg.h>
#include <stdio.h>

#include "receiver/publish/publish.h"

int
pub_fail(struct pub_result *r, bool permanent, const char *reason,
    const char *fmt, ...)
{
	va_list ap;

	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	r->permanent = permanent;
	return -1;
}
