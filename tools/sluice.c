/*
 * sluice: the operator's command-line tool.  Subcommands are a table;
 * each returns the process exit status (0 ok, 1 failure, 2 usage).
 */
#include "common/audit.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/manifest.h"
#include "common/sign.h"
#include "common/spool.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static int cmd_spool(int argc, char **argv);

static const struct command commands[] = {
	{ "keygen", "-o PREFIX", cmd_keygen },
	{ "key", "show FILE", cmd_key },
	{ "bundle", "create DIR --name NAME --version VERSION [--expires "
	    "RFC3339]\n\t\t[--changes TEXT] [--reason TEXT] [--rollback-to "
	    "VERSION]\n\t\t[--priority N] [--meta KEY=VALUE]...\n"
	    "  sluice bundle sign DIR --key APPROVER.key\n"
	    "  sluice bundle verify DIR --approvers PUB... --threshold N",
	    cmd_bundle },
	{ "audit", "verify FILE --key RECEIVER.pub [--head AUDIT.head]",
	    cmd_audit },
	{ "status", "-c RECEIVER.conf", cmd_status },
	{ "quarantine", "list | show ID | purge ID  -c RECEIVER.conf",
	    cmd_quarantine },
	{ "missing", "ID -c RECEIVER.conf  (> missing.txt)", cmd_missing },
	{ "spool", "add [--move] -c SENDER.conf | -s SPOOL_DIR  BUNDLE...\n"
	    "  sluice spool list -c SENDER.conf | -s SPOOL_DIR", cmd_spool },
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
		sign_pubkey_base64(b64, &pub);
		printf("type secret\nid %s\npublic-key %s\n", hex, b64);
		return 0;
	}
	if (sign_pubkey_load(path, &pub, err, sizeof(err)) != 0) {
		log_warnx("%s: %s", path, err);
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

/* Finds "-c FILE" among the arguments and loads it; the rest stay. */
static struct recv_conf *
receiver_conf(int *argc, char **argv)
{
	struct recv_conf *c;
	char err[512];
	int i, j;

	for (i = 1; i + 1 < *argc; i++) {
		if (strcmp(argv[i], "-c") != 0)
			continue;
		c = recv_conf_load(argv[i + 1], err, sizeof(err));
		if (c == NULL) {
			log_warnx("%s", err);
			exit(1);
		}
		for (j = i; j + 2 <= *argc; j++)
			argv[j] = argv[j + 2];
		*argc -= 2;
		return c;
	}
	exit(usage());
}

/* Value of key= in a logfmt or key=value line (unquoted values only
 * unescaped minimally: quotes are stripped). */
static void
lf_get(const char *line, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "%s=", key);
	out[0] = '\0';
	for (p = strstr(line, pat); p != NULL; p = strstr(p + 1, pat))
		if (p == line || p[-1] == ' ' || p[-1] == '\n')
			break;
	if (p == NULL)
		return;
	p += strlen(pat);
	if (*p == '"') {
		p++;
		while (*p != '\0' && *p != '"' && n + 1 < len) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			out[n++] = *p++;
		}
	} else {
		while (*p != '\0' && *p != ' ' && *p != '\n' && n + 1 < len)
			out[n++] = *p++;
	}
	out[n] = '\0';
}

static void
print_row(const char *id, const char *bundle, const char *version,
    const char *state, const char *progress, const char *age,
    const char *reason)
{
	printf("%-16s  %-20.20s %-14.14s %-11s %-14s %-8s %s\n", id, bundle,
	    version, state, progress, age, reason);
}

static void
quarantine_info(const struct recv_conf *c, const char *id, char *info,
    size_t len)
{
	char path[PATH_MAX];
	uint8_t *buf;
	size_t n;

	info[0] = '\0';
	if (snprintf(path, sizeof(path), "%s/quarantine/%s/info",
	    c->staging_dir, id) >= (int)sizeof(path) ||
	    util_read_file(path, 8192, &buf, &n) != 0)
		return;
	snprintf(info, len, "%s", (char *)buf);
	free(buf);
}

/* Held bundles: the directories under staging/quarantine. */
static int
list_quarantine(const struct recv_conf *c, bool as_rows)
{
	char path[PATH_MAX], info[8192], b[256], v[256], reason[128],
	    when[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/quarantine", c->staging_dir);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		quarantine_info(c, de->d_name, info, sizeof(info));
		lf_get(info, "bundle", b, sizeof(b));
		lf_get(info, "version", v, sizeof(v));
		lf_get(info, "reason", reason, sizeof(reason));
		lf_get(info, "quarantined", when, sizeof(when));
		if (as_rows)
			print_row(de->d_name, b, v, "QUARANTINED", "held",
			    "-", reason);
		else
			printf("%s  %s %s  %s  since %s\n", de->d_name, b, v,
			    reason, when);
		n++;
	}
	closedir(d);
	return n;
}

