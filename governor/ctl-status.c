/* SPDX-License-Identifier: MIT */
/*
 * memgovctl status, dump and reload: the export stage seen from a shell. Each asks the
 * running memgovd over its Unix socket (the status API, docs/status-api.md) with one
 * blocking libcurl request — fine in a short-lived command, unlike in the daemon.
 */
#include <getopt.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <curl/curl.h>

#include "memgov/ctl.h"
#include "memgov/server.h"
#include "memgov/status.h"

#define DEFAULT_SOCKET      "/run/memgov/" SERVER_SOCKET_NAME
#define REQUEST_TIMEOUT_SEC 30L
#define MAX_ANSWER_BYTES    (64u << 20)

struct answer {
        long status;
        char *body;
        size_t size;
        bool too_large;
};

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
        struct answer *a = userdata;
        size_t len = size * n;
        char *b;

        if (a->size + len > MAX_ANSWER_BYTES) {
                a->too_large = true;
                return 0;
        }
        b = realloc(a->body, a->size + len + 1);
        if (!b)
                return 0;
        memcpy(b + a->size, data, len);
        a->size += len;
        b[a->size] = '\0';
        a->body = b;
        return len;
}

static const char *socket_default(void)
{
        const char *env = getenv("MEMGOV_SOCKET");
        return env && env[0] ? env : DEFAULT_SOCKET;
}

/* Why nothing answers on path, in words that say what to do. Prints "CMD: …". */
static void explain_connect_failure(const char *cmd, const char *path, const char *curl_error)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        struct stat st;
        int err = 0;

        if (lstat(path, &st) < 0 && errno == ENOENT) {
                fprintf(stderr,
                        "memgovctl %s: memgovd is not running (no socket at %s); start it with "
                        "systemctl start memgovd\n",
                        cmd, path);
                return;
        }
        /* curl's words do not carry errno: ask the socket once more to tell which case. */
        if (strlen(path) < sizeof(sa.sun_path)) {
                strcpy(sa.sun_path, path);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        err = errno;
        }
        if (err == ECONNREFUSED)
                fprintf(stderr,
                        "memgovctl %s: memgovd is not running (nothing accepts connections on "
                        "%s); start it with systemctl start memgovd\n",
                        cmd, path);
        else if (err == EACCES || err == EPERM)
                fprintf(stderr,
                        "memgovctl %s: permission denied on %s; run as root or as a member of "
                        "the group that owns it (memgov)\n",
                        cmd, path);
        else
                fprintf(stderr, "memgovctl %s: cannot reach memgovd at %s: %s\n", cmd, path,
                        err ? strerror(err) : curl_error);
}

/*
 * One request to memgovd over its socket. Returns 0 with *ret filled (any HTTP status), or
 * -EIO after saying on stderr why no answer came.
 */
