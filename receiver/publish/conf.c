/*
 * publish.conf: the publisher's configuration, read with libconfig into a
 * struct pub_conf that is const from then on.  Like common/conf.c, every
 * setting is known by name (a misspelt key is an error, never a silent
 * default), every error names file, line and setting, and relative paths
 * are taken from the configuration file's directory.  It is a file of its
 * own rather than a third table in common/conf.c because its shape is
 * not flat: a list of stores whose keys depend on their type, and rules
 * that refer to stores by name.
 *
 * Credentials files are checked by pub_conf_check_secrets, not here:
 * `sluice publish status` loads this file as the operator, who need not
 * be able to read the publisher's secrets.
 */
#include "receiver/publish/publish.h"
#include "common/util.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PUB_MAX_STORES 64
#define PUB_MAX_RULES 256

struct ctx {
	const char *file;
	char *err;
	size_t errlen;
	int failed;
};

static int cerr(struct ctx *c, const config_setting_t *s, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
cerr(struct ctx *c, const config_setting_t *s, const char *name,
    const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (c->failed++)
		return -1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s != NULL && config_setting_source_line(s) > 0)
		snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file,
		    config_setting_source_line(s), name, why);
	else
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, name, why);
	return -1;
}

static int
get_string(struct ctx *c, const config_setting_t *s, const char *name,
    char **out)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cerr(c, s, name, "must be a string");
	v = config_setting_get_string(s);
	if (*out != NULL)
		return cerr(c, s, name, "given twice");
	if ((*out = strdup(v)) == NULL)
		return cerr(c, s, name, "out of memory");
	return 0;
}

static int
get_path(struct ctx *c, const config_setting_t *s, const char *name,
    char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cerr(c, s, name, "must be a string");
	if (*config_setting_get_string(s) == '\0')
		return cerr(c, s, name, "must not be empty");
	if (*out != NULL)
		return cerr(c, s, name, "given twice");
	*out = util_path_relative_to(c->file, config_setting_get_string(s));
	return *out != NULL ? 0 : cerr(c, s, name, "out of memory");
}

static int
get_number(struct ctx *c, const config_setting_t *s, const char *name,
    double min, double max, double *out)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		*out = (double)config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		*out = config_setting_get_float(s);
		break;
	default:
		return cerr(c, s, name, "must be a number");
	}
	if (!(*out >= min && *out <= max))
		return cerr(c, s, name, "must be between %g and %g", min, max);
	return 0;
}

/* A size: an integer, or a string "64M" (K/M/G/T are powers of 1024 here:
 * S3's part limits are 5 MiB and 5 GiB). */
static int
get_size(struct ctx *c, const config_setting_t *s, const char *name,
    uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v;
	char *end;
	unsigned long long n;
	int shift = 0;

	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		long long i = config_setting_get_int64(s);

		if (i < 0)
			return cerr(c, s, name, "must not be negative");
		n = (unsigned long long)i;
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(s);
		errno = 0;
		n = strtoull(v, &end, 10);
		if (end == v || errno != 0 || *v == '-')
			return cerr(c, s, name, "not a size: \"%s\"", v);
		switch (*end) {
		case 'T': shift += 10; /* FALLTHROUGH */
		case 'G': shift += 10; /* FALLTHROUGH */
		case 'M': shift += 10; /* FALLTHROUGH */
		case 'K': shift += 10; end++; break;
		default: break;
		}
		if (*end != '\0' || (shift > 0 && n > (UINT64_MAX >> shift)))
			return cerr(c, s, name, "not a size: \"%s\"", v);
		n <<= shift;
	} else
		return cerr(c, s, name, "must be a size (\"64M\" or bytes)");
	if (n < min || n > max)
		return cerr(c, s, name, "must be between %llu and %llu bytes",
		    (unsigned long long)min, (unsigned long long)max);
	*out = n;
	return 0;
}

