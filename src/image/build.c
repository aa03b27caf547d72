/* build-enclave: load the application, lay out both ramdisks, stream them as
 * cpio straight into the EIF writer (no temporary archives). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nectl/enclave_image.h"

const char *const enclave_image_modules[] = {
	"virtio_mmio", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
	"nsm",
};
const size_t enclave_image_nmodules = sizeof(enclave_image_modules) / sizeof(enclave_image_modules[0]);

static const char *const build_rootfs_dirs[] = {"dev", "run", "sys", "var", "proc", "tmp"};

static size_t build_argv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

static char **build_argv_join(char *const *a, char *const *b, struct nectl_err *err)
{
	size_t na = build_argv_len(a), nb = build_argv_len(b), k = 0;
	char **out = calloc(na + nb + 1, sizeof(*out));

	for (size_t i = 0; out && i < na + nb; i++) {
		out[k] = strdup(i < na ? a[i] : b[i - na]);
		if (!out[k++]) {
			for (size_t j = 0; j < k; j++)
				free(out[j]);
			free(out);
			out = NULL;
		}
	}
	if (!out)
		nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	return out;
}

char **enclave_image_cmd(char *const *cmd, char *const *entrypoint, const struct image_config *cfg,
			 struct nectl_err *err)
{
	char *const *use;

	if (cmd || entrypoint)
		return build_argv_join(entrypoint, cmd, err);
	use = cfg && cfg->cmd && cfg->cmd[0] ? cfg->cmd : cfg ? cfg->entrypoint : NULL;
	if (!use || !use[0]) {
		nectl_err_set(
		    err, NECTL_ERR_BUILD,
		    "the image has neither Cmd nor Entrypoint: give --cmd (or --entrypoint)");
		return NULL;
	}
	return build_argv_join(use, NULL, err);
}

static void build_argv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* One line per element: an element with a newline cannot be represented. */
static int build_lines(char *const *v, const char *what, uint8_t **out, size_t *len,
		       struct nectl_err *err)
{
	size_t total = 0, off = 0;

	for (size_t i = 0; v && v[i]; i++) {
		if (strchr(v[i], '\n'))
			return nectl_err_set(err, NECTL_ERR_INVALID_ARG,
					     "%s element %zu contains a newline, which the "
					     "enclave's `%s` file cannot hold",
					     what, i, what);
		total += strlen(v[i]) + 1;
	}
	*out = malloc(total ? total : 1);
	if (!*out)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	for (size_t i = 0; v && v[i]; i++) {
		size_t n = strlen(v[i]);

		memcpy(*out + off, v[i], n);
		(*out)[off + n] = '\n';
		off += n + 1;
	}
	*len = total;
	return 0;
}

static int build_put_mem(struct image_tree *t, const char *path, uint32_t mode, int64_t mtime,
			 uint8_t *data, size_t len, struct nectl_err *err)
{
	struct image_node n = {.path = (char *)path, .type = IMAGE_REG, .mode = mode,
			       .mtime = mtime, .size = len, .data = IMAGE_DATA_MEM, .mem = data};

	if (image_tree_put(t, &n, err) < 0) {
		free(data);
		return -1;
	}
	return 0;
}

/* A file the user named (init, nsm.ko): its symlinks are resolved now, once,
 * and the ramdisk gets the file found then, or an error. */
static int build_put_file(struct image_tree *t, const char *path, uint32_t mode, int64_t mtime,
			  const char *host, struct nectl_err *err)
{
	struct image_node n = {.path = (char *)path, .type = IMAGE_REG, .mode = mode,
			       .mtime = mtime, .data = IMAGE_DATA_FILE};
	char *real = realpath(host, NULL);
	struct stat st;
	int rc;

	if (!real || lstat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(real);
		return nectl_err_set(err, NECTL_ERR_FILE, "%s: not a readable regular file", host);
	}
	n.data_path = real;
	n.size = (uint64_t)st.st_size;
	n.data_dev = (uint64_t)st.st_dev;
	n.data_ino = (uint64_t)st.st_ino;
	rc = image_tree_put(t, &n, err);
	free(real);
	return rc;
}

static int build_put_dir(struct image_tree *t, const char *path, int64_t mtime,
			 struct nectl_err *err)
{
	struct image_node n = {.path = (char *)path, .type = IMAGE_DIR, .mode = 0755, .mtime = mtime};

	if (image_tree_get(t, path))
		return 0;
	return image_tree_put(t, &n, err);
}

static bool build_same_key(const char *a, const char *b)
{
	size_t ka = strcspn(a, "="), kb = strcspn(b, "=");

	return ka == kb && strncmp(a, b, ka) == 0;
}

