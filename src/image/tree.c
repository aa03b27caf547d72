/* The merged filesystem of an image: a hash table from normalized path to
 * node, each node linked to its parent and children, sorted on demand.
 * Archives are hostile: paths are normalized and checked before they reach
 * the table, no node can be placed under a parent that is not a directory,
 * and removing or walking a subtree costs that subtree, never the whole tree
 * (a layer can hold thousands of whiteouts). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nectl/image.h"
#include "util/fileio.h"

struct tree_entry {
	struct image_node node;
	struct tree_entry *next;	      /* hash chain */
	struct tree_entry *parent;	      /* NULL at the top level */
	struct tree_entry *kids, *prev, *sib; /* children; siblings, both ways */
};

struct image_tree {
	struct tree_entry **buckets;
	size_t nbuckets, count;
	struct tree_entry *top;	    /* the top-level entries */
	struct image_node **sorted; /* cache, NULL when stale */
	int spool_fd;
	uint64_t spool_len;
	struct image_limits lim;
	uint64_t entries, bytes; /* charged against lim */
};

/* Nodes the builder adds after the input (rootfs/dev, cmd, env...) stay
 * within the node limit even when the input used all of its entries. */
#define TREE_NODE_SLACK 64

static uint64_t tree_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

int image_tree_new(struct image_tree **out, struct nectl_err *err)
{
	struct image_tree *t = calloc(1, sizeof(*t));

	if (t)
		t->buckets = calloc(t->nbuckets = 1024, sizeof(*t->buckets));
	if (!t || !t->buckets) {
		free(t);
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	}
	t->spool_fd = -1;
	image_tree_set_limits(t, &(struct image_limits){0});
	*out = t;
	return 0;
}

void image_tree_set_limits(struct image_tree *t, const struct image_limits *l)
{
	t->lim.max_bytes = l->max_bytes ? l->max_bytes : IMAGE_MAX_BYTES_DEFAULT;
	t->lim.max_entries = l->max_entries ? l->max_entries : IMAGE_MAX_ENTRIES_DEFAULT;
}

const struct image_limits *image_tree_limits(const struct image_tree *t)
{
	return &t->lim;
}

void image_size_text(uint64_t bytes, char out[32])
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int u = -1;

	while (u < 5 && bytes && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(out, 32, "%llu bytes", (unsigned long long)bytes);
	else
		snprintf(out, 32, "%llu %s", (unsigned long long)bytes, units[u]);
}

static int tree_too_many(const struct image_tree *t, struct nectl_err *err)
{
	return nectl_err_set(err, NECTL_ERR_BUILD,
			     "more than %llu entries, the limit (raise it with --max-entries)",
			     (unsigned long long)t->lim.max_entries);
}

int image_tree_charge(struct image_tree *t, uint64_t entries, uint64_t bytes, struct nectl_err *err)
{
	char limit[32];

	if (entries > t->lim.max_entries - t->entries)
		return tree_too_many(t, err);
	if (bytes > t->lim.max_bytes - t->bytes) {
		image_size_text(t->lim.max_bytes, limit);
		return nectl_err_set(err, NECTL_ERR_BUILD,
				     "%llu bytes would take the image past its limit of %s of file "
				     "data (raise it with --max-file-data)",
				     (unsigned long long)bytes, limit);
	}
	t->entries += entries;
	t->bytes += bytes;
	return 0;
}

static void tree_node_free(struct image_node *n)
{
	free(n->path);
	free(n->target);
	free(n->data_path);
	free(n->mem);
}

void image_tree_free(struct image_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct tree_entry *e = t->buckets[i], *next; e; e = next) {
			next = e->next;
			tree_node_free(&e->node);
			free(e);
		}
	}
	if (t->spool_fd >= 0)
		close(t->spool_fd);
	free(t->sorted);
	free(t->buckets);
	free(t);
}

int image_path_normalize(const char *path, char *out, bool allow_root, struct nectl_err *err)
{
	const char *p = path;
	size_t len = 0;

	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			/* Climbing back inside the root is harmless; above it is not. */
			if (len == 0)
				return nectl_err_set(err, NECTL_ERR_BUILD,
						     "path `%s` climbs out of the root", path);
			while (len > 0 && out[len - 1] != '/')
				len--;
			len = len > 0 ? len - 1 : 0;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (len > 0)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p = *end ? end + 1 : end;
	}
	out[len] = '\0';
	if (len == 0 && !allow_root)
		return nectl_err_set(err, NECTL_ERR_BUILD, "path `%s` names the root", path);
	return 0;
}

static struct tree_entry **tree_slot(const struct image_tree *t, const char *path)
{
	struct tree_entry **slot = &t->buckets[tree_hash(path) & (t->nbuckets - 1)];

	while (*slot && strcmp((*slot)->node.path, path) != 0)
		slot = &(*slot)->next;
	return slot;
}

