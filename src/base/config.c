/*
 * Configuration: schema, JSON file, environment and flags (see config.h).
 *
 * Every load call is two-phase: values are parsed and type-checked into a
 * staging area first, and committed only when the whole source is valid, so a
 * failed load changes nothing. Precedence is by source level (default < file <
 * env < flag), not by call order.
 */
#include "base/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/json.h"
#include "base/limits.h"
#include "base/log.h"
#include "base/parse.h"
#include "base/secmem.h"

#define ENV_PREFIX "COFFER_"
#define ENV_NAME_MAX (sizeof(ENV_PREFIX) + CF_CONFIG_MAX_KEY)
/* 100 years: the default upper bound of a duration option. */
#define DURATION_DEFAULT_MAX (100ull * 365 * 86400)
/* How much of a rejected (non-secret) value an error message quotes. */
#define ERR_VALUE_QUOTE 64

struct value {
    char *s; /* NUL-terminated text; cf_secure_alloc'd for secret options */
    size_t s_len;
    int64_t i;
    uint64_t d;
    bool b;
    bool set;
};

struct entry {
    const cf_config_opt *opt;
    char env[ENV_NAME_MAX];
    cf_cfg_source src;
    struct value v;
};

struct cf_config {
    struct entry *e;
    size_t n;
};

/* ---- values ---------------------------------------------------------- */

static void value_clear(const cf_config_opt *opt, struct value *v)
{
    if (v->s != NULL) {
        if (opt->flags & CF_CFG_SECRET)
            cf_secure_free(v->s);
        else
            free(v->s);
    }
    memset(v, 0, sizeof(*v));
}

static const char *type_name(cf_cfg_type t)
{
    switch (t) {
    case CF_CFG_STRING: return "STRING";
    case CF_CFG_INT: return "INT";
    case CF_CFG_BOOL: return "BOOL";
    case CF_CFG_DURATION: return "DURATION";
    case CF_CFG_PATH: return "PATH";
    }
    return "?";
}

static const char *src_name(cf_cfg_source s)
{
    switch (s) {
    case CF_CFG_SRC_UNSET: return "unset";
    case CF_CFG_SRC_DEFAULT: return "default";
    case CF_CFG_SRC_FILE: return "file";
    case CF_CFG_SRC_ENV: return "env";
    case CF_CFG_SRC_FLAG: return "flag";
    }
    return "?";
}

/* Error about the value of one option. Secret values are never quoted. */
static int bad_value(const cf_config_opt *opt, const char *where, const char *text,
                     const char *why)
{
    if ((opt->flags & CF_CFG_SECRET) || text == NULL)
        return cf_err_set(CF_E_CONFIG, "config '%s': %s (%s)", opt->key, why, where);
    return cf_err_set(CF_E_CONFIG, "config '%s': '%.*s' %s (%s)", opt->key, ERR_VALUE_QUOTE,
                      text, why, where);
}

/*
 * Reads a secret from a file named by "@path". The file must be a regular file
 * that others cannot access (like ssh's private key check), hold at most
 * CF_CONFIG_MAX_SECRET_FILE bytes, no NUL, and not be empty once one trailing
 * "\n" or "\r\n" is dropped. The bytes go straight into secret memory.
 */
static int read_secret_file(const cf_config_opt *opt, const char *where, const char *path,
                            struct value *ret)
{
    struct stat st;
    char *p = NULL;
    size_t len = 0;
    int fd = -1, rc = 0;

