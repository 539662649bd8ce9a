/*
 * Configuration loading with libconfig; see conf.h.  Each setting is
 * described once in a table (name, type, range, default, where it goes);
 * loading walks the file's settings against the table, so an unknown or
 * misspelt setting is an error, and every error names file, line and
 * setting.
 */
#include "common/conf.h"
#include "common/limits.h"
#include "common/sign.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind {
	K_STRING,   /* char * */
	K_PATH,     /* char *, resolved relative to the file */
	K_ADDR,     /* char *, numeric address:port */
	K_HOSTPORT, /* char *, host name or address, and port */
	K_UINT,     /* unsigned */
	K_SIZE,     /* uint64_t, integer or "64G" */
	K_RATE,     /* uint64_t, integer or "800M" */
	K_DOUBLE,   /* double */
	K_MODE,     /* unsigned, quoted octal string "0644" only */
	K_COMPRESS, /* enum compress_mode */
	K_PATHS,    /* char *[CONF_MAX_KEYS] + count */
	K_STRINGS,  /* char *[CONF_MAX_KEYS] + count, taken as they are */
	K_BOOL,     /* bool */
};

struct setting {
	const char *name;
	enum kind kind;
	size_t off;
	bool required;
	double min, max;
	const char *def;  /* default, parsed like a value from the file */
	size_t count_off; /* K_PATHS: where the count goes */
};

#define STR_(x) #x
#define STR(x) STR_(x)
#define S(field) offsetof(struct sender_conf, field)
#define R(field) offsetof(struct recv_conf, field)

static const struct setting sender_settings[] = {
	{ "destination", K_HOSTPORT, S(destination), true, 0, 0, NULL, 0 },
	{ "key", K_PATH, S(key), true, 0, 0, NULL, 0 },
	{ "rate", K_RATE, S(rate_bps), false, 1e5, 1e11, "800M", 0 },
	{ "datagram_size", K_UINT, S(datagram_size), false, 256, 65507,
	    "1472", 0 },
	{ "fec_overhead", K_UINT, S(fec_overhead), false, 0, 400, "25", 0 },
	{ "interleave", K_UINT, S(interleave), false, 1, 256, "8", 0 },
	{ "passes", K_UINT, S(passes), false, 1, 100, "2", 0 },
	{ "compress", K_COMPRESS, S(compress), false, 0, 0, "auto", 0 },
	{ "heartbeat_interval", K_DOUBLE, S(heartbeat_interval), false, 0.05,
	    3600, "1.0", 0 },
	{ "descriptor_copies", K_UINT, S(descriptor_copies), false, 1, 16,
	    "4", 0 },
	{ "encode_threads", K_UINT, S(encode_threads), false, 1, 16, "1", 0 },
	{ "spool_dir", K_PATH, S(spool_dir), false, 0, 0, NULL, 0 },
	{ "sent_dir", K_PATH, S(sent_dir), false, 0, 0, NULL, 0 },
	{ "failed_dir", K_PATH, S(failed_dir), false, 0, 0, NULL, 0 },
	{ "sent_retention", K_DOUBLE, S(sent_retention), false, 60, 315360000,
	    "2592000", 0 },
	{ "link_key", K_PATH, S(link_key), false, 0, 0, NULL, 0 },
	{ "link_encrypt", K_BOOL, S(link_encrypt), false, 0, 0, "false", 0 },
	{ NULL, 0, 0, false, 0, 0, NULL, 0 },
};

