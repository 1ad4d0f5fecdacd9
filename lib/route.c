/*
 * route.c - path templates: compile, match, build; query allow-lists.
 *
 * Every function here reads client input, so everything is bounded and
 * decoded exactly once.  Decoding is a byte iterator (route_getc) rather
 * than a copy, so a query value of any length can be checked and encoded
 * again without a buffer of its own.
 */
#include "route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/hex.h"

struct route_seg {
	size_t off, len; /* literal: bytes of src */
	unsigned var;    /* ROUTE_VAR_*, 0 for a literal */
};

struct route_template {
	char *src;
	unsigned vars;
	size_t nsegs;
	struct route_seg segs[];
};

static const char route_hex[] = "0123456789ABCDEF";

/* The next decoded byte of [*P, END), 0..255, or -1 for a malformed escape
 * or a NUL.  PLUS: '+' is a space (query strings, not paths). */
static int
route_getc(const char **p, const char *end, int plus)
{
	const char *s = *p;
	int c, hi, lo;

	if (*s == '%') {
		if (end - s < 3 || (hi = hex_value((unsigned char)s[1])) < 0 ||
		    (lo = hex_value((unsigned char)s[2])) < 0)
			return -1;
		c = hi << 4 | lo;
		*p = s + 3;
	} else {
		c = plus && *s == '+' ? ' ' : (unsigned char)*s;
		*p = s + 1;
	}
	return c == 0 ? -1 : c;
}

static int
route_unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_' || c == '~';
}

/* 1 if S is valid UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF).
 * Elasticsearch decodes paths as UTF-8 and replaces what is not, so two
 * different invalid ids could name one document. */
static int
route_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	unsigned cp, min;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = s[i] & 0x1f;
			min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = s[i] & 0x0f;
			min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

ssize_t
route_decode(const char *in, size_t len, char *out, size_t outlen)
{
	const char *p = in, *end = in + len;
	size_t o = 0;
	int c;

	while (p < end) {
		if ((c = route_getc(&p, end, 0)) < 0 || o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return (ssize_t)o;
}

/*
 * Templates.
 */

static int
route_literal_char(char c)
{
	return route_unreserved((unsigned char)c) || (c != '\0' && strchr("!$&'()*+,;=:@", c) != NULL);
}

struct route_template *
route_compile(const char *tmpl, char *err, size_t errlen)
{
	struct route_template *t;
	const char *p, *q;
	size_t len, n, i;

	if (tmpl[0] != '/') {
		snprintf(err, errlen, "must start with '/'");
		return NULL;
	}
	if ((len = strlen(tmpl)) > ROUTE_TEMPLATE_MAX) {
		snprintf(err, errlen, "is longer than %d bytes", ROUTE_TEMPLATE_MAX);
		return NULL;
	}
	for (n = 0, p = tmpl; *p != '\0'; p++)
		n += *p == '/';
	if ((t = calloc(1, sizeof(*t) + n * sizeof(t->segs[0]))) == NULL || (t->src = strdup(tmpl)) == NULL) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (p = tmpl + 1, i = 0; i < n; i++, p = q + 1) {
		struct route_seg *s = &t->segs[i];

		q = strchr(p, '/');
		if (q == NULL)
			q = tmpl + len;
		s->off = (size_t)(p - tmpl);
		s->len = (size_t)(q - p);
		if (s->len == 0 && i + 1 < n) {
			snprintf(err, errlen, "empty segment (\"//\")");
			goto fail;
		}
		if ((s->len == 1 && p[0] == '.') || (s->len == 2 && p[0] == '.' && p[1] == '.')) {
			snprintf(err, errlen, "\".\" and \"..\" segments are not allowed");
			goto fail;
		}
		if (s->len > 0 && p[0] == '{') {
			if (s->len == 7 && memcmp(p, "{index}", 7) == 0)
				s->var = ROUTE_VAR_INDEX;
			else if (s->len == 4 && memcmp(p, "{id}", 4) == 0)
				s->var = ROUTE_VAR_ID;
			else if (p[s->len - 1] == '}' && memchr(p + 1, '{', s->len - 1) == NULL) {
				snprintf(err, errlen, "unknown placeholder \"%.*s\" (use {index} or {id})", (int)s->len,
				         p);
				goto fail;
			} else {
				snprintf(err, errlen, "a placeholder must be a whole segment");
				goto fail;
			}
			if (t->vars & s->var) {
				snprintf(err, errlen, "placeholder %.*s is used twice", (int)s->len, p);
				goto fail;
			}
			t->vars |= s->var;
			continue;
		}
		for (const char *c = p; c < q; c++) {
			if (*c == '{' || *c == '}') {
				snprintf(err, errlen, "a placeholder must be a whole segment");
				goto fail;
			}
			if (!route_literal_char(*c)) {
				if (*c > 0x20 && *c < 0x7f)
					snprintf(err, errlen, "character '%c' is not allowed", *c);
				else
					snprintf(err, errlen, "character 0x%02x is not allowed", (unsigned char)*c);
				goto fail;
			}
		}
	}
	t->nsegs = n;
	return t;
fail:
	route_template_free(t);
	return NULL;
}

void
route_template_free(struct route_template *t)
{
	if (t == NULL)
		return;
	free(t->src);
	free(t);
}

unsigned
route_template_vars(const struct route_template *t)
{
	return t->vars;
}

const char *
route_template_source(const struct route_template *t)
{
	return t->src;
}

int
route_template_same(const struct route_template *a, const struct route_template *b)
{
	if (a->nsegs != b->nsegs)
		return 0;
	for (size_t i = 0; i < a->nsegs; i++) {
		const struct route_seg *x = &a->segs[i], *y = &b->segs[i];

		if ((x->var != 0) != (y->var != 0))
			return 0;
		if (x->var == 0 && (x->len != y->len || memcmp(a->src + x->off, b->src + y->off, x->len) != 0))
			return 0;
	}
	return 1;
}

/*
 * Matching.
 */

/* "." or "..", each dot written '.' or %2e / %2E. */
static int
route_dot_segment(const char *s, size_t len)
{
	size_t dots = 0, i = 0;

	while (i < len) {
		if (s[i] == '.')
			i++;
		else if (len - i >= 3 && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] == 'e' || s[i + 2] == 'E'))
			i += 3;
		else
			return 0;
		dots++;
	}
	return dots == 1 || dots == 2;
}

