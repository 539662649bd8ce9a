/*
 * The limits a receiver puts on a bundle's manifest, in one table: the
 * receiver's configuration defaults (common/conf.c) are these, and the
 * sender refuses, before sending a datagram, a bundle these defaults
 * would refuse (sender/main.c, sender/daemon.c), so a bundle is not sent
 * only to be REJECTED.  The sender cannot know a receiver's configured
 * values; it checks the defaults and says so.
 *
 * Numbers are plain integer literals so conf.c can take the defaults as
 * text (LIMITS_STR) and code as numbers from the same definition.
 */
#ifndef SLUICE_LIMITS_H
#define SLUICE_LIMITS_H

#include <stddef.h>

struct manifest;

#define LIMITS_MAX_FILES 100000
#define LIMITS_MAX_PATH_LEN 1024
#define LIMITS_MAX_BUNDLE_BYTES 64000000000 /* "64G", as max_transfer_bytes */
/* POSIX EREs, matched against the whole name / version. */
#define LIMITS_NAME_PATTERN "[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
/* A version becomes a store directory and SLUICE_VERSION for hooks. */
#define LIMITS_VERSION_PATTERN "[0-9A-Za-z][0-9A-Za-z.+-]{0,63}"

#define LIMITS_STR_(x) #x
#define LIMITS_STR(x) LIMITS_STR_(x)

/*
 * 0 if a receiver with the default limits would admit m as far as the
 * limits go (name_pattern, version_pattern, max_files, max_path_len,
 * max_bundle_bytes); -EINVAL with the setting, the value and the limit
 * in err otherwise.
 */
int limits_check_manifest(const struct manifest *m, char *err,
    size_t errlen);

#endif