static const struct setting recv_settings[] = {
	{ "listen", K_ADDR, R(listen), true, 0, 0, NULL, 0 },
	{ "sender_keys", K_PATHS, R(sender_keys), true, 1, CONF_MAX_KEYS,
	    NULL, R(n_sender_keys) },
	{ "staging_dir", K_PATH, R(staging_dir), true, 0, 0, NULL, 0 },
	{ "store_dir", K_PATH, R(store_dir), true, 0, 0, NULL, 0 },
	{ "quarantine_log", K_PATH, R(quarantine_log), true, 0, 0, NULL, 0 },
	{ "transfer_timeout", K_DOUBLE, R(transfer_timeout), false, 1, 604800,
	    "60", 0 },
	{ "max_transfer_bytes", K_SIZE, R(max_transfer_bytes), false, 1,
	    1e15, "64G", 0 },
	{ "max_transfers_in_flight", K_UINT, R(max_transfers_in_flight),
	    false, 1, 1024, "4", 0 },
	{ "max_partial_chunks", K_UINT, R(max_partial_chunks), false, 8,
	    65536, "1024", 0 },
	{ "max_signature_checks", K_UINT, R(max_signature_checks), false, 10,
	    1000000, "1000", 0 },
	{ "max_transfer_signature_checks", K_UINT,
	    R(max_transfer_signature_checks), false, 0, 1000000, "20000", 0 },
	{ "max_pending_bytes", K_SIZE, R(max_pending_bytes), false, 65536,
	    68719476736.0, "16M", 0 },
	{ "rcvbuf_bytes", K_SIZE, R(rcvbuf_bytes), false, 65536, 2147483647,
	    "64M", 0 },
	{ "file_mode", K_MODE, R(file_mode), false, 0, 0777, "0644", 0 },
	{ "dir_mode", K_MODE, R(dir_mode), false, 0, 0777, "0755", 0 },
	{ "approvers", K_PATHS, R(approvers), false, 1, CONF_MAX_KEYS, NULL,
	    R(n_approvers) },
	{ "approval_threshold", K_UINT, R(approval_threshold), false, 0,
	    CONF_MAX_KEYS, "0", 0 },
	/* The manifest limits: defaults from the table the sender checks. */
	{ "max_bundle_bytes", K_SIZE, R(max_bundle_bytes), false, 1, 1e15,
	    LIMITS_STR(LIMITS_MAX_BUNDLE_BYTES), 0 },
	{ "max_files", K_UINT, R(max_files), false, 1, 1000000,
	    LIMITS_STR(LIMITS_MAX_FILES), 0 },
	{ "max_path_len", K_UINT, R(max_path_len), false, 16, 4096,
	    LIMITS_STR(LIMITS_MAX_PATH_LEN), 0 },
	{ "name_pattern", K_STRING, R(name_pattern), false, 0, 0,
	    LIMITS_NAME_PATTERN, 0 },
	{ "version_pattern", K_STRING, R(version_pattern), false, 0, 0,
	    LIMITS_VERSION_PATTERN, 0 },
	{ "max_bundle_age", K_UINT, R(max_bundle_age), false, 0, 315360000,
	    "0", 0 },
	{ "receiver_name", K_STRING, R(receiver_name), false, 0, 0, NULL, 0 },
	{ "state_dir", K_PATH, R(state_dir), false, 0, 0, NULL, 0 },
	{ "scan_hook", K_STRING, R(scan_hook), false, 0, 0, NULL, 0 },
	{ "release_hooks", K_STRINGS, R(release_hooks), false, 1,
	    CONF_MAX_KEYS, NULL, R(n_release_hooks) },
	{ "hook_timeout", K_DOUBLE, R(hook_timeout), false, 1, 86400, "600",
	    0 },
	{ "hook_shell", K_BOOL, R(hook_shell), false, 0, 0, "false", 0 },
	{ "hook_socket", K_PATH, R(hook_socket), false, 0, 0, NULL, 0 },
	{ "audit_log", K_PATH, R(audit_log), false, 0, 0, NULL, 0 },
	{ "receiver_key", K_PATH, R(receiver_key), false, 0, 0, NULL, 0 },
	{ "audit_checkpoint", K_UINT, R(audit_checkpoint), false, 1, 100000,
	    "16", 0 },
	{ "metrics_file", K_PATH, R(metrics_file), false, 0, 0, NULL, 0 },
	{ "metrics_interval", K_DOUBLE, R(metrics_interval), false, 0.5, 3600,
	    "5", 0 },
	{ "link_down_after", K_UINT, R(link_down_after), false, 1, 1000, "3",
	    0 },
	{ "progress_interval", K_DOUBLE, R(progress_interval), false, 0.05,
	    60, "1.0", 0 },
	{ "link_key", K_PATH, R(link_key), false, 0, 0, NULL, 0 },
	{ "ingest_buffer", K_SIZE, R(ingest_buffer), false, 1048576,
	    68719476736.0, "256M", 0 },
	{ "workers", K_UINT, R(workers), false, 0, 64, "0", 0 },
	{ "staging_retention", K_DOUBLE, R(staging_retention), false, 60,
	    315360000, "604800", 0 },
	{ "link_journal_dir", K_PATH, R(link_journal_dir), false, 0, 0, NULL,
	    0 },
	{ "link_journal_file_size", K_SIZE, R(link_journal_file_size), false,
	    65536, 1099511627776.0, "1G", 0 },
	{ "link_journal_keep", K_UINT, R(link_journal_keep), false, 1, 100000,
	    "8", 0 },
	{ "capture_interface", K_STRING, R(capture_interface), false, 0, 0,
	    NULL, 0 },
	{ "capture_buffer", K_SIZE, R(capture_buffer), false, 1048576,
	    2147483647, "64M", 0 },
	{ NULL, 0, 0, false, 0, 0, NULL, 0 },
};

