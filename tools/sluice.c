/*
 * sluice: the operator's command-line tool.  Subcommands are a table;
 * each returns the process exit status (0 ok, 1 failure, 2 usage).
 */
#include "common/audit.h"
#include "common/conf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/request.h"
#include "common/logfmt.h"
#include "common/manifest.h"
#include "common/rules.h"
#include "common/sign.h"
#include "common/spool.h"
#include "common/util.h"
#include "receiver/publish/publish.h"
#include "tools/cmds.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where the receiver-side commands look when -c is not given. */
#define DEFAULT_RECEIVER_CONF "/etc/sluice/receiver.conf"
#define DEFAULT_PUBLISH_CONF "/etc/sluice/publish.conf"
/* The status file is rewritten every second: older than this, its
 * writer is gone (or hung), whatever its PID says. */
#define STATUS_STALE_S 3
/* A transfer id given by prefix: at least this many hex digits. */
#define ID_MIN_PREFIX 4
/* Exit status of `sluice status` when the receiver is not running, as
 * `systemctl status` has it. */
#define EXIT_NOT_RUNNING 3

struct command {
	const char *name;
	const char *args;
	int (*run)(int argc, char **argv);
};

static int cmd_keygen(int argc, char **argv);
static int cmd_key(int argc, char **argv);
static int cmd_bundle(int argc, char **argv);
static int cmd_audit(int argc, char **argv);
static int cmd_status(int argc, char **argv);
static int cmd_quarantine(int argc, char **argv);
static int cmd_missing(int argc, char **argv);
static int cmd_incomplete(int argc, char **argv);
static int list_incomplete(const struct recv_conf *c);
static int cmd_spool(int argc, char **argv);
static int cmd_publish(int argc, char **argv);

static const struct command commands[] = {
	{ "keygen", "-o PREFIX  |  --link -o FILE", cmd_keygen },
	{ "key", "show FILE", cmd_key },
	{ "bundle", "create DIR --name NAME --version VERSION [--expires "
	    "RFC3339]\n\t\t[--changes TEXT] [--reason TEXT] [--rollback-to "
	    "VERSION]\n\t\t[--priority N] [--meta KEY=VALUE]... "
	    "[--destination RECEIVER_NAME]\n"
	    "  sluice bundle sign DIR --key APPROVER.key [--detached [-o FILE]]\n"
	    "  sluice bundle verify DIR --approvers PUB... --threshold N "
	    "[--receiver-name NAME]\n"
	    "  sluice bundle verify DIR -c RECEIVER.conf",
	    cmd_bundle },
	{ "audit", "verify FILE --key RECEIVER.pub [--head AUDIT.head]",
	    cmd_audit },
	{ "status", "[--all] [-c RECEIVER.conf]", cmd_status },
	{ "quarantine", "list | show ID | purge ID  [-c RECEIVER.conf]\n"
	    "  sluice quarantine approve ID --signature FILE [-c RECEIVER.conf]\n"
	    "  sluice quarantine release ID [--override --reason TEXT] "
	    "[-c RECEIVER.conf]", cmd_quarantine },
	{ "incomplete", "list | purge ID  [-c RECEIVER.conf]", cmd_incomplete },
	{ "missing", "ID [-c RECEIVER.conf]  (> missing.txt)", cmd_missing },
	{ "spool", "add [--move] -c SENDER.conf | -s SPOOL_DIR  BUNDLE...\n"
	    "  sluice spool list -c SENDER.conf | -s SPOOL_DIR", cmd_spool },
	{ "link-report", "FILE... [--port N] [--json]", cmd_link_report },
	{ "replay", "FILE... --to ADDR:PORT [--rate R | --max] [--loop N] "
	    "[--port N]", cmd_replay },
	{ "publish", "status [-c PUBLISH.conf]\n"
	    "  sluice publish retry NAME VERSION [--store STORE] "
	    "[-c PUBLISH.conf]", cmd_publish },
};

/* "s" unless n is 1: "1 approval", "2 approvals", "0 approvals". */
static const char *
plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

static void
help(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage:\n");
	for (i = 0; i < UTIL_ARRAY_LEN(commands); i++)
		fprintf(fp, "  sluice %s %s\n", commands[i].name,
		    commands[i].args);
	fprintf(fp, "  sluice --help | --version\n"
	    "status, quarantine and missing read -c %s when -c is not "
	    "given;\nan ID may be given by a unique prefix of at least %d hex "
	    "digits.\n", DEFAULT_RECEIVER_CONF, ID_MIN_PREFIX);
}

static int
usage(void)
{
	help(stderr);
	return 2;
}

