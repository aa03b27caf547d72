/* --build-time and SOURCE_DATE_EPOCH. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

static bool time_all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* "YYYY-MM-DDTHH:MM:SS" followed by an optional fraction and Z or ±HH:MM. */
static bool time_is_rfc3339(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i;

	for (i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return false;
	s += i;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s); s++)
			;
	if (strcmp(s, "Z") == 0)
		return true;
	return (s[0] == '+' || s[0] == '-') && isdigit((unsigned char)s[1]) &&
	       isdigit((unsigned char)s[2]) && s[3] == ':' && isdigit((unsigned char)s[4]) &&
	       isdigit((unsigned char)s[5]) && s[6] == '\0';
}

/* Seconds since the epoch of a time time_is_rfc3339 accepted. */
static int64_t time_rfc3339_epoch(const char *v)
{
	struct tm tm = {0};
	const char *zone = v + 19;
	int64_t t;

	sscanf(v, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	       &tm.tm_min, &tm.tm_sec);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = (int64_t)timegm(&tm);
	while (*zone == '.' || isdigit((unsigned char)*zone))
		zone++;
	if (*zone == '+' || *zone == '-') {
		int64_t off = (int64_t)(atoi(zone + 1) * 3600 + atoi(zone + 4) * 60);

		t += *zone == '+' ? -off : off;
	}
	return t;
}

/* --build-time, else SOURCE_DATE_EPOCH, else now: pinned times make builds
 * byte-for-byte reproducible. out gets the RFC 3339 text (an RFC 3339
 * --build-time verbatim, as eif_build keeps it), epoch the seconds. */
int cli_build_time(const char *opt, char out[64], int64_t *epoch, struct nectl_err *err)
{
	const char *env = getenv("SOURCE_DATE_EPOCH");
	const char *src = opt ? "--build-time" : "SOURCE_DATE_EPOCH";
	const char *v = opt ? opt : env;
	int64_t t;
	char tmp[32];

	if (!v || (time_all_digits(v) && strlen(v) <= 12)) {
		t = v ? strtoll(v, NULL, 10) : (int64_t)time(NULL);
		eif_format_time(t, tmp);
		snprintf(out, 64, "%s", tmp);
	} else if (opt && strlen(v) < 64 && time_is_rfc3339(v)) {
		t = time_rfc3339_epoch(v);
		snprintf(out, 64, "%s", v);
	} else {
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "%s `%s` is neither Unix seconds nor an RFC 3339 time "
				     "(2024-01-01T00:00:00+00:00)",
				     src, v);
	}
	if (epoch)
		*epoch = t;
	return 0;
}
