/* The supervisor's launch: the accelerator its plan names (emulated: accel/kvm
 * directly; simulated: the NE driver model with its hypervisor; native: the
 * real /dev/nitro_enclaves), then the one launch sequence on it
 * (nectl/launch_seq.h). The parent's side of vsock attaches to nectl's
 * machine once its image is loaded and before any vCPU runs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "enclave/sup.h"
#include "nectl/attest.h"
#include "nectl/afvsock.h"
#include "nectl/eif_sign.h"
#include "nectl/launch_seq.h"
#include "nectl/native.h"
#include "nectl/nitro.h"
#include "nectl/ne_dev.h"
#include "nectl/sim_hv.h"

/* The NSM's leaf certificate lives as long as AWS's (3 hours). */
#define SUP_NSM_LEAF_S (3 * 3600)

static void sup_console(void *ctx, const uint8_t *buf, size_t len)
{
	console_feed(&((struct sup *)ctx)->cons, buf, len);
}

static void sup_heartbeat(void *ctx)
{
	struct sup *s = ctx;

	atomic_store(&s->heartbeat_seen, true);
	sup_wake(s);
}

/* A hostile or buggy guest broke a device: said once in the console log and
 * counted in the record; the enclave runs on. */
static void sup_device_broken(void *ctx, const char *device)
{
	struct sup *s = ctx;
	char line[128];
	int n = snprintf(line, sizeof(line),
			 "\r\n[nectl: %s: malformed virtqueue; device stopped until the guest "
			 "resets it]\r\n",
			 device);

	if (n > 0)
		console_feed(&s->cons, (const uint8_t *)line, (size_t)n);
	atomic_fetch_add(&s->device_breaks, 1);
	sup_wake(s);
}

/* The machine exists, its image is loaded, no vCPU runs yet. */
static int sup_machine_ready(void *ctx, struct machine *m, struct nectl_err *err)
{
	struct sup *s = ctx;

	s->m = m;
	pvsock_from_device(&s->pv, machine_vsock(m), machine_bus_lock, machine_bus_unlock, m);
	fwd_attach(s->fwd, &s->pv, sup_heartbeat, s);
	return fwd_start(s->fwd, err);
}

static void sup_afv_console(void *ctx, const void *buf, size_t len)
{
	console_feed(&((struct sup *)ctx)->cons, buf, len);
}

/* Port 9000 is the whole parent's: one enclave boots at a time, the others
 * wait here (at most their heartbeat timeout) until its heartbeat. */
