/* The launch sequence's first half, in the caller's process: every check
 * nitro-cli makes before its enclave process exists, the CID and name
 * reservation under the run directory's lock, the start of the supervisor
 * as a clean daemon, and the wait for its report (boot heartbeat or error). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enclave/enclave_int.h"
#include "nectl/eif.h"
#include "nectl/ne_dev.h"
#include "nectl/nitro.h"
#include "nectl/sim.h"

#define MIB (1ull << 20)

int enclave_check_cid(uint64_t cid, struct nectl_err *err)
{
	if (cid == 1 || cid == 2)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "The enclave CID %llu is a well-known CID and cannot be used",
				     (unsigned long long)cid);
	if (cid == 3)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "The enclave CID 3 is the parent instance's CID");
	if (cid >= 0xffffffffull)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "The enclave CID %llu is out of range (at most 4294967294)",
				     (unsigned long long)cid);
	return 0;
}

static int launch_memory(struct enclave_plan *p, const struct enclave_opts *o,
			 struct nectl_err *err)
{
	struct stat st;
	uint64_t min;

	if (!realpath(o->eif_path, p->eif_path) || stat(p->eif_path, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return nectl_err_sys(err, NECTL_ERR_FILE, errno ? errno : EINVAL,
				     "File: '%s', failing operation: 'Open'", o->eif_path);
	/* Checked before anything shifts it into bytes, which would wrap. */
	if (o->memory_mib > ENCLAVE_MAX_MEMORY_MIB)
		return nectl_err_set(
		    err, NECTL_ERR_INVALID_ARG,
		    "Invalid memory value `%llu` MiB: more than %llu MiB cannot be "
		    "addressed",
		    (unsigned long long)o->memory_mib, (unsigned long long)ENCLAVE_MAX_MEMORY_MIB);
	min = 4 * (((uint64_t)st.st_size + MIB - 1) / MIB);
	if (o->memory_mib == 0 || o->memory_mib < min)
		return nectl_err_set(err, NECTL_ERR_MEM_REQUEST,
				     "User provided `memory` is %llu MB, but based on the EIF file "
				     "size, the minimum memory should be %llu MB",
				     (unsigned long long)o->memory_mib, (unsigned long long)min);
	p->memory_mib = o->memory_mib;
	return 0;
}

/* The host CPUs this process may run on stand in for the NE CPU pool. */
static int launch_cpus(struct enclave_plan *p, const struct enclave_opts *o, struct nectl_err *err)
{
	cpu_set_t pool;
	int avail;

	if (sched_getaffinity(0, sizeof(pool), &pool) < 0)
		return nectl_err_sys(err, NECTL_ERR_CPU_COUNT, errno,
				     "cannot read the host's CPUs");
	avail = CPU_COUNT(&pool);
	if (o->ncpu_ids) {
		if (o->ncpu_ids > ENCLAVE_MAX_CPUS)
			return nectl_err_set(err, NECTL_ERR_CPU_COUNT,
					     "at most %d CPUs per enclave", ENCLAVE_MAX_CPUS);
		for (unsigned i = 0; i < o->ncpu_ids; i++) {
			int id = o->cpu_ids[i];

			for (unsigned j = 0; j < i; j++)
				if (o->cpu_ids[j] == id)
					return nectl_err_set(err, NECTL_ERR_CPU_CONFIG,
							     "CPU %d is given twice", id);
			if (id < 0 || id >= CPU_SETSIZE || !CPU_ISSET(id, &pool))
				return nectl_err_set(err, NECTL_ERR_CPU_POOL,
						     "CPU %d is not available on this host", id);
			p->cpu_ids[i] = id;
		}
		p->ncpus = o->ncpu_ids;
		p->pinned = true;
		return 0;
	}
	if (o->cpu_count == 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "`cpu-count` must be at least 1");
	if (o->cpu_count > (unsigned)avail || o->cpu_count > ENCLAVE_MAX_CPUS)
		return nectl_err_set(
		    err, NECTL_ERR_CPU_COUNT,
		    "Insufficient CPUs: %u requested, this host offers %d (at most %d)",
		    o->cpu_count, avail, ENCLAVE_MAX_CPUS);
	p->ncpus = o->cpu_count;
	return 0;
}