struct image_node *image_tree_get(const struct image_tree *t, const char *path)
{
	struct tree_entry *e = *tree_slot(t, path);

	return e ? &e->node : NULL;
}

static void tree_grow(struct image_tree *t)
{
	size_t n = t->nbuckets * 2;
	struct tree_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct tree_entry *e = t->buckets[i], *next; e; e = next) {
			size_t k = tree_hash(e->node.path) & (n - 1);

			next = e->next;
			e->next = b[k];
			b[k] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

static struct tree_entry **tree_kids(struct image_tree *t, struct tree_entry *parent)
{
	return parent ? &parent->kids : &t->top;
}

static void tree_link_kid(struct image_tree *t, struct tree_entry *e)
{
	struct tree_entry **head = tree_kids(t, e->parent);

	e->prev = NULL;
	e->sib = *head;
	if (*head)
		(*head)->prev = e;
	*head = e;
}

/* Unlinks and frees e, which has no children left. */
static void tree_drop(struct image_tree *t, struct tree_entry *e)
{
	struct tree_entry **slot = tree_slot(t, e->node.path);

	*slot = e->next;
	if (e->prev)
		e->prev->sib = e->sib;
	else
		*tree_kids(t, e->parent) = e->sib;
	if (e->sib)
		e->sib->prev = e->prev;
	tree_node_free(&e->node);
	free(e);
	t->count--;
}

/* Frees everything below top, deepest first, and top itself if with_self. */
static void tree_drop_below(struct image_tree *t, struct tree_entry *top, bool with_self)
{
	struct tree_entry *e = top;

	for (;;) {
		struct tree_entry *up;

		while (e->kids)
			e = e->kids;
		if (e == top)
			break;
		up = e->parent;
		tree_drop(t, e);
		e = up;
	}
	if (with_self)
		tree_drop(t, top);
	free(t->sorted);
	t->sorted = NULL;
}

void image_tree_clear_dir(struct image_tree *t, const char *path)
{
	struct tree_entry *e;

	if (!path[0]) {
		while (t->top)
			tree_drop_below(t, t->top, true);
		return;
	}
	e = *tree_slot(t, path);
	if (e)
		tree_drop_below(t, e, false);
}

void image_tree_remove(struct image_tree *t, const char *path)
{
	struct tree_entry *e;

	if (!path[0]) {
		image_tree_clear_dir(t, path);
		return;
	}
	e = *tree_slot(t, path);
	if (e)
		tree_drop_below(t, e, true);
}

int image_tree_each_child(struct image_tree *t, const char *path,
			  int (*fn)(void *ctx, struct image_node *child), void *ctx)
{
	struct tree_entry *parent = path[0] ? *tree_slot(t, path) : NULL;

	if (path[0] && !parent)
		return 0;
	for (struct tree_entry *e = *tree_kids(t, parent), *next; e; e = next) {
		int rc;

		next = e->sib;
		rc = fn(ctx, &e->node);
		if (rc)
			return rc;
	}
	return 0;
}

static int tree_copy_node(struct image_node *dst, const struct image_node *src)
{
	*dst = *src;
	dst->path = strdup(src->path);
	dst->target = src->target ? strdup(src->target) : NULL;
	dst->data_path = src->data_path ? strdup(src->data_path) : NULL;
	if (!dst->path || (src->target && !dst->target) || (src->data_path && !dst->data_path)) {
		dst->mem = NULL;
		tree_node_free(dst);
		return -1;
	}
	return 0;
}

/* Puts n at its path; parent is its parent's entry (NULL: top level). */
static int tree_insert(struct image_tree *t, const struct image_node *n, struct tree_entry *parent,
		       struct nectl_err *err)
{
	struct tree_entry **slot = tree_slot(t, n->path);
	struct tree_entry *e = *slot;

	if (e) {
		bool was_dir = e->node.type == IMAGE_DIR;
		struct image_node fresh;

		if (tree_copy_node(&fresh, n) < 0)
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
		if (was_dir && n->type != IMAGE_DIR)
			tree_drop_below(t, e, false);
		tree_node_free(&e->node);
		e->node = fresh;
	} else {
		if (t->count >= t->lim.max_entries + TREE_NODE_SLACK)
			return tree_too_many(t, err);
		e = calloc(1, sizeof(*e));
		if (!e || tree_copy_node(&e->node, n) < 0) {
			free(e);
			return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
		}
		e->next = *slot;
		*slot = e;
		e->parent = parent;
		tree_link_kid(t, e);
		if (++t->count > t->nbuckets)
			tree_grow(t);
	}
	free(t->sorted);
	t->sorted = NULL;
	return 0;
}

/* Every ancestor must be a directory; missing ones are created. *up is the
 * parent's entry (NULL for a top-level path). */
static int tree_make_parents(struct image_tree *t, const struct image_node *n,
			     struct tree_entry **up, struct nectl_err *err)
{
	char *parent = strdup(n->path);
	int rc = 0;

	*up = NULL;
	if (!parent)
		return nectl_err_set(err, NECTL_ERR_BUILD, "out of memory");
	for (char *slash = strchr(parent, '/'); slash && rc == 0; slash = strchr(slash + 1, '/')) {
		struct tree_entry *above = *up;
		struct image_node *existing;

		*slash = '\0';
		*up = *tree_slot(t, parent);
		existing = *up ? &(*up)->node : NULL;
		if (existing && existing->type != IMAGE_DIR) {
			rc = nectl_err_set(
			    err, NECTL_ERR_BUILD,
			    "`%s` would be created inside `%s`, which is a %s, not a directory",
			    n->path, parent, existing->type == IMAGE_SYMLINK ? "symlink" : "file");
		} else if (!existing) {
			struct image_node dir = {.path = parent, .type = IMAGE_DIR, .mode = 0755,
						 .mtime = n->mtime};

			rc = tree_insert(t, &dir, above, err);
			*up = rc == 0 ? *tree_slot(t, parent) : NULL;
		}
		*slash = '/';
	}
	free(parent);
	return rc;
}

int image_tree_put(struct image_tree *t, const struct image_node *n, struct nectl_err *err)
{
	struct tree_entry *parent;

	if (!n->path[0])
		return nectl_err_set(err, NECTL_ERR_BUILD, "an entry names the root directory");
	if (tree_make_parents(t, n, &parent, err) < 0)
		return -1;
	return tree_insert(t, n, parent, err);
}

size_t image_tree_count(const struct image_tree *t)
{
	return t->count;
}

static int tree_cmp(const void *a, const void *b)
{
	return strcmp((*(struct image_node *const *)a)->path, (*(struct image_node *const *)b)->path);
}

struct image_node *const *image_tree_sorted(struct image_tree *t, size_t *count)
{
	size_t k = 0;

	*count = t->count;
	if (t->sorted)
		return t->sorted;
	t->sorted = malloc((t->count ? t->count : 1) * sizeof(*t->sorted));
	if (!t->sorted) {
		*count = 0;
		return NULL;
	}
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct tree_entry *e = t->buckets[i]; e; e = e->next)
			t->sorted[k++] = &e->node;
	qsort(t->sorted, k, sizeof(*t->sorted), tree_cmp);
	return t->sorted;
}