/* The image's Env with each --env KEY=VALUE replacing or appending. */
static char **build_env(char *const *base, char *const *extra, struct nectl_err *err)
{
	char **env = build_argv_join(base, NULL, err);
	size_t n = build_argv_len(env);

	/* The enclave's init stops at an env line that is not KEY=VALUE. */
	for (size_t i = 0; i < n; i++) {
		if (!strchr(env[i], '=') || env[i][0] == '=') {
			nectl_err_set(err, NECTL_ERR_BUILD,
				      "the image's Env entry %zu (`%s`) is not KEY=VALUE", i,
				      env[i]);
			build_argv_free(env);
			return NULL;
		}
	}

	for (size_t i = 0; env && extra && extra[i]; i++) {
		size_t k = 0;
		char *copy;

		if (!strchr(extra[i], '=') || extra[i][0] == '=') {
			build_argv_free(env);
			nectl_err_set(err, NECTL_ERR_INVALID_ARG, "--env `%s` is not KEY=VALUE",
				      extra[i]);
			return NULL;
		}
		while (k < n && !build_same_key(env[k], extra[i]))
			k++;
		copy = strdup(extra[i]);
		if (k == n) {
			char **grown = realloc(env, (n + 2) * sizeof(*env));

			if (!grown || !copy) {
				free(copy);
				build_argv_free(grown ? grown : env);
				nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
				return NULL;
			}
			env = grown;
			env[n++] = copy;
			env[n] = NULL;
		} else {
			free(env[k]);
			env[k] = copy;
		}
	}
	return env;
}

static int build_load_app(const struct enclave_image_spec *spec, struct image_tree *t,
			  struct image_config *cfg, struct image_notes *notes,
			  struct nectl_err *err)
{
	const char *oci_arch = spec->arch == EIF_ARCH_AARCH64 ? "arm64" : "amd64";
	struct stat st;

	if (spec->image)
		return image_load_image(t, spec->image, oci_arch, "rootfs", cfg, notes, err);
	if (stat(spec->rootfs, &st) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "%s: cannot open", spec->rootfs);
	if (S_ISDIR(st.st_mode))
		return image_load_dir(t, spec->rootfs, "rootfs", notes, err);
	return image_load_tar(t, spec->rootfs, "rootfs", false, notes, err);
}

static int build_customer(const struct enclave_image_spec *spec, struct image_tree *t,
			  struct image_config *cfg, struct image_notes *notes,
			  struct nectl_err *err)
{
	char **cmd = NULL, **env = NULL;
	uint8_t *bytes;
	size_t len;
	int rc = -1;

	if (build_load_app(spec, t, cfg, notes, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(build_rootfs_dirs) / sizeof(build_rootfs_dirs[0]); i++) {
		char path[32];

		snprintf(path, sizeof(path), "rootfs/%s", build_rootfs_dirs[i]);
		if (build_put_dir(t, path, spec->build_time, err) < 0)
			return -1;
	}
	if (cfg->working_dir && cfg->working_dir[0] && strcmp(cfg->working_dir, "/") != 0)
		image_notes_add(notes,
				"the image's WorkingDir %s is not applied: the enclave init runs the command from / (as nitro-cli's does)",
				cfg->working_dir);
	cmd = enclave_image_cmd(spec->cmd, spec->entrypoint, cfg, err);
	env = cmd ? build_env(cfg->env, spec->env, err) : NULL;
	if (!env)
		goto out;
	if (build_lines(cmd, "cmd", &bytes, &len, err) < 0 ||
	    build_put_mem(t, "cmd", 0644, spec->build_time, bytes, len, err) < 0 ||
	    build_lines(env, "env", &bytes, &len, err) < 0 ||
	    build_put_mem(t, "env", 0644, spec->build_time, bytes, len, err) < 0)
		goto out;
	rc = 0;
out:
	build_argv_free(cmd);
	build_argv_free(env);
	return rc;
}

static int build_modules(const struct enclave_image_spec *spec, struct image_tree *t,
			 struct nectl_err *err)
{
	struct image_module *mods;
	size_t count;
	int rc = 0;