struct ctx {
	const char *file;
	char *err;
	size_t errlen;
};

static int cerr(struct ctx *c, int line, const char *name, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static int
cerr(struct ctx *c, int line, const char *name, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(c->err, c->errlen, "%s:%d: %s: %s", c->file, line,
		    name, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, name, msg);
	return -EINVAL;
}

/* Written so that NaN fails too; infinities fail like any large value. */
static int
range(struct ctx *c, const struct setting *s, int line, double v)
{
	if (!(v >= s->min && v <= s->max))
		return cerr(c, line, s->name, "must be between %.15g and %.15g",
		    s->min, s->max);
	return 0;
}

/*
 * Stores one value: from the file (cs != NULL) or the default string.
 */
static int
store(struct ctx *c, const struct setting *s, config_setting_t *cs,
    void *base)
{
	int line = cs != NULL ? (int)config_setting_source_line(cs) : 0;
	const char *str = s->def;
	int type = cs != NULL ? config_setting_type(cs) : CONFIG_TYPE_STRING;
	void *dst = (char *)base + s->off;
	double num = 0;
	bool is_num = type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64 ||
	    type == CONFIG_TYPE_FLOAT;
	int rc;

	if (cs != NULL && type == CONFIG_TYPE_STRING)
		str = config_setting_get_string(cs);
	if (cs != NULL && is_num)
		num = type == CONFIG_TYPE_FLOAT ?
		    config_setting_get_float(cs) :
		    (double)config_setting_get_int64(cs);

	switch (s->kind) {
	case K_STRING:
	case K_PATH:
	case K_HOSTPORT:
	case K_ADDR: {
		struct sockaddr_storage ss;
		socklen_t sl;
		char *v;

		if (type != CONFIG_TYPE_STRING)
			return cerr(c, line, s->name, "must be a string");
		if (str[0] == '\0')
			return cerr(c, line, s->name, "must not be empty");
		if (s->kind == K_ADDR && util_parse_addr(str, &ss, &sl) != 0)
			return cerr(c, line, s->name, "\"%s\" is not an "
			    "address:port (e.g. \"127.0.0.1:7700\")", str);
		if (s->kind == K_HOSTPORT && util_check_hostport(str) != 0)
			return cerr(c, line, s->name, "\"%s\" is not host:port "
			    "(e.g. \"diode-rx.example:7700\" or "
			    "\"192.0.2.10:7700\")", str);
		v = s->kind == K_PATH ? util_path_relative_to(c->file, str) :
		    strdup(str);
		if (v == NULL)
			return -ENOMEM;
		free(*(char **)dst);
		*(char **)dst = v;
		return 0;
	}
	case K_UINT:
		if (!is_num && cs != NULL)
			return cerr(c, line, s->name, "must be a number");
		if (cs == NULL)
			num = strtod(str, NULL);
		/* Range first: converting a double outside long long's
		 * range (1e300, inf, NaN) is undefined behaviour. */
		if ((rc = range(c, s, line, num)) != 0)
			return rc;
		if (num != (double)(long long)num)
			return cerr(c, line, s->name, "must be a whole number");
		*(unsigned *)dst = (unsigned)num;
		return 0;
	case K_DOUBLE:
		if (!is_num && cs != NULL)
			return cerr(c, line, s->name, "must be a number");
		if (cs == NULL)
			num = strtod(str, NULL);
		if ((rc = range(c, s, line, num)) != 0)
			return rc;
		*(double *)dst = num;
		return 0;
	case K_SIZE:
	case K_RATE: {
		uint64_t v;

		if (type == CONFIG_TYPE_STRING) {
			if (util_parse_si(str, &v) != 0)
				return cerr(c, line, s->name, "\"%s\" is not a "
				    "number with an optional K, M, G or T "
				    "suffix", str);
			num = (double)v;
		} else if (!is_num || type == CONFIG_TYPE_FLOAT) {
			return cerr(c, line, s->name, "must be a whole number "
			    "or a string such as \"%s\"", s->def);
		}
		if ((rc = range(c, s, line, num)) != 0)
			return rc;
		*(uint64_t *)dst = (uint64_t)num;
		return 0;
	}
	case K_MODE: {
		long v;

		/*
		 * Quoted only: libconfig has no octal literals and reads
		 * file_mode = 0440 as decimal 440, which is not 0440.
		 */
		if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
			long long n = config_setting_get_int64(cs);
			char digits[24];

			snprintf(digits, sizeof(digits), "%lld", n);
			if (n >= 0 && n <= 777 && strspn(digits, "01234567") ==
			    strlen(digits))
				return cerr(c, line, s->name, "must be a "
				    "quoted octal string: write \"0%s\" "
				    "(unquoted, libconfig reads it as "
				    "decimal %s)", digits, digits);
			return cerr(c, line, s->name, "must be a quoted "
			    "octal string such as \"0644\"");
		}
		if (type != CONFIG_TYPE_STRING)
			return cerr(c, line, s->name, "must be a quoted octal "
			    "string such as \"0644\"");
		if (str[0] == '\0' || strlen(str) > 5 ||
		    strspn(str, "01234567") != strlen(str))
			return cerr(c, line, s->name, "\"%s\" is not an "
			    "octal mode such as \"0644\"", str);
		v = strtol(str, NULL, 8);
		if ((rc = range(c, s, line, (double)v)) != 0)
			return cerr(c, line, s->name, "must be at most 0777");
		*(unsigned *)dst = (unsigned)v;
		return 0;
	}
	case K_COMPRESS: {
		enum compress_mode m;

		if (type != CONFIG_TYPE_STRING)
			return cerr(c, line, s->name, "must be \"auto\", "
			    "\"off\" or \"on\"");
		if (strcmp(str, "auto") == 0)
			m = COMPRESS_AUTO;
		else if (strcmp(str, "off") == 0)
			m = COMPRESS_OFF;
		else if (strcmp(str, "on") == 0)
			m = COMPRESS_ON;
		else
			return cerr(c, line, s->name, "must be \"auto\", "
			    "\"off\" or \"on\"");
		*(enum compress_mode *)dst = m;
		return 0;
	}
	case K_BOOL:
		if (cs == NULL) {
			*(bool *)dst = strcmp(str, "true") == 0;
			return 0;
		}
		if (type != CONFIG_TYPE_BOOL)
			return cerr(c, line, s->name, "must be true or false");
		*(bool *)dst = config_setting_get_bool(cs) != 0;
		return 0;
	case K_STRINGS:
	case K_PATHS: {
		char **arr = dst;
		unsigned *count = (unsigned *)((char *)base + s->count_off);
		bool paths = s->kind == K_PATHS;
		int i, n;

		if (cs == NULL)
			return 0;
		if (type == CONFIG_TYPE_STRING) {
			arr[0] = paths ? util_path_relative_to(c->file, str) :
			    strdup(str);
			*count = 1;
			return arr[0] == NULL ? -ENOMEM : 0;
		}
		if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
			return cerr(c, line, s->name, "must be a list of "
			    "strings");
		n = config_setting_length(cs);
		if ((rc = range(c, s, line, n)) != 0)
			return cerr(c, line, s->name, "must list 1 to %d "
			    "files", CONF_MAX_KEYS);
		for (i = 0; i < n; i++) {
			config_setting_t *e = config_setting_get_elem(cs,
			    (unsigned)i);
			const char *v = config_setting_get_string(e);

			if (v == NULL || v[0] == '\0')
				return cerr(c, line, s->name, "entry %d is not "
				    "a file name", i + 1);
			arr[i] = paths ? util_path_relative_to(c->file, v) :
			    strdup(v);
			if (arr[i] == NULL)
				return -ENOMEM;
			*count = (unsigned)i + 1;
		}
		return 0;
	}
	}
	return -EINVAL;
}