static int tree_spool_open(struct image_tree *t, struct nectl_err *err)
{
	if (t->spool_fd < 0)
		t->spool_fd = file_tmp_anon(err);
	return t->spool_fd < 0 ? -1 : 0;
}

int image_tree_spool_write(struct image_tree *t, const void *buf, size_t len, uint64_t *off,
			   struct nectl_err *err)
{
	const uint8_t *p = buf;

	if (tree_spool_open(t, err) < 0)
		return -1;
	*off = t->spool_len;
	while (len > 0) {
		ssize_t n = pwrite(t->spool_fd, p, len, (off_t)t->spool_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, errno,
					     "spool file: write failed");
		p += n;
		len -= (size_t)n;
		t->spool_len += (uint64_t)n;
	}
	return 0;
}

int image_tree_spool_hole(struct image_tree *t, uint64_t len, struct nectl_err *err)
{
	if (tree_spool_open(t, err) < 0)
		return -1;
	if (len > (uint64_t)INT64_MAX - t->spool_len)
		return nectl_err_set(err, NECTL_ERR_BUILD, "spool file: hole too large");
	if (len && ftruncate(t->spool_fd, (off_t)(t->spool_len + len)) < 0)
		return nectl_err_sys(err, NECTL_ERR_FILE, errno, "spool file: cannot extend");
	t->spool_len += len;
	return 0;
}

uint64_t image_tree_spool_size(const struct image_tree *t)
{
	return t->spool_len;
}

int image_tree_spool_read(const struct image_tree *t, uint64_t off, void *buf, size_t len,
			  struct nectl_err *err)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(t->spool_fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return nectl_err_sys(err, NECTL_ERR_FILE, n < 0 ? errno : EIO,
					     "spool file: read failed");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

void image_notes_add(struct image_notes *n, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		line = NULL;
	va_end(ap);
	if (!line)
		return;
	if (n->count == n->cap) {
		size_t cap = n->cap ? 2 * n->cap : 8;
		char **lines = realloc(n->lines, cap * sizeof(*lines));

		if (!lines) {
			free(line);
			return;
		}
		n->lines = lines;
		n->cap = cap;
	}
	n->lines[n->count++] = line;
}

void image_notes_free(struct image_notes *n)
{
	for (size_t i = 0; i < n->count; i++)
		free(n->lines[i]);
	free(n->lines);
	memset(n, 0, sizeof(*n));
}
