/*
 * sluice: the operator's command-line tool.  Subcommands are a table;
 * each returns the process exit status (0 ok, 1 failure, 2 usage).
 */
#include "common/log.h"
#include "common/manifest.h"
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
static int cmd_bundle(int argc, char **argv);

static const struct command commands[] = {
	{ "keygen", "-o PREFIX", cmd_keygen },
	{ "key", "show FILE", cmd_key },
	{ "bundle", "create DIR --name NAME --version VERSION [--expires "
	    "RFC3339]\n\t\t[--changes TEXT] [--reason TEXT] [--rollback-to "
	    "VERSION]\n\t\t[--priority N] [--meta KEY=VALUE]...\n"
	    "  sluice bundle sign DIR --key APPROVER.key\n"
	    "  sluice bundle verify DIR --approvers PUB... --threshold N",
	    cmd_bundle },
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

/* ---- bundle create / sign / verify ----------------------------------- */

static int
bundle_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "version", required_argument, NULL, 'v' },
		{ "expires", required_argument, NULL, 'e' },
		{ "changes", required_argument, NULL, 'c' },
		{ "reason", required_argument, NULL, 'r' },
		{ "rollback-to", required_argument, NULL, 'b' },
		{ "priority", required_argument, NULL, 'p' },
		{ "meta", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *version = NULL, *dir;
	const char *fields[5][2] = { { "expires", NULL }, { "changes", NULL },
		{ "reason", NULL }, { "rollback-to", NULL },
		{ "priority", NULL } };
	const char *metas[64];
	unsigned n_meta = 0, i;
	char err[512] = "", now[32];
	struct manifest *m;
	int ch;

	optind = 2;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'v': version = optarg; break;
		case 'e': fields[0][1] = optarg; break;
		case 'c': fields[1][1] = optarg; break;
		case 'r': fields[2][1] = optarg; break;
		case 'b': fields[3][1] = optarg; break;
		case 'p': fields[4][1] = optarg; break;
		case 'm':
			if (n_meta == UTIL_ARRAY_LEN(metas))
				return usage();
			metas[n_meta++] = optarg;
			break;
		default: return usage();
		}
	}
	if (optind != argc - 1 || name == NULL || version == NULL)
		return usage();
	dir = argv[optind];
	m = manifest_new(name, version);
	if (m == NULL)
		fatalx("out of memory");
	util_rfc3339(now, sizeof(now), util_realtime_ns());
	(void)manifest_set(m, "created", now);
	for (i = 0; i < UTIL_ARRAY_LEN(fields); i++) {
		if (fields[i][1] != NULL &&
		    manifest_set(m, fields[i][0], fields[i][1]) != 0) {
			log_warnx("--%s: bad value \"%s\"", fields[i][0],
			    fields[i][1]);
			return 2;
		}
	}
	if (m->expires != NULL && strlen(m->expires) != 20) {
		log_warnx("--expires: use YYYY-MM-DDTHH:MM:SSZ");
		return 2;
	}
	for (i = 0; i < n_meta; i++) {
		char *kv = strdup(metas[i]), *eq = strchr(kv, '=');

		if (eq == NULL || eq == kv) {
			log_warnx("--meta: use KEY=VALUE");
			return 2;
		}
		*eq = '\0';
		if (manifest_add_meta(m, kv, eq + 1) != 0) {
			log_warnx("--meta: bad value");
			return 2;
		}
		free(kv);
	}
	if (manifest_add_dir(m, dir, err, sizeof(err)) != 0 ||
	    manifest_finish(m, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		manifest_free(m);
		return 1;
	}
	if (manifest_write_bundle(m, dir) != 0) {
		log_warn("writing %s/%s", dir, MANIFEST_BUNDLE_FILE);
		manifest_free(m);
		return 1;
	}
	printf("%s/%s: bundle %s version %s, %zu files, %llu bytes; "
	    "no approvals yet\n", dir, MANIFEST_BUNDLE_FILE, m->name,
	    m->version, m->n_files, (unsigned long long)m->total_bytes);
	manifest_free(m);
	return 0;
}

static int
bundle_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = NULL, *dir;
	struct sign_seckey *sk;
	struct manifest *m;
	char err[512] = "", hex[17];
	int ch, rc;

	optind = 2;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'k')
			return usage();
		keyfile = optarg;
	}
	if (optind != argc - 1 || keyfile == NULL)
		return usage();
	dir = argv[optind];
	sk = sign_seckey_load(keyfile, &rc, err, sizeof(err));
	if (sk == NULL) {
		log_warnx("%s: %s", keyfile, err);
		return 1;
	}
	/* Sign only what is really there: the tree must match. */
	if (manifest_load_bundle(dir, &m, err, sizeof(err)) != 0) {
		log_warnx("%s", err);
		sign_seckey_free(sk);
		return 1;
	}
	rc = manifest_approve(m, sk);
	if (rc == 0)
		rc = manifest_write_bundle(m, dir);
	sign_keyid_hex(hex, sign_seckey_id(sk));
	if (rc == 0)
		printf("%s: approved by %s (%zu approval%s)\n", dir, hex,
		    m->n_approvals, m->n_approvals == 1 ? "" : "s");
	else
		log_warnx("%s: cannot add the approval: %s", dir,
		    strerror(-rc));
	sign_seckey_free(sk);
	manifest_free(m);
	return rc == 0 ? 0 : 1;
}

static int
bundle_verify(int argc, char **argv)
{
	struct sign_pubkey keys[64];
	const char *dir = NULL;
	unsigned n_keys = 0, threshold = 0, got;
	struct manifest *m;
	char err[512] = "", ids[64 * 18];
	bool in_keys = false, have_threshold = false;
	int i;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--approvers") == 0) {
			in_keys = true;
		} else if (strcmp(argv[i], "--threshold") == 0 &&
		    i + 1 < argc) {
			threshold = (unsigned)strtoul(argv[++i], NULL, 10);
			have_threshold = true;
			in_keys = false;
		} else if (argv[i][0] == '-') {
			return usage();
		} else if (in_keys) {
			if (n_keys == UTIL_ARRAY_LEN(keys))
				return usage();
			if (sign_pubkey_load(argv[i], &keys[n_keys], err,
			    sizeof(err)) != 0) {
				log_warnx("%s: %s", argv[i], err);
				return 1;
			}
			n_keys++;
		} else if (dir == NULL) {
			dir = argv[i];
		} else {
			return usage();
		}
	}
	if (dir == NULL || !have_threshold)
		return usage();
	if (manifest_load_bundle(dir, &m, err, sizeof(err)) != 0) {
		printf("FAIL %s\n", err);
		return 1;
	}
	got = manifest_count_approvals(m, keys, n_keys, ids, sizeof(ids));
	if (got < threshold) {
		printf("FAIL %s version %s: %u of %u required approvals "
		    "(valid: %s; %zu signature%s present)\n", m->name,
		    m->version, got, threshold, got ? ids : "none",
		    m->n_approvals, m->n_approvals == 1 ? "" : "s");
		manifest_free(m);
		return 1;
	}
	printf("OK %s version %s: %zu files match the manifest; %u of %u "
	    "required approvals (%s)\n", m->name, m->version, m->n_files,
	    got, threshold, got ? ids : "none needed");
	manifest_free(m);
	return 0;
}

static int
cmd_bundle(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "create") == 0)
		return bundle_create(argc, argv);
	if (strcmp(argv[1], "sign") == 0)
		return bundle_sign(argc, argv);
	if (strcmp(argv[1], "verify") == 0)
		return bundle_verify(argc, argv);
	return usage();
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
