#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

int cli_print_json(json_t *j, struct nectl_err *err)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	int rc = 0;

	json_decref(j);
	if (!text)
		return nectl_err_set(err, NECTL_E_SERDE, "cannot encode the JSON output");
	if (printf("%s\n", text) < 0 || fflush(stdout) != 0)
		rc = nectl_err_set(err, NECTL_E_FILE, "cannot write to standard output");
	free(text);
	return rc;
}

void cli_print_error(const struct nectl_err *err)
{
	int code = err->code > 0 ? err->code : 0;

	fprintf(stderr, "[ E%02d ] %s\n", code, err->msg[0] ? err->msg : cli_explain(code));
}

static void measurements_add(json_t *m, const char *key, const uint8_t *pcr)
{
	char hex[2 * EIF_HASH_SIZE + 1];

	eif_hex(pcr, EIF_HASH_SIZE, hex);
	json_object_set_new(m, key, json_string(hex));
}

json_t *cli_measurements_json(const struct eif_pcrs *pcrs)
{
	json_t *m = json_object();

	/* nitro-cli serializes a BTreeMap: keys sorted. */
	json_object_set_new(m, "HashAlgorithm", json_string("Sha384 { ... }"));
	measurements_add(m, "PCR0", pcrs->pcr0);
	measurements_add(m, "PCR1", pcrs->pcr1);
	measurements_add(m, "PCR2", pcrs->pcr2);
	if (pcrs->has_pcr8)
		measurements_add(m, "PCR8", pcrs->pcr8);
	return m;
}
