/* brine impls [--json]: every pickle implementation brine can run here.
 *
 * The discovery itself is oracle/brine_oracle/impls.py (it has to ask each
 * interpreter what it is); this runs it with the newest CPython 3.6+ found
 * (by absolute path, pyenv shims skipped) and prints its output. When no
 * Python can run it, the list still holds `pkl`, printed from here in the
 * same format.
 *
 * Where the oracle lives: $BRINE_ORACLE_DIR, else the source tree brine was
 * built from (BRINE_SOURCE_DIR "/oracle", a compile-time define), else
 * <dir of the brine executable>/../oracle.
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pkl.h"
#include "serve.h"

enum { IMPLS_EXIT_USAGE = 2 };

/*------------------------------------------------------------------------------
 * Finding the newest CPython 3.6+
 *----------------------------------------------------------------------------*/

typedef struct pyver {
    int major, minor, micro;
} pyver;

/* True when the file is an executable regular file that is not a script
   (pyenv's shims and wrapper scripts start with "#!"). */
static bool is_binary_exe(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0)
        return false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char head[2] = {0, 0};
    size_t n = fread(head, 1, 2, f);
    fclose(f);
    return !(n == 2 && head[0] == '#' && head[1] == '!');
}

/* "python3.11" -> 3.11; micro from a pyenv "versions/3.11.7/" component. */
static bool version_from_path(const char *path, const char *real, pyver *v) {
    const char *base = strrchr(real, '/');
    base = base ? base + 1 : real;
    int ma = 0, mi = -1, mc = 0;
    if (sscanf(base, "python%d.%d", &ma, &mi) != 2 || mi < 0)
        return false;
    const char *ver = strstr(path, "/versions/");
    if (ver) {
        int a, b, c;
        if (sscanf(ver + 10, "%d.%d.%d", &a, &b, &c) == 3 && a == ma && b == mi)
            mc = c;
    }
    v->major = ma;
    v->minor = mi;
    v->micro = mc;
    return true;
}

static int cmp_ver(const pyver *a, const pyver *b) {
    if (a->major != b->major)
        return a->major < b->major ? -1 : 1;
    if (a->minor != b->minor)
        return a->minor < b->minor ? -1 : 1;
    if (a->micro != b->micro)
        return a->micro < b->micro ? -1 : 1;
    return 0;
}

typedef struct best {
    char path[PATH_MAX];
    pyver v;
    bool found;
} best;

static void consider(best *b, const char *path) {
    char real[PATH_MAX];
    pyver v;
    if (strstr(path, "/shims/") || !realpath(path, real) || !is_binary_exe(real))
        return;
    if (!version_from_path(path, real, &v) || v.major != 3 || v.minor < 6)
        return;
    if (!b->found || cmp_ver(&v, &b->v) > 0) {
        snprintf(b->path, sizeof b->path, "%s", path);
        b->v = v;
        b->found = true;
    }
}

static void consider_glob(best *b, const char *pattern) {
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            consider(b, g.gl_pathv[i]);
    globfree(&g);
}

static bool newest_python(char *out, size_t outlen) {
    best b;
    memset(&b, 0, sizeof b);
    const char *home = getenv("HOME");
    char pat[PATH_MAX];
    if (home && *home) {
        snprintf(pat, sizeof pat, "%s/.pyenv/versions/3.*/bin/python3", home);
        consider_glob(&b, pat);
    }
    consider_glob(&b, "/usr/bin/python3*");
    consider_glob(&b, "/usr/local/bin/python3*");
    const char *path = getenv("PATH");
    if (path) {
        char *copy = strdup(path);
        for (char *save = NULL, *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir;
             dir = strtok_r(NULL, ":", &save)) {
            if (dir[0] != '/')
                continue; /* by absolute path only */
            snprintf(pat, sizeof pat, "%s/python3", dir);
            consider(&b, pat);
        }
        free(copy);
    }
    if (!b.found)
        return false;
    snprintf(out, outlen, "%s", b.path);
    return true;
}

/*------------------------------------------------------------------------------
 * Locations
 *----------------------------------------------------------------------------*/