static int launch_forwards(struct enclave_plan *p, const struct enclave_opts *o,
			   struct nectl_err *err)
{
	if (o->nto_host + o->ninto_enclave > ENCLAVE_MAX_FORWARDS)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "at most %d forwarding rules",
				     ENCLAVE_MAX_FORWARDS);
	if (o->forward_max_conns > ENCLAVE_MAX_FORWARD_CONNS ||
	    o->forward_max_conns_total > ENCLAVE_MAX_FORWARD_CONNS)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "at most %d forwarded connections at once",
				     ENCLAVE_MAX_FORWARD_CONNS);
	p->fwd_max_conns =
	    o->forward_max_conns ? o->forward_max_conns : ENCLAVE_DEFAULT_FORWARD_CONNS;
	p->fwd_max_conns_total = o->forward_max_conns_total ? o->forward_max_conns_total
							    : ENCLAVE_DEFAULT_FORWARD_CONNS_TOTAL;
	for (size_t i = 0; i < o->nto_host; i++)
		if (fwd_rule_parse(FWD_TO_HOST, o->to_host[i], &p->rules[p->nrules++], err) < 0)
			return -1;
	for (size_t i = 0; i < o->ninto_enclave; i++)
		if (fwd_rule_parse(FWD_INTO_ENCLAVE, o->into_enclave[i], &p->rules[p->nrules++],
				   err) < 0)
			return -1;
	return 0;
}

/* nitro-cli: 90 s per started 6 GiB of EIF plus 90 s per started 100 GiB of
 * memory, at least 180 s. */
static unsigned launch_hb_timeout(const struct enclave_plan *p, const struct enclave_opts *o)
{
	struct stat st;
	uint64_t eif = stat(p->eif_path, &st) == 0 ? (uint64_t)st.st_size : 0;
	uint64_t t = 90 * ((eif + (6ull << 30) - 1) / (6ull << 30)) +
		     90 * ((p->memory_mib + 100 * 1024 - 1) / (100 * 1024));

	if (o->heartbeat_timeout_s)
		return o->heartbeat_timeout_s;
	return t < 180 ? 180 : (unsigned)t;
}

static void launch_default_name(char *out, size_t len, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	while (n >= 4 && memcmp(base + n - 4, ".eif", 4) == 0)
		n -= 4;
	snprintf(out, len, "%.*s", (int)n, base);
}