int
route_index_valid(const char *s, size_t len, int prefix)
{
	if (len == 0 || len > ROUTE_INDEX_MAX)
		return 0;
	if (s[0] == '-' || s[0] == '_' || s[0] == '+')
		return 0;
	if (!prefix && ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')))
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || (c >= 'A' && c <= 'Z') || strchr("\\/*?\"<>|, #:%", c) != NULL)
			return 0; /* strchr also finds the NUL */
	}
	return route_utf8_valid((const unsigned char *)s, len);
}

/* Decodes a placeholder value into OUT (at most MAX bytes and a NUL) and
 * checks what every value must satisfy.  Returns the length or -1. */
static ssize_t
route_value(const char *s, size_t len, char *out, size_t max)
{
	ssize_t n;

	if ((n = route_decode(s, len, out, max + 1)) <= 0)
		return -1;
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			return -1;
	if (!route_utf8_valid((const unsigned char *)out, (size_t)n))
		return -1;
	return n;
}

enum route_result
route_match(const struct route_template *t, const char *path, size_t len, struct route_vars *vars, const char **reason)
{
	const char *segs[ROUTE_TEMPLATE_MAX / 2 + 1];
	size_t lens[ROUTE_TEMPLATE_MAX / 2 + 1];
	const char *p, *end = path + len, *q;
	struct route_vars scratch;
	size_t n = 0, i;
	ssize_t r;

	if (reason != NULL)
		*reason = NULL;
	if (vars == NULL)
		vars = &scratch;
	vars->set = 0;
	vars->index_len = vars->id_len = 0;
	vars->index[0] = vars->id[0] = '\0';
	if (len == 0 || path[0] != '/')
		return ROUTE_NOMATCH;
	/* every segment is looked at, even past what the template has, so a
	 * dot segment is refused the same way whichever route is tried */
	for (p = path + 1;; p = q + 1) {
		if ((q = memchr(p, '/', (size_t)(end - p))) == NULL)
			q = end;
		if (route_dot_segment(p, (size_t)(q - p))) {
			if (reason != NULL)
				*reason = "invalid path";
			return ROUTE_BAD;
		}
		/* a template has at most ROUTE_TEMPLATE_MAX / 2 segments:
		 * more than that is no match, but keep checking dots */
		if (n < sizeof(segs) / sizeof(segs[0])) {
			segs[n] = p;
			lens[n] = (size_t)(q - p);
		}
		n++;
		if (q == end)
			break;
	}
	if (n != t->nsegs)
		return ROUTE_NOMATCH;
	for (i = 0; i < n; i++) {
		const struct route_seg *s = &t->segs[i];

		if (s->var != 0 ? lens[i] == 0 : lens[i] != s->len || memcmp(segs[i], t->src + s->off, s->len) != 0)
			return ROUTE_NOMATCH;
	}
	for (i = 0; i < n; i++) {
		switch (t->segs[i].var) {
		case ROUTE_VAR_INDEX:
			r = route_value(segs[i], lens[i], vars->index, ROUTE_INDEX_MAX);
			if (r < 0 || !route_index_valid(vars->index, (size_t)r, 0)) {
				if (reason != NULL)
					*reason = "invalid index name";
				return ROUTE_BAD;
			}
			vars->index_len = (size_t)r;
			vars->set |= ROUTE_VAR_INDEX;
			break;
		case ROUTE_VAR_ID:
			r = route_value(segs[i], lens[i], vars->id, ROUTE_ID_MAX);
			/* cannot be a dot segment after the check above; but
			 * this is the last line of defence for the upstream */
			if (r < 0 || (r == 1 && vars->id[0] == '.') ||
			    (r == 2 && vars->id[0] == '.' && vars->id[1] == '.')) {
				if (reason != NULL)
					*reason = "invalid document id";
				return ROUTE_BAD;
			}
			vars->id_len = (size_t)r;
			vars->set |= ROUTE_VAR_ID;
			break;
		default: break;
		}
	}
	return ROUTE_MATCH;
}

