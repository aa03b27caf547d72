/* Putting archive entries into the tree with layer semantics.
 *
 * Whiteouts (OCI image-spec, layer.md) hide content of LOWER layers only: an
 * entry of the current layer survives a whiteout or opaque marker of the same
 * layer whatever their order in the tar. Layers stream, so instead of reading
 * each one twice, removals are applied as they are met and the current
 * layer's own paths are protected: the context keeps the set of paths this
 * layer put plus all their ancestors. A removal touching none of them is a
 * plain subtree removal (the common case, markers come first); otherwise only
 * the nodes outside the set go, which is exactly "lower layers only".
 *
 * Hard links are IMAGE_HARDLINK nodes naming a regular file. When that file is
 * replaced or removed (a later entry, a whiteout, a directory turning into a
 * file) the link must keep the old data, as it would on a real file system:
 * the data moves to the first link and the other links are retargeted. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/load.h"

static uint64_t set_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static char **set_slot(const struct load_set *s, const char *key)
{
	size_t i = set_hash(key) & (s->cap - 1);

	while (s->slots[i] && strcmp(s->slots[i], key) != 0)
		i = (i + 1) & (s->cap - 1);
	return &s->slots[i];
}

static bool set_has(const struct load_set *s, const char *key)
{
	return s->cap && *set_slot(s, key);
}

static int set_grow(struct load_set *s)
{
	struct load_set n = {.cap = s->cap ? 2 * s->cap : 256};

	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -1;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i])
			*set_slot(&n, s->slots[i]) = s->slots[i];
	n.count = s->count;
	free(s->slots);
	*s = n;
	return 0;
}

/* Returns 1 if the key was already there. */
static int set_add(struct load_set *s, const char *key)
{
	char **slot;

	if (2 * (s->count + 1) > s->cap && set_grow(s) < 0)
		return -1;
	slot = set_slot(s, key);
	if (*slot)
		return 1;
	*slot = strdup(key);
	if (!*slot)
		return -1;
	s->count++;
	return 0;
}

static void set_clear(struct load_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* Records that the current layer put path: the key "path" itself, and
 * "A/" for each ancestor A ("/" for the root), meaning "A has something of
 * this layer below it". An ancestor key already present implies the ones
 * above it, so the walk stops there. */
static int layer_own(struct load_ctx *c, const char *path)
{
	size_t len = strlen(path);
	char *key = malloc(len + 2);
	int rc = set_add(&c->layer, path);

	if (!key || rc < 0) {
		free(key);
		return -1;
	}
	memcpy(key, path, len + 1);
	for (rc = 0; rc == 0 && len > 0;) {
		while (len > 0 && key[len - 1] != '/')
			len--;
		/* key[0..len) is now "A/" for the parent A, or "" for the root */
		if (len == 0) {
			strcpy(key, "/");
			rc = set_add(&c->layer, key);
			break;
		}
		key[len] = '\0';
		rc = set_add(&c->layer, key);
		len--;
	}
	free(key);
	return rc < 0 ? -1 : 0;
}

/* Whether the current layer put anything strictly below path. */
static bool layer_below(const struct load_ctx *c, const char *path)
{
	size_t len = strlen(path);
	char *key = malloc(len + 2);
	bool found;

	if (!key)
		return true; /* the careful path is right either way */
	memcpy(key, path, len);
	key[len] = '/';
	key[len + 1] = '\0';
	found = set_has(&c->layer, key);
	free(key);
	return found;
}

/* Whether the layer put path itself or something below it. */
static bool layer_touched(const struct load_ctx *c, const char *path)
{
	return set_has(&c->layer, path) || layer_below(c, path);
}

static bool path_within(const char *path, const char *top, bool include_self)
{
	size_t n = strlen(top);

	if (n == 0) /* the root */
		return *path || include_self;
	if (strncmp(path, top, n) != 0)
		return false;
	return path[n] == '/' || (include_self && path[n] == '\0');
}

/* Appends a copy of path to a growing array of paths. */
static int paths_push(char ***v, size_t *n, size_t *cap, const char *path)
{
	if (*n == *cap) {
		size_t bigger = *cap ? 2 * *cap : 16;
		char **grown = realloc(*v, bigger * sizeof(*grown));

		if (!grown)
			return -1;
		*v = grown;
		*cap = bigger;
	}
	(*v)[*n] = strdup(path);
	if (!(*v)[*n])
		return -1;
	(*n)++;
	return 0;
}

static int links_add(struct load_ctx *c, const char *path)
{
	return paths_push(&c->links, &c->nlinks, &c->links_cap, path);
}

/* Gives link the data of the regular file it points to. Hard links share one
 * inode, so the mode and mtime are the file's too. */
static int link_promote(struct image_node *link, const struct image_node *file)
{
	char *data_path = file->data_path ? strdup(file->data_path) : NULL;
	uint8_t *mem = NULL;

	if (file->data == IMAGE_DATA_MEM && file->size) {
		mem = malloc(file->size);
		if (mem)
			memcpy(mem, file->mem, file->size);
	}
	if ((file->data_path && !data_path) ||
	    (file->data == IMAGE_DATA_MEM && file->size && !mem)) {
		free(data_path);
		free(mem);
		return -1;
	}
	free(link->target);
	link->target = NULL;
	link->type = IMAGE_REG;
	link->mode = file->mode;
	link->mtime = file->mtime;
	link->size = file->size;
	link->data = file->data;
	link->spool_off = file->spool_off;
	link->data_path = data_path;
	link->data_dev = file->data_dev;
	link->data_ino = file->data_ino;
	link->mem = mem;
	return 0;
}

/* Finds the link that inherited target's data in this round, if any. */
static const char *links_heir(char **from, char **to, size_t n, const char *target)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(from[i], target) == 0)
			return to[i];
	return NULL;
}