#define CONF_FILE_MAX (1u << 20)
#define CONF_INCLUDE_DEPTH 10

/*
 * Reads a whole configuration file (symlinks followed, FIFOs allowed: it
 * is read once) into malloc'd, NUL-terminated memory.  0 or -errno.
 */
static int
read_text(const char *path, char **textp)
{
	FILE *fp = fopen(path, "re");
	char *text = NULL;
	size_t len;
	int rc = 0;

	if (fp == NULL)
		return -errno;
	if ((text = malloc(CONF_FILE_MAX + 1)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	len = fread(text, 1, CONF_FILE_MAX + 1, fp);
	if (ferror(fp))
		rc = -EIO;
	else if (len > CONF_FILE_MAX)
		rc = -EFBIG;
	else if (memchr(text, '\0', len) != NULL)
		rc = -EINVAL;
	else
		text[len] = '\0';
out:
	fclose(fp);
	if (rc != 0)
		free(text);
	else
		*textp = text;
	return rc;
}

/* "100G" for 100000000000: the string form a size or rate can take. */
static void
si_form(char *buf, size_t len, unsigned long long v)
{
	static const char suffix[] = "KMGT";
	int i = -1;

	while (i < 3 && v != 0 && v % 1000 == 0) {
		v /= 1000;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "\"%llu\"", v);
	else
		snprintf(buf, len, "\"%llu%c\"", v, suffix[i]);
}

static bool
name_char(int ch, bool first)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    ch == '*' || (!first && ((ch >= '0' && ch <= '9') || ch == '-' ||
	    ch == '_'));
}

/*
 * Checks one integer literal tok[0..n) of the given setting the way
 * libconfig 1.5 will have read it: without an L suffix as 32 bits,
 * silently wrapping (100000000000 becomes 1215752192; a hex literal above
 * 0x7fffffff turns negative), with one as 64 bits, saturating.  Refuses
 * any literal whose value libconfig could not represent faithfully.
 */
static int
check_int_literal(struct ctx *c, const char *file, int line, const char *name,
    const char *tok, size_t tn)
{
	char buf[64], *end, form[48];
	bool is64 = false, neg = tok[0] == '-';
	unsigned long long u;
	size_t n = tn;
	long long v;

	if (n >= sizeof(buf))
		goto bad;
	memcpy(buf, tok, n);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == 'L' || buf[n - 1] == 'l')) {
		buf[--n] = '\0';
		is64 = true;
	}
	errno = 0;
	if (strchr(buf, 'x') != NULL || strchr(buf, 'X') != NULL) {
		u = strtoull(buf, &end, 16);
		if (errno == 0 && *end == '\0' && !neg && u <= (is64 ?
		    (unsigned long long)INT64_MAX : (unsigned long long)
		    INT32_MAX))
			return 0;
		goto bad;
	}
	v = strtoll(buf, &end, 10);
	if (errno == 0 && *end == '\0' && (is64 || (v >= INT32_MIN &&
	    v <= INT32_MAX)))
		return 0;