    if (path[0] == '\0')
        return cf_err_set(CF_E_CONFIG, "config '%s': empty file name after '@' (%s)", opt->key,
                          where);
    /* One byte more than the limit, to detect an oversized file, plus the NUL. */
    p = cf_secure_alloc(CF_CONFIG_MAX_SECRET_FILE + 2);
    CF_ENSURE(p != NULL, CF_E_NOMEM);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = cf_err_set(CF_E_CONFIG, "config '%s': cannot open secret file %.256s: %s (%s)",
                        opt->key, path, strerror(errno), where);
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cf_err_set(CF_E_CONFIG, "config '%s': secret file %.256s is not a regular file (%s)",
                        opt->key, path, where);
        goto out;
    }
    if ((st.st_mode & S_IRWXO) != 0) {
        rc = cf_err_set(CF_E_CONFIG,
                        "config '%s': secret file %.256s is accessible by others (mode %04o); "
                        "chmod o-rwx it (%s)",
                        opt->key, path, (unsigned)(st.st_mode & 07777), where);
        goto out;
    }
    while (len <= CF_CONFIG_MAX_SECRET_FILE) {
        ssize_t got = read(fd, p + len, CF_CONFIG_MAX_SECRET_FILE + 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cf_err_set(CF_E_CONFIG, "config '%s': cannot read secret file %.256s: %s (%s)",
                            opt->key, path, strerror(errno), where);
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    if (len > CF_CONFIG_MAX_SECRET_FILE) {
        rc = cf_err_set(CF_E_CONFIG, "config '%s': secret file %.256s exceeds %u bytes (%s)",
                        opt->key, path, (unsigned)CF_CONFIG_MAX_SECRET_FILE, where);
        goto out;
    }
    if (len > 0 && p[len - 1] == '\n')
        len--;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    p[len] = 0;
    if (len == 0 || memchr(p, 0, len) != NULL) {
        rc = cf_err_set(CF_E_CONFIG, "config '%s': secret file %.256s is empty or holds a NUL (%s)",
                        opt->key, path, where);
        goto out;
    }
    ret->s = p;
    ret->s_len = len;
    ret->set = true;
    p = NULL;
out:
    if (fd >= 0)
        close(fd);
    cf_secure_free(p);
    return rc;
}

/*
 * Parses text (len bytes, no NUL inside) as a value of opt. `where` names the
 * source for error messages.
 */
static int parse_value(const cf_config_opt *opt, const char *where, const char *text, size_t len,
                       struct value *ret)
{
    struct value v = {0};
    bool secret = (opt->flags & CF_CFG_SECRET) != 0;
    int rc = 0;

    if (memchr(text, 0, len) != NULL)
        return bad_value(opt, where, NULL, "contains a NUL byte");
    if (len > CF_CONFIG_MAX_VALUE)
        return bad_value(opt, where, NULL, "is too long");

    if (secret && len > 0 && text[0] == '@' && (opt->type == CF_CFG_STRING)) {
        char path[PATH_MAX];
        if (len - 1 >= sizeof(path))
            return bad_value(opt, where, NULL, "secret file name is too long");
        memcpy(path, text + 1, len - 1);
        path[len - 1] = 0;
        CF_GUARD(read_secret_file(opt, where, path, &v));
        *ret = v;
        return 0;
    }

    if (opt->type == CF_CFG_PATH && (len == 0 || len >= PATH_MAX))
        return bad_value(opt, where, text, "is not a valid path (empty or too long)");

    v.s = secret ? cf_secure_alloc(len + 1) : malloc(len + 1);
    CF_ENSURE(v.s != NULL, CF_E_NOMEM);
    memcpy(v.s, text, len);
    v.s[len] = 0;
    v.s_len = len;
    v.set = true;

    switch (opt->type) {
    case CF_CFG_STRING:
    case CF_CFG_PATH:
        break;
    case CF_CFG_INT: {
        int64_t lo = opt->min, hi = opt->max;
        if (lo == 0 && hi == 0) {
            lo = INT64_MIN;
            hi = INT64_MAX;
        }
        rc = cf_parse_i64(v.s, lo, hi, &v.i);
        if (rc == CF_E_RANGE) {
            char why[96];
            if (cf_fmt(why, sizeof(why), "is out of range [%lld, %lld]", (long long)lo,
                       (long long)hi) < 0)
                why[0] = 0;
            rc = bad_value(opt, where, v.s, why);
        } else if (rc < 0) {
            rc = bad_value(opt, where, v.s, "is not an integer");
        }
        break;
    }
    case CF_CFG_BOOL:
        if (strcmp(v.s, "true") == 0 || strcmp(v.s, "1") == 0 || strcmp(v.s, "yes") == 0 ||
            strcmp(v.s, "on") == 0)
            v.b = true;
        else if (strcmp(v.s, "false") == 0 || strcmp(v.s, "0") == 0 ||
                 strcmp(v.s, "no") == 0 || strcmp(v.s, "off") == 0)
            v.b = false;
        else
            rc = bad_value(opt, where, v.s, "is not a boolean (true/false)");
        break;
    case CF_CFG_DURATION: {
        uint64_t max = opt->max > 0 ? (uint64_t)opt->max : DURATION_DEFAULT_MAX;
        rc = cf_parse_duration(v.s, max, &v.d);
        if (rc == CF_E_RANGE) {
            char why[96];
            if (cf_fmt(why, sizeof(why), "exceeds the maximum of %llu seconds",
                       (unsigned long long)max) < 0)
                why[0] = 0;
            rc = bad_value(opt, where, v.s, why);
        } else if (rc < 0) {
            rc = bad_value(opt, where, v.s, "is not a duration (e.g. 90, 90s, 15m, 2h, 7d)");
        }
        break;
    }
    default:
        rc = cf_err_set(CF_E_INVAL, "config '%s': unknown option type", opt->key);
    }
    if (rc < 0) {
        value_clear(opt, &v);
        return rc;
    }
    *ret = v;
    return 0;
}

/* ---- schema ------------------------------------------------------------ */

static bool key_valid(const char *k)
{
    size_t n = strlen(k);
    bool seg_empty = true;

    if (n == 0 || n > CF_CONFIG_MAX_KEY || strcmp(k, "config") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = k[i];
        if (ch == '.') {
            if (seg_empty)
                return false;
            seg_empty = true;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') {
            seg_empty = false;
        } else {
            return false;
        }
    }
    return !seg_empty;
}

static void env_name(const char *key, char *out)
{
    size_t p = strlen(ENV_PREFIX);

    memcpy(out, ENV_PREFIX, p);
    for (size_t i = 0; key[i] != 0; i++) {
        char ch = key[i];
        if (ch == '.')
            ch = '_';
        else if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        out[p++] = ch;
    }
    out[p] = 0;
}

int cf_config_new(const cf_config_opt *schema, size_t n, cf_config **ret)
{
    cf_config *c = NULL;
    int rc = 0;

    CF_ENSURE(schema != NULL && n > 0 && n <= CF_CONFIG_MAX_OPTIONS, CF_E_INVAL);
    c = calloc(1, sizeof(*c));
    CF_ENSURE(c != NULL, CF_E_NOMEM);
    c->e = calloc(n, sizeof(*c->e));
    CF_ENSURE_OUT(c->e != NULL, CF_E_NOMEM);
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        const cf_config_opt *o = &schema[i];
        c->e[i].opt = o;
        if (o->key == NULL || !key_valid(o->key)) {
            rc = cf_err_set(CF_E_INVAL, "config schema: invalid key '%.64s'",
                            o->key ? o->key : "(null)");
            goto out;
        }
        if ((unsigned)o->type > CF_CFG_PATH) {
            rc = cf_err_set(CF_E_INVAL, "config schema: '%s' has an unknown type", o->key);
            goto out;
        }
        if ((o->flags & CF_CFG_SECRET) && o->type != CF_CFG_STRING) {
            rc = cf_err_set(CF_E_INVAL, "config schema: secret '%s' must be a string", o->key);
            goto out;
        }
        if (o->type == CF_CFG_INT && o->min > o->max) {
            rc = cf_err_set(CF_E_INVAL, "config schema: '%s' has min > max", o->key);
            goto out;
        }
        env_name(o->key, c->e[i].env);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->e[j].env, c->e[i].env) == 0) {
                rc = cf_err_set(CF_E_INVAL,
                                "config schema: '%s' and '%s' map to the same variable %s",
                                schema[j].key, o->key, c->e[i].env);
                goto out;
            }
        }
        if (o->def != NULL) {
            rc = parse_value(o, "schema default", o->def, strlen(o->def), &c->e[i].v);
            if (rc < 0) {
                rc = cf_err_set(CF_E_INVAL, "config schema: default of '%s' is invalid", o->key);
                goto out;
            }
            c->e[i].src = CF_CFG_SRC_DEFAULT;
        }
    }
    *ret = c;
    c = NULL;