static int links_rescue_one(struct load_ctx *c, struct image_node *l, char **from, char **to,
			    size_t *nheirs)
{
	const char *heir = links_heir(from, to, *nheirs, l->target);
	struct image_node *file;
	char *copy;

	if (heir) {
		copy = strdup(heir);
		if (!copy)
			return -1;
		free(l->target);
		l->target = copy;
		return 0;
	}
	file = image_tree_get(c->t, l->target);
	if (!file || file->type != IMAGE_REG)
		return 0; /* cannot happen: links are checked when put */
	from[*nheirs] = file->path;
	to[*nheirs] = l->path;
	(*nheirs)++;
	return link_promote(l, file);
}

/* Called before the tree loses top (and, if include_self is false, only what
 * is under it): links outside it whose file is inside get the data. */
static int links_rescue(struct load_ctx *c, const char *top, bool include_self,
			struct nectl_err *err)
{
	char **from, **to;
	size_t nheirs = 0, keep = 0;
	int rc = 0;

	if (c->nlinks == 0)
		return 0;
	from = calloc(c->nlinks, sizeof(*from));
	to = calloc(c->nlinks, sizeof(*to));
	for (size_t i = 0; i < c->nlinks; i++) {
		struct image_node *l = image_tree_get(c->t, c->links[i]);

		if (!l || l->type != IMAGE_HARDLINK) {
			free(c->links[i]); /* gone or replaced since */
			continue;
		}
		c->links[keep++] = c->links[i];
		if (rc == 0 && from && to && path_within(l->target, top, include_self) &&
		    !path_within(l->path, top, include_self))
			rc = links_rescue_one(c, l, from, to, &nheirs);
	}
	c->nlinks = keep;
	if (!from || !to)
		rc = -1;
	free(from);
	free(to);
	return rc < 0 ? nectl_err_set(err, NECTL_ERR_BUILD, "out of memory") : 0;
}

int load_ctx_init(struct load_ctx *c, struct image_tree *t, const char *prefix,
		  struct image_notes *notes, struct nectl_err *err)
{
	struct image_node *const *nodes;
	size_t count;

