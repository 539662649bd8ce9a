/*
 * Small helpers: rates and sizes, addresses, and the service-manager
 * notification (a local datagram to NOTIFY_SOCKET, as systemd expects).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

static void
test_parse_si(void **state)
{
	uint64_t v;

	assert_int_equal(util_parse_si("800M", &v), 0);
	assert_int_equal(v, 800000000ull);
	assert_int_equal(util_parse_si("1.5G", &v), 0);
	assert_int_equal(v, 1500000000ull);
	assert_int_equal(util_parse_si("64", &v), 0);
	assert_int_equal(v, 64);
	assert_int_equal(util_parse_si("", &v), -EINVAL);
	assert_int_equal(util_parse_si("-1", &v), -EINVAL);
	assert_int_equal(util_parse_si("5X", &v), -EINVAL);
	assert_int_equal(util_parse_si("5MB", &v), -EINVAL);
	assert_int_equal(util_parse_si(" 5", &v), -EINVAL);
	/* Non-finite values and overflow must never reach the conversion. */
	assert_int_equal(util_parse_si("nan", &v), -EINVAL);
	assert_int_equal(util_parse_si("NaN", &v), -EINVAL);
	assert_int_equal(util_parse_si("+nan", &v), -EINVAL);
	assert_int_equal(util_parse_si("nanK", &v), -EINVAL);
	assert_int_equal(util_parse_si("nan(0x1)", &v), -EINVAL);
	assert_int_equal(util_parse_si("inf", &v), -EINVAL);
	assert_int_equal(util_parse_si("infinity", &v), -EINVAL);
	assert_int_equal(util_parse_si("infT", &v), -EINVAL);
	assert_int_equal(util_parse_si("1e400", &v), -ERANGE);
	assert_int_equal(util_parse_si("18446744073709551616", &v), -ERANGE);
	assert_int_equal(util_parse_si("20000000T", &v), -ERANGE);
	assert_int_equal(util_parse_si("18000000T", &v), 0);
	assert_int_equal(v, 18000000000000000000ull);
}

static void
test_parse_addr(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[64];

	assert_int_equal(util_parse_addr("127.0.0.1:7700", &ss, &len), 0);
	util_format_addr(buf, sizeof(buf), (struct sockaddr *)&ss);
	assert_string_equal(buf, "127.0.0.1:7700");
	assert_int_equal(util_parse_addr("[::1]:7", &ss, &len), 0);
	util_format_addr(buf, sizeof(buf), (struct sockaddr *)&ss);
	assert_string_equal(buf, "[::1]:7");
	assert_int_equal(util_parse_addr("127.0.0.1", &ss, &len), -EINVAL);
	assert_int_equal(util_parse_addr("127.0.0.1:", &ss, &len), -EINVAL);
	assert_int_equal(util_parse_addr("127.0.0.1:65536", &ss, &len),
	    -EINVAL);
	assert_int_equal(util_parse_addr("host:80", &ss, &len), -EINVAL);
	assert_int_equal(util_parse_addr("[::1:80", &ss, &len), -EINVAL);
}

static void
notify_roundtrip(const char *name, bool abstract)
{
	struct sockaddr_un sun;
	char env[120], buf[64];
	socklen_t len;
	ssize_t n;
	int fd;

	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, name);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(name));
	if (abstract)
		sun.sun_path[0] = '\0';
	else
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", name);
	putenv(env);
	assert_int_equal(util_notify("READY=1"), 0);
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_int_equal(n, 7);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1");
	close(fd);
	if (!abstract)
		unlink(name);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_notify(void **state)
{
	char path[64], abs_name[64];

	snprintf(path, sizeof(path), "/tmp/sluice-notify.%ld", (long)getpid());
	notify_roundtrip(path, false);
	snprintf(abs_name, sizeof(abs_name), "@sluice-notify.%ld",
	    (long)getpid());
	notify_roundtrip(abs_name, true);
	/* Not under a service manager: nothing to do, no error. */
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(util_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(util_notify("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_si),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_notify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