out:
    cf_config_free(c);
    return rc;
}

void cf_config_free(cf_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; c->e != NULL && i < c->n; i++)
        value_clear(c->e[i].opt, &c->e[i].v);
    free(c->e);
    free(c);
}

static struct entry *find(const cf_config *c, const char *key, size_t key_len)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->e[i].opt->key;
        if (strlen(k) == key_len && memcmp(k, key, key_len) == 0)
            return &c->e[i];
    }
    return NULL;
}

/* ---- staging ------------------------------------------------------------ */

typedef struct {
    cf_config *c;
    struct value *v; /* one slot per option */
} stage;

static int stage_init(stage *s, cf_config *c)
{
    s->c = c;
    s->v = calloc(c->n, sizeof(*s->v));
    return s->v != NULL ? 0 : CF_E_NOMEM;
}

static void stage_free(stage *s)
{
    for (size_t i = 0; s->v != NULL && i < s->c->n; i++)
        value_clear(s->c->e[i].opt, &s->v[i]);
    free(s->v);
    s->v = NULL;
}

/* Later wins within one source (e.g. a flag given twice). */
static void stage_put(stage *s, const struct entry *e, struct value *v)
{
    size_t idx = (size_t)(e - s->c->e);

    value_clear(e->opt, &s->v[idx]);
    s->v[idx] = *v;
    memset(v, 0, sizeof(*v));
}