int
route_index_allowed(const char *index, size_t len, char *const *allow, size_t nallow)
{
	for (size_t i = 0; i < nallow; i++) {
		size_t alen = strlen(allow[i]);

		if (alen > 0 && allow[i][alen - 1] == '*') {
			if (len >= alen - 1 && memcmp(index, allow[i], alen - 1) == 0)
				return 1;
		} else if (alen == len && memcmp(index, allow[i], len) == 0)
			return 1;
	}
	return 0;
}

/*
 * Building.
 */

/* Appends byte C to OUT, encoded unless unreserved (or FORCE); returns 0,
 * or -1 when it does not fit with room left for the NUL. */
static int
route_put(char *out, size_t outlen, size_t *o, int c, int force)
{
	if (route_unreserved(c) && !force) {
		if (*o + 1 >= outlen)
			return -1;
		out[(*o)++] = (char)c;
		return 0;
	}
	if (*o + 3 >= outlen)
		return -1;
	out[(*o)++] = '%';
	out[(*o)++] = route_hex[c >> 4];
	out[(*o)++] = route_hex[c & 0xf];
	return 0;
}

static int
route_put_raw(char *out, size_t outlen, size_t *o, const char *s, size_t len)
{
	if (*o + len >= outlen)
		return -1;
	memcpy(out + *o, s, len);
	*o += len;
	return 0;
}

ssize_t
route_build(const struct route_template *t, const struct route_vars *vars, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < t->nsegs; i++) {
		const struct route_seg *s = &t->segs[i];
		const char *v;
		size_t vlen;
		int dots;

		if (route_put_raw(out, outlen, &o, "/", 1) != 0)
			return -1;
		if (s->var == 0) {
			if (route_put_raw(out, outlen, &o, t->src + s->off, s->len) != 0)
				return -1;
			continue;
		}
		if ((vars->set & s->var) == 0)
			return -1;
		v = s->var == ROUTE_VAR_INDEX ? vars->index : vars->id;
		vlen = s->var == ROUTE_VAR_INDEX ? vars->index_len : vars->id_len;
		dots = (vlen == 1 && v[0] == '.') || (vlen == 2 && v[0] == '.' && v[1] == '.');
		for (size_t k = 0; k < vlen; k++)
			if (route_put(out, outlen, &o, (unsigned char)v[k], dots) != 0)
				return -1;
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return (ssize_t)o;
}

/*
 * Query strings.
 */

/* 1 if [S, END), form-decoded, is WANT.  S has been checked already. */
static int
route_name_eq(const char *s, const char *end, const char *want)
{
	while (s < end) {
		if (*want == '\0' || route_getc(&s, end, 1) != (unsigned char)*want)
			return 0;
		want++;
	}
	return *want == '\0';
}

static void
route_bad(char *bad, size_t badlen, const char *msg)
{
	if (bad != NULL && badlen > 0)
		snprintf(bad, badlen, "%s", msg);
}

