/*
 * pubstore: calls one store module's publish function on one released
 * bundle, for testing a module without the publisher's loop.
 *
 *   pubstore TYPE BUNDLE_DIR [key=value...]
 *
 * TYPE is directory, oci or s3; the keys are those of a store in
 * publish.conf (path, registry, tls_verify, oci_credentials, endpoint,
 * bucket, prefix, region, credentials, part_size).  Prints "ok" or
 * "fail REASON DETAIL" and exits 0 or 1 (2 for usage or an unreadable
 * bundle).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/manifest.h"
#include "receiver/publish/publish.h"

int
main(int argc, char **argv)
{
	struct pub_store s = { .name = "test", .tls_verify = true,
	    .region = "us-east-1", .prefix = "", .part_size = 64ull << 20 };
	struct pub_result res = { 0 };
	struct pub_bundle b = { 0 };
	struct manifest *m = NULL;
	char err[512], dir[PATH_MAX];
	int i, rc;

	if (argc < 3) {
		fprintf(stderr, "usage: pubstore TYPE BUNDLE_DIR [key=value...]\n");
		return 2;
	}
	if (strcmp(argv[1], "directory") == 0)
		s.type = STORE_DIRECTORY;
	else if (strcmp(argv[1], "oci") == 0)
		s.type = STORE_OCI;
	else if (strcmp(argv[1], "s3") == 0)
		s.type = STORE_S3;
	else {
		fprintf(stderr, "pubstore: unknown type %s\n", argv[1]);
		return 2;
	}
	for (i = 3; i < argc; i++) {
		char *k = argv[i], *v = strchr(k, '=');

		if (v == NULL) {
			fprintf(stderr, "pubstore: %s: not key=value\n", k);
			return 2;
		}
		*v++ = '\0';
		if (strcmp(k, "path") == 0)
			s.path = v;
		else if (strcmp(k, "registry") == 0)
			s.registry = v;
		else if (strcmp(k, "tls_verify") == 0)
			s.tls_verify = strcmp(v, "true") == 0;
		else if (strcmp(k, "endpoint") == 0)
			s.endpoint = v;
		else if (strcmp(k, "bucket") == 0)
			s.bucket = v;
		else if (strcmp(k, "prefix") == 0)
			s.prefix = v;
		else if (strcmp(k, "region") == 0)
			s.region = v;
		else if (strcmp(k, "credentials") == 0)
			s.credentials = v;
		else if (strcmp(k, "oci_credentials") == 0)
			s.oci_credentials = v;
		else if (strcmp(k, "part_size") == 0)
			s.part_size = strtoull(v, NULL, 0);
		else {
			fprintf(stderr, "pubstore: unknown key %s\n", k);
			return 2;
		}
	}
	if (realpath(argv[2], dir) == NULL ||
	    manifest_load_bundle(dir, &m, err, sizeof(err)) != 0) {
		fprintf(stderr, "pubstore: %s: not a bundle: %s\n", argv[2],
		    err);
		return 2;
	}
	b.name = m->name;
	b.version = m->version;
	b.dir = dir;
	b.m = m;
	if (s.type == STORE_S3 && store_s3_init() != 0)
		return 2;
	rc = s.type == STORE_DIRECTORY ? store_dir_publish(&s, &b, &res) :
	    s.type == STORE_OCI ? store_oci_publish(&s, &b, &res) :
	    store_s3_publish(&s, &b, &res);
	if (rc == 0)
		printf("ok\n");
	else
		printf("fail %s %s%s\n", res.reason, res.detail,
		    res.permanent ? " (permanent)" : "");
	if (s.type == STORE_S3)
		store_s3_cleanup();
	manifest_free(m);
	return rc == 0 ? 0 : 1;
}