bad:
	c->file = file;
	errno = 0;
	u = strtoull(tok + (tok[0] == '+'), &end, 10);
	if (!neg && errno == 0 && u != 0)
		si_form(form, sizeof(form), u);
	else
		snprintf(form, sizeof(form), "\"100G\"");
	return cerr(c, line, name, "%.*s is beyond libconfig's %s integers "
	    "and would silently read as another number; write it as a "
	    "string such as %s", (int)UTIL_MIN(tn, (size_t)40), tok,
	    is64 ? "64-bit" : "32-bit", form);
}

/*
 * libconfig hands back an already wrapped value, so the only way to tell
 * 100000000000 from 1215752192 is to look at the text.  The file has
 * parsed, so a small scanner suffices: it skips comments and strings,
 * follows @include as libconfig does, remembers the setting being
 * defined, and checks every integer literal.
 */
static int
check_int_literals(struct ctx *c, const char *file, const char *text,
    int depth)
{
	const char *p = text, *name = NULL;
	size_t name_len = 0;
	char namebuf[128];
	int line = 1, rc;

	while (*p != '\0') {
		const char *t = p;

		if (*p == '\n') {
			line++;
			p++;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			while (*p != '\0' && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/');
			    p++)
				line += *p == '\n';
			p += *p != '\0' ? 2 : 0;
		} else if (*p == '"') {
			for (p++; *p != '\0' && *p != '"'; p++) {
				line += *p == '\n';
				if (*p == '\\' && p[1] != '\0')
					p++;
			}
			p += *p != '\0';
		} else if (strncmp(p, "@include", 8) == 0) {
			const char *q = strchr(p, '"'), *e;
			char inc[4096], *sub = NULL;

			if (q == NULL || (e = strchr(q + 1, '"')) == NULL ||
			    (size_t)(e - q - 1) >= sizeof(inc) ||
			    depth >= CONF_INCLUDE_DEPTH)
				return cerr(c, line, "@include", "cannot "
				    "follow");
			memcpy(inc, q + 1, (size_t)(e - q - 1));
			inc[e - q - 1] = '\0';
			if ((rc = read_text(inc, &sub)) != 0)
				return cerr(c, line, "@include", "%s: %s", inc,
				    strerror(-rc));
			rc = check_int_literals(c, inc, sub, depth + 1);
			free(sub);
			if (rc != 0)
				return rc;
			c->file = file;
			p = e + 1;
		} else if (name_char((unsigned char)*p, true)) {
			while (name_char((unsigned char)*p, false))
				p++;
			if (strncasecmp(t, "true", 4) != 0 &&
			    strncasecmp(t, "false", 5) != 0) {
				name = t;
				name_len = (size_t)(p - t);
			}
		} else if ((*p >= '0' && *p <= '9') || *p == '.' ||
		    ((*p == '-' || *p == '+') && (p[1] == '.' ||
		    (p[1] >= '0' && p[1] <= '9')))) {
			bool hex, flt = false;

			p += *p == '-' || *p == '+';
			hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
			for (; *p != '\0'; p++) {
				if ((*p >= '0' && *p <= '9') ||
				    (hex && isxdigit((unsigned char)*p)) ||
				    *p == 'x' || *p == 'X' || *p == 'L' ||
				    *p == 'l')
					continue;
				if (!hex && (*p == '.' || *p == 'e' ||
				    *p == 'E')) {
					flt = true;
					continue;
				}
				if (!hex && flt && (*p == '-' || *p == '+') &&
				    (p[-1] == 'e' || p[-1] == 'E'))
					continue;
				break;
			}
			if (flt)
				continue;
			snprintf(namebuf, sizeof(namebuf), "%.*s",
			    (int)name_len, name != NULL ? name : "?");
			if ((rc = check_int_literal(c, file, line, namebuf, t,
			    (size_t)(p - t))) != 0)
				return rc;
		} else {
			p++;
		}
	}
	return 0;
}

