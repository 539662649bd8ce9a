/* The failure report every store module fills in. */
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Test-only crash points, as the receiver's (receiver/failpoint.c):
 * SLUICE_FAILPOINT=NAME makes the publisher SIGKILL itself at the point
 * NAME, so that tests/e2e/62_publish_dir.sh can cut a publication at each
 * step that must survive a crash.  Unset, a call costs a compare.
 */
void
pub_failpoint(const char *name)
{
	const char *want = getenv("SLUICE_FAILPOINT");

	if (want != NULL && strcmp(want, name) == 0) {
		fprintf(stderr, "sluice-publish: failpoint %s: killing "
		    "myself\n", name);
		raise(SIGKILL);
	}
}
