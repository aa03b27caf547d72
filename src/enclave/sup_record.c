/* What the supervisor records: the describe-enclaves object, and how the
 * enclave ended. */
#include <unistd.h>

#include "enclave/sup.h"

double sup_ms(const struct sup *s, uint64_t t)
{
	return t ? (double)(t - s->t0) / 1e6 : 0;
}

static json_t *sup_timings(const struct sup *s)
{
	json_t *t = json_object();

	json_object_set_new(t, "LoadMs", json_real(sup_ms(s, s->t_loaded)));
	json_object_set_new(t, "KernelEntryMs", json_real(sup_ms(s, s->t_entry)));
	json_object_set_new(t, "HeartbeatMs", json_real(sup_ms(s, s->t_heartbeat)));
	return t;
}

const char *sup_mode_name(enum enclave_mode mode)
{
	return mode == ENCLAVE_MODE_NATIVE	? "native"
	       : mode == ENCLAVE_MODE_SIMULATED ? "simulated"
						: "emulated";
}

/* nitro-cli's describe-enclaves keys first, then nectl's. */
json_t *sup_record(const struct sup *s)
{
	const struct enclave_plan *p = s->p;
	json_t *r = json_object(), *cpus = json_array();

	for (unsigned i = 0; i < p->ncpus; i++)
		json_array_append_new(cpus, json_integer(s->ncpus    ? (json_int_t)s->cpus[i]
							 : p->pinned ? p->cpu_ids[i]
								     : (int)i));
	json_object_set_new(r, "EnclaveName", json_string(p->name));
	json_object_set_new(r, "EnclaveID", json_string(p->id));
	json_object_set_new(r, "ProcessID", json_integer(getpid()));
	json_object_set_new(r, "EnclaveCID", json_integer((json_int_t)s->cid));
	json_object_set_new(r, "NumberOfCPUs", json_integer(p->ncpus));
	json_object_set_new(r, "CPUIDs", cpus);
	json_object_set_new(r, "MemoryMiB", json_integer((json_int_t)p->memory_mib));
	json_object_set_new(r, "State", json_string(s->state));
	json_object_set_new(r, "Flags", json_string(p->debug ? "DEBUG_MODE" : "NONE"));
	/* The image as nectl's machine parsed it from enclave memory, else as
	 * checked at launch (the Nitro hypervisor does not say). */
	if (s->m || s->have_img) {
		const struct eif_image *img = s->m ? machine_image(s->m) : &s->img;

		json_object_set_new(r, "Measurements", eif_measurements_json(&img->pcrs));
		if (img->metadata)
			eif_metadata_describe(img, r, NULL);
	}
	if (s->m)
		json_object_set_new(r, "MemoryBacking", json_string(machine_memory_kind(s->m)));
	else if (s->acc)
		json_object_set_new(r, "MemoryBacking", json_string("hugepages"));
	if (s->memory_text[0])
		json_object_set_new(r, "MemoryPlan", json_string(s->memory_text));
	json_object_set_new(r, "Mode", json_string(sup_mode_name(p->mode)));
	/* Nitro's machine, or with the ACPI tables Nitro does not have. */
	json_object_set_new(r, "Machine", json_string(p->acpi ? "nitro+acpi" : "nitro"));
	json_object_set_new(r, "EifPath", json_string(p->eif_path));
	json_object_set_new(r, "Timings", sup_timings(s));
	if (s->device_breaks_saved)
		json_object_set_new(r, "DeviceErrors", json_integer(s->device_breaks_saved));
	if (s->exit_info)
		json_object_set(r, "Exit", s->exit_info);
	return r;
}

/* What the guest's kernel did with the vsock device, from the device itself
 * (never-probed, probed, driver-ok): why an enclave never reached its
 * heartbeat, in terms the guest's applications cannot forge. */
static void sup_classify_vsock(struct sup *s, json_t *e)
{
	struct machine_probe pr;

	if (s->m && machine_device_probe(s->m, "vsock", &pr) == 0)
		json_object_set_new(e, "VsockDevice", json_string(virtio_probe_name(pr.stage)));
}

/* How the enclave ended, from channels the guest's applications cannot
 * forge: the VM's stop reason (pvpanic included), the supervisor's own reason
 * for stopping it, and init's report over its vsock connection. What the
 * console showed is only a hint, and named as such. */
json_t *sup_classify(struct sup *s)
{
	enum sup_app_end app = atomic_load(&s->app.end);
	json_t *e = json_object();
	const char *reason;

	if (s->why == MACHINE_EXIT_TRIPLE_FAULT)
		reason = "triple-fault";
	else if (s->why == MACHINE_EXIT_KVM_ERROR)
		reason = "kvm-error";
	else if (s->why == MACHINE_EXIT_PANIC)
		reason = "kernel-panic";
	else if (s->stop == SUP_STOP_TERMINATE)
		reason = "terminated";
	else if (s->stop == SUP_STOP_NO_HEARTBEAT)
		reason = "no-heartbeat";
	else if (app == SUP_APP_EXITED)
		reason = "app-exited";
	else if (app == SUP_APP_KILLED)
		reason = "app-killed";
	else if (s->why == MACHINE_EXIT_POWEROFF)
		reason = "poweroff";
	else if (s->why_unknown)
		reason = "ended"; /* the Nitro hypervisor does not say why */
	else
		reason = "reboot";
	json_object_set_new(e, "Reason", json_string(reason));
	if (app == SUP_APP_EXITED)
		json_object_set_new(e, "AppExitStatus", json_integer(atomic_load(&s->app.value)));
	else if (app == SUP_APP_KILLED)
		json_object_set_new(e, "AppSignal", json_integer(atomic_load(&s->app.value)));
	if (s->why == MACHINE_EXIT_PANIC)
		json_object_set_new(e, "Detail",
				    json_string("the kernel reported a panic (pvpanic)"));
	else if (s->why == MACHINE_EXIT_TRIPLE_FAULT || s->why == MACHINE_EXIT_KVM_ERROR)
		json_object_set_new(e, "Detail", json_string(s->detail));
	pthread_mutex_lock(&s->cons.mu);
	if (s->cons.panic_hint[0])
		json_object_set_new(e, "ConsoleHint", json_string(s->cons.panic_hint));
	pthread_mutex_unlock(&s->cons.mu);
	json_object_set_new(e, "UptimeMs", json_real(sup_ms(s, sup_now_ns())));
	sup_classify_vsock(s, e);
	return e;
}