static int sup_heartbeat_lock(struct sup *s, struct nectl_err *err)
{
	char path[PATH_MAX];
	struct timespec rest = {0, 100 * 1000 * 1000};

	snprintf(path, sizeof(path), "%s/heartbeat.lock", s->p->run_dir);
	s->hb_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->hb_lock_fd < 0)
		return nectl_err_sys(err, NECTL_ERR_LOCK, errno, "%s: cannot open", path);
	for (unsigned i = 0; i < s->p->hb_timeout_s * 10u; i++) {
		if (flock(s->hb_lock_fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			break;
		nanosleep(&rest, NULL);
	}
	return nectl_err_set(
	    err, NECTL_ERR_BOOT,
	    "another enclave kept the parent's heartbeat port (vsock 9000) for %u s "
	    "while it booted",
	    s->p->hb_timeout_s);
}

/* What the enclave connects to on the parent: the heartbeat, init's report
 * (best effort: another enclave's supervisor may hold it) and every to-host
 * forward (which must be ours). */
static int sup_afvsock_listen(struct sup *s, struct nectl_err *err)
{
	const struct enclave_plan *p = s->p;
	struct nectl_err e2 = {0};

	if (sup_heartbeat_lock(s, err) < 0 || afvsock_listen(s->afv, VSOCK_HEARTBEAT_PORT, err) < 0)
		return -1;
	if (afvsock_listen(s->afv, APP_REPORT_PORT, &e2) < 0)
		sup_note(s, "[nectl: the parent's vsock port 9009 is taken (another enclave's "
			    "supervisor): this enclave's app exit status will not be recorded]");
	for (size_t i = 0; i < p->nrules; i++) {
		if (p->rules[i].dir != FWD_TO_HOST ||
		    afvsock_listen(s->afv, p->rules[i].port, &e2) == 0)
			continue;
		return nectl_err_sys(err, NECTL_ERR_SOCKET, e2.errnum,
				     "--forward-to-host %s: the parent's vsock port %u cannot be "
				     "bound (another enclave's forward?)",
				     p->rules[i].text, p->rules[i].port);
	}
	return 0;
}

/* The parent's side over AF_VSOCK (a real parent, or the model reached over
 * vsock loopback), up before the start as nitro-cli's heartbeat listener. */
static int sup_afvsock(struct sup *s, struct nectl_err *err)
{
	const struct enclave_plan *p = s->p;
	uint32_t peer = s->loopback ? VMADDR_CID_LOCAL : (uint32_t)p->cid;
	struct afvsock_cfg cfg = {
	    .enclave_cid = peer,
	    .console_cid = s->loopback ? VMADDR_CID_LOCAL : AFVSOCK_CID_HYPERVISOR,
	    .console_port = p->debug && p->cid ? AFVSOCK_CONSOLE_PORT_BASE + (uint32_t)p->cid : 0,
	    .console = sup_afv_console,
	    .console_ctx = s};

	if (afvsock_new(&s->afv, &cfg, sup_vsock_ops_get(), s, err) < 0 ||
	    sup_afvsock_listen(s, err) < 0)
		return -1;
	afvsock_pvsock(s->afv, &s->pv);
	fwd_attach(s->fwd, &s->pv, sup_heartbeat, s);
	return fwd_start(s->fwd, err) < 0 ? -1 : afvsock_start(s->afv, err);
}

/* nitro-cli checks a signed image at launch (E59): the COSE signature, its
 * payload against PCR0 and the certificate's validity period. The image is
 * read from the file here, once, for that and for describe's PCRs. */
static int sup_check_image(struct sup *s, struct nectl_err *err)
{
	struct eif_sig_check check;
	char why[NECTL_ERR_MSG_MAX];

	if (eif_read_file(s->p->eif_path, &s->img, NULL, err) < 0)
		return -1;
	s->have_img = true;
	if (!s->img.signature)
		return 0;
	if (eif_signature_verify(s->img.signature, s->img.signature_len, s->img.pcrs.pcr0, &check,
				 err) < 0) {
		/* Not err->msg itself: a buffer formatted into itself is undefined. */
		snprintf(why, sizeof(why), "%s", err->msg);
		return nectl_err_set(err, NECTL_ERR_SIGCHECK, "%s: %s", s->p->eif_path, why);
	}
	if (!check.cose_valid || !check.payload_matches || !check.cert_time_valid)
		return nectl_err_set(err, NECTL_ERR_SIGCHECK, "%s: signature check failed: %s",
				     s->p->eif_path, check.reason);
	return 0;
}

/* Simulated enclaves share one parent's CPU pool, as the driver's enclaves
 * do, though each supervisor has a model of its own: under a lock held
 * until this enclave's CPUs are in its record, the cores in every other
 * live simulated record are out of this model's pool. */
static int sup_sim_share_pool(struct sup *s, struct nectl_err *err)
{
	char path[PATH_MAX];
	json_t *recs, *r, *cpu;
	size_t i, k;

	snprintf(path, sizeof(path), "%s/sim-pool.lock", s->p->run_dir);
	s->pool_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->pool_lock_fd < 0 || flock(s->pool_lock_fd, LOCK_EX) < 0)
		return nectl_err_sys(err, NECTL_ERR_LOCK, errno, "%s: cannot lock", path);
	if (rundir_records(s->p->run_dir, &recs, err) < 0)
		return -1;
	json_array_foreach(recs, i, r)
	{
		const char *mode = json_string_value(json_object_get(r, "Mode"));
		const char *state = json_string_value(json_object_get(r, "State"));
		const char *id = json_string_value(json_object_get(r, "EnclaveID"));

		if (!mode || strcmp(mode, "simulated") != 0 || !state ||
		    strcmp(state, "EXITED") == 0 || (id && strcmp(id, s->p->id) == 0))
			continue;
		json_array_foreach(json_object_get(r, "CPUIDs"), k, cpu)
		    ne_dev_sim_hold_core(s->ne, (unsigned)json_integer_value(cpu));
	}
	json_decref(recs);
	return 0;
}

/* NECTL_NE_DEVICE=sim: a parent like a c6i.2xlarge; sim:FILE: its topology. */
static int sup_open_sim(struct sup *s, const struct machine_spec *tmpl, struct ne_accel_cfg *cfg,
			struct nectl_err *err)
{
	struct sim_topology t;
	char pool[256];

	if (sim_topology_load(s->p->ne_device, &t, pool, sizeof(pool), &s->loopback, err) < 0 ||
	    ne_dev_open_sim(&t, pool, NULL, NULL, &s->ne, err) < 0 ||
	    (!s->loopback && sim_hv_attach(s->ne, tmpl, &s->hv, err) < 0) ||
	    sup_sim_share_pool(s, err) < 0)
		return -1;
	cfg->max_regions = t.max_mem_regions;
	return 0;
}

static int sup_accel(struct sup *s, const struct machine_spec *tmpl, struct nectl_err *err)
{
	const struct enclave_plan *p = s->p;
	struct ne_accel_cfg cfg = {.sysfs = "/sys"};

	if (p->mode == ENCLAVE_MODE_EMULATED)
		return accel_kvm_new(&s->acc, tmpl, err);
	if (p->mode == ENCLAVE_MODE_SIMULATED) {
		if (sup_open_sim(s, tmpl, &cfg, err) < 0)
			return -1;
	} else {
		if (ne_dev_open(p->ne_device, &s->ne, err) < 0)
			return -1;
		ne_pool_node("/sys", &cfg.node);
	}
	return accel_ne_new(&s->acc, s->ne, &cfg, err);
}

/* The machine as the supervisor wants it; the launch fills in the rest. */
static struct machine_spec sup_machine_template(struct sup *s)
{
	const struct enclave_plan *p = s->p;

