/*
 * libFuzzer harness for the audit log verifier and the head-file parser
 * (common/audit.c), the one reader of files another process wrote.
 *
 * Input: the whole log; and, when its first line parses as a head file,
 * the rest verified against that head too.  The key is fixed: the seeds in
 * tests/fuzz/corpus/audit were written with its secret half, so mutations
 * reach the signature pass, not only the chain pass.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/audit.h"
#include "common/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* id 18640d3e1fc488d2, key ovZBUp+3+1fsV+MYOT/3VceZ3s70H0tCo0wDOmKGHpk= */
static const uint8_t seed_pk[SIGN_PK_LEN] = {
	0xa2, 0xf6, 0x41, 0x52, 0x9f, 0xb7, 0xfb, 0x57, 0xec, 0x57, 0xe3,
	0x18, 0x39, 0x3f, 0xf7, 0x55, 0xc7, 0x99, 0xde, 0xce, 0xf4, 0x1f,
	0x4b, 0x42, 0xa3, 0x4c, 0x03, 0x3a, 0x62, 0x86, 0x1e, 0x99,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sign_pubkey pk;
	static int ready;
	struct audit_head head;
	const uint8_t *nl;
	char err[512];
	uint64_t records;

	if (!ready) {
		if (sign_init() != 0)
			abort();
		memcpy(pk.pk, seed_pk, SIGN_PK_LEN);
		sign_keyid(pk.id, pk.pk);
		ready = 1;
	}
	if (audit_verify_buf(data, size, &pk, NULL, err, sizeof(err),
	    &records) == 0 && records > size / 100)
		abort(); /* a record is far longer than 100 bytes */
	if (strnlen(err, sizeof(err)) >= sizeof(err))
		abort();
	nl = memchr(data, '\n', size);
	if (nl != NULL && audit_head_parse(data, (size_t)(nl + 1 - data), &pk,
	    &head, err, sizeof(err)) == 0) {
		if (strlen(head.hash) != 64)
			abort();
		audit_verify_buf(nl + 1, size - (size_t)(nl + 1 - data), &pk,
		    &head, err, sizeof(err), &records);
	}
	return 0;
}
