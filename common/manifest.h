/*
 * Bundle manifests in memory: built from a directory on the sending side,
 * parsed (through proto/manifest.c, the only parser) on the receiving side,
 * rendered to the canonical text both sides and approvers sign.
 *
 * Object numbering in a transfer: object 0 is the manifest text followed by
 * its approval lines; object i >= 1 is files[i - 1].
 */
#ifndef SLUICE_MANIFEST_H
#define SLUICE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct manifest_file {
	char *path;        /* relative, unescaped, validated */
	uint64_t size;
	bool exec;
	uint8_t sha256[32];
	char *src;         /* sending side: where to read it; else NULL */
};

struct manifest_approval {
	uint8_t key_id[8];
	uint8_t sig[64];
};

struct manifest_meta {
	char *key;
	char *value;
};

struct manifest {
	char *name;
	char *version;
	char *created;     /* optional fields are NULL when absent */
	char *expires;
	int priority;      /* -1 when absent */
	char *rollback_to;
	char *changes;
	char *reason;
	char *destination; /* receiver_name it is for; NULL: any receiver */
	struct manifest_meta *meta;
	size_t n_meta;
	struct manifest_file *files;
	size_t n_files;
	uint64_t total_bytes;
	struct manifest_approval *approvals;
	size_t n_approvals;
	/* Canonical text through the "end" line: what approvers sign. */
	char *text;
	size_t text_len;
	uint8_t digest[32]; /* SHA-256 of text */
};

struct manifest_limits {
	size_t max_files;
	size_t max_path_len;
	uint64_t max_bytes;
};

/* Owned, empty manifest; name and version are validated by _finish. */
struct manifest *manifest_new(const char *name, const char *version);
void manifest_free(struct manifest *m);

/* Sets optional fields (copies); 0 or -ENOMEM / -EINVAL. */
int manifest_set(struct manifest *m, const char *field, const char *value);
int manifest_add_meta(struct manifest *m, const char *key, const char *value);
int manifest_add_file(struct manifest *m, const char *path, uint64_t size,
    bool exec, const uint8_t sha256[32], const char *src);

/*
 * Adds every regular file under dir (recursively; the top-level .sluice
 * directory is skipped), hashing each.  Symbolic links, devices, sockets
 * and FIFOs are refused, never followed: -EINVAL with the path in err.
 */
int manifest_add_dir(struct manifest *m, const char *dir, char *err,
    size_t errlen);
/* Adds one regular file under its base name. */
int manifest_add_path(struct manifest *m, const char *path, char *err,
    size_t errlen);

/*
 * Sorts the files, checks names, paths, duplicates and case-folding
 * collisions, renders the canonical text and its digest.  0 or -EINVAL
 * with a reason in err.
 */
int manifest_finish(struct manifest *m, char *err, size_t errlen);

/*
 * Parses a manifest (and any approval lines after it) from untrusted
 * bytes.  On failure returns -EBADMSG and sets *reason to a stable code
 * for logs ("manifest_syntax", "unsafe_path", "case_collision",
 * "too_many_files", "too_large", ...) and err to a human detail.
 */
int manifest_parse(const void *buf, size_t len,
    const struct manifest_limits *lim, struct manifest **out,
    const char **reason, char *err, size_t errlen);

/* Appends "approval <id> <sig>\n" lines for m->approvals to text;
 * returns owned text + approvals (object 0 of a transfer). */
int manifest_render_object(const struct manifest *m, uint8_t **buf,
    size_t *len);

/* Index of a file by path, or -1. */
long manifest_find(const struct manifest *m, const char *path);

/* ---- approvals -------------------------------------------------------- */

struct sign_pubkey;
struct sign_seckey;

/* Approvers sign this context (NUL padded to 24 bytes) + the text. */
#define MANIFEST_APPROVAL_CONTEXT "sluice approval v1"

/* Adds (or replaces) sk's approval of m->text.  0 or -ENOMEM. */
int manifest_approve(struct manifest *m, const struct sign_seckey *sk);

/*
 * Counts the distinct keys among keys[0..n) with a valid approval of
 * m->text: a key counts once however often it signed or is listed (keys
 * compare by their bytes); approvals by keys not in the list are ignored.  ids (if not NULL) receives the counted
 * key ids, comma separated.
 */
unsigned manifest_count_approvals(const struct manifest *m,
    const struct sign_pubkey *keys, size_t n, char *ids, size_t idslen);

/* ---- bundles on disk ---------------------------------------------------- */

#define MANIFEST_BUNDLE_FILE ".sluice/manifest"
#define MANIFEST_APPROVALS_FILE ".sluice/approvals"

/* Does dir hold a bundle manifest (dir/.sluice/manifest)? */
bool manifest_bundle_exists(const char *dir);

/*
 * Loads dir/.sluice/manifest and dir/.sluice/approvals, and checks that
 * the files under dir are exactly those listed, with the same sizes,
 * modes and SHA-256.  Each file's src is set for sending.  -EINVAL with
 * the first difference in err.
 */
int manifest_load_bundle(const char *dir, struct manifest **out, char *err,
    size_t errlen);

/*
 * As manifest_load_bundle, without reading the files: the list, sizes
 * and modes are checked, not the contents.  For a caller that checks each
 * file's SHA-256 against m->files[i].sha256 as it reads the file anyway
 * (sluice-send, in its first pass), and so never reads a byte twice.
 */
int manifest_open_bundle(const char *dir, struct manifest **out, char *err,
    size_t errlen);

/*
 * Loads and parses dir/.sluice/manifest and approvals only, without
 * looking at the files (their src stays NULL): for reading a queued
 * bundle's name, version and priority cheaply.
 */
int manifest_peek_bundle(const char *dir, struct manifest **out, char *err,
    size_t errlen);

/* Writes dir/.sluice/manifest and dir/.sluice/approvals (atomically). */
int manifest_write_bundle(const struct manifest *m, const char *dir);

/*
 * Orders two versions: numeric dot/dash-separated identifiers compare as
 * numbers, others as bytes, numbers before words; a version with a
 * pre-release part ("1.0-rc1") sorts before the same version without it;
 * a tie is broken by the whole strings bytewise (1.01 < 1.1), so only
 * identical strings compare equal.  <0, 0, >0 as strcmp.  See PROTOCOL.md "Version order".
 */
int manifest_version_cmp(const char *a, const char *b);

#endif
