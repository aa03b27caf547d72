/* Option parsing for every subcommand: --name VALUE and --name=VALUE, aliases,
 * repeatable options, and nitro-cli's E01/E02 errors for missing and
 * conflicting arguments. */
#include <string.h>

#include "cli/cli.h"

static const struct opt_spec *args_find(const struct opt_spec *specs, const char *name,
					size_t len)
{
	for (const struct opt_spec *s = specs; s->name; s++) {
		if (strlen(s->name) == len && strncmp(s->name, name, len) == 0)
			return s;
		if (s->alias && strlen(s->alias) == len && strncmp(s->alias, name, len) == 0)
			return s;
	}
	return NULL;
}

static int args_add(struct args *out, const struct opt_spec *spec, const char *value,
		    struct nectl_err *err)
{
	if (!spec->repeatable && args_has(out, spec->name))
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "the argument '--%s' was given more than once", spec->name);
	if (out->n == ARGS_MAX)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "too many arguments");
	out->v[out->n].name = spec->name;
	out->v[out->n].value = value;
	out->n++;
	return 0;
}

/* Accepts "--name value" and "--name=value"; no positional arguments. */
int args_parse(int argc, char **argv, const struct opt_spec *specs, struct args *out,
	       struct nectl_err *err)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq, *value = NULL;
		const struct opt_spec *spec;
		size_t len;

		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "unexpected argument '%s' (options start with --)",
					     arg);
		eq = strchr(arg + 2, '=');
		len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		spec = args_find(specs, arg + 2, len);
		if (!spec)
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "unknown option '%.*s' (see --help)", (int)len + 2,
					     arg);
		if (spec->takes_value) {
			if (eq)
				value = eq + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else
				return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
						     "option '--%s' needs a value", spec->name);
		} else if (eq) {
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "option '--%s' takes no value", spec->name);
		}
		if (args_add(out, spec, value, err) < 0)
			return -1;
	}
	return 0;
}

const char *args_get(const struct args *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, name) == 0)
			return a->v[i].value ? a->v[i].value : "";
	return NULL;
}

bool args_has(const struct args *a, const char *name)
{
	return args_get(a, name) != NULL;
}

size_t args_all(const struct args *a, const char *name, const char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, name) == 0 && n < max)
			out[n++] = a->v[i].value;
	return n;
}

int args_require(const struct args *a, const char *name, const char **value,
		 struct nectl_err *err)
{
	*value = args_get(a, name);
	if (!*value)
		return nectl_err_set(
		    err, NECTL_ERR_MISSING_ARG,
		    "Missing mandatory argument. User did not provide the `%s` argument.", name);
	return 0;
}

int args_conflict(const struct args *a, const char *x, const char *y, struct nectl_err *err)
{
	if (args_has(a, x) && args_has(a, y))
		return nectl_err_set(
		    err, NECTL_ERR_CONFLICT_ARG,
		    "Conflicting arguments: `--%s` and `--%s` cannot be used together.", x, y);
	return 0;
}