static int api_call(const char *cmd, const char *socket, const char *method, const char *path,
                    struct answer *ret)
{
        char url[512], error[CURL_ERROR_SIZE] = "";
        struct answer a = {0};
        CURLcode code;
        CURL *e;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(e = curl_easy_init())) {
                fprintf(stderr, "memgovctl %s: libcurl failed to initialise\n", cmd);
                return -EIO;
        }
        (void)snprintf(url, sizeof(url), "http://localhost%s", path);
        (void)curl_easy_setopt(e, CURLOPT_URL, url);
        (void)curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, socket);
        (void)curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
        (void)curl_easy_setopt(e, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_SEC);
        (void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
        (void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        (void)curl_easy_setopt(e, CURLOPT_WRITEDATA, &a);
        if (strcmp(method, "POST") == 0) {
                (void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
                (void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
        }
        code = curl_easy_perform(e);
        (void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.status);
        curl_easy_cleanup(e);

        if (code != CURLE_OK) {
                if (code == CURLE_COULDNT_CONNECT)
                        explain_connect_failure(cmd, socket,
                                                error[0] ? error : curl_easy_strerror(code));
                else if (code == CURLE_OPERATION_TIMEDOUT)
                        fprintf(stderr, "memgovctl %s: memgovd did not answer within %ld s (%s)\n",
                                cmd, REQUEST_TIMEOUT_SEC, socket);
                else if (a.too_large)
                        fprintf(stderr, "memgovctl %s: the answer is larger than %u MiB\n", cmd,
                                MAX_ANSWER_BYTES >> 20);
                else
                        fprintf(stderr, "memgovctl %s: asking memgovd at %s failed: %s\n", cmd,
                                socket, error[0] ? error : curl_easy_strerror(code));
                free(a.body);
                return -EIO;
        }
        *ret = a;
        return 0;
}

/* An answer that is not the success expected: its error text, or what was received. */
static int report_failure(const char *cmd, const struct answer *a)
{
        _cleanup_free_ char *text = NULL;
        bool ok;

        if (a->body && status_parse_message(a->body, a->size, &ok, &text) == 0 && text[0])
                fprintf(stderr, "memgovctl %s: %s\n", cmd, text);
        else
                fprintf(stderr, "memgovctl %s: memgovd answered HTTP %ld\n", cmd, a->status);
        return 1;
}

/* The options every subcommand here takes; the rest is the subcommand's. */
struct api_args {
        const char *socket;
        bool json;
        bool full;
        const char *service;
};

enum { OPT_SOCKET = 0x100 };

static int parse_args(int argc, char *argv[], const char *cmd, void (*help)(FILE *), bool status,
                      bool takes_service, struct api_args *ret)
{
        static const struct option status_options[] = {
                {"help", no_argument, NULL, 'h'},
                {"socket", required_argument, NULL, OPT_SOCKET},
                {"json", no_argument, NULL, 'j'},
                {"full", no_argument, NULL, 'l'},
                {},
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"socket", required_argument, NULL, OPT_SOCKET},
                {},
        };
        struct api_args a = {.socket = socket_default()};
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, status ? "hl" : "h", status ? status_options : options,
                                NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case OPT_SOCKET:
                        a.socket = optarg;
                        break;
                case 'j':
                        a.json = true;
                        break;
                case 'l':
                        a.full = true;
                        break;
                default:
                        fprintf(stderr, "memgovctl %s: see 'memgovctl %s --help'\n", cmd, cmd);
                        return -2;
                }
        }
        if (takes_service) {
                if (optind >= argc) {
                        fprintf(stderr,
                                "memgovctl %s: expected a SERVICE; see 'memgovctl %s "
                                "--help'\n",
                                cmd, cmd);
                        return -2;
                }
                a.service = argv[optind++];
        }
        if (optind < argc) {
                fprintf(stderr,
                        "memgovctl %s: unexpected argument '%s'; see 'memgovctl %s --help'\n", cmd,
                        argv[optind], cmd);
                return -2;
        }
        *ret = a;
        return 1;
}

static void status_help(FILE *f)
{
        fprintf(f, "Usage: memgovctl status [--json] [--full] [--socket PATH]\n\n"
                   "Shows what the running memgovd governs: for each cgroup its service, memory\n"
                   "usage against the limit the OOM killer enforces, the forecast time to that\n"
                   "limit (ETA; 'none': no growth towards it, '-': not known yet), the level,\n"
                   "memory.high ('(memgov)' when memgovd set it) and the last event.\n\n"
                   "Options:\n"
                   "  --json         print the status document as memgovd sent it "
                   "(docs/status-api.md)\n"
                   "  -l, --full     do not shorten long cgroup paths\n"
                   "  --socket PATH  memgovd's socket; default $MEMGOV_SOCKET, else "
                   "" DEFAULT_SOCKET "\n\n"
                   "Example:\n  memgovctl status --json | jq '.instances[] | select(.level != "
                   "\"ok\")'\n");
}

