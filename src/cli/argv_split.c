/* --cmd and --entrypoint values: a JSON array of strings, or words split the
 * way a POSIX shell splits them (quotes and backslashes; no expansions). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int split_json(const char *text, const char *opt, char ***res, struct nectl_err *err)
{
	json_error_t jerr;
	json_t *arr = json_loads(text, 0, &jerr), *v;
	char **out;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		json_decref(arr);
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
				     "--%s: not a non-empty JSON array of strings", opt);
	}
	out = calloc(json_array_size(arr) + 1, sizeof(*out));
	json_array_foreach(arr, i, v) {
		if (!out || !json_is_string(v) || !(out[i] = strdup(json_string_value(v)))) {
			argv_free(out);
			json_decref(arr);
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "--%s: element %zu is not a string", opt, i);
		}
	}
	json_decref(arr);
	*res = out;
	return 0;
}

/* Appends one character to the word being built. */
static void split_put(char *word, size_t *len, char c)
{
	word[(*len)++] = c;
}

static int split_words(const char *s, const char *opt, char ***res, struct nectl_err *err)
{
	size_t cap = strlen(s) / 2 + 2, n = 0, len = 0;
	char **out = calloc(cap, sizeof(*out));
	char *word = malloc(strlen(s) + 1);
	bool in_word = false;
	char quote = 0;

	for (const char *p = s; out && word; p++) {
		if (!*p || (!quote && (*p == ' ' || *p == '\t' || *p == '\n'))) {
			if (quote) {
				argv_free(out);
				free(word);
				return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
						     "--%s: unterminated %c quote", opt, quote);
			}
			if (in_word) {
				word[len] = '\0';
				out[n++] = strdup(word);
				len = 0;
				in_word = false;
			}
			if (!*p)
				break;
		} else if (!quote && (*p == '\'' || *p == '"')) {
			quote = *p;
			in_word = true;
		} else if (quote && *p == quote) {
			quote = 0;
		} else if (*p == '\\' && quote != '\'' && p[1] &&
			   (!quote || strchr("\"\\$`", p[1]))) {
			split_put(word, &len, *++p);
			in_word = true;
		} else {
			split_put(word, &len, *p);
			in_word = true;
		}
	}
	free(word);
	if (!out || n == 0) {
		argv_free(out);
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "--%s: no command given", opt);
	}
	*res = out;
	return 0;
}

char **argv_split(const char *text, const char *opt, struct nectl_err *err)
{
	const char *p = text + strspn(text, " \t");
	char **out = NULL;

	if ((*p == '[' ? split_json(p, opt, &out, err) : split_words(text, opt, &out, err)) < 0)
		return NULL;
	return out;
}

void argv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}