static int
cmd_keygen(int argc, char **argv)
{
	struct sign_pubkey pub;
	static const struct option opts[] = {
		{ "link", no_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prefix = NULL;
	char hex[2 * SIGN_KEYID_LEN + 1];
	bool link = false;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (ch == 'l')
			link = true;
		else if (ch == 'o')
			prefix = optarg;
		else
			return usage();
	}
	if (prefix == NULL || optind != argc)
		return usage();
	if (link) {
		uint8_t id[SIGN_KEYID_LEN];

		/* One file, the same on both ends of the link. */
		rc = sign_linkkey_generate(prefix, id);
		if (rc != 0) {
			log_errx("keygen --link %s: %s", prefix,
			    rc == -EEXIST ? "file exists; refusing to "
			    "overwrite it" : strerror(-rc));
			return 1;
		}
		sign_keyid_hex(hex, id);
		printf("link key id %s\nlink key %s (mode 0600: copy it to "
		    "both ends of the link, and keep it secret)\n", hex,
		    prefix);
		return 0;
	}
	rc = sign_keygen(prefix, &pub);
	if (rc != 0) {
		log_errx("keygen %s: %s", prefix, rc == -EEXIST ?
		    "key file exists; refusing to overwrite it" :
		    strerror(-rc));
		return 1;
	}
	sign_keyid_hex(hex, pub.id);
	printf("key id %s\nsecret key %s.key (mode 0600: keep it secret)\n"
	    "public key %s.pub\n", hex, prefix, prefix);
	return 0;
}

static int
cmd_key(int argc, char **argv)
{
	struct sign_pubkey pub;
	struct sign_seckey *sk;
	char hex[2 * SIGN_KEYID_LEN + 1], b64[SIGN_PK_B64_LEN], err[256] = "";
	const char *path;
	uint8_t *buf;
	size_t len;
	int rc;

	if (argc != 3 || strcmp(argv[1], "show") != 0)
		return usage();
	path = argv[2];
	if (util_read_file(path, 4096, &buf, &len) != 0) {
		log_err("%s", path);
		return 1;
	}
	rc = strncmp((char *)buf, "sluice-secret-key", 17) == 0;
	free(buf);
	if (rc) {
		sk = sign_seckey_load(path, &rc, err, sizeof(err));
		if (sk == NULL) {
			log_errx("%s: %s", path, err);
			return 1;
		}
		sign_seckey_pubkey(sk, &pub);
		sign_seckey_free(sk);
		sign_keyid_hex(hex, pub.id);
		sign_pubkey_base64(b64, &pub);
		printf("type secret\nid %s\npublic-key %s\n", hex, b64);
		return 0;
	}
	if (sign_pubkey_load(path, &pub, err, sizeof(err)) != 0) {
		log_errx("%s: %s", path, err);
		return 1;
	}
	sign_keyid_hex(hex, pub.id);
	sign_pubkey_base64(b64, &pub);
	printf("type public\nid %s\npublic-key %s\n", hex, b64);
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
		{ "destination", required_argument, NULL, 'd' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *version = NULL, *dir;
	const char *fields[6][2] = { { "expires", NULL }, { "changes", NULL },
		{ "reason", NULL }, { "rollback-to", NULL },
		{ "priority", NULL }, { "destination", NULL } };
	const char *metas[64];
	unsigned n_meta = 0, i;
	char err[512] = "", now[32];
	struct manifest *m, *old;
	bool force = false;
	int64_t expires;
	int ch;

	optind = 2;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'f': force = true; break;
		case 'n': name = optarg; break;
		case 'v': version = optarg; break;
		case 'e': fields[0][1] = optarg; break;
		case 'c': fields[1][1] = optarg; break;
		case 'r': fields[2][1] = optarg; break;
		case 'b': fields[3][1] = optarg; break;
		case 'p': fields[4][1] = optarg; break;
		case 'd': fields[5][1] = optarg; break;
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
			log_errx("--%s: bad value \"%s\"", fields[i][0],
			    fields[i][1]);
			return 2;
		}
	}
	if (m->expires != NULL && (strlen(m->expires) != 20 ||
	    (expires = util_parse_rfc3339(m->expires)) < 0)) {
		log_errx("--expires: use YYYY-MM-DDTHH:MM:SSZ");
		return 2;
	}
	/* Every receiver would refuse it as expired: say so now. */
	if (m->expires != NULL && !force &&
	    expires <= (int64_t)(util_realtime_ns() / 1000000000)) {
		log_errx("--expires %s is in the past: receivers quarantine "
		    "an expired bundle (--force to create it anyway)",
		    m->expires);
		manifest_free(m);
		return 1;
	}
	/* A new manifest voids the approvals of the old one: not without
	 * being asked. */
	if (!force && manifest_bundle_exists(dir) &&
	    manifest_peek_bundle(dir, &old, err, sizeof(err)) == 0) {
		size_t n = old->n_approvals;

		manifest_free(old);
		if (n > 0) {
			log_errx("%s already holds %zu approval%s of its "
			    "manifest; creating it again removes them "
			    "(--force to do so)", dir, n, plural(n));
			manifest_free(m);
			return 1;
		}
	}
	for (i = 0; i < n_meta; i++) {
		char *kv = strdup(metas[i]), *eq = strchr(kv, '=');

		if (eq == NULL || eq == kv) {
			log_errx("--meta: use KEY=VALUE");
			return 2;
		}
		*eq = '\0';
		if (manifest_add_meta(m, kv, eq + 1) != 0) {
			log_errx("--meta: bad value");
			return 2;
		}
		free(kv);
	}
	if (manifest_add_dir(m, dir, err, sizeof(err)) != 0 ||
	    manifest_finish(m, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		manifest_free(m);
		return 1;
	}
	/* sluice-send would refuse it: say so now, not at sending. */
	if (limits_check_manifest(m, err, sizeof(err)) != 0) {
		log_errx("%s: %s; sluice-send refuses a bundle past the "
		    "receiver's default limits", dir, err);
		manifest_free(m);
		return 1;
	}
	if (manifest_write_bundle(m, dir) != 0) {
		log_err("writing %s/%s", dir, MANIFEST_BUNDLE_FILE);
		manifest_free(m);
		return 1;
	}
	printf("%s/%s: bundle %s version %s, %zu file%s, %llu byte%s; "
	    "no approvals yet\n", dir, MANIFEST_BUNDLE_FILE, m->name,
	    m->version, m->n_files, plural(m->n_files),
	    (unsigned long long)m->total_bytes, plural(m->total_bytes));
	manifest_free(m);
	return 0;
}

/* The approval line of key id in m's rendered object, into out. */
static int
approval_line(const struct manifest *m, const uint8_t id[8], char *out,
    size_t len)
{
	char hex[17], want[32];
	uint8_t *obj;
	size_t objlen;
	char *p, *nl;
	int rc = -ENOENT;

	if (manifest_render_object(m, &obj, &objlen) != 0)
		return -ENOMEM;
	util_hex(hex, id, 8);
	snprintf(want, sizeof(want), "approval %s ", hex);
	for (p = (char *)obj + m->text_len; p < (char *)obj + objlen;
	    p = nl + 1) {
		nl = memchr(p, '\n', (size_t)((char *)obj + objlen - p));
		if (nl == NULL)
			break;
		if (strncmp(p, want, strlen(want)) == 0 &&
		    (size_t)(nl - p) < len) {
			snprintf(out, len, "%.*s", (int)(nl - p), p);
			rc = 0;
			break;
		}
	}
	free(obj);
	return rc;
}

static int
bundle_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "detached", no_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = NULL, *dir, *output = NULL;
	struct sign_seckey *sk;
	struct manifest *m;
	char err[512] = "", hex[17], line[256];
	bool detached = false;
	int ch, rc;

	optind = 2;
	while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (ch) {
		case 'k': keyfile = optarg; break;
		case 'd': detached = true; break;
		case 'o': output = optarg; break;
		default: return usage();
		}
	}
	if (optind != argc - 1 || keyfile == NULL ||
	    (output != NULL && !detached))
		return usage();
	dir = argv[optind];
	sk = sign_seckey_load(keyfile, &rc, err, sizeof(err));
	if (sk == NULL) {
		log_errx("%s: %s", keyfile, err);
		return 1;
	}
	/* Sign only what is really there: the tree must match. */
	if (manifest_load_bundle(dir, &m, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		sign_seckey_free(sk);
		return 1;
	}
	rc = manifest_approve(m, sk);
	sign_keyid_hex(hex, sign_seckey_id(sk));
	if (rc == 0 && detached) {
		/*
		 * The approval alone, for a bundle already sent and held for
		 * approvals: sluice quarantine approve ID --signature FILE on
		 * the protected side.  The bundle is left as it is.
		 */
		rc = approval_line(m, sign_seckey_id(sk), line, sizeof(line));
		if (rc == 0 && output != NULL) {
			size_t n = strlen(line);

			line[n] = '\n';
			rc = util_write_file_atomic(output, line, n + 1, 0644);
			line[n] = '\0';
		} else if (rc == 0) {
			printf("%s\n", line);
		}
		if (rc == 0 && output != NULL)
			printf("%s: approval by %s written to %s\n", dir, hex,
			    output);
	} else if (rc == 0) {
		rc = manifest_write_bundle(m, dir);
		if (rc == 0)
			printf("%s: approved by %s (%zu approval%s)\n", dir,
			    hex, m->n_approvals, plural(m->n_approvals));
	}
	if (rc != 0)
		log_errx("%s: cannot add the approval: %s", dir,
		    strerror(-rc));
	sign_seckey_free(sk);
	manifest_free(m);
	return rc == 0 ? 0 : 1;
}

/*
 * As the receiver's configuration does: the same key under two file names
 * is one approver, so listing it twice is an error (keys[n] is new).
 */