static int
cmd_status(int argc, char **argv)
{
	struct recv_conf *c = receiver_conf(&argc, argv);
	char path[PATH_MAX], id[32], b[256], v[256], st[32], dn[32], tot[32],
	    age[32], prog[48], ages[40], kept[256] = "";
	uint8_t *buf;
	size_t n;
	char *line, *save;

	if (argc != 1)
		return usage();
	print_row("TRANSFER", "BUNDLE", "VERSION", "STATE", "PROGRESS", "AGE",
	    "REASON");
	snprintf(path, sizeof(path), "%s/status", c->state_dir);
	if (util_read_file(path, 1 << 20, &buf, &n) == 0) {
		for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if (line[0] == '#')
				continue;
			if (strncmp(line, "kept=", 5) == 0) {
				char cnt[32], bytes[32];

				lf_get(line, "kept", st, sizeof(st));
				lf_get(line, "count", cnt, sizeof(cnt));
				lf_get(line, "bytes", bytes, sizeof(bytes));
				snprintf(kept + strlen(kept), sizeof(kept) -
				    strlen(kept), "%s%s %s (%.1f MB)",
				    kept[0] ? ", " : "", cnt, strcmp(st,
				    "quarantine") == 0 ? "held in quarantine" :
				    "incomplete set aside",
				    strtod(bytes, NULL) / 1e6);
				continue;
			}
			lf_get(line, "transfer", id, sizeof(id));
			lf_get(line, "bundle", b, sizeof(b));
			lf_get(line, "version", v, sizeof(v));
			lf_get(line, "state", st, sizeof(st));
			lf_get(line, "chunks_done", dn, sizeof(dn));
			lf_get(line, "chunks_total", tot, sizeof(tot));
			lf_get(line, "age", age, sizeof(age));
			snprintf(prog, sizeof(prog), "%s/%s", dn, tot);
			snprintf(ages, sizeof(ages), "%ss", age);
			print_row(id, b, v, st, prog, ages, "-");
		}
		free(buf);
	}
	list_quarantine(c, true);
	if (kept[0] != '\0')
		printf("kept in staging: %s; removed after staging_retention "
		    "(%.0f s)\n", kept, c->staging_retention);
	recv_conf_free(c);
	return 0;
}

static int
cmd_quarantine(int argc, char **argv)
{
	struct recv_conf *c = receiver_conf(&argc, argv);
	char path[PATH_MAX], info[8192];
	int rc = 0;

	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		if (list_quarantine(c, false) == 0)
			printf("no bundles held\n");
	} else if (argc == 3 && strcmp(argv[1], "show") == 0) {
		quarantine_info(c, argv[2], info, sizeof(info));
		if (info[0] == '\0' || strchr(argv[2], '/') != NULL) {
			log_warnx("%s: not in quarantine", argv[2]);
			rc = 1;
		} else {
			printf("%s", info);
			printf("tree=%s/quarantine/%s/tree\n", c->staging_dir,
			    argv[2]);
		}
	} else if (argc == 3 && strcmp(argv[1], "purge") == 0) {
		char b[256], v[256], reason[128];

		quarantine_info(c, argv[2], info, sizeof(info));
		if (info[0] == '\0' || strchr(argv[2], '/') != NULL ||
		    argv[2][0] == '.') {
			log_warnx("%s: not in quarantine", argv[2]);
			rc = 1;
			goto out;
		}
		lf_get(info, "bundle", b, sizeof(b));
		lf_get(info, "version", v, sizeof(v));
		lf_get(info, "reason", reason, sizeof(reason));
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
		if (rc == 0)
			printf("purged %s (%s %s)\n", argv[2], b, v);
		else
			log_warn("removing %s", path);
	} else {
		rc = usage();
	}
out:
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
	int rc = 1;

	if (argc != 2 || strchr(argv[1], '/') != NULL)
		return usage();
	snprintf(path, sizeof(path), "%s/missing/%s", c->state_dir, argv[1]);
	if (util_read_file(path, 64u << 20, &buf, &n) == 0) {
		fwrite(buf, 1, n, stdout);
		free(buf);
		rc = 0;
	} else {
		log_warnx("%s: no missing list (not INCOMPLETE, or already "
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
			log_warnx("%s: %s", argv[i], err);
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
	if (sign_init() != 0)
		fatalx("libsodium failed to initialise");
	for (i = 0; i < UTIL_ARRAY_LEN(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return usage();
}