int ctl_status(int argc, char *argv[])
{
        _cleanup_(status_doc_freep) struct status_doc *doc = NULL;
        _cleanup_free_ char *error = NULL;
        struct api_args args;
        struct answer a;
        int r;

        r = parse_args(argc, argv, "status", status_help, true, false, &args);
        if (r <= 0)
                return -r;
        if (api_call("status", args.socket, "GET", "/v1/status", &a) < 0)
                return 1;
        if (a.status != 200) {
                r = report_failure("status", &a);
                free(a.body);
                return r;
        }
        if (args.json) {
                r = fwrite(a.body, 1, a.size, stdout) == a.size ? 0 : 1;
                free(a.body);
                return r;
        }
        r = status_parse_json(a.body, a.size, &doc, &error);
        free(a.body);
        if (r < 0) {
                fprintf(stderr, "memgovctl status: memgovd's answer is not a status document: %s\n",
                        error ? error : strerror(-r));
                return 1;
        }
        return status_format_table(stdout, doc, args.full) < 0 ? 1 : 0;
}

static void dump_help(FILE *f)
{
        fprintf(f, "Usage: memgovctl dump SERVICE [--socket PATH]\n\n"
                   "Asks memgovd to capture SERVICE now, as it would on a level change: its\n"
                   "profiles and collectors, into <state-dir>/dumps/SERVICE/. memgovd answers at\n"
                   "once with where the dump goes; the capture runs in the background.\n\n"
                   "Options:\n"
                   "  --socket PATH  memgovd's socket; default $MEMGOV_SOCKET, else "
                   "" DEFAULT_SOCKET "\n\n"
                   "Example:\n  memgovctl dump checkout-api\n");
}

/* POST path; on the expected status print the message on stdout. */
static int post_action(const char *cmd, const char *socket, const char *path, long want)
{
        _cleanup_free_ char *text = NULL;
        struct answer a;
        bool ok = false;
        int r;

        if (api_call(cmd, socket, "POST", path, &a) < 0)
                return 1;
        if (a.status != want) {
                r = report_failure(cmd, &a);
                free(a.body);
                return r;
        }
        if (a.body && status_parse_message(a.body, a.size, &ok, &text) == 0 && text[0])
                printf("%s\n", text);
        free(a.body);
        return 0;
}

int ctl_dump(int argc, char *argv[])
{
        _cleanup_free_ char *path = NULL;
        struct api_args args;
        int r;

        r = parse_args(argc, argv, "dump", dump_help, false, true, &args);
        if (r <= 0)
                return -r;
        /* The daemon checks the name too; refusing here gives the clearer message. */
        for (const char *c = args.service; *c; c++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                            *c)) {
                        fprintf(stderr,
                                "memgovctl dump: '%s' is not a service name (letters, digits, "
                                "'_', '.' and '-')\n",
                                args.service);
                        return 2;
                }
        if (asprintf(&path, "/v1/dump/%s", args.service) < 0)
                return 1;
        return post_action("dump", args.socket, path, 202);
}

static void reload_help(FILE *f)
{
        fprintf(f, "Usage: memgovctl reload [--socket PATH]\n\n"
                   "Asks memgovd to read its config and policies again. All or nothing: when a\n"
                   "file is invalid, memgovd keeps running with the old set and the problems are\n"
                   "printed here (exit status 1). The same as 'systemctl reload memgovd', which\n"
                   "sends SIGHUP, except that the problems are shown to you.\n\n"
                   "Options:\n"
                   "  --socket PATH  memgovd's socket; default $MEMGOV_SOCKET, else "
                   "" DEFAULT_SOCKET "\n");
}

int ctl_reload(int argc, char *argv[])
{
        struct api_args args;
        int r;

        r = parse_args(argc, argv, "reload", reload_help, false, false, &args);
        if (r <= 0)
                return -r;
        return post_action("reload", args.socket, "/v1/reload", 200);
}