static int
same_key(const struct sign_pubkey *keys, const char *const *files, size_t n)
{
	char hex[2 * SIGN_KEYID_LEN + 1];
	size_t i;

	for (i = 0; i < n; i++) {
		if (memcmp(keys[i].pk, keys[n].pk, SIGN_PK_LEN) != 0)
			continue;
		sign_keyid_hex(hex, keys[n].id);
		log_errx("--approvers: %s and %s hold the same public key "
		    "(id %s); list each approver once", files[i], files[n],
		    hex);
		return -EINVAL;
	}
	return 0;
}

/*
 * The rules a receiver applies (common/rules.c): those of -c
 * RECEIVER.conf, or the default limits and name pattern with the
 * approvers and threshold given.  conf may be NULL.
 */
static int
verify_rules(const struct recv_conf *conf, struct sign_pubkey *keys,
    size_t *n_keys, struct rules *rules, regex_t *re)
{
	char err[256];
	size_t i;

	rules->now = (int64_t)(util_realtime_ns() / 1000000000);
	if (conf == NULL) {
		if (rules_compile_name(re, LIMITS_NAME_PATTERN) != 0 ||
		    rules_compile_name(re + 1, LIMITS_VERSION_PATTERN) != 0)
			fatalx("bad built-in defaults");
		rules->name_re = re;
		rules->version_re = re + 1;
		rules->max_files = LIMITS_MAX_FILES;
		rules->max_path_len = LIMITS_MAX_PATH_LEN;
		rules->max_bytes = (uint64_t)LIMITS_MAX_BUNDLE_BYTES;
		return 0;
	}
	for (i = 0; i < conf->n_approvers; i++) {
		if (sign_pubkey_load(conf->approvers[i], &keys[i], err,
		    sizeof(err)) != 0) {
			log_errx("%s: %s", conf->approvers[i], err);
			return -EINVAL;
		}
	}
	*n_keys = conf->n_approvers;
	if (rules_compile_name(re, conf->name_pattern) != 0 ||
	    rules_compile_name(re + 1, conf->version_pattern) != 0) {
		log_errx("%s: name_pattern or version_pattern: not a valid "
		    "extended regular expression", conf->path);
		return -EINVAL;
	}
	rules_from_conf(rules, conf);
	rules->name_re = re;
	rules->version_re = re + 1;
	return 0;
}

static int
bundle_verify(int argc, char **argv)
{
	struct sign_pubkey keys[64];
	const char *key_files[64];
	const char *dir = NULL, *conf_path = NULL, *receiver_name = NULL;
	size_t n_keys = 0;
	unsigned threshold = 0;
	struct recv_conf *conf = NULL;
	struct manifest *m = NULL;
	struct rules rules;
	struct rules_result res;
	regex_t re[2];
	char err[512] = "", ids[64 * 18], *end;
	bool in_keys = false, have_threshold = false;
	int i, rc = 1;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--approvers") == 0) {
			in_keys = true;
		} else if (strcmp(argv[i], "--threshold") == 0 &&
		    i + 1 < argc) {
			threshold = (unsigned)strtoul(argv[++i], &end, 10);
			if (*argv[i] == '\0' || *end != '\0')
				return usage();
			have_threshold = true;
			in_keys = false;
		} else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			conf_path = argv[++i];
			in_keys = false;
		} else if (strcmp(argv[i], "--receiver-name") == 0 &&
		    i + 1 < argc) {
			receiver_name = argv[++i];
			in_keys = false;
		} else if (argv[i][0] == '-') {
			return usage();
		} else if (in_keys) {
			if (n_keys == UTIL_ARRAY_LEN(keys))
				return usage();
			if (sign_pubkey_load(argv[i], &keys[n_keys], err,
			    sizeof(err)) != 0) {
				log_errx("%s: %s", argv[i], err);
				return 1;
			}
			key_files[n_keys] = argv[i];
			if (same_key(keys, key_files, n_keys) != 0)
				return 1;
			n_keys++;
		} else if (dir == NULL) {
			dir = argv[i];
		} else {
			return usage();
		}
	}
	/* Either a receiver's configuration or approvers and threshold. */
	if (dir == NULL || (conf_path != NULL) == (have_threshold ||
	    n_keys > 0) || (conf_path == NULL && !have_threshold) ||
	    (conf_path != NULL && receiver_name != NULL))
		return usage();
	if (conf_path != NULL &&
	    (conf = recv_conf_load(conf_path, err, sizeof(err))) == NULL) {
		log_errx("%s", err);
		return 1;
	}
	memset(&rules, 0, sizeof(rules));
	if (verify_rules(conf, keys, &n_keys, &rules, re) != 0)
		goto out;
	if (conf == NULL) {
		rules.threshold = threshold;
		rules.receiver_name = receiver_name;
	}
	rules.approvers = keys;
	rules.n_approvers = n_keys;
	if (manifest_load_bundle(dir, &m, err, sizeof(err)) != 0) {
		printf("FAIL %s\n", err);
		goto out_re;
	}
	/* The receiver's checks, in its order: names and limits, then
	 * approvals, expiry, age and destination. */
	rules_check_names(&rules, m, &res);
	if (res.outcome == RULES_PASS)
		rules_check_release(&rules, m, &res, ids, sizeof(ids));
	if (res.outcome != RULES_PASS) {
		printf("FAIL %s version %s: %s: %s\n", m->name, m->version,
		    res.reason, res.detail);
		goto out_re;
	}
	printf("OK %s version %s: %zu file%s the manifest; %u of %u "
	    "required approval%s (%s)\n", m->name, m->version, m->n_files,
	    m->n_files == 1 ? " matches" : "s match", res.approvals,
	    rules.threshold, plural(rules.threshold), res.approvals ? ids :
	    "none needed");
	rc = 0;
out_re:
	regfree(&re[0]);
	regfree(&re[1]);
out:
	manifest_free(m);
	recv_conf_free(conf);
	return rc;
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

static int
cmd_audit(int argc, char **argv)
{
	struct sign_pubkey key;
	char err[512] = "";
	const char *head = NULL;
	uint64_t records;

	if ((argc != 5 && argc != 7) || strcmp(argv[1], "verify") != 0 ||
	    strcmp(argv[3], "--key") != 0 ||
	    (argc == 7 && strcmp(argv[5], "--head") != 0))
		return usage();
	if (argc == 7)
		head = argv[6];
	if (sign_pubkey_load(argv[4], &key, err, sizeof(err)) != 0) {
		log_warnx("%s: %s", argv[4], err);
		return 1;
	}
	if (audit_verify(argv[2], &key, head, err, sizeof(err),
	    &records) != 0) {
		printf("FAIL %s: %s\n", argv[2], err);
		return 1;
	}
	printf("OK %s: %llu records, chain intact, every record signed by "
	    "%s", argv[2], (unsigned long long)records, argv[4]);
	if (head != NULL)
		printf("; the head in %s is in the log", head);
	else
		printf("; without --head, records cut from the end cannot be "
		    "seen");
	printf("\n");
	return 0;
}

/*
 * Who runs a purge, for its audit record: the real user, and the user sudo
 * says invoked it.  SUDO_USER is only what the environment claims; the
 * uid is what the kernel says.
 */
static void
purge_actor(char *out, size_t len)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	int n;

	n = snprintf(out, len, "%s (uid %lu)", pw != NULL ? pw->pw_name : "?",
	    (unsigned long)getuid());
	if (sudo != NULL && sudo[0] != '\0' && n > 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, " via sudo from %s", sudo);
}

