/*
 * sluice: the operator's command-line tool.  Subcommands are a table;
 * each returns the process exit status (0 ok, 1 failure, 2 usage).
 */
#include "common/log.h"
#include "common/sign.h"
#include "common/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct command {
	const char *name;
	const char *args;
	int (*run)(int argc, char **argv);
};

static int cmd_keygen(int argc, char **argv);
static int cmd_key(int argc, char **argv);

static const struct command commands[] = {
	{ "keygen", "-o PREFIX", cmd_keygen },
	{ "key", "show FILE", cmd_key },
};

static int
usage(void)
{
	size_t i;

	fprintf(stderr, "usage:\n");
	for (i = 0; i < UTIL_ARRAY_LEN(commands); i++)
		fprintf(stderr, "  sluice %s %s\n", commands[i].name,
		    commands[i].args);
	return 2;
}

static int
cmd_keygen(int argc, char **argv)
{
	struct sign_pubkey pub;
	const char *prefix = NULL;
	char hex[2 * SIGN_KEYID_LEN + 1];
	int ch, rc;

	optind = 1;
	while ((ch = getopt(argc, argv, "o:")) != -1) {
		if (ch != 'o')
			return usage();
		prefix = optarg;
	}
	if (prefix == NULL || optind != argc)
		return usage();
	rc = sign_keygen(prefix, &pub);
	if (rc != 0) {
		log_warnx("keygen %s: %s", prefix, rc == -EEXIST ?
		    "key file exists; refusing to overwrite it" :
		    strerror(-rc));
		return 1;
	}
	sign_keyid_hex(hex, pub.id);
	printf("key id %s\nsecret key %s.key (keep it on the sender host, "
	    "mode 0600)\npublic key %s.pub\n", hex, prefix, prefix);
	return 0;
}

static int
cmd_key(int argc, char **argv)
{
	struct sign_pubkey pub;
	struct sign_seckey *sk;
	char hex[2 * SIGN_KEYID_LEN + 1], err[256] = "";
	const char *path;
	uint8_t *buf;
	size_t len;
	int rc;

	if (argc != 3 || strcmp(argv[1], "show") != 0)
		return usage();
	path = argv[2];
	if (util_read_file(path, 4096, &buf, &len) != 0) {
		log_warn("%s", path);
		return 1;
	}
	rc = strncmp((char *)buf, "sluice-secret-key", 17) == 0;
	free(buf);
	if (rc) {
		sk = sign_seckey_load(path, &rc, err, sizeof(err));
		if (sk == NULL) {
			log_warnx("%s: %s", path, err);
			return 1;
		}
		sign_seckey_pubkey(sk, &pub);
		sign_seckey_free(sk);
		sign_keyid_hex(hex, pub.id);
		printf("type secret\nid %s\n", hex);
		return 0;
	}
	if (sign_pubkey_load(path, &pub, err, sizeof(err)) != 0) {
		log_warnx("%s: %s", path, err);
		return 1;
	}
	sign_keyid_hex(hex, pub.id);
	printf("type public\nid %s\n", hex);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t i;

	log_init("sluice", 0);
	if (argc < 2)
		return usage();
	if (sign_init() != 0)
		fatalx("libsodium failed to initialise");
	for (i = 0; i < UTIL_ARRAY_LEN(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage();
}
