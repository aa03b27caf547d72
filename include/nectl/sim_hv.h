/* The simulated Nitro hypervisor (src/sim/sim_hv.c): attached to a simulated
 * NE device, it boots accel/kvm over the donated memory at the device's
 * NE_START_ENCLAVE. `tmpl` is the machine as the supervisor wants it
 * (console, the vsock device's host side, ACPI); memory, CPUs and CID come
 * from the start. Free it after the enclave's last close. */
#ifndef NECTL_SIM_HV_H
#define NECTL_SIM_HV_H

#include "nectl/err.h"
#include "nectl/machine.h"
#include "nectl/ne_dev.h"

struct sim_hv;

int sim_hv_attach(struct ne_dev *d, const struct machine_spec *tmpl, struct sim_hv **out,
		  struct nectl_err *err);
void sim_hv_free(struct sim_hv *hv);

#endif