/* ---- receiver-side operations ---------------------------------------- */

/*
 * Finds "-c FILE" among the arguments and loads it (the rest stay), or
 * DEFAULT_RECEIVER_CONF without one.
 */
static struct recv_conf *
receiver_conf(int *argc, char **argv)
{
	struct recv_conf *c;
	char err[512];
	int i, j;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "-c") != 0)
			continue;
		if (i + 1 == *argc)
			exit(usage());
		c = recv_conf_load(argv[i + 1], err, sizeof(err));
		if (c == NULL) {
			log_errx("%s", err);
			exit(1);
		}
		for (j = i; j + 2 <= *argc; j++)
			argv[j] = argv[j + 2];
		*argc -= 2;
		return c;
	}
	c = recv_conf_load(DEFAULT_RECEIVER_CONF, err, sizeof(err));
	if (c == NULL) {
		log_errx("%s (the default configuration; name another with "
		    "-c RECEIVER.conf)", err);
		exit(1);
	}
	return c;
}

/*
 * A transfer id as typed: the whole id, or a unique prefix of at least
 * ID_MIN_PREFIX hex digits, among the entries of dir (one per transfer).
 * 0 with the whole id in out; 1 with the error said (no such transfer,
 * or the candidates of an ambiguous prefix).
 */
static int
resolve_id(const char *dir, const char *arg, char *out, size_t outlen)
{
	char found[8][NAME_MAX + 1];
	size_t len = strlen(arg), i, n = 0;
	struct dirent *de;
	DIR *d;

	if (len < ID_MIN_PREFIX || strspn(arg, "0123456789abcdef") != len) {
		log_errx("%s: not a transfer id (%d to 16 lower-case hex "
		    "digits)", arg, ID_MIN_PREFIX);
		return 1;
	}
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, arg, len) != 0)
				continue;
			if (de->d_name[len] == '\0') {
				n = 1; /* the whole id: no prefix of another */
				snprintf(found[0], sizeof(found[0]), "%s", arg);
				break;
			}
			if (n < UTIL_ARRAY_LEN(found))
				snprintf(found[n], sizeof(found[n]), "%s",
				    de->d_name);
			n++;
		}
		closedir(d);
	}
	if (n == 1) {
		snprintf(out, outlen, "%s", found[0]);
		return 0;
	}
	if (n == 0) {
		log_errx("%s: no such transfer", arg);
		return 1;
	}
	fprintf(stderr, "sluice: error: %s: ambiguous: %zu transfers begin "
	    "with it:", arg, n);
	for (i = 0; i < n && i < UTIL_ARRAY_LEN(found); i++)
		fprintf(stderr, " %s", found[i]);
	fprintf(stderr, "%s\n", n > UTIL_ARRAY_LEN(found) ? " ..." : "");
	return 1;
}

/* 12.3M: a size as du -h and ls -h show it (powers of 1024). */
static void
human_size(char *out, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(out, len, "%lluB", (unsigned long long)bytes);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static uint64_t tree_sum;

static int
tree_add(const char *path, const struct stat *st, int type, struct FTW *f)
{
	if (type == FTW_F && S_ISREG(st->st_mode))
		tree_sum += (uint64_t)st->st_size;
	return 0;
}

/* Bytes of the regular files under path (links not followed). */
static uint64_t
tree_bytes(const char *path)
{
	tree_sum = 0;
	(void)nftw(path, tree_add, 16, FTW_PHYS);
	return tree_sum;
}

/*
 * The value of key in a parsed record, escaped again for the terminal: a
 * value holding a space, a newline or an escape sequence is shown quoted
 * and cannot fake a column or another field.  "-" when absent.
 */
static const char *
lf_show(const struct logfmt_record *r, const char *key, char *out,
    size_t len)
{
	const char *v = logfmt_get(r, key);

	if (v == NULL)
		snprintf(out, len, "-");
	else
		logfmt_escape(out, len, v);
	return out;
}

/* One row of the status table; the first call prints its header. */
static void
print_row(const char *id, const char *bundle, const char *version,
    const char *state, const char *progress, const char *age,
    const char *reason)
{
	static bool headed;

	if (!headed) {
		headed = true;
		print_row("TRANSFER", "BUNDLE", "VERSION", "STATE", "PROGRESS",
		    "AGE", "REASON");
	}
	printf("%-16s  %-20.20s %-14.14s %-11s %-14s %-8s %s\n", id, bundle,
	    version, state, progress, age, reason);
}

/*
 * Reads and parses <staging>/quarantine/<id>/info (one key=value a line,
 * written by receiver/lifecycle.c).  0, -ENOENT if there is none, or
 * -EBADMSG if it is malformed: then nothing of it is used.
 */
static int
quarantine_info(const struct recv_conf *c, const char *id,
    struct logfmt_record *rec, char *raw, size_t rawlen)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t n;
	int rc;

	rec->n = 0;
	if (raw != NULL && rawlen > 0)
		raw[0] = '\0';
	if (strchr(id, '/') != NULL || id[0] == '.' ||
	    snprintf(path, sizeof(path), "%s/quarantine/%s/info",
	    c->staging_dir, id) >= (int)sizeof(path))
		return -ENOENT;
	rc = util_read_file(path, LOGFMT_MAX_TEXT, &buf, &n);
	if (rc != 0)
		return rc == -EFBIG ? -EBADMSG : -ENOENT;
	rc = logfmt_parse(rec, (const char *)buf, n);
	if (rc == 0 && raw != NULL)
		snprintf(raw, rawlen, "%.*s", (int)n, (char *)buf);
	free(buf);
	return rc;
}

/* Held bundles: the directories under staging/quarantine. */
static int
list_quarantine(const struct recv_conf *c, bool as_rows)
{
	char path[PATH_MAX], tree[PATH_MAX], b[256], v[256], reason[128],
	    when[64], size[16];
	struct logfmt_record *rec = malloc(sizeof(*rec));
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (rec == NULL)
		fatalx("out of memory");
	snprintf(path, sizeof(path), "%s/quarantine", c->staging_dir);
	d = opendir(path);
	if (d == NULL) {
		free(rec);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (quarantine_info(c, de->d_name, rec, NULL, 0) == -EBADMSG)
			log_warnx("%s/%s/info: malformed, not read", path,
			    de->d_name);
		lf_show(rec, "bundle", b, sizeof(b));
		lf_show(rec, "version", v, sizeof(v));
		lf_show(rec, "reason", reason, sizeof(reason));
		lf_show(rec, "quarantined", when, sizeof(when));
		if (as_rows) {
			print_row(de->d_name, b, v, "QUARANTINED", "held",
			    "-", reason);
		} else {
			if (n == 0)
				printf("%-16s  %-20s %-14s %7s  %-20s  %s\n",
				    "TRANSFER", "BUNDLE", "VERSION", "SIZE",
				    "SINCE", "REASON");
			snprintf(tree, sizeof(tree), "%s/%s/tree", path,
			    de->d_name);
			human_size(size, sizeof(size), tree_bytes(tree));
			printf("%-16s  %-20s %-14s %7s  %-20s  %s\n",
			    de->d_name, b, v, size, when, reason);
		}
		n++;
	}
	closedir(d);
	free(rec);
	return n;
}

