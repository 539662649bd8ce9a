/*
 * Test-only crash points.  SLUICE_FAILPOINT=NAME in the environment makes
 * the receiver SIGKILL itself when it reaches the point NAME, so that
 * tests/e2e/34_crash.sh can cut a release at each step that must survive
 * a crash (see PROTOCOL.md section 8.4).  Unset, a call costs a compare.
 * A file of its own so that any module may call it without calling up.
 */
#include "receiver/recv.h"
#include "common/log.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void
recv_failpoint(const char *name)
{
	static const char *want;
	static bool looked;

	if (!looked) {
		want = getenv("SLUICE_FAILPOINT");
		looked = true;
	}
	if (want != NULL && strcmp(want, name) == 0) {
		log_warnx("failpoint %s: killing myself", name);
		raise(SIGKILL);
	}
}

bool
recv_failpoint_hit(const char *name)
{
	static _Atomic bool done;
	const char *want = getenv("SLUICE_FAILPOINT");

	if (want == NULL || strcmp(want, name) != 0 || atomic_exchange(&done,
	    true))
		return false;
	log_warnx("failpoint %s: simulating the fault once", name);
	return true;
}

bool
recv_failpoint_on(const char *name)
{
	const char *want = getenv("SLUICE_FAILPOINT");

	return want != NULL && strcmp(want, name) == 0;
}