	return (struct machine_spec){.image_name = p->eif_path,
				     .host_cpus = p->pinned ? p->cpu_ids : NULL,
				     .console = sup_console,
				     .ctx = s,
				     .vsock_ops = sup_vsock_ops_get(),
				     .vsock_ctx = s,
				     .device_broken = sup_device_broken,
				     .acpi = p->acpi,
				     .ready = sup_machine_ready};
}

/* The NSM's signer for this enclave: a fresh leaf from the local CA (created
 * on first need), the CA bundle root first, the enclave ID as module_id. */
static int sup_nsm_signer(struct sup *s, struct nectl_err *err)
{
	uint8_t *der[ATTEST_CA_BUNDLE_LEN], *leaf = NULL;
	size_t len[ATTEST_CA_BUNDLE_LEN], leaf_len = 0;
	struct attest_ca *ca = NULL;
	char dir[PATH_MAX];
	int rc;

	rc = attest_ca_default_dir(dir, sizeof(dir), err) < 0 ||
		     attest_ca_load_or_init(dir, &ca, NULL, err) < 0 ||
		     attest_ca_issue_leaf(ca, s->p->id, SUP_NSM_LEAF_S, &s->nsm_cfg.key, &leaf,
					  &leaf_len, err) < 0 ||
		     attest_ca_bundle(ca, der, len, err) < 0
		 ? -1
		 : 0;
	attest_ca_free(ca);
	if (rc < 0)
		return -1;
	/* Kept for the supervisor's life: the machine's NSM copies them. */
	for (unsigned i = 0; i < ATTEST_CA_BUNDLE_LEN; i++)
		s->nsm_bundle[i] = (struct nsm_der){der[i], len[i]};
	s->nsm_cfg.cert = (struct nsm_der){leaf, leaf_len};
	s->nsm_cfg.cabundle = s->nsm_bundle;
	s->nsm_cfg.cabundle_len = ATTEST_CA_BUNDLE_LEN;
	s->nsm_cfg.module_id = s->p->id;
	s->nsm_cfg.debug = s->p->debug;
	return 0;
}

int sup_prepare(struct sup *s, struct enclave_plan *p, struct nectl_err *err)
{
	struct machine_spec tmpl = sup_machine_template(s);

	/* nectl's machine has an NSM (the Nitro hypervisor has its own); its
	 * signer is filled in below, once the enclave has its ID. */
	tmpl.nsm = &s->nsm_cfg;
	if (sup_check_image(s, err) < 0 || sup_accel(s, &tmpl, err) < 0)
		return -1;
	/* NE_CREATE_VM first, as nitro-cli's enclave process: the slot uid
	 * names the enclave. */
	if (p->mode != ENCLAVE_MODE_EMULATED) {
		if (s->acc->ops->create(s->acc, &s->slot_uid, err) < 0)
			return -1;
		enclave_plan_id(p, s->slot_uid);
	}
	if (p->mode == ENCLAVE_MODE_NATIVE || s->loopback)
		return 0;
	return sup_nsm_signer(s, err);
}

int sup_launch(struct sup *s, struct nectl_err *err)
{
	const struct enclave_plan *p = s->p;
	uint32_t ids[ENCLAVE_MAX_CPUS];
	struct launch_result r;
	struct launch_spec spec = {.eif_path = p->eif_path,
				   .memory_bytes = p->memory_mib << 20,
				   .ncpus = p->ncpus,
				   .cid = p->cid,
				   .debug = p->debug,
				   .slot_uid = s->slot_uid};

	/* Emulation pins to host CPUs through the machine; the NE modes hand
	 * the CPUs asked for to the device. */
	if (p->pinned && p->mode != ENCLAVE_MODE_EMULATED) {
		for (unsigned i = 0; i < p->ncpus; i++)
			ids[i] = (uint32_t)p->cpu_ids[i];
		spec.cpu_ids = ids;
	}
	if (((p->mode == ENCLAVE_MODE_NATIVE || s->loopback) && sup_afvsock(s, err) < 0) ||
	    launch_seq_run(s->acc, &spec, &r, err) < 0)
		return -1;
	s->cid = r.cid;
	if (s->afv && !p->cid)
		afvsock_set_enclave(s->afv, (uint32_t)r.cid,
				    p->debug ? AFVSOCK_CONSOLE_PORT_BASE + (uint32_t)r.cid : 0);
	/* Emulation's are the host CPUs it pins to (or none); the NE modes'
	 * are the device's. */
	if (p->mode != ENCLAVE_MODE_EMULATED) {
		memcpy(s->cpus, r.cpus, r.ncpus * sizeof(r.cpus[0]));
		s->ncpus = r.ncpus;
	}
	s->t_loaded = r.t_loaded;
	s->t_entry = r.t_started;
	s->acc->ops->memory_text(s->acc, s->memory_text, sizeof(s->memory_text));
	if (s->pool_lock_fd >= 0) {
		sup_save(s); /* its CPUs in the record, then the next may choose */
		close(s->pool_lock_fd);
		s->pool_lock_fd = -1;
	}
	return 0;
}