/* Moves staged values into the config where the source ranks at least as high. */
static void stage_commit(stage *s, cf_cfg_source src)
{
    for (size_t i = 0; i < s->c->n; i++) {
        struct entry *e = &s->c->e[i];
        if (!s->v[i].set || e->src > src)
            continue;
        value_clear(e->opt, &e->v);
        e->v = s->v[i];
        e->src = src;
        memset(&s->v[i], 0, sizeof(s->v[i]));
    }
}

/* ---- JSON file ------------------------------------------------------------ */

static int json_member(stage *s, const char *origin, const char *key, size_t key_len,
                       json_t *val);

static int json_object_walk(stage *s, const char *origin, const char *prefix, size_t prefix_len,
                            json_t *obj)
{
    const char *name;
    json_t *val;

    json_object_foreach(obj, name, val) {
        char key[CF_CONFIG_MAX_KEY + 2];
        size_t nl = strlen(name), kl;
        if (prefix_len + 1 + nl > CF_CONFIG_MAX_KEY)
            return cf_err_set(CF_E_CONFIG, "config file %.256s: unknown key '%.*s%s%.64s'", origin,
                              (int)prefix_len, prefix, prefix_len ? "." : "", name);
        kl = 0;
        if (prefix_len > 0) {
            memcpy(key, prefix, prefix_len);
            key[prefix_len] = '.';
            kl = prefix_len + 1;
        }
        memcpy(key + kl, name, nl);
        kl += nl;
        key[kl] = 0;
        CF_GUARD(json_member(s, origin, key, kl, val));
    }
    return 0;
}

static int json_member(stage *s, const char *origin, const char *key, size_t key_len, json_t *val)
{
    const struct entry *e = find(s->c, key, key_len);
    char where[300], num[32];
    struct value v = {0};
    const char *text = NULL;
    size_t text_len = 0;

    if (e == NULL) {
        if (json_is_object(val))
            return json_object_walk(s, origin, key, key_len, val);
        return cf_err_set(CF_E_CONFIG, "config file %.256s: unknown key '%s'", origin, key);
    }
    if (s->v[e - s->c->e].set)
        return cf_err_set(CF_E_CONFIG, "config '%s': given twice in file %.256s", key, origin);
    if (cf_fmt(where, sizeof(where), "file %.256s", origin) < 0)
        where[0] = 0;

    switch (e->opt->type) {
    case CF_CFG_STRING:
    case CF_CFG_PATH:
        if (!json_is_string(val))
            return bad_value(e->opt, where, NULL, "must be a JSON string");
        text = json_string_value(val);
        text_len = json_string_length(val);
        break;
    case CF_CFG_INT:
        if (!json_is_integer(val))
            return bad_value(e->opt, where, NULL, "must be a JSON integer");
        CF_GUARD(cf_fmt(num, sizeof(num), "%lld", (long long)json_integer_value(val)));
        text = num;
        text_len = strlen(num);
        break;
    case CF_CFG_BOOL:
        if (!json_is_boolean(val))
            return bad_value(e->opt, where, NULL, "must be true or false");
        text = json_is_true(val) ? "true" : "false";
        text_len = strlen(text);
        break;
    case CF_CFG_DURATION:
        if (json_is_integer(val) && json_integer_value(val) >= 0) {
            CF_GUARD(cf_fmt(num, sizeof(num), "%lld", (long long)json_integer_value(val)));
            text = num;
            text_len = strlen(num);
        } else if (json_is_string(val)) {
            text = json_string_value(val);
            text_len = json_string_length(val);
        } else {
            return bad_value(e->opt, where, NULL,
                             "must be a number of seconds or a string like \"15m\"");
        }
        break;
    }
    CF_GUARD(parse_value(e->opt, where, text, text_len, &v));
    stage_put(s, e, &v);
    return 0;
}