	memset(c, 0, sizeof(*c));
	c->t = t;
	c->notes = notes;
	if (!prefix)
		prefix = "";
	if (strlen(prefix) > LOAD_PATH_MAX)
		return nectl_err_set(err, NECTL_ERR_INVALID_ARG, "prefix is too long");
	c->prefix = malloc(strlen(prefix) + 1);
	if (!c->prefix)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	if (image_path_normalize(prefix, c->prefix, true, err) < 0) {
		load_ctx_free(c);
		return -1;
	}
	/* The prefix directory is the image's root: 0755 like the directories
	 * nitro-cli adds, whatever the source's top directory was. */
	if (c->prefix[0] && !image_tree_get(t, c->prefix)) {
		struct image_node root = {.path = c->prefix, .type = IMAGE_DIR, .mode = 0755};

		if (image_tree_put(t, &root, err) < 0) {
			load_ctx_free(c);
			return -1;
		}
	}
	/* Links already in the tree (from an earlier loader call) need the same
	 * care as the ones this call adds. */
	nodes = image_tree_sorted(t, &count);
	for (size_t i = 0; nodes && i < count; i++) {
		if (nodes[i]->type == IMAGE_HARDLINK && links_add(c, nodes[i]->path) < 0) {
			load_ctx_free(c);
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
		}
	}
	return 0;
}

void load_ctx_free(struct load_ctx *c)
{
	for (size_t i = 0; i < c->nlinks; i++)
		free(c->links[i]);
	free(c->links);
	set_clear(&c->layer);
	free(c->prefix);
	memset(c, 0, sizeof(*c));
}

void load_ctx_layer(struct load_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->label, sizeof(c->label), fmt, ap);
	va_end(ap);
	set_clear(&c->layer);
}

void load_oneline(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

int load_done(int rc, struct nectl_err *err)
{
	if (rc < 0 && err)
		load_oneline(err->msg);
	return rc;
}

void load_note(struct load_ctx *c, const char *what, const char *why)
{
	size_t before;

	if (!c->notes)
		return;
	before = c->notes->count;
	image_notes_add(c->notes, "%s: skipped `%.256s` (%s)", c->label, what, why);
	if (c->notes->count > before)
		load_oneline(c->notes->lines[before]);
}

int load_fail(struct load_ctx *c, const char *name, struct nectl_err *err)
{
	char msg[LOAD_LABEL_MAX + NECTL_ERR_MSG_MAX + 300];
	size_t n;

	if (!err)
		return -1;
	snprintf(msg, sizeof(msg), "%s: entry `%.256s`: %s", c->label, name, err->msg);
	n = strnlen(msg, sizeof(err->msg) - 1);
	memcpy(err->msg, msg, n);
	err->msg[n] = '\0';
	return -1;
}

int load_path(struct load_ctx *c, const char *name, char **out, struct nectl_err *err)
{
	size_t plen = strlen(c->prefix), nlen = strlen(name);
	char *p;

	*out = NULL;
	if (nlen > LOAD_PATH_MAX)
		return nectl_err_set(err, NECTL_ERR_BUILD, "path longer than %d bytes",
				     LOAD_PATH_MAX);
	p = malloc(plen + nlen + 2);
	if (!p)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	if (image_path_normalize(name, p + plen + 1, true, err) < 0) {
		free(p);
		return -1;
	}
	if (!p[plen + 1]) {
		free(p);
		return 1;
	}
	if (plen) {
		memcpy(p, c->prefix, plen);
		p[plen] = '/';
	} else {
		memmove(p, p + 1, strlen(p + 1) + 1);
	}
	*out = p;
	return 0;
}

int load_put(struct load_ctx *c, const struct image_node *n, struct nectl_err *err)
{
	struct image_node *old = image_tree_get(c->t, n->path);

	if (old && !(old->type == IMAGE_DIR && n->type == IMAGE_DIR) &&
	    links_rescue(c, n->path, true, err) < 0)
		return -1;
	if (image_tree_put(c->t, n, err) < 0)
		return -1;
	if (c->whiteouts && layer_own(c, n->path) < 0)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	return 0;
}

int load_put_link(struct load_ctx *c, const char *path, const char *target, int64_t mtime,
		  struct nectl_err *err)
{
	struct image_node *file = image_tree_get(c->t, target);
	struct image_node n = {.path = (char *)path, .type = IMAGE_HARDLINK, .mtime = mtime};
	struct image_node *old;

	/* Links always name the file itself, never another link. */
	if (file && file->type == IMAGE_HARDLINK)
		file = image_tree_get(c->t, file->target);
	if (!file)
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "hard link to `%.256s`, which is not in the image", target);
	if (file->type != IMAGE_REG)
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "hard link to `%.256s`, which is not a regular file", target);
	if (path_within(file->path, path, true))
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "hard link would replace its own target");
	n.target = file->path;
	n.mode = file->mode;
	old = image_tree_get(c->t, path);
	if (old && old->type == IMAGE_HARDLINK) {
		/* Already listed; put before rescue so the list holds it once. */
		return load_put(c, &n, err);
	}
	/* file->path is copied by the tree before anything can free it: the only
	 * removal load_put may do is under path, which excludes the file. */
	if (load_put(c, &n, err) < 0)
		return -1;
	if (links_add(c, path) < 0)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	return 0;
}

