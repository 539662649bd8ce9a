/*
 * sluice-mutate: a test-only sender of deliberately wrong bundles.
 *
 * It builds a small bundle, approves it with the given approver keys,
 * applies mutation number i, and sends it with the real sending engine
 * (sender/send.c) signed by the trusted sender key, so each mutation
 * reaches the receiver's policy and verification, not just its signature
 * check.  Mutation 0 is the unmutated control, which must be released.
 *
 *   sluice-mutate -c sender.conf -w WORKDIR -a A1.key -a A2.key FROM TO
 *
 * prints one line per transfer: "<transfer id> <i> <class> <detail>".
 * Classes cycle through manifest fields, file hashes and sizes, approval
 * signatures and key ids, chunk bytes, and hostile file names.
 */
#include "sender/send.h"
#include "common/log.h"
#include "common/manifest.h"
#include "common/qlog.h"
#include "common/sign.h"
#include "common/util.h"
#include "proto/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

/* Hostile file names (unescaped); each replaces "config.json". */
static const char *const hostile[] = {
	"/etc/passwd", "/tmp/x", "../x", "../../etc/shadow", "a/../../x",
	"a/..", "..", ".", "./a", "a/./b", "a//b", "a/", "/", "//",
	".sluice/manifest", ".sluice/approvals", ".sluice", ".sluice/x/y",
	"a\nb", "a\rb", "a\tb", "\x01", "a\x1b[31m", "a\x7f", "\x1f",
	"a\x02b", "new\nline state=RELEASED", "a\x0b", "a\x0c", "a\x08b",
	"dir/../../../root", "...", "a/../b", "../", "..\\..\\windows",
	"", "a\x00b",
};

static void
usage(void)
{
	fprintf(stderr, "usage: sluice-mutate -c sender.conf -w WORKDIR "
	    "-a KEY [-a KEY] FROM TO\n");
	exit(2);
}

static void
write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || util_write_all(fd, buf, len) != 0)
		fatal("%s", path);
	close(fd);
}

/* Replaces the first occurrence of from with to in m->text (owned). */
static bool
text_replace(struct manifest *m, const char *from, const char *to)
{
	char *hit = strstr(m->text, from), *n;
	size_t fl = strlen(from), tl = strlen(to);

	if (hit == NULL)
		return false;
	n = malloc(m->text_len - fl + tl + 1);
	memcpy(n, m->text, (size_t)(hit - m->text));
	memcpy(n + (hit - m->text), to, tl);
	strcpy(n + (hit - m->text) + tl, hit + fl);
	m->text_len = m->text_len - fl + tl;
	free(m->text);
	m->text = n;
	return true;
}

/* A long component, a long path, and raw bytes that need escaping. */
static void
hostile_name(unsigned j, char *out, size_t len)
{
	size_t n = UTIL_ARRAY_LEN(hostile);

	if (j < n) {
		snprintf(out, len, "%s", hostile[j]);
	} else if (j == n) {
		memset(out, 'a', 256);
		out[256] = '\0'; /* one component over 255 bytes */
	} else if (j == n + 1) {
		size_t i;

		for (i = 0; i + 2 < 1100 && i + 2 < len; i += 2)
			memcpy(out + i, "d/", 2);
		out[i] = 'f';
		out[i + 1] = '\0'; /* over max_path_len */
	} else {
		/* Every control byte, and 0x7f, inside an otherwise fine name. */
		unsigned c = (j - n - 2) % 33;

		snprintf(out, len, "ctl%c%u", c == 32 ? 0x7f : (char)(c == 0 ?
		    0x1e : c), j);
	}
}