static bool launch_name_taken(const json_t *recs, const char *name)
{
	size_t i;
	json_t *r;

	json_array_foreach(recs, i, r)
	{
		const char *n = json_string_value(json_object_get(r, "EnclaveName"));

		if (n && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

static bool launch_cid_taken(const json_t *recs, uint64_t cid)
{
	size_t i;
	json_t *r;

	json_array_foreach(recs, i, r)
	{
		const char *st = json_string_value(json_object_get(r, "State"));

		/* An exited enclave's CID is free again. */
		if ((!st || strcmp(st, "EXITED") != 0) &&
		    (uint64_t)json_integer_value(json_object_get(r, "EnclaveCID")) == cid)
			return true;
	}
	return false;
}

/* nitro-cli's naming rule: a taken name gets _1, _2, ... */
static int launch_pick(struct enclave_plan *p, const struct enclave_opts *o, const json_t *recs,
		       struct nectl_err *err)
{
	char base[200];

	if (o->cid && launch_cid_taken(recs, o->cid))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "The enclave CID %llu is in use",
				     (unsigned long long)o->cid);
	p->cid = o->cid;
	/* On a real parent the device chooses (other enclaves may hold CIDs
	 * nectl does not know of); emulated and simulated enclaves share
	 * nectl's own numbering. */
	for (uint64_t c = ENCLAVE_FIRST_AUTO_CID; !p->cid && p->mode != ENCLAVE_MODE_NATIVE; c++)
		if (!launch_cid_taken(recs, c))
			p->cid = c;
	if (o->name && (!*o->name || strlen(o->name) >= sizeof(base) || strchr(o->name, '\n')))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "invalid enclave name");
	if (o->name)
		snprintf(base, sizeof(base), "%s", o->name);
	else
		launch_default_name(base, sizeof(base), p->eif_path);
	snprintf(p->name, sizeof(p->name), "%s", base);
	for (unsigned i = 1; launch_name_taken(recs, p->name); i++)
		snprintf(p->name, sizeof(p->name), "%s_%u", base, i);
	return 0;
}

/* nitro-cli's ID: the board asset tag (the EC2 instance ID) and a slot UID. */
void enclave_plan_id(struct enclave_plan *p, uint64_t uid)
{
	char tag[64] = "";
	FILE *f = fopen("/sys/devices/virtual/dmi/id/board_asset_tag", "re");
	size_t n = 0;

	if (f) {
		int ch;

		while ((ch = fgetc(f)) != EOF && n < sizeof(tag) - 1)
			if (isalnum(ch) || ch == '-')
				tag[n++] = (char)ch;
		tag[n] = 0;
		fclose(f);
	}
	snprintf(p->sid, sizeof(p->sid), "%llx", (unsigned long long)uid);
	snprintf(p->id, sizeof(p->id), "%s-enc%s", n ? tag : "i-0000000000000000", p->sid);
}

/* nectl's own slot uid until the NE device gives one (NE modes). */
static void launch_id(struct enclave_plan *p)
{
	uint64_t uid = 0;

	while (uid == 0)
		if (getrandom(&uid, sizeof(uid), 0) != (ssize_t)sizeof(uid))
			uid = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
	enclave_plan_id(p, uid);
}

/* As describe-eif: the whole image is read once (streaming) and must parse
 * and match its CRC, so a corrupted image is refused before any memory or
 * supervisor exists. */
static int launch_check_eif(const struct enclave_plan *p, struct nectl_err *err)
{
	struct eif_image img;
	int rc = 0;

	if (eif_read_file(p->eif_path, &img, NULL, err) < 0)
		return -1;
	if (img.crc_stored != img.crc_computed)
		rc = nectl_err_set(err, NECTL_ERR_EIF,
				   "%s: CRC mismatch (header 0x%08x, computed 0x%08x): the image "
				   "is corrupted",
				   p->eif_path, img.crc_stored, img.crc_computed);
	eif_image_free(&img);
	return rc;
}

static bool launch_in_pool(const int *pool, size_t n, int cpu)
{
	for (size_t i = 0; i < n; i++)
		if (pool[i] == cpu)
			return true;
	return false;
}

/* Which accelerator: --emulate, else the NE device (NECTL_NE_DEVICE picks
 * the model; never by default). The real device must open (E19) before
 * anything else happens, as nitro-cli's enclave process opens it first. */
static int launch_mode(struct enclave_plan *p, const struct enclave_opts *o, struct nectl_err *err)
{
	struct ne_dev *d;

	if (!o->ne_device) {
		p->mode = ENCLAVE_MODE_EMULATED;
		return 0;
	}
	if (strlen(o->ne_device) >= sizeof(p->ne_device))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "NE device path too long");
	snprintf(p->ne_device, sizeof(p->ne_device), "%s", o->ne_device);
	if (strncmp(o->ne_device, "sim", 3) == 0 && (!o->ne_device[3] || o->ne_device[3] == ':')) {
		struct sim_topology t;
		char pool[256];
		bool loopback;

		p->mode = ENCLAVE_MODE_SIMULATED;
		return sim_topology_load(o->ne_device, &t, pool, sizeof(pool), &loopback, err);
	}
	p->mode = ENCLAVE_MODE_NATIVE;
	if (ne_dev_open(o->ne_device, &d, err) < 0)
		return -1;
	ne_dev_close(d);
	return 0;
}

/* The NE CPU pool as nitro-cli reads it: the driver's ne_cpus parameter,
 * or the model's (E23/E24 for a list that is not one). */
static int launch_ne_pool(const struct enclave_plan *p, int *ids, size_t *n, struct nectl_err *err)
{
	char text[1024] = "";
	struct sim_topology t;
	bool loopback;
	FILE *f;

	*n = 0;
	if (p->mode == ENCLAVE_MODE_SIMULATED) {
		if (sim_topology_load(p->ne_device, &t, text, sizeof(text), &loopback, err) < 0)
			return -1;
	} else if ((f = fopen(NE_CPU_POOL_PATH, "re"))) {
		if (!fgets(text, sizeof(text), f))
			text[0] = 0;
		fclose(f);
	}
	text[strcspn(text, "\n")] = 0;
	if (!text[0])
		return 0; /* no pool: every CPU is refused below */
	return ne_cpu_list_parse(text, ids, ENCLAVE_MAX_POOL, n, err);
}

/* What nitro-cli checks itself before the device does: duplicates (E20),
 * membership in the pool (E21), a count the pool can give (E22). */
static int launch_ne_cpus(struct enclave_plan *p, const struct enclave_opts *o,
			  struct nectl_err *err)
{
	static int pool[ENCLAVE_MAX_POOL];
	size_t npool;