ssize_t
route_query(const char *query, size_t len, char *const *allow, size_t nallow, char *out, size_t outlen, char *bad,
            size_t badlen)
{
	const char *end = query + len, *s, *e, *eq, *p;
	size_t o = 0, i;

	for (s = query; s < end; s = e + 1) {
		if ((e = memchr(s, '&', (size_t)(end - s))) == NULL)
			e = end;
		if (s == e)
			continue;
		for (p = s; p < e;)
			if (route_getc(&p, e, 1) < 0) {
				route_bad(bad, badlen, "malformed query string");
				return -1;
			}
		if ((eq = memchr(s, '=', (size_t)(e - s))) == NULL)
			eq = e;
		for (i = 0; i < nallow; i++)
			if (route_name_eq(s, eq, allow[i]))
				break;
		if (i == nallow) {
			size_t b = 0;

			if (bad != NULL && badlen > 0) {
				for (p = s; p < eq && b + 1 < badlen;) {
					int c = route_getc(&p, eq, 1);

					bad[b++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
				}
				bad[b] = '\0';
			}
			return -1;
		}
		if (o > 0 && route_put_raw(out, outlen, &o, "&", 1) != 0)
			goto toolong;
		for (p = s; p < eq;)
			if (route_put(out, outlen, &o, route_getc(&p, eq, 1), 0) != 0)
				goto toolong;
		if (eq < e) {
			if (route_put_raw(out, outlen, &o, "=", 1) != 0)
				goto toolong;
			for (p = eq + 1; p < e;)
				if (route_put(out, outlen, &o, route_getc(&p, e, 1), 0) != 0)
					goto toolong;
		}
	}
	if (o >= outlen)
		goto toolong;
	out[o] = '\0';
	return (ssize_t)o;
toolong:
	route_bad(bad, badlen, "query string too long");
	return -1;
}

/* ---- route sets ---------------------------------------------------------- */

struct route_set_node {
	size_t wild; /* the placeholder child; 0: none (the root is nobody's child) */
	size_t *ids; /* templates ending here, ascending */
	size_t nids, capids;
};

struct route_set_edge {
	size_t parent, child; /* child 0: an empty slot */
	uint64_t hash;
	char *seg;
	size_t len;
};

struct route_set {
	struct route_set_node *nodes;
	size_t nnodes, capnodes;
	struct route_set_edge *edges; /* open addressing, a power of two, at most a quarter full */
	size_t nedges, capedges;
	size_t maxsegs; /* the deepest template's segment count */
	unsigned long probes;
};

/* The edge (parent node, segment), hashed as the other tables are (lib/hash.h:
 * FNV-1a with the parent as seed, MurmurHash3's finaliser). */
static uint64_t
route_set_hash(size_t parent, const char *seg, size_t len)
{
	return hash_bytes((uint64_t)parent, seg, len);
}

/* The slot of edge (PARENT, SEG) in S's table: the edge, or the empty slot
 * where it would go. */
static struct route_set_edge *
route_set_slot(struct route_set *s, size_t parent, const char *seg, size_t len, uint64_t h)
{
	size_t mask = s->capedges - 1;

	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct route_set_edge *e = &s->edges[i];

		if (e->child == 0)
			return e;
		s->probes++;
		if (e->hash == h && e->parent == parent && e->len == len && memcmp(e->seg, seg, len) == 0)
			return e;
	}
}

static size_t
route_set_node_new(struct route_set *s)
{
	if (s->nnodes == s->capnodes) {
		size_t cap = s->capnodes * 2;
		struct route_set_node *n = realloc(s->nodes, cap * sizeof(*n));
		if (n == NULL)
			return 0;
		s->nodes = n;
		s->capnodes = cap;
	}
	memset(&s->nodes[s->nnodes], 0, sizeof(s->nodes[0]));
	return s->nnodes++;
}

static int
route_set_grow(struct route_set *s)
{
	struct route_set_edge *old = s->edges;
	size_t oldcap = s->capedges;

	if ((s->edges = calloc(oldcap * 2, sizeof(*s->edges))) == NULL) {
		s->edges = old;
		return -1;
	}
	s->capedges = oldcap * 2;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].child != 0)
			*route_set_slot(s, old[i].parent, old[i].seg, old[i].len, old[i].hash) = old[i];
	free(old);
	return 0;
}

struct route_set *
route_set_new(void)
{
	struct route_set *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->capnodes = 16;
	s->capedges = 16;
	if ((s->nodes = calloc(s->capnodes, sizeof(*s->nodes))) == NULL ||
	    (s->edges = calloc(s->capedges, sizeof(*s->edges))) == NULL) {
		route_set_free(s);
		return NULL;
	}
	s->nnodes = 1; /* the root */
	return s;
}

void
route_set_free(struct route_set *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; s->edges != NULL && i < s->capedges; i++)
		free(s->edges[i].seg);
	for (size_t i = 0; s->nodes != NULL && i < s->nnodes; i++)
		free(s->nodes[i].ids);
	free(s->edges);
	free(s->nodes);
	free(s);
}