/*
 * The header of <state_dir>/status, "# sluice-recv PID status at TS",
 * and after it, at a clean stop, " state=stopped" (logfmt).  0 or
 * -EBADMSG.
 */
static int
status_header(const char *line, size_t len, long *pid, char *ts,
    size_t tslen, bool *stopped)
{
	static const char head[] = "# sluice-recv ", at[] = " status at ";
	struct logfmt_record *rec;
	const char *p = line, *end = line + len, *v;
	char *e;
	size_t n;
	int rc = 0;

	*stopped = false;
	if (len < sizeof(head) - 1 || memcmp(p, head, sizeof(head) - 1) != 0)
		return -EBADMSG;
	p += sizeof(head) - 1;
	if (p == end || *p < '1' || *p > '9')
		return -EBADMSG;
	*pid = strtol(p, &e, 10);
	p = e;
	if ((size_t)(end - p) < sizeof(at) - 1 ||
	    memcmp(p, at, sizeof(at) - 1) != 0)
		return -EBADMSG;
	p += sizeof(at) - 1;
	n = strcspn(p, " ");
	if (n > (size_t)(end - p))
		n = (size_t)(end - p);
	if (n == 0 || n >= tslen)
		return -EBADMSG;
	memcpy(ts, p, n);
	ts[n] = '\0';
	p += n;
	if (p == end)
		return 0;
	if ((rec = malloc(sizeof(*rec))) == NULL)
		fatalx("out of memory");
	if (logfmt_parse(rec, p + 1, (size_t)(end - p - 1)) != 0)
		rc = -EBADMSG;
	else if ((v = logfmt_get(rec, "state")) != NULL)
		*stopped = strcmp(v, "stopped") == 0;
	free(rec);
	return rc;
}

/* Is pid a live sluice-recv?  A PID reused by another program is not. */
static bool
recv_alive(long pid)
{
	char path[64], comm[32] = "";
	FILE *fp;

	if (pid <= 0 || pid > INT_MAX)
		return false;
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return errno != ENOENT;
	if (fgets(comm, sizeof(comm), fp) == NULL)
		comm[0] = '\0';
	fclose(fp);
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "sluice-recv") == 0;
}

/* The link= line: link state, last heartbeat, last release. */
static void
print_link(const struct logfmt_record *rec)
{
	char hb[48], rel[300], at[48];

	lf_show(rec, "last_heartbeat", hb, sizeof(hb));
	lf_show(rec, "last_release", rel, sizeof(rel));
	printf("link %s, ", lf_show(rec, "link", at, sizeof(at)));
	if (strcmp(hb, "-") == 0)
		printf("no heartbeat yet");
	else
		printf("last heartbeat at %s", hb);
	lf_show(rec, "last_release_at", at, sizeof(at));
	if (strcmp(rel, "-") == 0)
		printf("; no release since it started\n");
	else
		printf("; last release %s at %s\n", rel, at);
}

static int
cmd_status(int argc, char **argv)
{
	struct recv_conf *c = receiver_conf(&argc, argv);
	struct logfmt_record *rec = malloc(sizeof(*rec));
	char path[PATH_MAX], id[40], b[256], v[256], st[40], dn[40], tot[40],
	    age[40], prog[88], ages[48], kept[256] = "", ts[40];
	uint8_t *buf = NULL;
	size_t n = 0, off, len;
	unsigned bad = 0;
	long pid = 0;
	int64_t at;
	bool stopped = false, running = false, header = false;
	bool all = false;
	int rc;

	/* --all: the INCOMPLETE staging kept too (sluice incomplete list). */
	if (argc == 2 && strcmp(argv[1], "--all") == 0) {
		all = true;
		argc--;
	}
	if (argc != 1)
		return usage();
	if (rec == NULL)
		fatalx("out of memory");
	snprintf(path, sizeof(path), "%s/status", c->state_dir);
	if ((rc = util_read_file(path, 1 << 20, &buf, &n)) == 0) {
		const char *nl = memchr(buf, '\n', n);

		header = status_header((const char *)buf, nl != NULL ?
		    (size_t)(nl - (const char *)buf) : n, &pid, ts,
		    sizeof(ts), &stopped) == 0;
	}
	/* A status file is only as good as its writer: gone, or silent
	 * for longer than a few rewrites, and what it says is history. */
	if (rc != 0) {
		printf("sluice-recv is not running (no status file %s)\n",
		    path);
	} else if (!header) {
		printf("sluice-recv: status file %s unreadable (no header)\n",
		    path);
	} else if (stopped) {
		printf("sluice-recv stopped cleanly at %s (pid %ld)\n", ts,
		    pid);
	} else if (!recv_alive(pid) || (at = util_parse_rfc3339(ts)) < 0 ||
	    (int64_t)(util_realtime_ns() / 1000000000) - at >
	    STATUS_STALE_S) {
		printf("sluice-recv is not running (last status at %s, pid "
		    "%ld)\n", ts, pid);
	} else {
		running = true;
		printf("sluice-recv is running (pid %ld, status at %s)\n",
		    pid, ts);
	}
	for (off = 0; off < n; off += len + 1) {
		const char *line = (const char *)buf + off;
		const char *nl = memchr(line, '\n', n - off);
		const char *kind;

		len = nl != NULL ? (size_t)(nl - line) : n - off;
		if (len == 0 || line[0] == '#')
			continue;
		if (logfmt_parse(rec, line, len) != 0) {
			bad++;
			continue;
		}
		if ((kind = logfmt_get(rec, "kept")) != NULL) {
			const char *bytes = logfmt_get(rec, "bytes");

			snprintf(kept + strlen(kept), sizeof(kept) -
			    strlen(kept), "%s%s %s (%.1f MB)",
			    kept[0] ? ", " : "", lf_show(rec, "count",
			    dn, sizeof(dn)), strcmp(kind,
			    "quarantine") == 0 ? "held in quarantine" :
			    "incomplete set aside", bytes != NULL ?
			    strtod(bytes, NULL) / 1e6 : 0.0);
			continue;
		}
		if (logfmt_get(rec, "link") != NULL) {
			if (running)
				print_link(rec);
			continue;
		}
		/* Transfers in flight only from a live receiver. */
		if (!running)
			continue;
		lf_show(rec, "transfer", id, sizeof(id));
		lf_show(rec, "bundle", b, sizeof(b));
		lf_show(rec, "version", v, sizeof(v));
		lf_show(rec, "state", st, sizeof(st));
		lf_show(rec, "chunks_done", dn, sizeof(dn));
		lf_show(rec, "chunks_total", tot, sizeof(tot));
		lf_show(rec, "age", age, sizeof(age));
		snprintf(prog, sizeof(prog), "%s/%s", dn, tot);
		snprintf(ages, sizeof(ages), "%ss", age);
		print_row(id, b, v, st, prog, ages, "-");
	}
	free(buf);
	if (bad > 0)
		log_warnx("%s: %u malformed line%s not shown", path, bad,
		    plural(bad));
	list_quarantine(c, true);
	if (kept[0] != '\0')
		printf("kept in staging: %s; removed after staging_retention "
		    "(%.0f s)\n", kept, c->staging_retention);
	if (all) {
		printf("\nincomplete transfers kept in staging:\n");
		(void)list_incomplete(c);
	}
	free(rec);
	recv_conf_free(c);
	return running ? 0 : EXIT_NOT_RUNNING;
}