/* Line of a top-level setting, 0 if absent (errors then omit the line). */
static int
root_line(config_setting_t *root, const char *name)
{
	config_setting_t *cs = config_setting_lookup(root, name);

	return cs != NULL ? (int)config_setting_source_line(cs) : 0;
}

/*
 * The approval quorum counts people, so it must fail closed: listed
 * approvers need an explicit approval_threshold of 1..n, and every listed
 * file must hold a different key (the same key twice, under two names,
 * would let one person count twice).  Keys are compared by their bytes,
 * not their file names; loading them here also makes -n report a
 * missing or malformed approver key.
 */
static int
check_approvers(struct ctx *c, config_setting_t *root, void *base)
{
	struct recv_conf *rc = base;
	struct sign_pubkey keys[CONF_MAX_KEYS];
	int aline = root_line(root, "approvers");
	int tline = root_line(root, "approval_threshold");
	char kerr[128], hex[2 * SIGN_KEYID_LEN + 1];
	unsigned i, j;

	if (rc->n_approvers > 0 && tline == 0)
		return cerr(c, aline, "approval_threshold", "required when "
		    "approvers are listed (how many of the %u must approve)",
		    rc->n_approvers);
	if (rc->n_approvers > 0 && rc->approval_threshold == 0)
		return cerr(c, tline, "approval_threshold", "must be at least "
		    "1 when approvers are listed");
	if (rc->approval_threshold > rc->n_approvers)
		return cerr(c, tline, "approval_threshold", "%u exceeds the %u "
		    "approver keys listed", rc->approval_threshold,
		    rc->n_approvers);
	for (i = 0; i < rc->n_approvers; i++) {
		if (sign_pubkey_load(rc->approvers[i], &keys[i], kerr,
		    sizeof(kerr)) != 0)
			return cerr(c, aline, "approvers", "%s: %s",
			    rc->approvers[i], kerr);
		for (j = 0; j < i; j++) {
			if (memcmp(keys[i].pk, keys[j].pk, SIGN_PK_LEN) != 0)
				continue;
			sign_keyid_hex(hex, keys[i].id);
			return cerr(c, aline, "approvers", "%s and %s hold the "
			    "same public key (id %s); list each approver once",
			    rc->approvers[j], rc->approvers[i], hex);
		}
	}
	return 0;
}

/* Edit distance, for "did you mean": names are short (< 64 bytes). */
static size_t
levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, row[64], diag, up;

	if (la >= UTIL_ARRAY_LEN(row) || lb >= UTIL_ARRAY_LEN(row))
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = UTIL_MIN(UTIL_MIN(row[j] + 1, row[j - 1] + 1),
			    diag + (a[i - 1] != b[j - 1]));
			diag = up;
		}
	}
	return row[lb];
}

/*
 * The setting of table nearest to name, if it is near enough to be a
 * typo (at most a third of its letters wrong), else NULL.
 */
static const char *
nearest(const struct setting *table, const char *name)
{
	const struct setting *s, *best = NULL;
	size_t d, best_d = SIZE_MAX;

	for (s = table; s->name != NULL; s++) {
		d = levenshtein(name, s->name);
		if (d < best_d) {
			best_d = d;
			best = s;
		}
	}
	if (best == NULL || best_d > UTIL_MAX(strlen(best->name) / 3, 2u))
		return NULL;
	return best->name;
}

/*
 * Loads path against table into out; check (if not NULL) then validates
 * settings that depend on each other, while line numbers are known.
 */
