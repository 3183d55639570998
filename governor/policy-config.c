/* SPDX-License-Identifier: MIT */
/*
 * What memgovd loads before anything else runs: its own config file and the directory of
 * policies, all or nothing, so that a reload either takes a whole valid set or keeps the
 * old one.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <string.h>

#include "policy-internal.h"

/* ---- the policy directory ------------------------------------------------------------- */

struct policy_set *policy_set_free(struct policy_set *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_policies; i++)
                policy_free(s->policies[i]);
        free(s->policies);
        free(s);
        return NULL;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* The "*.json" names in dir, sorted; dot files (editor locks like ".#a.json") are skipped. */
static int list_json(const char *dir, struct diag *diag, char ***ret, size_t *ret_n)
{
        DIR *d = opendir(dir);
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;

        if (!d) {
                int r = negative_errno();
                (void)diag_add(diag, "%s: cannot read the policy directory: %s", dir, strerror(-r));
                return r;
        }
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                char **nn;

                if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
                        continue;
                nn = realloc(names, (n + 1) * sizeof(char *));
                if (!nn || !(nn[n] = strdup(de->d_name))) {
                        free_names(nn ? nn : names, n);
                        closedir(d);
                        return -ENOMEM;
                }
                names = nn;
                n++;
        }
        closedir(d);
        if (n > 0)
                qsort(names, n, sizeof(char *), compare_names);
        *ret = names;
        *ret_n = n;
        return 0;
}

int policy_set_load_dir(const char *dir, struct diag *diag, struct policy_set **ret)
{
        _cleanup_(policy_set_freep) struct policy_set *s = NULL;
        char **names = NULL;
        size_t n = 0;
        bool bad = false;
        int r;

        r = list_json(dir, diag, &names, &n);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (s)
                s->policies = calloc(n ? n : 1, sizeof(struct policy *));
        if (!s || !s->policies) {
                free_names(names, n);
                return -ENOMEM;
        }

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct policy *p = NULL;

                if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
                        free_names(names, n);
                        return -ENOMEM;
                }
                r = policy_load_file(path, diag, &p);
                if (r == -ENOMEM) {
                        free_names(names, n);
                        return r;
                }
                if (r < 0) {
                        bad = true;
                        continue;
                }
                s->policies[s->n_policies++] = p;
        }
        free_names(names, n);

        r = policy_check_unique(s->policies, s->n_policies, diag);
        if (r < 0)
                return r;
        if (bad || r > 0)
                return -EINVAL;
        *ret = TAKE_PTR(s);
        return 0;
}

int policy_check_unique(struct policy *const *policies, size_t n, struct diag *diag)
{
        int clashes = 0;

        /* two policies on one service or one cgroup would fight over memory.high and dumps */
        for (size_t j = 0; j < n; j++)
                for (size_t i = 0; i < j; i++) {
                        const struct policy *a = policies[i], *b = policies[j];

                        if (strcmp(a->path, b->path) == 0)
                                continue;
                        if (strcmp(a->service, b->service) == 0) {
                                if (diag_add(diag,
                                             "%s: .service: \"%s\" is already the service of %s; "
                                             "service names must be unique",
                                             b->path, b->service, a->path) < 0)
                                        return -ENOMEM;
                                clashes++;
                        }
                        if (strcmp(a->cgroup, b->cgroup) == 0) {
                                if (diag_add(diag,
                                             "%s: .cgroup: \"%s\" is already governed by %s; "
                                             "one cgroup, one policy",
                                             b->path, b->cgroup, a->path) < 0)
                                        return -ENOMEM;
                                clashes++;
                        }
                }
        return clashes;
}

/* ---- the daemon config ---------------------------------------------------------------- */

static const char *const config_keys[] = {
        "policy_dir", "state_dir",       "runtime_dir", "cgroup_root",
        "listen",     "rescan_interval", "dry_run",     NULL,
};

static const struct pj_object_keys config_objects[] = {
        {".", config_keys},
        {NULL, NULL},
};

const char *const *memgov_config_known_keys(const char *json_path)
{
        if (json_path && (strcmp(json_path, ".") == 0 || json_path[0] == '\0'))
                return config_keys;
        return NULL;
}

void memgov_config_clear(struct memgov_config *c)
{
        free(c->policy_dir);
        free(c->state_dir);
        free(c->runtime_dir);
        free(c->cgroup_root);
        free(c->listen);
        *c = (struct memgov_config){};
}