/*
 * The approvals a held tree carries (its .sluice/approvals), each marked
 * with whether its key is one of the configured approvers.
 */
static void
show_approvals(const struct recv_conf *c, const char *id)
{
	struct sign_pubkey key;
	struct manifest *m;
	char dir[PATH_MAX], err[512], hex[2 * SIGN_KEYID_LEN + 1];
	size_t i, ok = 0;
	unsigned j;
	bool *known;

	snprintf(dir, sizeof(dir), "%s/quarantine/%s/tree", c->staging_dir,
	    id);
	if (manifest_peek_bundle(dir, &m, err, sizeof(err)) != 0) {
		printf("# approvals not readable: %s\n", err);
		return;
	}
	known = calloc(m->n_approvals + 1, sizeof(*known));
	if (known == NULL)
		fatalx("out of memory");
	for (j = 0; j < c->n_approvers; j++) {
		if (sign_pubkey_load(c->approvers[j], &key, err,
		    sizeof(err)) != 0)
			continue;
		for (i = 0; i < m->n_approvals; i++)
			if (memcmp(m->approvals[i].key_id, key.id,
			    SIGN_KEYID_LEN) == 0)
				known[i] = true;
	}
	for (i = 0; i < m->n_approvals; i++) {
		sign_keyid_hex(hex, m->approvals[i].key_id);
		printf("approval=%s configured_approver=%s\n", hex,
		    known[i] ? "yes" : "no");
		ok += known[i];
	}
	printf("# %zu approval%s, %zu from configured approvers (%u "
	    "required)\n", m->n_approvals, plural(m->n_approvals), ok,
	    c->approval_threshold);
	free(known);
	manifest_free(m);
}

static uint64_t du_sum;

static int
du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	du_sum += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* Disk use of a tree, as du(1) counts it. */
static uint64_t
du_bytes(const char *path)
{
	du_sum = 0;
	(void)nftw(path, du_one, 16, FTW_PHYS);
	return du_sum;
}

/* Who is asking: the user, and who they became it from with sudo. */
static void
invoker(char *user, size_t len, unsigned *uid)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");

	*uid = (unsigned)getuid();
	if (sudo != NULL && sudo[0] != '\0')
		snprintf(user, len, "%s (via sudo as %s)", sudo,
		    pw != NULL ? pw->pw_name : "?");
	else
		snprintf(user, len, "%s", pw != NULL ? pw->pw_name : "?");
}

/* A transfer id given in full (16 hex digits). */
static bool
parse_transfer(const char *s, uint64_t *id)
{
	uint8_t raw[8];
	unsigned i;

	if (strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16 ||
	    util_unhex(raw, 8, s) != 0)
		return false;
	*id = 0;
	for (i = 0; i < 8; i++)
		*id = *id << 8 | raw[i];
	return true;
}

/*
 * Queues a request for the receiver, which alone changes a transfer's
 * state, and waits up to 60 s for its answer.  The exit status: 0 done,
 * 1 refused, 3 no answer (the receiver is not running: it acts on the
 * request when it starts).
 */
static int
ask_receiver(const struct recv_conf *c, struct request *rq)
{
	struct request_result res;
	char dir[PATH_MAX], name[64];
	int rc, i;

	invoker(rq->user, sizeof(rq->user), &rq->uid);
	snprintf(dir, sizeof(dir), "%s/" REQUEST_DIR, c->state_dir);
	rc = request_write(dir, rq, name, sizeof(name));
	if (rc != 0) {
		log_errx("cannot queue the request in %s: %s", dir,
		    strerror(-rc));
		return 1;
	}
	for (i = 0; i < 600; i++) {
		rc = request_read_answer(dir, name, &res);
		if (rc == 0) {
			printf("%s %016" PRIx64 ": %s: %s\n", res.ok ? "done" :
			    "refused", rq->transfer, res.state, res.detail);
			return res.ok ? 0 : 1;
		}
		usleep(100000);
	}
	printf("no answer from sluice-recv within 60 s (is it running?); "
	    "the request stays queued as %s/%s.req\n", dir, name);
	return 3;
}

/* sluice quarantine approve|release ..., sluice incomplete purge ID */
static int
quarantine_request(const struct recv_conf *c, int argc, char **argv,
    enum request_action action)
{
	static const struct option opts[] = {
		{ "signature", required_argument, NULL, 's' },
		{ "override", no_argument, NULL, 'o' },
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct request rq;
	const char *sigfile = NULL;
	uint8_t *buf;
	size_t len;
	int ch;

	memset(&rq, 0, sizeof(rq));
	rq.action = action;
	optind = 3;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': sigfile = optarg; break;
		case 'o': rq.override = true; break;
		case 'r':
			if (strlen(optarg) > REQUEST_REASON_MAX) {
				log_errx("--reason: at most %d bytes",
				    REQUEST_REASON_MAX);
				return 2;
			}
			snprintf(rq.reason, sizeof(rq.reason), "%s", optarg);
			break;
		default: return usage();
		}
	}
	if (optind != argc || argc < 3 || !parse_transfer(argv[2],
	    &rq.transfer)) {
		log_errx("give a transfer id (16 hex digits)");
		return usage();
	}
	if (action == REQUEST_APPROVE) {
		if (sigfile == NULL)
			return usage();
		if (util_read_file(sigfile, REQUEST_SIG_MAX, &buf, &len) != 0) {
			log_err("%s", sigfile);
			return 1;
		}
		while (len > 0 && buf[len - 1] == '\n')
			len--;
		snprintf(rq.signature, sizeof(rq.signature), "%.*s", (int)len,
		    (char *)buf);
		free(buf);
		if (strncmp(rq.signature, "approval ", 9) != 0 ||
		    strchr(rq.signature, '\n') != NULL) {
			log_errx("%s: not one approval line (made by sluice "
			    "bundle sign --detached)", sigfile);
			return 1;
		}
	}
	if (rq.override && rq.reason[0] == '\0') {
		log_errx("--override needs --reason TEXT (it goes into the "
		    "audit log)");
		return 2;
	}
	return ask_receiver(c, &rq);
}

/*
 * sluice incomplete list: the INCOMPLETE staging a receiver keeps (set
 * aside, timed out, waiting), from staging itself and its missing lists.
 */
static int
list_incomplete(const struct recv_conf *c)
{
	char path[PATH_MAX];
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(c->staging_dir);
	if (d == NULL) {
		log_err("%s", c->staging_dir);
		return 1;
	}
	printf("%-16s  %-10s %-20s %s\n", "TRANSFER", "SIZE", "LAST WRITE",
	    "MISSING");
	while ((de = readdir(d)) != NULL) {
		char when[32] = "-", missing[64] = "-";
		uint64_t id, bytes = 0;
		struct stat st;
		uint8_t *buf;
		size_t len;

		if (!parse_transfer(de->d_name, &id))
			continue;
		snprintf(path, sizeof(path), "%s/%s/progress", c->staging_dir,
		    de->d_name);
		if (stat(path, &st) == 0)
			util_rfc3339(when, sizeof(when),
			    (uint64_t)st.st_mtime * 1000000000ull);
		snprintf(path, sizeof(path), "%s/%s", c->staging_dir,
		    de->d_name);
		bytes = du_bytes(path);
		snprintf(path, sizeof(path), "%s/missing/%s", c->state_dir,
		    de->d_name);
		if (util_read_file(path, 64u << 20, &buf, &len) == 0) {
			unsigned long runs = 0;
			size_t i;

			for (i = 0; i + 7 < len; i++)
				if ((i == 0 || buf[i - 1] == '\n') &&
				    memcmp(buf + i, "chunks ", 7) == 0)
					runs++;
			snprintf(missing, sizeof(missing), "%lu run%s (sluice "
			    "missing %.8s...)", runs, runs == 1 ? "" : "s",
			    de->d_name);
			free(buf);
		}
		printf("%-16s  %8.1fM  %-20s %s\n", de->d_name, bytes / 1e6,
		    when, missing);
		n++;
	}
	closedir(d);
	if (n == 0)
		printf("no incomplete transfers kept\n");
	return 0;
}

