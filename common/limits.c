/*
 * The sender's check of a bundle against the receiver's default limits;
 * see limits.h.
 */
#include "common/limits.h"
#include "common/manifest.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Whether s matches the whole of the ERE pattern. */
static bool
matches(const char *pattern, const char *s)
{
	char anchored[256];
	regex_t re;
	bool ok;

	snprintf(anchored, sizeof(anchored), "^(%s)$", pattern);
	if (regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

int
limits_check_manifest(const struct manifest *m, char *err, size_t errlen)
{
	size_t i;

	if (!matches(LIMITS_NAME_PATTERN, m->name)) {
		util_seterr(err, errlen, "bundle name \"%s\" does not match "
		    "the receiver's default name_pattern %s", m->name,
		    LIMITS_NAME_PATTERN);
		return -EINVAL;
	}
	if (!matches(LIMITS_VERSION_PATTERN, m->version)) {
		util_seterr(err, errlen, "version \"%s\" does not match the "
		    "receiver's default version_pattern %s", m->version,
		    LIMITS_VERSION_PATTERN);
		return -EINVAL;
	}
	if (m->n_files > LIMITS_MAX_FILES) {
		util_seterr(err, errlen, "%zu files; the receiver's default "
		    "max_files is %d", m->n_files, LIMITS_MAX_FILES);
		return -EINVAL;
	}
	for (i = 0; i < m->n_files; i++) {
		size_t len = strlen(m->files[i].path);

		if (len > LIMITS_MAX_PATH_LEN) {
			util_seterr(err, errlen, "path of %zu bytes (%.60s...);"
			    " the receiver's default max_path_len is %d", len,
			    m->files[i].path, LIMITS_MAX_PATH_LEN);
			return -EINVAL;
		}
	}
	if (m->total_bytes > (uint64_t)LIMITS_MAX_BUNDLE_BYTES) {
		util_seterr(err, errlen, "%" PRIu64 " bytes; the receiver's "
		    "default max_bundle_bytes is %" PRIu64, m->total_bytes,
		    (uint64_t)LIMITS_MAX_BUNDLE_BYTES);
		return -EINVAL;
	}
	return 0;
}