int cf_config_load_json(cf_config *c, const void *data, size_t len, const char *origin)
{
    json_t *root = NULL;
    stage s = {0};
    int rc;

    CF_ENSURE(c != NULL && (data != NULL || len == 0), CF_E_INVAL);
    if (origin == NULL)
        origin = "(config)";
    rc = cf_json_parse_object(data, len, CF_CONFIG_MAX_BYTES, &root);
    if (rc < 0) {
        rc = cf_err_set(CF_E_CONFIG, "config file %.256s: %s", origin, cf_err_detail(rc));
        goto out;
    }
    CF_GUARD_OUT(stage_init(&s, c));
    CF_GUARD_OUT(json_object_walk(&s, origin, "", 0, root));
    stage_commit(&s, CF_CFG_SRC_FILE);
out:
    stage_free(&s);
    json_decref(root);
    return rc;
}

int cf_config_load_file(cf_config *c, const char *path)
{
    cf_buf b;
    struct stat st;
    int fd = -1, rc = 0;

    CF_ENSURE(c != NULL && path != NULL, CF_E_INVAL);
    cf_buf_init(&b, CF_CONFIG_MAX_BYTES);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = cf_err_set(CF_E_CONFIG, "config file %.256s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cf_err_set(CF_E_CONFIG, "config file %.256s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > CF_CONFIG_MAX_BYTES) {
        rc = cf_err_set(CF_E_CONFIG, "config file %.256s: larger than %u bytes", path,
                        (unsigned)CF_CONFIG_MAX_BYTES);
        goto out;
    }
    for (;;) {
        uint8_t tmp[4096];
        ssize_t got = read(fd, tmp, sizeof(tmp));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cf_err_set(CF_E_CONFIG, "config file %.256s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        if (cf_buf_put(&b, tmp, (size_t)got) < 0) {
            rc = cf_err_set(CF_E_CONFIG, "config file %.256s: larger than %u bytes", path,
                            (unsigned)CF_CONFIG_MAX_BYTES);
            goto out;
        }
    }
    rc = cf_config_load_json(c, b.data, b.len, path);
out:
    if (fd >= 0)
        close(fd);
    cf_buf_free(&b);
    return rc;
}

/* ---- environment ------------------------------------------------------------ */

extern char **environ;

static int stage_env(stage *s, char *const *envp)
{
    size_t plen = strlen(ENV_PREFIX);

    if (envp == NULL)
        envp = environ;
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        const char *kv = envp[i], *eq;
        struct value v = {0};
        if (strncmp(kv, ENV_PREFIX, plen) != 0 || (eq = strchr(kv, '=')) == NULL)
            continue;
        size_t nlen = (size_t)(eq - kv);
        for (size_t j = 0; j < s->c->n; j++) {
            const struct entry *e = &s->c->e[j];
            if (strlen(e->env) != nlen || memcmp(e->env, kv, nlen) != 0)
                continue;
            char where[ENV_NAME_MAX + 8];
            if (cf_fmt(where, sizeof(where), "env %s", e->env) < 0)
                where[0] = 0;
            CF_GUARD(parse_value(e->opt, where, eq + 1, strlen(eq + 1), &v));
            stage_put(s, e, &v);
            break;
        }
    }
    return 0;
}