static int
cmd_incomplete(int argc, char **argv)
{
	struct recv_conf *c = receiver_conf(&argc, argv);
	char id[NAME_MAX + 1];
	int rc;

	if (argc == 2 && strcmp(argv[1], "list") == 0)
		rc = list_incomplete(c);
	else if (argc >= 3 && strcmp(argv[1], "purge") == 0 &&
	    resolve_id(c->staging_dir, argv[2], id, sizeof(id)) != 0)
		rc = 1;
	else if (argc >= 3 && strcmp(argv[1], "purge") == 0)
		rc = (argv[2] = id, quarantine_request(c, argc, argv,
		    REQUEST_PURGE));
	else
		rc = usage();
	recv_conf_free(c);
	return rc;
}

static int
cmd_quarantine(int argc, char **argv)
{
	struct recv_conf *c = receiver_conf(&argc, argv);
	struct logfmt_record *rec = malloc(sizeof(*rec));
	char path[PATH_MAX], info[LOGFMT_MAX_TEXT + 1], id[NAME_MAX + 1];
	int rc = 0, qi;

	if (rec == NULL)
		fatalx("out of memory");
	/* The ID as typed may be a prefix: the whole one from here on. */
	if (argc >= 3) {
		snprintf(path, sizeof(path), "%s/quarantine", c->staging_dir);
		if (resolve_id(path, argv[2], id, sizeof(id)) != 0) {
			rc = 1;
			goto out;
		}
		argv[2] = id;
	}
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		if (list_quarantine(c, false) == 0)
			printf("no bundles held\n");
	} else if (argc == 3 && strcmp(argv[1], "show") == 0) {
		qi = quarantine_info(c, argv[2], rec, info, sizeof(info));
		if (qi != 0) {
			log_errx("%s: %s", argv[2], qi == -EBADMSG ?
			    "malformed info file" : "not in quarantine");
			rc = 1;
		} else {
			printf("%s", info);
			printf("tree=%s/quarantine/%s/tree\n", c->staging_dir,
			    argv[2]);
			show_approvals(c, argv[2]);
		}
	} else if (argc >= 3 && strcmp(argv[1], "approve") == 0) {
		rc = quarantine_request(c, argc, argv, REQUEST_APPROVE);
	} else if (argc >= 3 && strcmp(argv[1], "release") == 0) {
		rc = quarantine_request(c, argc, argv, REQUEST_RELEASE);
	} else if (argc == 3 && strcmp(argv[1], "purge") == 0) {
		const char *b, *v, *reason;

		/* A malformed info file still names a held bundle: it can be
		 * purged, recorded with what could not be read as "?". */
		qi = quarantine_info(c, argv[2], rec, NULL, 0);
		if (qi != 0 && qi != -EBADMSG) {
			log_warnx("%s: not in quarantine", argv[2]);
			rc = 1;
			goto out;
		}
		b = logfmt_get(rec, "bundle");
		v = logfmt_get(rec, "version");
		reason = logfmt_get(rec, "reason");
		b = b != NULL ? b : "?";
		v = v != NULL ? v : "?";
		reason = reason != NULL ? reason : "?";
		if (c->audit_log != NULL) {
			struct sign_seckey *sk;
			struct audit *a;
			char err[256], actor[300], head[PATH_MAX];
			struct audit_record r = { .decision = "PURGED",
				.bundle = b, .version = v, .reason = reason,
				.actor = actor,
				.detail = "purged by an operator" };
			uint8_t raw[8];
			unsigned i;

			if (util_unhex(raw, 8, argv[2]) == 0)
				for (i = 0; i < 8; i++)
					r.transfer = r.transfer << 8 | raw[i];
			purge_actor(actor, sizeof(actor));
			/* The daemon's head file, so purges move it too. */
			snprintf(head, sizeof(head), "%s/" AUDIT_HEAD_FILE,
			    c->state_dir);
			sk = sign_seckey_load(c->receiver_key, &rc, err,
			    sizeof(err));
			a = sk != NULL ? audit_open(c->audit_log, sk, head,
			    &rc) : NULL;
			if (a == NULL || audit_append(a, &r, NULL) != 0) {
				log_warnx("cannot record the purge in %s; "
				    "nothing purged", c->audit_log);
				audit_close(a);
				sign_seckey_free(sk);
				rc = 1;
				goto out;
			}
			audit_close(a);
			sign_seckey_free(sk);
		}
		snprintf(path, sizeof(path), "%s/quarantine/%s",
		    c->staging_dir, argv[2]);
		rc = util_rmtree(path) == 0 ? 0 : 1;
		if (rc == 0) {
			char eb[256], ev[256];

			logfmt_escape(eb, sizeof(eb), b);
			logfmt_escape(ev, sizeof(ev), v);
			printf("purged %s (%s %s)\n", argv[2], eb, ev);
		} else {
			log_warn("removing %s", path);
		}
	} else {
		rc = usage();
	}
out:
	free(rec);
	recv_conf_free(c);
	return rc;
}

static int
cmd_missing(int argc, char **argv)
{
	struct recv_conf *c = receiver_conf(&argc, argv);
	char path[PATH_MAX];
	uint8_t *buf;
	size_t n;
	char id[NAME_MAX + 1];
	int rc = 1;

	if (argc != 2)
		return usage();
	snprintf(path, sizeof(path), "%s/missing", c->state_dir);
	if (resolve_id(path, argv[1], id, sizeof(id)) != 0) {
		recv_conf_free(c);
		return 1;
	}
	argv[1] = id;
	snprintf(path, sizeof(path), "%s/missing/%s", c->state_dir, argv[1]);
	if (util_read_file(path, 64u << 20, &buf, &n) == 0) {
		fwrite(buf, 1, n, stdout);
		free(buf);
		rc = 0;
	} else {
		log_errx("%s: no missing list (not INCOMPLETE, or already "
		    "complete)", argv[1]);
	}
	recv_conf_free(c);
	return rc;
}

/*
 * sluice spool add: the one right way into a sender's spool (a copy,
 * fsynced, then renamed in); sluice spool list: the queue in the order
 * it will be sent.
 */