/* The tops of the lower-only subtrees under a touched node. */
struct lower_walk {
	struct load_ctx *c;
	char **dead;
	size_t ndead, cap;
};

static int dead_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A touched node's child: touched too, its own children are looked at;
 * untouched, it tops a lower-only subtree, which goes as a whole. Only the
 * layer's own paths and their children are visited, never the whole tree. */
static int lower_visit(void *ctx, struct image_node *n)
{
	struct lower_walk *w = ctx;

	if (layer_touched(w->c, n->path))
		return image_tree_each_child(w->c->t, n->path, lower_visit, w);
	return paths_push(&w->dead, &w->ndead, &w->cap, n->path);
}

/* Removes what lies under top (top is touched: the callers say so) except
 * this layer's own nodes and their ancestors, in path order as a sorted walk
 * would: which hard link inherits a removed file's data must not depend on
 * the order entries were added. */
static int layer_remove_lower(struct load_ctx *c, const char *top, struct nectl_err *err)
{
	struct lower_walk w = {.c = c};
	int rc = image_tree_each_child(c->t, top, lower_visit, &w);

	if (rc == 0 && w.ndead)
		qsort(w.dead, w.ndead, sizeof(*w.dead), dead_cmp);
	for (size_t i = 0; i < w.ndead; i++) {
		if (rc == 0 && w.dead[i])
			rc = links_rescue(c, w.dead[i], true, err);
		if (rc == 0 && w.dead[i])
			image_tree_remove(c->t, w.dead[i]);
		free(w.dead[i]);
	}
	free(w.dead);
	return rc < 0 ? nectl_err_set(err, NECTL_ERR_BUILD, "out of memory") : 0;
}

int load_whiteout(struct load_ctx *c, const char *path, struct nectl_err *err)
{
	if (!image_tree_get(c->t, path))
		return 0; /* nothing below to hide */
	if (layer_touched(c, path))
		return layer_remove_lower(c, path, err);
	if (links_rescue(c, path, true, err) < 0)
		return -1;
	image_tree_remove(c->t, path);
	return 0;
}

int load_opaque(struct load_ctx *c, const char *dir, struct nectl_err *err)
{
	struct image_node *d = dir[0] ? image_tree_get(c->t, dir) : NULL;

	if (dir[0] && (!d || d->type != IMAGE_DIR))
		return 0; /* nothing below to hide */
	if (layer_below(c, dir))
		return layer_remove_lower(c, dir, err);
	if (links_rescue(c, dir, false, err) < 0)
		return -1;
	image_tree_clear_dir(c->t, dir);
	return 0;
}