int cf_config_load_env(cf_config *c, char *const *envp)
{
    stage s = {0};
    int rc;

    CF_ENSURE(c != NULL, CF_E_INVAL);
    CF_GUARD_OUT(stage_init(&s, c));
    CF_GUARD_OUT(stage_env(&s, envp));
    stage_commit(&s, CF_CFG_SRC_ENV);
out:
    stage_free(&s);
    return rc;
}

/* ---- flags ---------------------------------------------------------------- */

/*
 * Parses flags into the stage. With config_path non-NULL, "--config" is
 * accepted and its value stored there (borrowed from argv).
 */
static int stage_args(stage *s, int argc, char *const *argv, const char **config_path,
                      int *ret_next)
{
    int i;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *val = NULL;
        size_t nlen;
        const struct entry *e;
        struct value v = {0};
        char where[CF_CONFIG_MAX_KEY + 16];

        if (a == NULL)
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (ret_next != NULL)
                break;
            return cf_err_set(CF_E_CONFIG, "unexpected argument '%.64s'", a);
        }
        name = a + 2;
        eq = strchr(name, '=');
        nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (eq != NULL)
            val = eq + 1;

        if (config_path != NULL && nlen == 6 && memcmp(name, "config", 6) == 0) {
            if (val == NULL) {
                if (i + 1 >= argc || argv[i + 1] == NULL)
                    return cf_err_set(CF_E_CONFIG, "flag --config needs a value");
                val = argv[++i];
            }
            if (val[0] == '\0')
                return cf_err_set(CF_E_CONFIG, "flag --config needs a file name");
            *config_path = val;
            continue;
        }
        e = find(s->c, name, nlen);
        if (e == NULL)
            return cf_err_set(CF_E_CONFIG, "unknown flag '--%.*s'", (int)CF_MIN(nlen, 64), name);
        if (val == NULL) {
            if (e->opt->type == CF_CFG_BOOL) {
                val = "true";
            } else {
                if (i + 1 >= argc || argv[i + 1] == NULL)
                    return cf_err_set(CF_E_CONFIG, "config '%s': flag --%s needs a value",
                                      e->opt->key, e->opt->key);
                val = argv[++i];
            }
        }
        if (cf_fmt(where, sizeof(where), "flag --%s", e->opt->key) < 0)
            where[0] = 0;
        CF_GUARD(parse_value(e->opt, where, val, strlen(val), &v));
        stage_put(s, e, &v);
    }
    if (ret_next != NULL)
        *ret_next = i;
    return 0;
}

int cf_config_load_args(cf_config *c, int argc, char *const *argv, int *ret_next)
{
    stage s = {0};
    int rc, next = 0;

    CF_ENSURE(c != NULL && argc >= 0 && (argv != NULL || argc == 0), CF_E_INVAL);
    CF_GUARD_OUT(stage_init(&s, c));
    CF_GUARD_OUT(stage_args(&s, argc, argv, NULL, ret_next ? &next : NULL));
    stage_commit(&s, CF_CFG_SRC_FLAG);
    if (ret_next != NULL)
        *ret_next = next;
out:
    stage_free(&s);
    return rc;
}

int cf_config_check(const cf_config *c)
{
    CF_ENSURE(c != NULL, CF_E_INVAL);
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];
        if ((e->opt->flags & CF_CFG_REQUIRED) && !e->v.set)
            return cf_err_set(CF_E_CONFIG,
                              "config '%s': required; set it in the config file, with %s or "
                              "with --%s",
                              e->opt->key, e->env, e->opt->key);
    }
    return 0;
}

int cf_config_load_all(cf_config *c, int argc, char *const *argv, char *const *envp,
                       int *ret_next)
{
    stage flags = {0};
    const char *file = NULL;
    int rc, next = 0;

    CF_ENSURE(c != NULL && argc >= 0 && (argv != NULL || argc == 0), CF_E_INVAL);
    CF_GUARD_OUT(stage_init(&flags, c));
    CF_GUARD_OUT(stage_args(&flags, argc, argv, &file, ret_next ? &next : NULL));
    if (file == NULL) {
        char *const *ep = envp ? envp : environ;
        size_t pl = strlen(ENV_PREFIX "CONFIG=");
        for (size_t i = 0; ep != NULL && ep[i] != NULL; i++) {
            if (strncmp(ep[i], ENV_PREFIX "CONFIG=", pl) == 0 && ep[i][pl] != '\0')
                file = ep[i] + pl;
        }
    }
    if (file != NULL)
        CF_GUARD_OUT(cf_config_load_file(c, file));
    CF_GUARD_OUT(cf_config_load_env(c, envp));
    stage_commit(&flags, CF_CFG_SRC_FLAG);
    CF_GUARD_OUT(cf_config_check(c));
    if (ret_next != NULL)
        *ret_next = next;
out:
    stage_free(&flags);
    return rc;
}

