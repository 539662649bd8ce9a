/*
 * Operator requests to the receiver: the one writer (tools/sluice.c) and
 * the one parser (receiver/lifecycle.c) of the files in
 * <state_dir>/requests/.  The receiver alone changes a transfer's state,
 * so `sluice quarantine release|approve` and `sluice incomplete purge`
 * ask it to, and wait for its answer, rather than touch its files.
 *
 *   NAME.req   one logfmt line, written atomically by the CLI:
 *              action=release|approve|purge transfer=<16 hex>
 *              user=<name> uid=<n> [override=yes] [reason="..."]
 *              [signature="approval <id> <sig>"]
 *   NAME.taken the receiver is working on it (a release can take a while)
 *   NAME.res   one logfmt line, written atomically by the receiver:
 *              ok=yes|no state=<STATE> detail="..."
 *
 * The directory is the receiver's (0700), so only root and the receiver's
 * user can queue a request; the receiver also refuses request files owned
 * by anyone else.
 */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQUEST_DIR "requests"
#define REQUEST_SIG_MAX 200
#define REQUEST_REASON_MAX 400

enum request_action {
	REQUEST_RELEASE = 1,
	REQUEST_APPROVE,
	REQUEST_PURGE,
};

struct request {
	enum request_action action;
	uint64_t transfer;
	char user[64];
	unsigned uid;
	bool override;
	char reason[REQUEST_REASON_MAX + 1];
	char signature[REQUEST_SIG_MAX + 1];
};

struct request_result {
	bool ok;
	char state[32];
	char detail[512];
};

/* Writes dir/NAME.req atomically; name (cap bytes) receives NAME.
 * 0 or -errno. */
int request_write(const char *dir, const struct request *rq, char *name,
    size_t cap);
/* Parses one request line; 0 or -EBADMSG with a reason in err. */
int request_parse(const char *text, size_t len, struct request *rq,
    char *err, size_t errlen);
/* The answer: dir/NAME.res, atomically; 0 or -errno. */
int request_answer(const char *dir, const char *name,
    const struct request_result *res);
/* Reads dir/NAME.res: 0, -ENOENT (not yet) or another -errno. */
int request_read_answer(const char *dir, const char *name,
    struct request_result *res);
const char *request_action_name(enum request_action a);

#endif