/* An absolute directory name at key, copied without trailing slashes into *ret. */
static void get_dir(struct pj *c, struct json_object *root, const char *key, char **ret)
{
        const char *s;
        size_t n;

        if (pj_get_string(c, root, key, &s) <= 0)
                return;
        n = strlen(s);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        n = 0;
        if (n == 0 || s[0] != '/') {
                size_t old = pj_push_key(c, key);
                pj_problem(c,
                           "expected an absolute directory name like \"/var/lib/memgov\", got %s",
                           PJ_GOT(json_object_object_get(root, key)));
                pj_pop(c, old);
                return;
        }
        while (n > 1 && s[n - 1] == '/')
                n--;
        free(*ret);
        *ret = strndup(s, n);
        if (!*ret)
                c->oom = true;
}

/* "127.0.0.1:9464" or "[::1]:9464": an IP literal (it is bound, not resolved) and a port. */
static bool listen_valid(const char *s)
{
        const char *colon = strrchr(s, ':');
        char host[64];
        unsigned long port = 0;
        unsigned char addr[16];

        if (!colon || !colon[1] || strlen(colon + 1) > 5)
                return false;
        for (const char *p = colon + 1; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                port = port * 10 + (unsigned long)(*p - '0');
        }
        if (port == 0 || port > 65535 || (size_t)(colon - s) >= sizeof(host))
                return false;
        if (s[0] == '[') {
                if (colon - s < 3 || colon[-1] != ']')
                        return false;
                (void)snprintf(host, sizeof(host), "%.*s", (int)(colon - s - 2), s + 1);
                return inet_pton(AF_INET6, host, addr) == 1;
        }
        (void)snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
        return inet_pton(AF_INET, host, addr) == 1;
}

static int config_defaults(struct memgov_config *c)
{
        *c = (struct memgov_config){
                .policy_dir = strdup("/etc/memgov/policies.d"),
                .state_dir = strdup("/var/lib/memgov"),
                .runtime_dir = strdup("/run/memgov"),
                .rescan_interval_usec = 30 * USEC_PER_SEC,
        };
        if (!c->policy_dir || !c->state_dir || !c->runtime_dir) {
                memgov_config_clear(c);
                return -ENOMEM;
        }
        return 0;
}

static inline void json_object_putp(struct json_object **o)
{
        if (*o)
                json_object_put(*o);
}

int memgov_config_load_buffer(const char *name, const char *buf, size_t len, struct diag *diag,
                              struct memgov_config *ret)
{
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        struct memgov_config cfg;
        struct pj c = {.diag = diag, .file = name, .objects = config_objects};
        const char *s;
        int r;

        r = config_defaults(&cfg);
        if (r < 0)
                return r;
        r = pj_parse(&c, buf, len, &root);
        if (r < 0) {
                memgov_config_clear(&cfg);
                return r;
        }
        if (pj_expect_object(&c, root, "{\"policy_dir\": \"/etc/memgov/policies.d\"}")) {
                pj_check_keys(&c, root, config_keys);
                get_dir(&c, root, "policy_dir", &cfg.policy_dir);
                get_dir(&c, root, "state_dir", &cfg.state_dir);
                get_dir(&c, root, "runtime_dir", &cfg.runtime_dir);
                get_dir(&c, root, "cgroup_root", &cfg.cgroup_root);
                if (pj_get_string(&c, root, "listen", &s) > 0) {
                        if (!listen_valid(s))
                                pj_problem_at(&c, ".listen",
                                              "expected an IP address and a port like "
                                              "\"127.0.0.1:9464\" or \"[::1]:9464\", got %s",
                                              PJ_GOT(json_object_object_get(root, "listen")));
                        else if (!(cfg.listen = strdup(s)))
                                c.oom = true;
                }
                (void)pj_get_duration(&c, root, "rescan_interval", USEC_PER_SEC, USEC_PER_HOUR,
                                      &cfg.rescan_interval_usec);
                (void)pj_get_bool(&c, root, "dry_run", &cfg.dry_run);
        }
        if (c.oom || c.n_problems > 0) {
                memgov_config_clear(&cfg);
                return c.oom ? -ENOMEM : -EINVAL;
        }
        *ret = cfg;
        return 0;
}

int memgov_config_load(const char *path, struct diag *diag, struct memgov_config *ret)
{
        _cleanup_free_ char *buf = NULL;
        struct memgov_config cfg;
        size_t len;
        int r;

        if (!path) {
                r = config_defaults(&cfg);
                if (r < 0)
                        return r;
                *ret = cfg;
                return 0;
        }
        r = pj_read_file(path, diag, &buf, &len);
        if (r < 0)
                return r;
        return memgov_config_load_buffer(path, buf, len, diag, ret);
}