int
route_set_add(struct route_set *s, const struct route_template *t, size_t id)
{
	size_t node = 0;
	struct route_set_node *n;

	for (size_t i = 0; i < t->nsegs; i++) {
		const struct route_seg *g = &t->segs[i];
		const char *seg = t->src + g->off;
		struct route_set_edge *e;
		size_t child;
		uint64_t h;

		if (g->var != 0) {
			if (s->nodes[node].wild == 0) {
				if ((child = route_set_node_new(s)) == 0)
					return -1;
				s->nodes[node].wild = child;
			}
			node = s->nodes[node].wild;
			continue;
		}
		h = route_set_hash(node, seg, g->len);
		e = route_set_slot(s, node, seg, g->len, h);
		if (e->child == 0) {
			if (4 * (s->nedges + 1) > s->capedges) {
				if (route_set_grow(s) != 0)
					return -1;
				e = route_set_slot(s, node, seg, g->len, h);
			}
			if ((child = route_set_node_new(s)) == 0)
				return -1;
			if ((e->seg = malloc(g->len + 1)) == NULL)
				return -1;
			memcpy(e->seg, seg, g->len);
			e->seg[g->len] = '\0';
			e->len = g->len;
			e->hash = h;
			e->parent = node;
			e->child = child;
			s->nedges++;
		}
		node = e->child;
	}
	n = &s->nodes[node];
	if (n->nids == n->capids) {
		size_t cap = n->capids != 0 ? n->capids * 2 : 2;
		size_t *ids = realloc(n->ids, cap * sizeof(*ids));
		if (ids == NULL)
			return -1;
		n->ids = ids;
		n->capids = cap;
	}
	/* kept ascending: ids usually come in order */
	{
		size_t k = n->nids++;
		while (k > 0 && n->ids[k - 1] > id) {
			n->ids[k] = n->ids[k - 1];
			k--;
		}
		n->ids[k] = id;
	}
	if (t->nsegs > s->maxsegs)
		s->maxsegs = t->nsegs;
	return 0;
}

struct route_set_walk {
	struct route_set *s;
	const char *const *segs;
	const size_t *lens;
	size_t nsegs;
	size_t *ids;
	size_t max, n;
};

static void
route_set_visit(struct route_set_walk *w, size_t node, size_t i)
{
	const struct route_set_node *n = &w->s->nodes[node];
	struct route_set_edge *e;

	if (i == w->nsegs) {
		for (size_t k = 0; k < n->nids; k++, w->n++)
			if (w->n < w->max)
				w->ids[w->n] = n->ids[k];
		return;
	}
	e = route_set_slot(w->s, node, w->segs[i], w->lens[i], route_set_hash(node, w->segs[i], w->lens[i]));
	if (e->child != 0)
		route_set_visit(w, e->child, i + 1);
	if (w->lens[i] > 0 && w->s->nodes[node].wild != 0)
		route_set_visit(w, w->s->nodes[node].wild, i + 1);
}

size_t
route_set_candidates(struct route_set *s, const char *path, size_t len, size_t *ids, size_t max)
{
	const char *segs[ROUTE_TEMPLATE_MAX / 2 + 1];
	size_t lens[ROUTE_TEMPLATE_MAX / 2 + 1];
	const char *p, *q, *end = path + len;
	struct route_set_walk w = {.s = s, .segs = segs, .lens = lens, .ids = ids, .max = max};
	size_t n = 0;

	if (len == 0 || path[0] != '/')
		return 0;
	for (p = path + 1;; p = q + 1) {
		if ((q = memchr(p, '/', (size_t)(end - p))) == NULL)
			q = end;
		if (n == s->maxsegs)
			return 0; /* deeper than every template */
		segs[n] = p;
		lens[n] = (size_t)(q - p);
		n++;
		if (q == end)
			break;
	}
	w.nsegs = n;
	route_set_visit(&w, 0, 0);
	/* two subtrees each give their ids ascending: merge them */
	for (size_t i = 1; i < w.n && i < max; i++)
		for (size_t k = i; k > 0 && ids[k - 1] > ids[k]; k--) {
			size_t tmp = ids[k];
			ids[k] = ids[k - 1];
			ids[k - 1] = tmp;
		}
	return w.n;
}

unsigned long
route_set_probes(const struct route_set *s)
{
	return s->probes;
}

int
route_path_has_dot_segment(const char *path, size_t len)
{
	const char *p = path, *end = path + len, *q;

	if (len == 0 || path[0] != '/')
		return 0;
	for (p = path + 1;; p = q + 1) {
		if ((q = memchr(p, '/', (size_t)(end - p))) == NULL)
			q = end;
		if (route_dot_segment(p, (size_t)(q - p)))
			return 1;
		if (q == end)
			return 0;
	}
}