static int
get_bool(struct ctx *c, const config_setting_t *s, const char *name,
    bool *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cerr(c, s, name, "must be true or false");
	*out = config_setting_get_bool(s) != 0;
	return 0;
}

/* Store names appear in logs, metrics labels and state files: plain. */
static bool
plain_name(const char *s)
{
	size_t i;

	if (*s == '\0' || *s == '.' || strlen(s) > 64)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* Which keys each type takes; "name" and "type" are everyone's. */
static bool
key_allowed(enum store_type t, const char *k)
{
	static const char *const dir_keys[] = { "path", NULL };
	static const char *const oci_keys[] = { "registry", "tls_verify",
	    "credentials", NULL };
	static const char *const s3_keys[] = { "endpoint", "bucket", "prefix",
	    "region", "credentials", "part_size", NULL };
	const char *const *keys = t == STORE_DIRECTORY ? dir_keys :
	    t == STORE_OCI ? oci_keys : s3_keys;
	size_t i;

	for (i = 0; keys[i] != NULL; i++)
		if (strcmp(keys[i], k) == 0)
			return true;
	return false;
}

static int
load_store(struct ctx *c, config_setting_t *g, struct pub_store *st)
{
	config_setting_t *e, *t = config_setting_get_member(g, "type");
	const char *tn, *k;
	char where[128];
	int i, rc = 0;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return cerr(c, g, "stores", "each store is a { ... } group");
	e = config_setting_get_member(g, "name");
	if (e == NULL)
		return cerr(c, g, "stores", "a store has no name");
	if (get_string(c, e, "stores.name", &st->name) != 0)
		return -1;
	if (!plain_name(st->name))
		return cerr(c, e, "stores.name", "\"%s\": letters, digits, "
		    "'.', '_' and '-' only, at most 64", st->name);
	snprintf(where, sizeof(where), "stores.%s", st->name);
	if (t == NULL || config_setting_type(t) != CONFIG_TYPE_STRING)
		return cerr(c, g, where, "type: \"directory\", \"oci\" or "
		    "\"s3\" is required");
	tn = config_setting_get_string(t);
	if (strcmp(tn, "directory") == 0)
		st->type = STORE_DIRECTORY;
	else if (strcmp(tn, "oci") == 0)
		st->type = STORE_OCI;
	else if (strcmp(tn, "s3") == 0)
		st->type = STORE_S3;
	else
		return cerr(c, t, where, "type \"%s\": not directory, oci or "
		    "s3", tn);
	st->tls_verify = true;
	st->part_size = 64ull << 20;
	for (i = 0; rc == 0 && i < config_setting_length(g); i++) {
		char full[192];

		e = config_setting_get_elem(g, (unsigned)i);
		k = config_setting_name(e);
		snprintf(full, sizeof(full), "%s.%s", where, k);
		if (strcmp(k, "name") == 0 || strcmp(k, "type") == 0)
			continue;
		if (!key_allowed(st->type, k))
			rc = cerr(c, e, full, "unknown setting for a store of "
			    "type %s", tn);
		else if (strcmp(k, "path") == 0)
			rc = get_path(c, e, full, &st->path);
		else if (strcmp(k, "registry") == 0) {
			rc = get_string(c, e, full, &st->registry);
			if (rc == 0 && util_check_hostport(st->registry) != 0)
				rc = cerr(c, e, full, "\"%s\": not host:port",
				    st->registry);
		} else if (strcmp(k, "tls_verify") == 0)
			rc = get_bool(c, e, full, &st->tls_verify);
		else if (strcmp(k, "credentials") == 0)
			rc = get_path(c, e, full, st->type == STORE_OCI ?
			    &st->oci_credentials : &st->credentials);
		else if (strcmp(k, "endpoint") == 0) {
			rc = get_string(c, e, full, &st->endpoint);
			if (rc == 0 && strncmp(st->endpoint, "http://", 7) &&
			    strncmp(st->endpoint, "https://", 8))
				rc = cerr(c, e, full, "\"%s\": not an http:// "
				    "or https:// URL", st->endpoint);
		} else if (strcmp(k, "bucket") == 0)
			rc = get_string(c, e, full, &st->bucket);
		else if (strcmp(k, "prefix") == 0)
			rc = get_string(c, e, full, &st->prefix);
		else if (strcmp(k, "region") == 0)
			rc = get_string(c, e, full, &st->region);
		else if (strcmp(k, "part_size") == 0)
			rc = get_size(c, e, full, 5ull << 20, 5ull << 30,
			    &st->part_size);
	}
	if (rc != 0)
		return -1;
	switch (st->type) {
	case STORE_DIRECTORY:
		if (st->path == NULL)
			return cerr(c, g, where, "path is required");
		break;
	case STORE_OCI:
		if (st->registry == NULL)
			return cerr(c, g, where, "registry is required");
		break;
	case STORE_S3:
		if (st->endpoint == NULL || st->bucket == NULL ||
		    st->credentials == NULL)
			return cerr(c, g, where, "endpoint, bucket and "
			    "credentials are required");
		if (st->region == NULL && (st->region = strdup("us-east-1")) ==
		    NULL)
			return cerr(c, g, where, "out of memory");
		/* "" or "a/b/": the object key is prefix + NAME/... */
		if (st->prefix == NULL)
			st->prefix = strdup("");
		else if (*st->prefix != '\0' &&
		    st->prefix[strlen(st->prefix) - 1] != '/') {
			char *p;

			if (asprintf(&p, "%s/", st->prefix) < 0)
				p = NULL;
			free(st->prefix);
			st->prefix = p;
		}
		if (st->prefix == NULL)
			return cerr(c, g, where, "out of memory");
		break;
	}
	return 0;
}

static int
load_stores(struct ctx *c, config_setting_t *l, struct pub_conf *pc)
{
	int n = config_setting_length(l), i;
	size_t j;

	if (config_setting_type(l) != CONFIG_TYPE_LIST || n < 1)
		return cerr(c, l, "stores", "must be a non-empty list ( ... )");
	if (n > PUB_MAX_STORES)
		return cerr(c, l, "stores", "at most %d", PUB_MAX_STORES);
	if ((pc->stores = calloc((size_t)n, sizeof(*pc->stores))) == NULL)
		return cerr(c, l, "stores", "out of memory");
	for (i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(l, (unsigned)i);

		pc->n_stores++;
		if (load_store(c, g, &pc->stores[i]) != 0)
			return -1;
		for (j = 0; j < (size_t)i; j++)
			if (strcmp(pc->stores[j].name, pc->stores[i].name) == 0)
				return cerr(c, g, "stores.name", "\"%s\" is "
				    "used twice", pc->stores[i].name);
	}
	return 0;
}

static int
load_rule(struct ctx *c, config_setting_t *g, struct pub_conf *pc,
    struct pub_rule *r)
{
	config_setting_t *e;
	char *anchored;
	int i, n, rc;
	size_t j;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return cerr(c, g, "rules", "each rule is a { ... } group");
	for (i = 0; i < config_setting_length(g); i++) {
		e = config_setting_get_elem(g, (unsigned)i);
		if (strcmp(config_setting_name(e), "bundles") &&
		    strcmp(config_setting_name(e), "stores"))
			return cerr(c, e, "rules", "unknown setting %s",
			    config_setting_name(e));
	}
	e = config_setting_get_member(g, "bundles");
	if (e == NULL)
		return cerr(c, g, "rules.bundles", "is required");
	if (get_string(c, e, "rules.bundles", &r->pattern) != 0)
		return -1;
	/* Anchored to the whole name: ".*-base" must not match
	 * "evil-base-x". */
	if (asprintf(&anchored, "^(%s)$", r->pattern) < 0) {
		free(r->pattern);
		r->pattern = NULL; /* nothing compiled to regfree */
		return cerr(c, e, "rules.bundles", "out of memory");
	}
	rc = regcomp(&r->re, anchored, REG_EXTENDED | REG_NOSUB);
	free(anchored);
	if (rc != 0) {
		char why[128];

		regerror(rc, NULL, why, sizeof(why));
		free(r->pattern);
		r->pattern = NULL; /* so that _free does not regfree it */
		return cerr(c, e, "rules.bundles", "bad regular expression: "
		    "%s", why);
	}
	e = config_setting_get_member(g, "stores");
	if (e == NULL || config_setting_type(e) != CONFIG_TYPE_ARRAY ||
	    (n = config_setting_length(e)) < 1)
		return cerr(c, e != NULL ? e : g, "rules.stores", "must be a "
		    "non-empty array [ \"name\", ... ] of store names");
	if ((r->stores = calloc((size_t)n, sizeof(*r->stores))) == NULL)
		return cerr(c, e, "rules.stores", "out of memory");
	for (i = 0; i < n; i++) {
		config_setting_t *v = config_setting_get_elem(e, (unsigned)i);
		const char *name;

		if (config_setting_type(v) != CONFIG_TYPE_STRING)
			return cerr(c, e, "rules.stores", "must hold strings");
		name = config_setting_get_string(v);
		for (j = 0; j < pc->n_stores; j++)
			if (strcmp(pc->stores[j].name, name) == 0)
				break;
		if (j == pc->n_stores)
			return cerr(c, e, "rules.stores", "no store is called "
			    "\"%s\"", name);
		r->stores[r->n_stores++] = j;
	}
	return 0;
}

static int
load_rules(struct ctx *c, config_setting_t *l, struct pub_conf *pc)
{
	int n = config_setting_length(l), i;

	if (config_setting_type(l) != CONFIG_TYPE_LIST || n < 1)
		return cerr(c, l, "rules", "must be a non-empty list ( ... )");
	if (n > PUB_MAX_RULES)
		return cerr(c, l, "rules", "at most %d", PUB_MAX_RULES);
	if ((pc->rules = calloc((size_t)n, sizeof(*pc->rules))) == NULL)
		return cerr(c, l, "rules", "out of memory");
	for (i = 0; i < n; i++) {
		pc->n_rules++;
		if (load_rule(c, config_setting_get_elem(l, (unsigned)i), pc,
		    &pc->rules[i]) != 0)
			return -1;
	}
	return 0;
}

static int
load_root(struct ctx *c, config_setting_t *root, struct pub_conf *pc)
{
	config_setting_t *stores = NULL, *rules = NULL;
	double v;
	int i;

	pc->retries = 20;
	pc->retry_backoff = 5;
	pc->retry_backoff_max = 600;
	pc->rescan_interval = 60;
	for (i = 0; i < config_setting_length(root); i++) {
		config_setting_t *e = config_setting_get_elem(root,
		    (unsigned)i);
		const char *k = config_setting_name(e);
		int rc;

		if (strcmp(k, "store_dir") == 0)
			rc = get_path(c, e, k, &pc->store_dir);
		else if (strcmp(k, "state_dir") == 0)
			rc = get_path(c, e, k, &pc->state_dir);
		else if (strcmp(k, "publish_log") == 0)
			rc = get_path(c, e, k, &pc->publish_log);
		else if (strcmp(k, "audit_log") == 0)
			rc = get_path(c, e, k, &pc->audit_log);
		else if (strcmp(k, "audit_key") == 0)
			rc = get_path(c, e, k, &pc->audit_key);
		else if (strcmp(k, "metrics_file") == 0)
			rc = get_path(c, e, k, &pc->metrics_file);
		else if (strcmp(k, "retries") == 0) {
			rc = get_number(c, e, k, 0, 1000, &v);
			pc->retries = (unsigned)v;
		} else if (strcmp(k, "retry_backoff") == 0)
			rc = get_number(c, e, k, 0.1, 3600, &pc->retry_backoff);
		else if (strcmp(k, "retry_backoff_max") == 0)
			rc = get_number(c, e, k, 0.1, 86400,
			    &pc->retry_backoff_max);
		else if (strcmp(k, "rescan_interval") == 0)
			rc = get_number(c, e, k, 0.1, 86400,
			    &pc->rescan_interval);
		else if (strcmp(k, "stores") == 0) {
			stores = e;
			rc = 0;
		} else if (strcmp(k, "rules") == 0) {
			rules = e;
			rc = 0;
		} else
			rc = cerr(c, e, k, "unknown setting");
		if (rc != 0)
			return -1;
	}
	if (pc->store_dir == NULL)
		return cerr(c, NULL, "store_dir", "is required");
	if (pc->state_dir == NULL)
		return cerr(c, NULL, "state_dir", "is required");
	if (pc->publish_log == NULL)
		return cerr(c, NULL, "publish_log", "is required");
	if (stores == NULL)
		return cerr(c, NULL, "stores", "is required");
	if (rules == NULL)
		return cerr(c, NULL, "rules", "is required");
	if (load_stores(c, stores, pc) != 0 || load_rules(c, rules, pc) != 0)
		return -1;
	if (pc->audit_log == NULL && asprintf(&pc->audit_log,
	    "%s/publish-audit.log", pc->state_dir) < 0) {
		pc->audit_log = NULL;
		return cerr(c, NULL, "audit_log", "out of memory");
	}
	return 0;
}

struct pub_conf *
pub_conf_load(const char *path, char *err, size_t errlen)
{
	struct pub_conf *pc = calloc(1, sizeof(*pc));
	struct ctx c = { path, err, errlen, 0 };
	config_t cfg;

	if (pc == NULL || (pc->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(pc);
		return NULL;
	}
	config_init(&cfg);
	if (config_read_file(&cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d: %s", path,
			    config_error_line(&cfg), config_error_text(&cfg));
		c.failed = 1;
	} else
		load_root(&c, config_root_setting(&cfg), pc);
	config_destroy(&cfg);
	if (c.failed) {
		pub_conf_free(pc);
		return NULL;
	}
	return pc;
}

void
pub_conf_free(struct pub_conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_stores; i++) {
		struct pub_store *s = &c->stores[i];

		free(s->name);
		free(s->path);
		free(s->registry);
		free(s->oci_credentials);
		free(s->endpoint);
		free(s->bucket);
		free(s->prefix);
		free(s->region);
		free(s->credentials);
	}
	for (i = 0; i < c->n_rules; i++) {
		if (c->rules[i].pattern != NULL)
			regfree(&c->rules[i].re);
		free(c->rules[i].pattern);
		free(c->rules[i].stores);
	}
	free(c->stores);
	free(c->rules);
	free(c->path);
	free(c->store_dir);
	free(c->state_dir);
	free(c->publish_log);
	free(c->audit_log);
	free(c->audit_key);
	free(c->metrics_file);
	free(c);
}

static int
check_secret(const char *file, const char *setting, char *err, size_t errlen)
{
	struct stat st;

	if (file == NULL)
		return 0;
	if (stat(file, &st) != 0) {
		util_seterr(err, errlen, "%s: %s: %s", setting, file,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
	    st.st_uid != geteuid()) {
		util_seterr(err, errlen, "%s: %s: refused: a credentials file "
		    "must be a regular file owned by this user (uid %u) with "
		    "mode 0600 or stricter", setting, file,
		    (unsigned)geteuid());
		return -1;
	}
	return 0;
}

int
pub_conf_check_secrets(const struct pub_conf *c, char *err, size_t errlen)
{
	char setting[128];
	size_t i;

	for (i = 0; i < c->n_stores; i++) {
		const struct pub_store *s = &c->stores[i];

		snprintf(setting, sizeof(setting), "stores.%s.credentials",
		    s->name);
		if (check_secret(s->credentials, setting, err, errlen) != 0 ||
		    check_secret(s->oci_credentials, setting, err,
		    errlen) != 0)
			return -1;
	}
	return check_secret(c->audit_key, "audit_key", err, errlen);
}

bool
pub_conf_wants(const struct pub_conf *c, size_t si, const char *name)
{
	size_t i, j;

	for (i = 0; i < c->n_rules; i++)
		for (j = 0; j < c->rules[i].n_stores; j++)
			if (c->rules[i].stores[j] == si &&
			    regexec(&c->rules[i].re, name, 0, NULL, 0) == 0)
				return true;
	return false;
}

const struct pub_store *
pub_conf_store(const struct pub_conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_stores; i++)
		if (strcmp(c->stores[i].name, name) == 0)
			return &c->stores[i];
	return NULL;
}

/* A libconfig string literal: \" and \\ escaped, other bytes as
 * they are (libconfig reads them back so). */
static void
print_str(FILE *fp, const char *key, const char *v)
{
	fprintf(fp, "%s = \"", key);
	for (; *v != '\0'; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', fp);
		fputc(*v, fp);
	}
	fprintf(fp, "\"; ");
}

void
pub_conf_print(const struct pub_conf *c, FILE *fp)
{
	size_t i, j;

	print_str(fp, "store_dir", c->store_dir);
	print_str(fp, "\nstate_dir", c->state_dir);
	print_str(fp, "\npublish_log", c->publish_log);
	print_str(fp, "\naudit_log", c->audit_log);
	if (c->audit_key != NULL)
		print_str(fp, "\naudit_key", c->audit_key);
	if (c->metrics_file != NULL)
		print_str(fp, "\nmetrics_file", c->metrics_file);
	fprintf(fp, "\nretries = %u;\nretry_backoff = %g;\n"
	    "retry_backoff_max = %g;\nrescan_interval = %g;\nstores = (\n",
	    c->retries, c->retry_backoff, c->retry_backoff_max,
	    c->rescan_interval);
	for (i = 0; i < c->n_stores; i++) {
		const struct pub_store *s = &c->stores[i];

		fprintf(fp, "  { ");
		print_str(fp, "name", s->name);
		switch (s->type) {
		case STORE_DIRECTORY:
			fprintf(fp, "type = \"directory\"; ");
			print_str(fp, "path", s->path);
			break;
		case STORE_OCI:
			fprintf(fp, "type = \"oci\"; ");
			print_str(fp, "registry", s->registry);
			fprintf(fp, "tls_verify = %s; ", s->tls_verify ?
			    "true" : "false");
			if (s->oci_credentials != NULL)
				print_str(fp, "credentials",
				    s->oci_credentials);
			break;
		case STORE_S3:
			fprintf(fp, "type = \"s3\"; ");
			print_str(fp, "endpoint", s->endpoint);
			print_str(fp, "bucket", s->bucket);
			print_str(fp, "prefix", s->prefix);
			print_str(fp, "region", s->region);
			print_str(fp, "credentials", s->credentials);
			fprintf(fp, "part_size = %lluL; ",
			    (unsigned long long)s->part_size);
			break;
		}
		fprintf(fp, "}%s\n", i + 1 < c->n_stores ? "," : "");
	}
	fprintf(fp, ");\nrules = (\n");
	for (i = 0; i < c->n_rules; i++) {
		fprintf(fp, "  { ");
		print_str(fp, "bundles", c->rules[i].pattern);
		fprintf(fp, "stores = [ ");
		for (j = 0; j < c->rules[i].n_stores; j++)
			fprintf(fp, "%s\"%s\"", j ? ", " : "",
			    c->stores[c->rules[i].stores[j]].name);
		fprintf(fp, " ]; }%s\n", i + 1 < c->n_rules ? "," : "");
	}
	fprintf(fp, ");\n");
}