static int
load(const char *path, const struct setting *table, void *out,
    unsigned *lines, int (*check)(struct ctx *, config_setting_t *, void *),
    char *err, size_t errlen)
{
	struct ctx c = { path, err, errlen };
	config_t cfg;
	config_setting_t *root;
	const struct setting *s;
	char *text = NULL;
	int rc = 0, i, n;

	/* Read once, so that libconfig and the integer check below see the
	 * same bytes. */
	if ((rc = read_text(path, &text)) != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    rc == -EFBIG ? "larger than 1 MiB" : rc == -EINVAL ?
		    "contains a NUL byte" : strerror(-rc));
		return -EINVAL;
	}
	config_init(&cfg);
	if (config_read_string(&cfg, text) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read an @include: "
			    "%s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d: %s%s", path,
			    config_error_line(&cfg), config_error_text(&cfg),
			    strcmp(config_error_text(&cfg), "syntax error") ==
			    0 ? " (is a `;` missing at the end of the line "
			    "before?)" : "");
		config_destroy(&cfg);
		free(text);
		return -EINVAL;
	}
	rc = check_int_literals(&c, path, text, 0);
	free(text);
	c.file = path;
	if (rc != 0) {
		config_destroy(&cfg);
		return rc;
	}
	root = config_root_setting(&cfg);
	n = config_setting_length(root);
	for (i = 0; i < n && rc == 0; i++) {
		config_setting_t *cs = config_setting_get_elem(root,
		    (unsigned)i);
		const char *name = config_setting_name(cs);

		for (s = table; s->name != NULL; s++)
			if (strcmp(s->name, name) == 0)
				break;
		if (s->name == NULL) {
			const char *near = nearest(table, name);

			snprintf(err, errlen, "%s:%d: unknown setting "
			    "\"%s\"%s%s%s", path, config_setting_source_line(cs), name,
			    near != NULL ? "; did you mean \"" : "",
			    near != NULL ? near : "", near != NULL ? "\"?" : "");
			rc = -EINVAL;
		}
	}
	for (s = table; s->name != NULL && rc == 0; s++) {
		config_setting_t *cs = config_setting_lookup(root, s->name);

		if (s - table >= CONF_MAX_SETTINGS)
			abort(); /* the table outgrew CONF_MAX_SETTINGS */
		lines[s - table] = cs != NULL ?
		    (unsigned)config_setting_source_line(cs) : 0;
		if (cs == NULL && s->required)
			rc = cerr(&c, 0, s->name, "required setting missing");
		else if (cs != NULL || s->def != NULL)
			rc = store(&c, s, cs, out);
	}
	if (rc == 0 && check != NULL)
		rc = check(&c, root, out);
	config_destroy(&cfg);
	return rc;
}

static unsigned
line_of(const struct setting *table, const unsigned *lines, const char *name)
{
	const struct setting *s;

	for (s = table; s->name != NULL; s++)
		if (strcmp(s->name, name) == 0)
			return lines[s - table];
	return 0;
}

static void
where(const char *path, unsigned line, const char *name, char *buf,
    size_t len)
{
	if (line > 0)
		snprintf(buf, len, "%s:%u: %s", path, line, name);
	else
		snprintf(buf, len, "%s: %s", path, name);
}

void
recv_conf_where(const struct recv_conf *c, const char *name, char *buf,
    size_t len)
{
	where(c->path, line_of(recv_settings, c->lines, name), name, buf,
	    len);
}

void
sender_conf_where(const struct sender_conf *c, const char *name, char *buf,
    size_t len)
{
	where(c->path, line_of(sender_settings, c->lines, name), name, buf,
	    len);
}

/* "/a/b/spool" + "sent" -> "/a/b/sent" (dir is absolute after loading). */
static char *
sibling(const char *dir, const char *name)
{
	size_t len = strlen(dir);
	char *out;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	while (len > 0 && dir[len - 1] != '/')
		len--;
	out = malloc(len + strlen(name) + 1);
	if (out != NULL) {
		memcpy(out, dir, len);
		strcpy(out + len, name);
	}
	return out;
}

struct sender_conf *
sender_conf_load(const char *path, char *err, size_t errlen)
{
	struct sender_conf *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (load(path, sender_settings, c, c->lines, NULL, err, errlen) !=
	    0) {
		sender_conf_free(c);
		return NULL;
	}
	if (c->spool_dir != NULL &&
	    ((c->sent_dir == NULL &&
	    (c->sent_dir = sibling(c->spool_dir, "sent")) == NULL) ||
	    (c->failed_dir == NULL &&
	    (c->failed_dir = sibling(c->spool_dir, "failed")) == NULL))) {
		sender_conf_free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return c;
}

void
sender_conf_free(struct sender_conf *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->destination);
	free(c->key);
	free(c->spool_dir);
	free(c->sent_dir);
	free(c->failed_dir);
	free(c->link_key);
	free(c);
}