	if (launch_ne_pool(p, pool, &npool, err) < 0)
		return -1;
	if (o->ncpu_ids > ENCLAVE_MAX_CPUS || o->cpu_count > ENCLAVE_MAX_CPUS)
		return nectl_err_set(err, NECTL_ERR_CPU_COUNT, "at most %d CPUs per enclave",
				     ENCLAVE_MAX_CPUS);
	for (unsigned i = 0; i < o->ncpu_ids; i++) {
		for (unsigned j = 0; j < i; j++)
			if (o->cpu_ids[j] == o->cpu_ids[i])
				return nectl_err_set(err, NECTL_ERR_CPU_CONFIG,
						     "CPU %d is given twice", o->cpu_ids[i]);
		if (!launch_in_pool(pool, npool, o->cpu_ids[i]))
			return nectl_err_set(err, NECTL_ERR_CPU_POOL,
					     "The CPU %d is not available in the NE CPU pool "
					     "(%zu CPUs in it; set `cpu_pool` in the allocator's "
					     "configuration)",
					     o->cpu_ids[i], npool);
		p->cpu_ids[i] = o->cpu_ids[i];
	}
	if (o->ncpu_ids) {
		p->ncpus = o->ncpu_ids;
		p->pinned = true;
		return 0;
	}
	if (o->cpu_count == 0)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "`cpu-count` must be at least 1");
	if (o->cpu_count > npool)
		return nectl_err_set(err, NECTL_ERR_CPU_COUNT,
				     "Insufficient CPUs available: %u requested, the NE CPU pool "
				     "has %zu (set `cpu_count` in the allocator's configuration)",
				     o->cpu_count, npool);
	p->ncpus = o->cpu_count;
	return 0;
}

static int launch_plan(struct enclave_plan *p, const struct enclave_opts *o, struct nectl_err *err)
{
	if (!o->eif_path)
		return nectl_err_set(err, NECTL_ERR_MISSING_ARG,
				     "Missing mandatory argument. User did not provide the "
				     "`eif-path` argument.");
	if ((o->cid && enclave_check_cid(o->cid, err) < 0) || launch_memory(p, o, err) < 0 ||
	    launch_mode(p, o, err) < 0 ||
	    (p->mode == ENCLAVE_MODE_EMULATED ? launch_cpus(p, o, err)
					      : launch_ne_cpus(p, o, err)) < 0 ||
	    launch_forwards(p, o, err) < 0 || launch_check_eif(p, err) < 0 ||
	    enclave_run_dir(p->run_dir, sizeof(p->run_dir), err) < 0)
		return -1;
	p->debug = o->debug;
	p->acpi = o->machine_acpi;
	p->hb_timeout_s = launch_hb_timeout(p, o);
	launch_id(p);
	return 0;
}

/* Closes every descriptor from lo to hi (inclusive). */
static void launch_close_range(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	/* Kernels before 5.9: one by one, up to the descriptor limit. */
	for (long fd = lo, max = sysconf(_SC_OPEN_MAX); fd <= (long)hi && fd < max; fd++)
		close((int)fd);
}

/* The supervisor is a daemon: it keeps none of the caller's descriptors but
 * the two it is handed (a caller's non-CLOEXEC socket or file would stay
 * open as long as the enclave runs), none of its signal dispositions or
 * mask (an ignored SIGTERM could not reach signalfd), a umask that keeps
 * its records and socket its owner's to change, and as many descriptors as
 * it may have (forwarded connections and control clients each hold one). */
