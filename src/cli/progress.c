/* Progress lines on a terminal (stderr only, at most ten redraws a second),
 * nothing when stderr is not a TTY. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static double progress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_draw(struct cli_progress *cp, uint64_t done, uint64_t total, double now)
{
	double secs = now - cp->start;
	double mib = (double)done / (1 << 20);
	int pct = total ? (int)(done * 100 / total) : 100;

	fprintf(stderr, "\r%s: %.0f / %.0f MiB (%d%%) %.0f MiB/s", cp->label, mib,
		(double)total / (1 << 20), pct, secs > 0 ? mib / secs : 0.0);
	if (cp->items_done && cp->items_total && *cp->items_total)
		fprintf(stderr, ", %llu / %llu %s", (unsigned long long)*cp->items_done,
			(unsigned long long)*cp->items_total, cp->items_name);
	fputs("   ", stderr);
}

/* Redraws at most ten times a second so that progress costs nothing. */
static void progress_update(void *ctx, uint64_t done, uint64_t total)
{
	struct cli_progress *cp = ctx;
	double now = progress_now();

	if (now - cp->last < 0.1)
		return;
	cp->last = now;
	cp->active = true;
	progress_draw(cp, done, total, now);
}

void cli_progress_init(struct cli_progress *cp, const char *label)
{
	cp->label = label;
	cp->start = progress_now();
	cp->last = cp->start;
	cp->active = false;
	cp->items_done = cp->items_total = NULL;
	cp->items_name = NULL;
	cp->p.fn = isatty(STDERR_FILENO) ? progress_update : NULL;
	cp->p.ctx = cp;
}

void cli_progress_done(struct cli_progress *cp)
{
	if (cp->active)
		fprintf(stderr, "\r\033[K");
	cp->active = false;
}