struct recv_conf *
recv_conf_load(const char *path, char *err, size_t errlen)
{
	struct recv_conf *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (load(path, recv_settings, c, c->lines, check_approvers, err,
	    errlen) != 0) {
		recv_conf_free(c);
		return NULL;
	}
	if (c->state_dir == NULL) {
		size_t n = strlen(c->staging_dir) + sizeof("/.state");

		c->state_dir = malloc(n);
		if (c->state_dir == NULL) {
			recv_conf_free(c);
			return NULL;
		}
		snprintf(c->state_dir, n, "%s/.state", c->staging_dir);
	}
	if (c->receiver_key == NULL && c->audit_log != NULL) {
		snprintf(err, errlen, "%s: receiver_key: required when "
		    "audit_log is set (it signs every audit record)", path);
		recv_conf_free(c);
		return NULL;
	}
	return c;
}

void
recv_conf_free(struct recv_conf *c)
{
	unsigned i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->listen);
	for (i = 0; i < CONF_MAX_KEYS; i++) {
		free(c->sender_keys[i]);
		free(c->approvers[i]);
		free(c->release_hooks[i]);
	}
	free(c->name_pattern);
	free(c->receiver_name);
	free(c->version_pattern);
	free(c->state_dir);
	free(c->scan_hook);
	free(c->audit_log);
	free(c->receiver_key);
	free(c->metrics_file);
	free(c->staging_dir);
	free(c->store_dir);
	free(c->quarantine_log);
	free(c->hook_socket);
	free(c->link_key);
	free(c->link_journal_dir);
	free(c->capture_interface);
	free(c);
}

/*
 * Prints v as a libconfig string literal that reads back as exactly v:
 * quote and backslash escaped, control bytes as \xNN (libconfig's scanner
 * takes exactly two hex digits).  Other bytes go through as they are.
 */
static void
print_quoted(FILE *fp, const char *v)
{
	const unsigned char *q;

	fputc('"', fp);
	for (q = (const unsigned char *)v; *q != '\0'; q++) {
		if (*q == '"' || *q == '\\')
			fprintf(fp, "\\%c", *q);
		else if (*q < 0x20 || *q == 0x7f)
			fprintf(fp, "\\x%02x", *q);
		else
			fputc(*q, fp);
	}
	fputc('"', fp);
}

/* Prints every setting of a table in libconfig syntax. */
static void
print(const struct setting *table, const void *base, FILE *fp)
{
	const struct setting *s;
	static const char *const modes[] = { "off", "auto", "on" };

	for (s = table; s->name != NULL; s++) {
		const void *p = (const char *)base + s->off;

		switch (s->kind) {
		case K_STRING:
		case K_PATH:
		case K_HOSTPORT:
		case K_ADDR: {
			char *const v = *(char *const *)p;

			if (v == NULL)
				break; /* unset optional setting */
			fprintf(fp, "%s = ", s->name);
			print_quoted(fp, v);
			fprintf(fp, ";\n");
			break;
		}
		case K_UINT:
			fprintf(fp, "%s = %u;\n", s->name, *(const unsigned *)p);
			break;
		case K_DOUBLE: {
			double d = *(const double *)p;

			/* Reads back as the same float: a whole number with
			 * ".0" (never "2.592e+06.0"), else every digit. */
			if (d == (double)(long long)d && fabs(d) < 1e15)
				fprintf(fp, "%s = %lld.0;\n", s->name,
				    (long long)d);
			else
				fprintf(fp, "%s = %.17g;\n", s->name, d);
			break;
		}
		case K_SIZE:
		case K_RATE:
			fprintf(fp, "%s = %lluL;\n", s->name,
			    (unsigned long long)*(const uint64_t *)p);
			break;
		case K_MODE:
			fprintf(fp, "%s = \"%04o\";\n", s->name,
			    *(const unsigned *)p);
			break;
		case K_COMPRESS:
			fprintf(fp, "%s = \"%s\";\n", s->name,
			    modes[*(const enum compress_mode *)p]);
			break;
		case K_BOOL:
			fprintf(fp, "%s = %s;\n", s->name,
			    *(const bool *)p ? "true" : "false");
			break;
		case K_STRINGS:
		case K_PATHS: {
			char *const *arr = p;
			unsigned i, n = *(const unsigned *)((const char *)base +
			    s->count_off);

			if (n == 0)
				break;
			fprintf(fp, "%s = [", s->name);
			for (i = 0; i < n; i++) {
				fputs(i ? ", " : " ", fp);
				print_quoted(fp, arr[i]);
			}
			fprintf(fp, " ];\n");
			break;
		}
		}
	}
}

void
sender_conf_print(const struct sender_conf *c, FILE *fp)
{
	print(sender_settings, c, fp);
}

void
recv_conf_print(const struct recv_conf *c, FILE *fp)
{
	print(recv_settings, c, fp);
}
