/* What the commands print: JSON as nitro-cli formats it, `[ Exx ]` errors,
 * and the Measurements object. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

int cli_print_json(json_t *j, struct nectl_err *err)
{
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	int rc = 0;

	json_decref(j);
	if (!text)
		return nectl_err_set(err, NECTL_ERR_SERDE, "cannot encode the JSON output");
	if (printf("%s\n", text) < 0 || fflush(stdout) != 0)
		rc = nectl_err_set(err, NECTL_ERR_FILE, "cannot write to standard output");
	free(text);
	return rc;
}

void cli_print_error(const struct nectl_err *err)
{
	int code = cli_err_code(err);

	fprintf(stderr, "[ E%02d ] %s\n", code, err->msg[0] ? err->msg : cli_explain(code));
}

json_t *cli_measurements_json(const struct eif_pcrs *pcrs)
{
	return eif_measurements_json(pcrs);
}