	if (image_modules_resolve(spec->modules_dir, enclave_image_modules, enclave_image_nmodules,
				  &mods, &count, err) < 0)
		return -1;
	for (size_t i = 0; i < count && rc == 0; i++) {
		char path[128];

		/* The numeric prefix is the load order init follows. */
		snprintf(path, sizeof(path), "nectl/modules/%02zu-%s.ko", i, mods[i].name);
		rc = build_put_mem(t, path, 0644, spec->build_time, mods[i].data, mods[i].len, err);
		mods[i].data = NULL;
	}
	image_modules_free(mods, count);
	return rc;
}

static int build_bootstrap(const struct enclave_image_spec *spec, struct image_tree *t,
			   struct nectl_err *err)
{
	if (build_put_dir(t, "dev", spec->build_time, err) < 0)
		return -1;
	if (spec->init_path) {
		if (build_put_file(t, "init", 0755, spec->build_time, spec->init_path, err) < 0)
			return -1;
	} else {
		uint8_t *copy = malloc(spec->init_len);

		if (!copy)
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
		memcpy(copy, spec->init_data, spec->init_len);
		if (build_put_mem(t, "init", 0755, spec->build_time, copy, spec->init_len, err) < 0)
			return -1;
	}
	if (spec->nsm_ko && build_put_file(t, "nsm.ko", 0755, spec->build_time, spec->nsm_ko, err) < 0)
		return -1;
	return spec->modules_dir ? build_modules(spec, t, err) : 0;
}

struct build_ramdisk {
	struct image_tree *tree;
	struct image_cpio_opts opts;
};

static int build_produce(void *ctx, eif_emit_fn emit, void *emit_ctx, struct nectl_err *err)
{
	struct build_ramdisk *r = ctx;

	return image_cpio_write(r->tree, &r->opts, emit, emit_ctx, err);
}

static int build_metadata(const struct enclave_image_spec *spec, const struct image_config *cfg,
			  char **json, size_t *len, struct nectl_err *err)
{
	char os[64] = "Unknown", kver[64] = "Unknown", when[32], version[80];
	const char *base = strrchr(spec->output, '/');
	char name[256];

	if (spec->kernel_config && eif_kernel_config_info(spec->kernel_config, os, kver, err) < 0)
		return -1;
	eif_format_time(spec->build_time, when);
	snprintf(name, sizeof(name), "%s", base ? base + 1 : spec->output);
	if (strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".eif") == 0)
		name[strlen(name) - 4] = '\0';
	snprintf(version, sizeof(version), "%s",
		 cfg->image_id && strncmp(cfg->image_id, "sha256:", 7) == 0 ? cfg->image_id + 7 : "1.0");
	return eif_metadata_build(&(struct eif_metadata_fields){
					  .image_name = spec->name ? spec->name : name,
					  .image_version = spec->version ? spec->version : version,
					  .build_time = when,
					  .build_tool = "nectl",
					  .build_tool_version = NECTL_VERSION,
					  .operating_system = os,
					  .kernel_version = kver,
					  .docker_info_json = cfg->config_json,
					  .custom_json = spec->custom_metadata},
				  json, len, err);
}

static int build_write(const struct enclave_image_spec *spec, struct image_tree *boot,
		       struct image_tree *app, const struct image_config *cfg,
		       struct eif_pcrs *pcrs, struct nectl_err *err)
{
	/* Every ramdisk entry gets mtime 0: timestamps mean nothing inside an
	 * enclave, and fixing them keeps PCR0/1/2 independent of the input files'
	 * times and of the build time, which only stamps the (unmeasured) metadata. */
	struct build_ramdisk rd[2] = {{boot, {0, spec->entries_done}},
				      {app, {0, spec->entries_done}}};
	struct eif_input in[2];
	char *meta;
	size_t meta_len;
	int rc;

	if (build_metadata(spec, cfg, &meta, &meta_len, err) < 0)
		return -1;
	if (spec->entries_total)
		*spec->entries_total = image_tree_count(boot) + image_tree_count(app);
	for (int i = 0; i < 2; i++)
		in[i] = (struct eif_input){.len = image_cpio_size(rd[i].tree),
					   .produce = build_produce,
					   .produce_ctx = &rd[i]};
	rc = eif_build(&(struct eif_build_spec){.kernel = {.path = spec->kernel},
						.cmdline = spec->cmdline,
						.ramdisks = in,
						.num_ramdisks = 2,
						.metadata = meta,
						.metadata_len = meta_len,
						.arch = spec->arch,
						.signer = spec->signer,
						.output_path = spec->output,
						.progress = spec->progress},
		       pcrs, err);
	free(meta);
	return rc;
}

int enclave_image_build(const struct enclave_image_spec *spec, struct eif_pcrs *pcrs,
			struct image_notes *notes, struct nectl_err *err)
{
	struct image_tree *boot = NULL, *app = NULL;
	struct image_config cfg = {0};
	int rc = -1;

	if ((!spec->rootfs) == (!spec->image))
		return nectl_err_set(
		    err, NECTL_ERR_INVALID_ARG,
		    "exactly one application source is needed (a rootfs or an image)");
	if (image_tree_new(&boot, err) < 0 || image_tree_new(&app, err) < 0)
		goto out;
	image_tree_set_limits(app, &spec->limits);
	if (build_customer(spec, app, &cfg, notes, err) < 0 ||
	    build_bootstrap(spec, boot, err) < 0 ||
	    build_write(spec, boot, app, &cfg, pcrs, err) < 0)
		goto out;
	rc = 0;
out:
	image_config_free(&cfg);
	image_tree_free(boot);
	image_tree_free(app);
	return rc;
}