/* ---- getters -------------------------------------------------------------- */

static int get_entry(const cf_config *c, const char *key, cf_cfg_type t1, cf_cfg_type t2,
                     const struct entry **ret)
{
    const struct entry *e;

    CF_ENSURE(c != NULL && key != NULL, CF_E_INVAL);
    e = find(c, key, strlen(key));
    if (e == NULL)
        return cf_err_set(CF_E_INVAL, "config '%.64s': not in the schema", key);
    if (e->opt->type != t1 && e->opt->type != t2)
        return cf_err_set(CF_E_INVAL, "config '%s': is a %s option", key,
                          type_name(e->opt->type));
    if (!e->v.set)
        return cf_err_set(CF_E_NOT_FOUND, "config '%s': not set", key);
    *ret = e;
    return 0;
}

int cf_config_get_str(const cf_config *c, const char *key, const char **ret)
{
    const struct entry *e = NULL;

    CF_GUARD(get_entry(c, key, CF_CFG_STRING, CF_CFG_PATH, &e));
    *ret = e->v.s;
    return 0;
}

int cf_config_get_int(const cf_config *c, const char *key, int64_t *ret)
{
    const struct entry *e = NULL;

    CF_GUARD(get_entry(c, key, CF_CFG_INT, CF_CFG_INT, &e));
    *ret = e->v.i;
    return 0;
}

int cf_config_get_bool(const cf_config *c, const char *key, bool *ret)
{
    const struct entry *e = NULL;

    CF_GUARD(get_entry(c, key, CF_CFG_BOOL, CF_CFG_BOOL, &e));
    *ret = e->v.b;
    return 0;
}

int cf_config_get_duration(const cf_config *c, const char *key, uint64_t *ret)
{
    const struct entry *e = NULL;

    CF_GUARD(get_entry(c, key, CF_CFG_DURATION, CF_CFG_DURATION, &e));
    *ret = e->v.d;
    return 0;
}

cf_cfg_source cf_config_source(const cf_config *c, const char *key)
{
    const struct entry *e;

    if (c == NULL || key == NULL || (e = find(c, key, strlen(key))) == NULL)
        return CF_CFG_SRC_UNSET;
    return e->src;
}

/* ---- help and log ---------------------------------------------------------- */

int cf_config_help(const cf_config *c, cf_buf *out)
{
    CF_ENSURE(c != NULL && out != NULL, CF_E_INVAL);
    for (size_t i = 0; i < c->n; i++) {
        const cf_config_opt *o = c->e[i].opt;
        CF_GUARD(cf_buf_printf(out, "  --%s=%s\n      %s (", o->key, type_name(o->type),
                               o->help ? o->help : ""));
        if (o->flags & CF_CFG_REQUIRED)
            CF_GUARD(cf_buf_put_str(out, "required; "));
        if (o->flags & CF_CFG_SECRET)
            CF_GUARD(cf_buf_put_str(out, "secret, may be @FILE; "));
        else if (o->def != NULL)
            CF_GUARD(cf_buf_printf(out, "default: %s; ", o->def));
        CF_GUARD(cf_buf_printf(out, "env %s)\n", c->e[i].env));
    }
    return 0;
}

void cf_config_log(const cf_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        const struct entry *e = &c->e[i];
        const char *shown = !e->v.set ? "" : (e->opt->flags & CF_CFG_SECRET) ? "<secret>" : e->v.s;
        cf_log(CF_LOG_INFO, "config", "key", e->opt->key, "value", shown, "source",
               src_name(e->src), NULL);
    }
}
