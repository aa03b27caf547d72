/* The supervisor's launch: the accelerator its plan names (emulated: accel/kvm
 * directly; simulated: the NE driver model with its hypervisor; native: the
 * real /dev/nitro_enclaves), then the one launch sequence on it
 * (nectl/launch_seq.h). The parent's side of vsock attaches to nectl's
 * machine once its image is loaded and before any vCPU runs. */
#include <stdio.h>
#include <string.h>

#include "enclave/sup.h"
#include "nectl/eif_sign.h"
#include "nectl/launch_seq.h"
#include "nectl/native.h"
#include "nectl/nitro.h"
#include "nectl/ne_dev.h"
#include "nectl/sim_hv.h"

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

/* NECTL_NE_DEVICE=sim: a parent like a c6i.2xlarge; sim:FILE: its topology. */
static int sup_open_sim(struct sup *s, const struct machine_spec *tmpl, struct ne_accel_cfg *cfg,
			struct nectl_err *err)
{
	struct sim_topology t;
	char pool[256];

	if (sim_topology_load(s->p->ne_device, &t, pool, sizeof(pool), err) < 0 ||
	    ne_dev_open_sim(&t, pool, NULL, NULL, &s->ne, err) < 0 ||
	    sim_hv_attach(s->ne, tmpl, &s->hv, err) < 0)
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

int sup_launch(struct sup *s, struct nectl_err *err)
{
	const struct enclave_plan *p = s->p;
	uint32_t ids[ENCLAVE_MAX_CPUS];
	struct launch_result r;
	struct machine_spec tmpl = {.image_name = p->eif_path,
				    .host_cpus = p->pinned ? p->cpu_ids : NULL,
				    .console = sup_console,
				    .ctx = s,
				    .vsock_ops = sup_vsock_ops_get(),
				    .vsock_ctx = s,
				    .device_broken = sup_device_broken,
				    .acpi = p->acpi,
				    .ready = sup_machine_ready};
	struct launch_spec spec = {.eif_path = p->eif_path,
				   .memory_bytes = p->memory_mib << 20,
				   .ncpus = p->ncpus,
				   .cid = p->cid,
				   .debug = p->debug};

	/* Emulation pins to host CPUs through the machine; the NE modes hand
	 * the CPUs asked for to the device. */
	if (p->pinned && p->mode != ENCLAVE_MODE_EMULATED) {
		for (unsigned i = 0; i < p->ncpus; i++)
			ids[i] = (uint32_t)p->cpu_ids[i];
		spec.cpu_ids = ids;
	}
	if (sup_check_image(s, err) < 0 || sup_accel(s, &tmpl, err) < 0 ||
	    launch_seq_run(s->acc, &spec, &r, err) < 0)
		return -1;
	s->cid = r.cid;
	/* Emulation's are the host CPUs it pins to (or none); the NE modes'
	 * are the device's. */
	if (p->mode != ENCLAVE_MODE_EMULATED) {
		memcpy(s->cpus, r.cpus, r.ncpus * sizeof(r.cpus[0]));
		s->ncpus = r.ncpus;
	}
	s->t_loaded = r.t_loaded;
	s->t_entry = r.t_started;
	s->acc->ops->memory_text(s->acc, s->memory_text, sizeof(s->memory_text));
	return 0;
}
