/* What build-enclave and describe-eif say about a kernel that is not
 * Nitro-ready: a warning line per missing option on stderr, and the same
 * facts as JSON for describe-eif. */
#include <stdio.h>

#include "cli/cli.h"

void cli_kernel_warn(const char *kernel, const char *config, const struct kernel_check *c)
{
	if (!c->n)
		return;
	fprintf(stderr, "warning: kernel %s (config %s) is not Nitro-ready:\n", kernel, config);
	for (unsigned i = 0; i < c->n; i++)
		fprintf(stderr, "warning:   %s\n", c->p[i].text);
	if (c->fatal)
		fprintf(stderr,
			"warning: this image will fail its boot heartbeat (E36) on Nitro and in "
			"nectl's emulator; build with nectl's kernel (`nectl kernel build`) or "
			"AWS's blobs (--blobs DIR)\n");
}

json_t *cli_kernel_json(const struct kernel_check_eif *k)
{
	json_t *o = json_object(), *problems;

	json_object_set_new(o, "Release", k->release[0] ? json_string(k->release) : json_null());
	json_object_set_new(o, "Config", k->known ? json_string(k->config) : json_null());
	if (!k->known) {
		json_object_set_new(o, "NitroReady", json_null());
		return o;
	}
	problems = json_array();
	for (unsigned i = 0; i < k->check.n; i++)
		json_array_append_new(problems, json_string(k->check.p[i].text));
	json_object_set_new(o, "NitroReady", json_boolean(!k->check.fatal));
	json_object_set_new(o, "Problems", problems);
	return o;
}