int
main(int argc, char **argv)
{
	struct sender_conf *conf;
	struct sign_seckey *sender_key, *approver[4];
	struct sender *s;
	const char *conf_path = NULL, *work = NULL, *akeys[4];
	unsigned n_approvers = 0, from, to, i, j;
	char err[512], dir[4096], path[4200];
	uint8_t weights[5000];
	int ch, rc;

	log_init("sluice-mutate", 0);
	while ((ch = getopt(argc, argv, "c:w:a:")) != -1) {
		switch (ch) {
		case 'c': conf_path = optarg; break;
		case 'w': work = optarg; break;
		case 'a':
			if (n_approvers == 4)
				usage();
			akeys[n_approvers++] = optarg;
			break;
		default: usage();
		}
	}
	if (conf_path == NULL || work == NULL || argc - optind != 2)
		usage();
	from = (unsigned)strtoul(argv[optind], NULL, 10);
	to = (unsigned)strtoul(argv[optind + 1], NULL, 10);
	if (sign_init() != 0)
		fatalx("sodium");
	conf = sender_conf_load(conf_path, err, sizeof(err));
	if (conf == NULL)
		fatalx("%s", err);
	sender_key = sign_seckey_load(conf->key, &rc, err, sizeof(err));
	if (sender_key == NULL)
		fatalx("%s: %s", conf->key, err);
	for (i = 0; i < n_approvers; i++) {
		approver[i] = sign_seckey_load(akeys[i], &rc, err, sizeof(err));
		if (approver[i] == NULL)
			fatalx("%s: %s", akeys[i], err);
	}
	s = sender_new(conf, sender_key, err, sizeof(err));
	if (s == NULL)
		fatalx("%s", err);
	for (i = 0; i < sizeof(weights); i++)
		weights[i] = (uint8_t)(i * 7919u >> 3);

	for (i = from; i < to; i++) {
		struct manifest *m;
		char version[32], detail[300] = "", name[1200], esc[4000];
		const char *cls;
		unsigned c = i == 0 ? 99 : i % 10, p = i / 10;

		snprintf(dir, sizeof(dir), "%s/m%u", work, i);
		util_rmtree(dir);
		snprintf(path, sizeof(path), "%s/sub", dir);
		util_mkdirs(path, 0755);
		snprintf(path, sizeof(path), "%s/weights.bin", dir);
		write_file(path, weights, sizeof(weights));
		snprintf(path, sizeof(path), "%s/config.json", dir);
		write_file(path, "{\"layers\": 32}\n", 15);
		snprintf(path, sizeof(path), "%s/sub/readme", dir);
		write_file(path, "model card\n", 11);
		snprintf(version, sizeof(version), "1.%u", i);
		m = manifest_new("mut", version);
		manifest_set(m, "changes", "mutation test");
		manifest_set(m, "reason", "acceptance");
		if (manifest_add_dir(m, dir, err, sizeof(err)) != 0 ||
		    manifest_finish(m, err, sizeof(err)) != 0)
			fatalx("%s", err);
		for (j = 0; j < n_approvers; j++)
			manifest_approve(m, approver[j]);

		switch (c) {
		case 99:
			cls = "control";
			break;
		case 0: { /* a file's SHA-256 in the manifest */
			char *h = strstr(m->text, "file ") + 5 + (p % 64);

			*h = *h == '0' ? '1' : '0';
			cls = "file_hash";
			snprintf(detail, sizeof(detail), "hex digit %u", p % 64);
			break;
		}
		case 1: /* a file's size in the manifest */
			text_replace(m, " 5000 ", p % 2 ? " 4999 " : " 5001 ");
			cls = "file_size";
			break;
		case 2: { /* a header field's text */
			static const char *const f[][2] = {
				{ "changes mutation", "changes Mutation" },
				{ "reason acceptance", "reason acceptancE" },
				{ "name mut", "name mut2" },
				{ "test\n", "test!\n" },
			};

			text_replace(m, f[p % 4][0], f[p % 4][1]);
			cls = "manifest_field";
			logfmt_escape(detail, sizeof(detail), f[p % 4][0]);
			break;
		}
		case 3: /* one bit of an approval signature */
			m->approvals[p % m->n_approvals].sig[(p / 2) % 64] ^=
			    (uint8_t)(1u << (p % 8));
			cls = "approval_sig";
			break;
		case 4: /* an approval's key id */
			m->approvals[p % m->n_approvals].key_id[p % 8] ^= 0x40;
			cls = "approval_keyid";
			break;
		case 5: /* one approval short */
			m->n_approvals--;
			cls = "approval_missing";
			break;
		case 6: /* the same approver twice, the other dropped */
			m->approvals[1] = m->approvals[0];
			cls = "approval_twice";
			break;
		case 7: /* a file renamed in the manifest only */
			text_replace(m, "sub/readme", p % 2 ? "sub/README" :
			    "sub/readme2");
			cls = "file_path";
			break;
		case 8: { /* chunk bytes: content differs from the manifest */
			uint8_t w2[sizeof(weights)];

			memcpy(w2, weights, sizeof(w2));
			w2[p % sizeof(w2)] ^= (uint8_t)(1u << (p % 8));
			snprintf(path, sizeof(path), "%s/weights.bin", dir);
			write_file(path, w2, sizeof(w2));
			cls = "chunk_bytes";
			snprintf(detail, sizeof(detail), "byte %zu",
			    p % sizeof(w2));
			break;
		}
		default: /* 9: a hostile file name */
			hostile_name(p % (UTIL_ARRAY_LEN(hostile) + 120), name,
			    sizeof(name));
			pman_escape(name, strlen(name), esc, sizeof(esc));
			if (esc[0] == '\0')
				strcpy(esc, name); /* empty or raw */
			if (strchr(name, '\n') != NULL || name[0] == '\0' ||
			    (p % 3) == 2)
				/* raw bytes, unescaped */
				snprintf(esc, sizeof(esc), "%s", name);
			{
				char line[4100];

				snprintf(line, sizeof(line), " %s\n", esc);
				text_replace(m, " config.json\n", line);
			}
			cls = "hostile_name";
			logfmt_escape(detail, sizeof(detail), name);
			break;
		}
		/* Unchecked: mutation 8 sends bytes that differ from the
		 * manifest on purpose. */
		rc = sender_send_transfer(s, m, NULL, false, &stop, err,
		    sizeof(err));
		if (rc != 0)
			fatalx("mutation %u: %s", i, err);
		printf("%016" PRIx64 " %u %s %s\n", sender_transfer_id(s), i,
		    cls, detail);
		fflush(stdout);
		manifest_free(m);
		util_rmtree(dir);
		usleep(2000);
	}
	sender_free(s);
	sign_seckey_free(sender_key);
	for (i = 0; i < n_approvers; i++)
		sign_seckey_free(approver[i]);
	sender_conf_free(conf);
	return 0;
}