static void launch_daemon_state(int *keep_a, int *keep_b)
{
	unsigned a, b;
	struct rlimit rl;
	sigset_t none;

	/* Above the standard three, which the supervisor points at /dev/null. */
	if (*keep_a < 3)
		*keep_a = fcntl(*keep_a, F_DUPFD_CLOEXEC, 3);
	if (*keep_b < 3)
		*keep_b = fcntl(*keep_b, F_DUPFD_CLOEXEC, 3);
	a = (unsigned)(*keep_a < *keep_b ? *keep_a : *keep_b);
	b = (unsigned)(*keep_a < *keep_b ? *keep_b : *keep_a);
	launch_close_range(3, a - 1);
	launch_close_range(a + 1, b - 1);
	launch_close_range(b + 1, ~0u);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(022);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The first child: cleans up, forks the supervisor and exits at once, so
 * the supervisor is nobody's child but init's (or the nearest subreaper's)
 * and is reaped whatever the caller does. */
_Noreturn static void launch_child(struct enclave_plan *p, int report_fd, int lock_fd)
{
	pid_t pid;

	launch_daemon_state(&report_fd, &lock_fd);
	pid = fork();
	if (pid < 0) {
		dprintf(report_fd, "E05 cannot start the enclave process: %s\n", strerror(errno));
		_exit(1);
	}
	if (pid > 0)
		_exit(0);
	supervisor_main(p, report_fd, lock_fd);
}

/* "R [SID]" (reserved: drop the lock; in the NE modes the enclave's ID comes
 * from the device's slot uid), then "OK" or "K<kind> <message>". */
static int launch_wait(FILE *in, struct enclave_plan *p, int *lock_fd, struct nectl_err *err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 1;

	while (rc > 0 && (n = getline(&line, &cap, in)) > 0) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == 'R' && (!line[1] || line[1] == ' ')) {
			if (line[1] && strlen(line + 2) < sizeof(p->sid) &&
			    strspn(line + 2, "0123456789abcdef") == strlen(line + 2))
				snprintf(p->sid, sizeof(p->sid), "%s", line + 2);
			close(*lock_fd);
			*lock_fd = -1;
		} else if (strcmp(line, "OK") == 0) {
			rc = 0;
		} else if (line[0] == 'K' && isdigit((unsigned char)line[1])) {
			char *msg;
			long kind = strtol(line + 1, &msg, 10);

			rc =
			    nectl_err_set(err,
					  kind > 0 && kind < NECTL_ERR_KINDS ? (enum nectl_kind)kind
									     : NECTL_ERR_PROCESS,
					  "%s", *msg ? msg + 1 : "enclave process failure");
		}
	}
	free(line);
	if (rc > 0)
		rc = nectl_err_set(err, NECTL_ERR_PROCESS,
				   "Failed to connect to 1 enclave processes: the enclave process "
				   "exited without reporting");
	return rc;
}

static json_t *launch_result(const struct enclave_plan *p, struct enclave_launched *out)
{
	char path[PATH_MAX];
	json_t *rec, *run = json_object(), *t;
	static const char *const keys[] = {"EnclaveName",  "EnclaveID", "ProcessID", "EnclaveCID",
					   "NumberOfCPUs", "CPUIDs",	"MemoryMiB"};

	rundir_file(p->run_dir, p->sid, ".json", path, sizeof(path));
	rec = json_load_file(path, 0, NULL);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(rec, keys[i]);

		json_object_set(run, keys[i], v ? v : json_null());
	}
	snprintf(out->memory_kind, sizeof(out->memory_kind), "%s",
		 json_string_value(json_object_get(rec, "MemoryBacking")) ?: "");
	t = json_object_get(rec, "Timings");
	out->load_ms = json_number_value(json_object_get(t, "LoadMs"));
	out->entry_ms = json_number_value(json_object_get(t, "KernelEntryMs"));
	out->heartbeat_ms = json_number_value(json_object_get(t, "HeartbeatMs"));
	json_decref(rec);
	return run;
}

int enclave_launch(const struct enclave_opts *o, struct enclave_launched *out,
		   struct nectl_err *err)
{
	struct enclave_plan *p = calloc(1, sizeof(*p));
	json_t *recs = NULL;
	int lock_fd = -1, pfd[2] = {-1, -1}, rc = -1;
	FILE *in;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	if (!p)
		return nectl_err_set(err, NECTL_ERR_FILE, "out of memory");
	if (launch_plan(p, o, err) < 0 || rundir_lock(p->run_dir, &lock_fd, err) < 0)
		goto out;
	if (rundir_records(p->run_dir, &recs, err) < 0 || launch_pick(p, o, recs, err) < 0)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		nectl_err_sys(err, NECTL_ERR_IPC, errno,
			      "cannot create the enclave process's pipe");
		goto out;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		nectl_err_sys(err, NECTL_ERR_SPAWN, errno, "cannot start the enclave process");
		goto out;
	}
	if (pid == 0) {
		close(pfd[0]);
		launch_child(p, pfd[1], lock_fd);
	}
	close(pfd[1]);
	pfd[1] = -1;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	in = fdopen(pfd[0], "r");
	if (!in) {
		nectl_err_sys(err, NECTL_ERR_IPC, errno, "cannot read the enclave process's pipe");
		goto out;
	}
	pfd[0] = -1;
	rc = launch_wait(in, p, &lock_fd, err);
	fclose(in);
	if (rc == 0)
		out->run = launch_result(p, out);
out:
	json_decref(recs);
	if (lock_fd >= 0)
		close(lock_fd);
	for (int i = 0; i < 2; i++)
		if (pfd[i] >= 0)
			close(pfd[i]);
	free(p);
	return rc;
}