static bool self_path(char *out, size_t outlen) {
    ssize_t n = readlink("/proc/self/exe", out, outlen - 1);
    if (n <= 0)
        return false;
    out[n] = '\0';
    return true;
}

static bool oracle_dir(const char *self, char *out, size_t outlen) {
    char probe[PATH_MAX];
    struct stat st;
    const char *env = getenv("BRINE_ORACLE_DIR");
    if (env && *env) {
        snprintf(out, outlen, "%s", env);
    } else {
#ifdef BRINE_SOURCE_DIR
        snprintf(out, outlen, "%s/oracle", BRINE_SOURCE_DIR);
        if (snprintf(probe, sizeof probe, "%s/brine_oracle/impls.py", out) < (int)sizeof probe &&
            stat(probe, &st) == 0)
            return true;
#endif
        if (!self)
            return false;
        const char *slash = strrchr(self, '/');
        if (!slash)
            return false;
        snprintf(out, outlen, "%.*s/../oracle", (int)(slash - self), self);
    }
    if (snprintf(probe, sizeof probe, "%s/brine_oracle/impls.py", out) >= (int)sizeof probe)
        return false;
    return stat(probe, &st) == 0;
}

/*------------------------------------------------------------------------------
 * Running impls.py, capturing its output
 *----------------------------------------------------------------------------*/

/* Runs argv with PYTHONPATH=pypath; on exit status 0 returns its stdout
   (malloc'd, *len set), else NULL. */
static char *run_capture(char *const argv[], const char *pypath, size_t *len) {
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(127);
        close(fds[1]);
        setenv("PYTHONPATH", pypath, 1);
        setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 0, n = 0;
    char *buf = NULL;
    bool ok = true;
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = ncap < ((size_t)1 << 26) ? realloc(buf, ncap) : NULL;
            if (!nb) {
                ok = false;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(fds[0], buf + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            ok = ok && k == 0;
            break;
        }
        n += (size_t)k;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/*------------------------------------------------------------------------------
 * pkl alone (no Python): the same formats impls.py prints
 *----------------------------------------------------------------------------*/

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_pkl_only(bool json, const char *self, const char *why) {
    if (json) {
        fputs("[\n  {\"name\": \"pkl\", \"version\": ", stdout);
        json_string(PKL_VERSION_STRING);
        fputs(", \"implementation\": \"libpkl\", \"unpickler\": null, \"python\": null, "
              "\"servable\": true, \"argv\": [", stdout);
        json_string(self);
        fputs(", \"serve\"], \"env\": {}, \"note\": ", stdout);
        json_string(why);
        fputs(", \"alternatives\": []}\n]\n", stdout);
    } else {
        printf("pkl  %s  %s serve\n", PKL_VERSION_STRING, self);
        fprintf(stderr, "brine impls: %s\n", why);
    }
}

int cmd_impls(int argc, char **argv) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "brine impls: unknown argument %s\n", argv[i]);
            return IMPLS_EXIT_USAGE;
        }
    }
    char self[PATH_MAX], odir[PATH_MAX], python[PATH_MAX];
    if (!self_path(self, sizeof self))
        snprintf(self, sizeof self, "brine");
    const char *why = NULL;
    if (!newest_python(python, sizeof python))
        why = "no CPython 3.6+ found: only pkl is listed";
    else if (!oracle_dir(self, odir, sizeof odir))
        why = "oracle/brine_oracle not found (set BRINE_ORACLE_DIR): only pkl is listed";
    if (!why) {
        char *args[] = {python,   "-m",         "brine_oracle.impls", "--brine", self,
                        json ? "--json" : NULL, NULL};
        size_t len = 0;
        char *out = run_capture(args, odir, &len);
        if (out) {
            fwrite(out, 1, len, stdout);
            free(out);
            if (fflush(stdout) != 0 || ferror(stdout))
                return IMPLS_EXIT_USAGE;
            return 0;
        }
        why = "python -m brine_oracle.impls failed: only pkl is listed";
    }
    print_pkl_only(json, self, why);
    if (fflush(stdout) != 0 || ferror(stdout))
        return IMPLS_EXIT_USAGE;
    return 0;
}