static int
cmd_spool(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "move", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	struct sender_conf *conf = NULL;
	const char *conf_path = NULL, *dir = NULL;
	char err[512] = "", entry[NAME_MAX + 1];
	bool move = false, list;
	int ch, rc = 0, i;

	if (argc < 2 || (strcmp(argv[1], "add") != 0 &&
	    strcmp(argv[1], "list") != 0))
		return usage();
	list = strcmp(argv[1], "list") == 0;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:s:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 's': dir = optarg; break;
		case 'm': move = true; break;
		default: return usage();
		}
	}
	if ((conf_path == NULL) == (dir == NULL) || (list && optind != argc) ||
	    (!list && optind == argc))
		return usage();
	if (conf_path != NULL) {
		conf = sender_conf_load(conf_path, err, sizeof(err));
		if (conf == NULL)
			fatalx("%s", err);
		if (conf->spool_dir == NULL)
			fatalx("%s: no spool_dir", conf_path);
		dir = conf->spool_dir;
	}
	if (list) {
		struct spool sp = { .dir = (char *)dir, .quiet = true };
		struct spool_entry **order;
		size_t n, j;
		uint64_t now = util_realtime_ns();

		if ((rc = spool_scan(&sp)) != 0)
			fatalx("%s: %s", dir, strerror(-rc));
		order = calloc(sp.n + 1, sizeof(*order));
		if (order == NULL)
			fatalx("out of memory");
		n = spool_order(&sp, order, sp.n);
		printf("%-4s %-8s %10s  %s\n", "#", "priority", "queued s",
		    "entry");
		for (j = 0; j < n; j++)
			printf("%-4zu %-8d %10.0f  %s\n", j + 1,
			    order[j]->priority,
			    ((double)now - (double)order[j]->ctime_ns) / 1e9,
			    order[j]->name);
		free(order);
		free(sp.e);
		sender_conf_free(conf);
		return 0;
	}
	for (i = optind; i < argc; i++) {
		err[0] = '\0';
		if (spool_add(dir, argv[i], move, entry, sizeof(entry), err,
		    sizeof(err)) != 0) {
			log_errx("%s: %s", argv[i], err);
			rc = 1;
			continue;
		}
		printf("queued %s as %s/%s\n", argv[i], dir, entry);
	}
	sender_conf_free(conf);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t i;

	log_init("sluice", 0);
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		help(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("sluice %s\n", SLUICE_VERSION_STRING);
		return 0;
	}
	if (sign_init() != 0)
		fatalx("libsodium failed to initialise");
	for (i = 0; i < UTIL_ARRAY_LEN(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage();
}

/* ---- publish ------------------------------------------------------------ */

struct publish_row {
	char bundle[64], version[64], store[65], reason[160], left[16];
	enum pub_state state;
};

struct publish_rows {
	const struct pub_conf *c;
	struct publish_row *row;
	size_t n, cap;
};

static void
publish_collect(const struct pub_record *r, void *arg)
{
	struct publish_rows *rs = arg;
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct pub_entry *e = &r->e[i];
		struct publish_row *w;

		if (rs->n == rs->cap) {
			size_t cap = rs->cap ? 2 * rs->cap : 64;
			void *p = reallocarray(rs->row, cap, sizeof(*w));

			if (p == NULL)
				return;
			rs->row = p;
			rs->cap = cap;
		}
		w = &rs->row[rs->n++];
		logfmt_escape(w->bundle, sizeof(w->bundle), r->name);
		logfmt_escape(w->version, sizeof(w->version), r->version);
		snprintf(w->store, sizeof(w->store), "%s", e->store);
		logfmt_escape(w->reason, sizeof(w->reason), e->reason);
		w->state = e->state;
		if (e->state == PUB_PUBLISHED)
			snprintf(w->left, sizeof(w->left), "-");
		else
			snprintf(w->left, sizeof(w->left), "%u", e->final ||
			    e->failures > rs->c->retries ? 0 :
			    rs->c->retries + 1 - e->failures);
	}
}

/* By bundle, then version in release order, then store. */
static int
publish_row_cmp(const void *a, const void *b)
{
	const struct publish_row *x = a, *y = b;
	int d = strcmp(x->bundle, y->bundle);

	if (d == 0)
		d = manifest_version_cmp(x->version, y->version);
	return d != 0 ? d : strcmp(x->store, y->store);
}

/*
 * `sluice publish retry` does not touch a state itself: it leaves a
 * request in state_dir/retry/, which sluice-publish (the one owner of the
 * states) applies at its next scan, at once when it is running (inotify)
 * or at its next start.  PUBLISHED entries are never reset.
 */
static int
cmd_publish(int argc, char **argv)
{
	struct pub_conf *c;
	struct pub_record *r = NULL;
	const char *path = DEFAULT_PUBLISH_CONF, *store = NULL;
	char err[512];
	int i, j, rc = 1, n = 0;

	for (i = j = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			store = argv[++i];
		else
			argv[j++] = argv[i];
	}
	argc = j;
	if (argc < 2 || (strcmp(argv[1], "status") == 0 && argc != 2) ||
	    (strcmp(argv[1], "retry") == 0 && argc != 4))
		return usage();
	if ((c = pub_conf_load(path, err, sizeof(err))) == NULL) {
		log_errx("%s", err);
		return 1;
	}
	if (strcmp(argv[1], "status") == 0) {
		printf("%-20s %-14s %-12s %-14s %-20s %s\n", "BUNDLE",
		    "VERSION", "STORE", "STATE", "REASON", "RETRIES");
		struct publish_rows rs = { .c = c };
		size_t k;

		if ((rc = pub_record_each(c->state_dir, publish_collect,
		    &rs)) != 0)
			log_errx("%s: %s", c->state_dir, strerror(-rc));
		if (rs.n > 0)
			qsort(rs.row, rs.n, sizeof(*rs.row), publish_row_cmp);
		for (k = 0; k < rs.n; k++)
			printf("%-20.20s %-14.14s %-12.12s %-14s %-20s %s\n",
			    rs.row[k].bundle, rs.row[k].version,
			    rs.row[k].store, pub_state_name(rs.row[k].state),
			    rs.row[k].reason, rs.row[k].left);
		free(rs.row);
		rc = rc != 0;
	} else if (strcmp(argv[1], "retry") == 0) {
		if (store != NULL && pub_conf_store(c, store) == NULL) {
			log_errx("%s: no store is called %s", path, store);
			goto out;
		}
		if ((r = malloc(sizeof(*r))) == NULL ||
		    pub_record_load(c->state_dir, argv[2], argv[3], r) != 0 ||
		    r->n == 0) {
			log_errx("%s %s: sluice-publish has no state for it",
			    argv[2], argv[3]);
			goto out;
		}
		for (i = 0; i < (int)r->n; i++)
			if ((store == NULL || strcmp(store, r->e[i].store) ==
			    0) && r->e[i].state != PUB_PUBLISHED)
				n++;
		if (n == 0) {
			log_errx("%s %s: nothing to retry (already "
			    "published%s%s)", argv[2], argv[3],
			    store != NULL ? " to " : "", store != NULL ?
			    store : "");
			goto out;
		}
		if ((rc = pub_retry_request(c->state_dir, argv[2], argv[3],
		    store)) != 0) {
			log_errx("%s: %s", c->state_dir, strerror(-rc));
			rc = 1;
			goto out;
		}
		printf("retry of %s %s requested for %d store%s; sluice-publish "
		    "takes it at its next scan\n", argv[2], argv[3], n,
		    plural((uint64_t)n));
	} else
		rc = usage();
out:
	free(r);
	pub_conf_free(c);
	return rc;
}
