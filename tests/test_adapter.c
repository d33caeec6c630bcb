/* The adapter client (harness/adapter.h) against adapters that misbehave on
 * demand (tests/adapters/fake.py: hangs, exits, segfaults, huge frames,
 * garbage, bad hellos, batching), and against the real ones: `brine serve`
 * (compared with `brine load` and libpkl's in-process answer) and the oracle
 * worker (compared with `brine_oracle load`).
 *
 * The fake answers each request with a document naming the request's bytes,
 * so every expectation here is computed from the request, never typed in.
 */
#define _POSIX_C_SOURCE 200809L

#include "test_support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "pkl_answer.h"

#define PY BRINE_TEST_PYTHON
#define FAKE BRINE_TEST_ADAPTERS "/fake.py"
#define CLASSICS BRINE_TEST_CASES "/cpython-classics"
#define MiB ((size_t)1 << 20)

/*------------------------------------------------------------------------------
 * Recording responses
 *----------------------------------------------------------------------------*/

typedef struct rec_one {
    brine_status status;
    char *text;  /* copies; NULL when the response had none */
    char *trace;
    size_t text_len;
    char detail[200];
    double seconds;
} rec_one;

typedef struct rec {
    rec_one *r;
    size_t n, next;
    bool order_ok; /* every index came once, in order */
} rec;

static char *dup_bytes(const char *p, size_t n) {
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void on_done(void *ctx, size_t i, const brine_response *r) {
    rec *c = ctx;
    if (i != c->next || i >= c->n) {
        c->order_ok = false;
        return;
    }
    c->next++;
    rec_one *o = &c->r[i];
    o->status = r->status;
    o->seconds = r->seconds;
    memcpy(o->detail, r->detail, sizeof o->detail);
    if (r->text) {
        /* the buffers must be NUL-terminated where the lengths say */
        if (r->text[r->text_len] != '\0' || (r->trace && r->trace[r->trace_len] != '\0'))
            c->order_ok = false;
        o->text = dup_bytes(r->text, r->text_len);
        o->text_len = r->text_len;
    }
    if (r->trace)
        o->trace = dup_bytes(r->trace, r->trace_len);
}

static void rec_init(rec *c, size_t n) {
    c->r = calloc(n ? n : 1, sizeof *c->r);
    assert_non_null(c->r);
    c->n = n;
    c->next = 0;
    c->order_ok = true;
}

static void rec_free(rec *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->r[i].text);
        free(c->r[i].trace);
    }
    free(c->r);
}

/* Runs the cases and checks that each was answered exactly once, in order. */
static int run_all(brine_adapter *a, const brine_case *cases, size_t n, rec *c) {
    rec_init(c, n);
    int rc = brine_adapter_run(a, cases, n, on_done, c);
    assert_true(c->order_ok);
    assert_int_equal(c->next, n);
    return rc;
}

/*------------------------------------------------------------------------------
 * The fake adapter
 *----------------------------------------------------------------------------*/

static brine_adapter *start_fake(const char *const *extra, brine_adapter_opts *o) {
    const char *argv[16] = {PY, FAKE};
    size_t k = 2;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    o->argv = argv;
    char err[256] = "";
    brine_adapter *a = brine_adapter_start(o, err, sizeof err);
    if (!a)
        fail_msg("cannot start the fake adapter: %s", err);
    o->argv = NULL; /* argv was copied; do not keep a pointer to this frame */
    return a;
}

static char *hex_of(const unsigned char *p, size_t n) {
    char *h = malloc(2 * n + 1);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        snprintf(h + 2 * i, 3, "%02x", p[i]);
    h[2 * n] = '\0';
    return h;
}

/* What fake.py answers to a request it treats normally. */
static void assert_fake_answer(const rec_one *o, const void *data, size_t len, bool with_trace) {
    if (o->status != BRINE_OK)
        fail_msg("expected OK, got status %d: %s", (int)o->status, o->detail);
    char *hex = hex_of(data, len);
    size_t tl = strlen(hex) + 40;
    char *want = malloc(tl);
    assert_non_null(want);
    snprintf(want, tl, "brine-canonical 1 raw\nfake %s\n", hex);
    assert_non_null(o->text);
    assert_string_equal(o->text, want);
    if (with_trace) {
        assert_non_null(o->trace);
        assert_string_equal(o->trace, len % 2 ? "1 persid\n" : "");
    } else {
        assert_null(o->trace);
    }
    free(want);
    free(hex);
}

static void assert_fail(const rec_one *o, brine_status st, const char *needle) {
    if (o->status != st || !strstr(o->detail, needle))
        fail_msg("expected status %d with \"%s\", got %d: \"%s\"", (int)st, needle,
                 (int)o->status, o->detail);
    assert_null(o->text);
    assert_null(o->trace);
}

#define CASE_STR(s) ((brine_case){(const unsigned char *)(s), sizeof(s) - 1})

/*------------------------------------------------------------------------------
 * Hello
 *----------------------------------------------------------------------------*/

static void test_adapter_hello_fields(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    brine_adapter *a = start_fake(NULL, &o);
    assert_string_equal(brine_adapter_name(a), "fake");
    assert_string_equal(brine_adapter_version(a), "0");
    assert_string_equal(brine_adapter_level(a), "raw");
    assert_true(brine_adapter_has_feature(a, "trace"));
    assert_false(brine_adapter_has_feature(a, "trac"));
    assert_int_equal(brine_adapter_close(a), 0);

    const char *unknown[] = {"--hello", "unknownkeys", NULL};
    a = start_fake(unknown, &o);
    assert_string_equal(brine_adapter_name(a), "fake");
    assert_string_equal(brine_adapter_version(a), "1.2");
    assert_string_equal(brine_adapter_level(a), "value");
    assert_true(brine_adapter_has_feature(a, "fast"));
    assert_true(brine_adapter_has_feature(a, "trace"));
    assert_false(brine_adapter_has_feature(a, "blue"));
    brine_adapter_close(a);
}

static void expect_start_failure(const char *const *argv, double start_timeout,
                                 const char *needle) {
    brine_adapter_opts o = {0};
    o.argv = argv;
    o.start_timeout = start_timeout;
    o.quiet = true;
    char err[256] = "";
    brine_adapter *a = brine_adapter_start(&o, err, sizeof err);
    if (a) {
        brine_adapter_close(a);
        fail_msg("%s started, expected a failure with \"%s\"", argv[0], needle);
    }
    if (!strstr(err, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, err);
}

static void test_adapter_bad_hello_fails_start(void **state) {
    (void)state;
    const char *first[] = {PY, FAKE, "--hello", "badfirst", NULL};
    expect_start_failure(first, 0, "first line \"brine-adapter 2\"");
    const char *name[] = {PY, FAKE, "--hello", "badname", NULL};
    expect_start_failure(name, 0, "name \"Fake!\" is not [a-z0-9._-]+");
    const char *level[] = {PY, FAKE, "--hello", "nolevel", NULL};
    expect_start_failure(level, 0, "level (missing)");
    const char *huge[] = {PY, FAKE, "--hello", "huge", NULL};
    expect_start_failure(huge, 0, "above the bound of 65536");
    const char *ex[] = {PY, FAKE, "--hello", "exit", NULL};
    expect_start_failure(ex, 0, "no hello: adapter closed its stdout (exit status 1)");
    const char *hang[] = {PY, FAKE, "--hello", "hang", NULL};
    expect_start_failure(hang, 0.5, "no hello within 0.5 s");
    const char *missing[] = {"/nonexistent/brine-adapter", NULL};
    expect_start_failure(missing, 0, "cannot start /nonexistent/brine-adapter");
    /* a program that is not an adapter at all */
    const char *notone[] = {"/bin/echo", "hello", NULL};
    expect_start_failure(notone, 0, "bad hello");
}

/*------------------------------------------------------------------------------
 * Normal operation
 *----------------------------------------------------------------------------*/

/* n requests of varied sizes (0, 1, odd/even, one of 70,000 bytes). */
static brine_case *varied_cases(size_t n, unsigned char **store) {
    brine_case *c = calloc(n, sizeof *c);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += i == 7 ? 70000 : i % 13;
    *store = malloc(total + 1);
    assert_true(c && *store);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = i == 7 ? 70000 : i % 13;
        for (size_t j = 0; j < len; j++)
            (*store)[off + j] = (unsigned char)(i * 31 + j * 7);
        c[i].data = *store + off;
        c[i].len = len;
        off += len;
    }
    return c;
}

static void run_varied(const char *const *extra, size_t window, size_t n) {
    brine_adapter_opts o = {0};
    o.window = window;
    brine_adapter *a = start_fake(extra, &o);
    unsigned char *store;
    brine_case *cases = varied_cases(n, &store);
    rec c;
    assert_int_equal(run_all(a, cases, n, &c), 0);
    for (size_t i = 0; i < n; i++)
        assert_fake_answer(&c.r[i], cases[i].data, cases[i].len, true);
    brine_adapter_stats st;
    brine_adapter_get_stats(a, &st);
    assert_int_equal(st.starts, 1);
    assert_int_equal(st.restarts + st.crashes + st.timeouts + st.confirmations, 0);
    /* a second run on the same process goes on where the first left off */
    rec c2;
    assert_int_equal(run_all(a, cases + 1, 5, &c2), 0);
    for (size_t i = 0; i < 5; i++)
        assert_fake_answer(&c2.r[i], cases[i + 1].data, cases[i + 1].len, true);
    assert_int_equal(brine_adapter_close(a), 0);
    rec_free(&c);
    rec_free(&c2);
    free(cases);
    free(store);
}

static void test_adapter_answers_in_order_sync(void **state) {
    (void)state;
    run_varied(NULL, 1, 60);
}

static void test_adapter_answers_in_order_pipelined(void **state) {
    (void)state;
    run_varied(NULL, 32, 300);
}

static void test_adapter_batching_adapter(void **state) {
    (void)state;
    const char *batch[] = {"--batch", "16", "--delay", "0.0005", NULL};
    run_varied(batch, 32, 300);
}

/*------------------------------------------------------------------------------
 * Crashes, timeouts, bounds
 *----------------------------------------------------------------------------*/

/* Cases "c0".."cN" with `bad` at index k. */
static brine_case *named_cases(size_t n, size_t k, const char *bad, char (*names)[24]) {
    brine_case *c = calloc(n, sizeof *c);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "c%zu", i);
        c[i].data = (const unsigned char *)(i == k ? bad : names[i]);
        c[i].len = strlen((const char *)c[i].data);
    }
    return c;
}

/* Every case but k answers normally; k fails with st and `needle`. */
static brine_adapter_stats one_bad(const char *const *extra, size_t window, double timeout,
                                   const char *bad, brine_status st, const char *needle) {
    enum { N = 40, K = 17 };
    char names[N][24];
    brine_adapter_opts o = {0};
    o.window = window;
    o.timeout = timeout;
    brine_adapter *a = start_fake(extra, &o);
    brine_case *cases = named_cases(N, K, bad, names);
    rec c;
    assert_int_equal(run_all(a, cases, N, &c), 0);
    for (size_t i = 0; i < N; i++) {
        if (i == K)
            assert_fail(&c.r[i], st, needle);
        else
            assert_fake_answer(&c.r[i], cases[i].data, cases[i].len, true);
    }
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    assert_int_equal(s.crashes, st == BRINE_CRASH);
    assert_int_equal(s.timeouts, st == BRINE_TIMEOUT);
    assert_true(s.restarts >= 1);
    /* pipelined: the failure is confirmed alone first; an adapter that held
       answers back may take the cases before it down too, and those are
       confirmed (and pass) on their own */
    if (window > 1)
        assert_true(s.confirmations >= 1 && s.confirmations <= 2);
    else
        assert_int_equal(s.confirmations, 0);
    brine_adapter_close(a);
    rec_free(&c);
    free(cases);
    return s;
}

static void test_adapter_crash_exit_status(void **state) {
    (void)state;
    one_bad(NULL, 1, 0, "EXIT3", BRINE_CRASH, "adapter closed its stdout (exit status 3)");
    one_bad(NULL, 32, 0, "EXIT3", BRINE_CRASH, "(exit status 3)");
    /* answers held back in a batch die with the adapter: re-run, not lost */
    const char *batch[] = {"--batch", "8", NULL};
    one_bad(batch, 32, 0, "EXIT3", BRINE_CRASH, "(exit status 3)");
}

static void test_adapter_crash_signal(void **state) {
    (void)state;
    one_bad(NULL, 1, 0, "SEGV", BRINE_CRASH, "signal 11");
    one_bad(NULL, 32, 0, "SEGV", BRINE_CRASH, "signal 11");
}

static void test_adapter_timeout_restarts(void **state) {
    (void)state;
    brine_adapter_stats s = one_bad(NULL, 1, 0.5, "HANG", BRINE_TIMEOUT, "timed out after 0.5 s");
    assert_int_equal(s.restarts, 1);
    const char *batch[] = {"--batch", "8", NULL};
    one_bad(batch, 32, 0.5, "HANG", BRINE_TIMEOUT, "timed out after 0.5 s");
}

static void test_adapter_timeout_seconds(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    o.timeout = 0.4;
    brine_adapter *a = start_fake(NULL, &o);
    brine_case cases[] = {CASE_STR("x"), CASE_STR("HANG")};
    rec c;
    run_all(a, cases, 2, &c);
    assert_fail(&c.r[1], BRINE_TIMEOUT, "timed out");
    /* measured from when the adapter could start on it, bounded by the
       timeout (plus scheduling slack, generous for a loaded machine) */
    assert_true(c.r[1].seconds >= 0.39);
    assert_true(c.r[1].seconds < 5.0);
    brine_adapter_close(a);
    rec_free(&c);
}

static bool pid_alive(pid_t pid) {
    if (kill(pid, 0) != 0)
        return false;
    /* a zombie waiting for a non-reaping init counts as dead */
    char path[64], st[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[n] = '\0';
    const char *p = strrchr(st, ')');
    return !(p && p[1] == ' ' && p[2] == 'Z');
}

static void test_adapter_timeout_kills_process_group(void **state) {
    (void)state;
    char pidfile[] = "/tmp/brine-adapter-test-XXXXXX";
    int fd = mkstemp(pidfile);
    assert_true(fd >= 0);
    close(fd);
    char env_entry[128];
    snprintf(env_entry, sizeof env_entry, "FAKE_PIDFILE=%s", pidfile);
    const char *env[] = {env_entry, NULL};
    brine_adapter_opts o = {0};
    o.timeout = 1.0;
    o.env = env;
    brine_adapter *a = start_fake(NULL, &o);
    brine_case cases[] = {CASE_STR("HANGKIDS"), CASE_STR("after")};
    rec c;
    run_all(a, cases, 2, &c);
    assert_fail(&c.r[0], BRINE_TIMEOUT, "timed out");
    assert_fake_answer(&c.r[1], "after", 5, true);
    FILE *f = fopen(pidfile, "r");
    assert_non_null(f);
    long kid = 0;
    assert_int_equal(fscanf(f, "%ld", &kid), 1);
    fclose(f);
    unlink(pidfile);
    assert_true(kid > 1);
    bool alive = true;
    for (int i = 0; i < 200 && (alive = pid_alive((pid_t)kid)); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (alive)
        kill((pid_t)kid, SIGKILL);
    assert_false(alive);
    brine_adapter_close(a);
    rec_free(&c);
}

static void test_adapter_huge_frame_is_crash(void **state) {
    (void)state;
    one_bad(NULL, 1, 0, "HUGE", BRINE_CRASH,
            "frame of 2000000000 bytes above the bound of 1342177280");
    one_bad(NULL, 32, 0, "HUGE", BRINE_CRASH, "frame of 2000000000 bytes above the bound");
}

static void test_adapter_claimed_length_not_allocated(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    o.timeout = 0.5;
    brine_adapter *a = start_fake(NULL, &o);
    brine_case cases[] = {CASE_STR("CLAIM"), CASE_STR("y")};
    rec c;
    run_all(a, cases, 2, &c);
    assert_fail(&c.r[0], BRINE_TIMEOUT, "timed out");
    assert_fake_answer(&c.r[1], "y", 1, true);
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    /* 1.3 GB claimed (under the bound), 10 bytes sent: memory follows the bytes */
    assert_true(s.peak_buffer > 0);
    assert_true(s.peak_buffer < MiB);
    brine_adapter_close(a);
    rec_free(&c);
}

static void test_adapter_max_frame_option(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    o.max_frame = 1000;
    brine_adapter *a = start_fake(NULL, &o);
    brine_case cases[] = {CASE_STR("BIG:900"), CASE_STR("BIG:1000"), CASE_STR("z")};
    rec c;
    run_all(a, cases, 3, &c);
    assert_int_equal(c.r[0].status, BRINE_OK);
    assert_int_equal(c.r[0].text_len, strlen("brine-canonical 1 raw\nbig \n") + 900);
    assert_fail(&c.r[1], BRINE_CRASH, "bytes above the bound of 1000");
    assert_fake_answer(&c.r[2], "z", 1, true);
    brine_adapter_close(a);
    rec_free(&c);
}

static void test_adapter_short_frame_is_crash(void **state) {
    (void)state;
    one_bad(NULL, 1, 0, "SHORT", BRINE_CRASH,
            "inside a 100-byte frame (10 bytes read) (exit status 0)");
}

static void test_adapter_garbage_is_crash(void **state) {
    (void)state;
    one_bad(NULL, 1, 0, "GARBAGE", BRINE_CRASH,
            "malformed response (not a canonical document): \"hello world");
    one_bad(NULL, 32, 0, "GARBAGE", BRINE_CRASH, "malformed response");
    /* unframed text read as a frame header: "oops" = 0x73706f6f bytes */
    one_bad(NULL, 1, 0, "NOISE", BRINE_CRASH, "frame of 1936748399 bytes above the bound");
}

static void test_adapter_error_document_is_ok(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    brine_adapter *a = start_fake(NULL, &o);
    brine_case cases[] = {CASE_STR("ERROR")};
    rec c;
    run_all(a, cases, 1, &c);
    assert_int_equal(c.r[0].status, BRINE_OK);
    assert_string_equal(c.r[0].text, "brine-canonical 1 raw\nerror truncated\n");
    assert_string_equal(c.r[0].trace, "");
    brine_adapter_close(a);
    rec_free(&c);
}

static void test_adapter_restart_failures_give_up(void **state) {
    (void)state;
    char flag[] = "/tmp/brine-adapter-flag-XXXXXX";
    int fd = mkstemp(flag);
    assert_true(fd >= 0);
    close(fd);
    unlink(flag);
    const char *extra[] = {"--fail-start-if", flag, NULL};
    brine_adapter_opts o = {0};
    o.window = 1;
    o.max_start_failures = 2;
    o.quiet = true;
    brine_adapter *a = start_fake(extra, &o);
    /* from now on every restart fails */
    fd = open(flag, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    brine_case cases[] = {CASE_STR("a"), CASE_STR("EXIT3"), CASE_STR("b"), CASE_STR("c"),
                          CASE_STR("d"), CASE_STR("e")};
    rec c;
    assert_int_equal(run_all(a, cases, 6, &c), -1);
    unlink(flag);
    assert_fake_answer(&c.r[0], "a", 1, true);
    assert_fail(&c.r[1], BRINE_CRASH, "exit status 3");
    for (size_t i = 2; i < 6; i++)
        assert_fail(&c.r[i], BRINE_CRASH,
                    "adapter could not be (re)started: " PY ": no hello: adapter closed its "
                    "stdout (exit status 1)");
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    assert_int_equal(s.starts, 3); /* the first, then two failed restarts */
    brine_adapter_close(a);
    rec_free(&c);
}

static void test_adapter_oversized_request_not_sent(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    brine_adapter *a = start_fake(NULL, &o);
    static const unsigned char dummy[1];
    brine_case cases[] = {CASE_STR("a"), {dummy, (size_t)UINT32_MAX + 1}, CASE_STR("b")};
    rec c;
    run_all(a, cases, 3, &c);
    assert_fake_answer(&c.r[0], "a", 1, true);
    assert_fail(&c.r[1], BRINE_CRASH, "does not fit a frame");
    assert_fake_answer(&c.r[2], "b", 1, true);
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    assert_int_equal(s.starts, 1);
    brine_adapter_close(a);
    rec_free(&c);
}

/*------------------------------------------------------------------------------
 * I/O: no deadlock, no SIGPIPE
 *----------------------------------------------------------------------------*/

static void test_adapter_big_request_and_response_no_deadlock(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    o.window = 2;
    o.timeout = 60;
    brine_adapter *a = start_fake(NULL, &o);
    size_t big = 8 * MiB;
    unsigned char *req = malloc(big);
    assert_non_null(req);
    for (size_t i = 0; i < big; i++)
        req[i] = (unsigned char)(i * 2654435761u >> 24);
    /* the adapter writes 8 MB for case 0 while the runner writes 8 MB of
       case 1: blocking writes on both sides would wait for each other */
    brine_case cases[] = {CASE_STR("BIG:8388608"), {req, big}, CASE_STR("q")};
    rec c;
    run_all(a, cases, 3, &c);
    assert_int_equal(c.r[0].status, BRINE_OK);
    assert_int_equal(c.r[0].text_len, strlen("brine-canonical 1 raw\nbig \n") + 8388608);
    assert_fake_answer(&c.r[1], req, big, true);
    assert_fake_answer(&c.r[2], "q", 1, true);
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    assert_int_equal(s.starts, 1);
    brine_adapter_close(a);
    rec_free(&c);
    free(req);
}

static void test_adapter_closed_stdin_no_sigpipe(void **state) {
    (void)state;
    /* SIGPIPE at its default action: if the client let one through, this
       test process would die */
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, &old);
    brine_adapter_opts o = {0};
    o.window = 32;
    brine_adapter *a = start_fake(NULL, &o);
    size_t big = 2 * MiB;
    unsigned char *req = calloc(1, big);
    assert_non_null(req);
    brine_case cases[] = {CASE_STR("CLOSEIN"), {req, big}, CASE_STR("w")};
    rec c;
    run_all(a, cases, 3, &c);
    assert_fake_answer(&c.r[0], "CLOSEIN", 7, true);
    assert_fake_answer(&c.r[1], req, big, true);
    assert_fake_answer(&c.r[2], "w", 1, true);
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    assert_int_equal(s.restarts, 1);
    assert_int_equal(s.confirmations, 1);
    brine_adapter_close(a);
    sigaction(SIGPIPE, &old, NULL);
    rec_free(&c);
    free(req);
}

/*------------------------------------------------------------------------------
 * Environment, stderr, abandoned runs
 *----------------------------------------------------------------------------*/

static void test_adapter_env_entries(void **state) {
    (void)state;
    const char *env[] = {"BRINE_FAKE_X=first", "BRINE_FAKE_X=hello there", "PATH=/usr/bin:/bin",
                         NULL};
    brine_adapter_opts o = {0};
    o.env = env;
    brine_adapter *a = start_fake(NULL, &o);
    brine_case cases[] = {CASE_STR("ENV:BRINE_FAKE_X"), CASE_STR("ENV:PATH")};
    rec c;
    run_all(a, cases, 2, &c);
    assert_fake_answer(&c.r[0], "hello there", 11, true);
    assert_fake_answer(&c.r[1], "/usr/bin:/bin", 13, true);
    brine_adapter_close(a);
    rec_free(&c);
}

/* Runs STDERR with fd 2 sent to a file; true when the adapter's line got there. */
static bool stderr_line_seen(bool quiet) {
    char path[] = "/tmp/brine-adapter-err-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    dup2(fd, STDERR_FILENO);
    brine_adapter_opts o = {0};
    o.quiet = quiet;
    brine_adapter *a = start_fake(NULL, &o);
    brine_case cases[] = {CASE_STR("STDERR")};
    rec c;
    run_all(a, cases, 1, &c);
    brine_adapter_close(a);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_fake_answer(&c.r[0], "STDERR", 6, true);
    rec_free(&c);
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, "fake: a line on stderr") != NULL;
}

static void test_adapter_stderr_passthrough_and_quiet(void **state) {
    (void)state;
    assert_true(stderr_line_seen(false));
    assert_false(stderr_line_seen(true));
}

static void test_adapter_idle_death_blames_no_case(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    o.window = 1;
    brine_adapter *a = start_fake(NULL, &o);
    brine_case first[] = {CASE_STR("QUIT")};
    rec c;
    run_all(a, first, 1, &c);
    assert_fake_answer(&c.r[0], "QUIT", 4, true);
    rec_free(&c);
    struct timespec ts = {0, 300 * 1000 * 1000}; /* time to exit */
    nanosleep(&ts, NULL);
    brine_case second[] = {CASE_STR("next")};
    run_all(a, second, 1, &c);
    assert_fake_answer(&c.r[0], "next", 4, true);
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    assert_int_equal(s.crashes, 0);
    assert_int_equal(s.restarts, 1);
    brine_adapter_close(a);
    rec_free(&c);
}

static jmp_buf g_escape;

static void leave_after_first(void *ctx, size_t i, const brine_response *r) {
    (void)ctx;
    (void)r;
    if (i == 0)
        longjmp(g_escape, 1);
}

static void test_adapter_abandoned_run_not_reused(void **state) {
    (void)state;
    brine_adapter_opts o = {0};
    o.window = 32;
    const char *batch[] = {"--delay", "0.01", NULL};
    brine_adapter *a = start_fake(batch, &o);
    brine_case first[] = {CASE_STR("f0"), CASE_STR("f1"), CASE_STR("f2"), CASE_STR("f3")};
    if (setjmp(g_escape) == 0) {
        brine_adapter_run(a, first, 4, leave_after_first, NULL);
        fail_msg("the callback should have left the run");
    }
    /* f1..f3 were outstanding: their answers must not become these */
    brine_case second[] = {CASE_STR("s0"), CASE_STR("s1")};
    rec c;
    run_all(a, second, 2, &c);
    assert_fake_answer(&c.r[0], "s0", 2, true);
    assert_fake_answer(&c.r[1], "s1", 2, true);
    brine_adapter_close(a);
    rec_free(&c);
}

/*------------------------------------------------------------------------------
 * One-shot mode
 *----------------------------------------------------------------------------*/

static void test_adapter_one_shot_fake(void **state) {
    (void)state;
    const char *argv[] = {PY, FAKE, "--one-shot", NULL};
    brine_adapter_opts o = {0};
    o.argv = argv;
    o.one_shot = true;
    o.name = "fake-one-shot";
    o.timeout = 1.0;
    char err[256];
    brine_adapter *a = brine_adapter_start(&o, err, sizeof err);
    assert_non_null(a);
    assert_string_equal(brine_adapter_name(a), "fake-one-shot");
    assert_string_equal(brine_adapter_level(a), "raw");
    assert_false(brine_adapter_has_feature(a, "trace"));
    brine_case cases[] = {CASE_STR("abc"),  CASE_STR("ERROR"), CASE_STR("EXIT3"),
                          CASE_STR("SEGV"), CASE_STR("HANG"),  CASE_STR("LIE0"),
                          CASE_STR("LIE1"), CASE_STR("GARBAGE"), CASE_STR("")};
    rec c;
    assert_int_equal(run_all(a, cases, 9, &c), 0);
    assert_fake_answer(&c.r[0], "abc", 3, false);
    assert_int_equal(c.r[1].status, BRINE_OK);
    assert_string_equal(c.r[1].text, "brine-canonical 1 raw\nerror truncated\n");
    assert_fail(&c.r[2], BRINE_CRASH, "exit status 3");
    assert_fail(&c.r[3], BRINE_CRASH, "signal 11");
    assert_fail(&c.r[4], BRINE_TIMEOUT, "timed out after 1 s");
    assert_fail(&c.r[5], BRINE_CRASH, "exit status 0 but an error document");
    assert_fail(&c.r[6], BRINE_CRASH, "exit status 1 but a non-error document");
    assert_fail(&c.r[7], BRINE_CRASH, "not a canonical document: \"hello world");
    assert_fake_answer(&c.r[8], "", 0, false);
    brine_adapter_stats s;
    brine_adapter_get_stats(a, &s);
    assert_int_equal(s.starts, 9);
    assert_int_equal(s.crashes, 5);
    assert_int_equal(s.timeouts, 1);
    brine_adapter_close(a);
    rec_free(&c);
}

static void test_adapter_one_shot_needs_a_name(void **state) {
    (void)state;
    const char *argv[] = {PY, FAKE, "--one-shot", NULL};
    brine_adapter_opts o = {0};
    o.argv = argv;
    o.one_shot = true;
    char err[256] = "";
    assert_null(brine_adapter_start(&o, err, sizeof err));
    assert_non_null(strstr(err, "needs a name"));
    o.name = "Bad Name";
    assert_null(brine_adapter_start(&o, err, sizeof err));
    o.name = "ok";
    o.level = "cooked";
    assert_null(brine_adapter_start(&o, err, sizeof err));
    assert_non_null(strstr(err, "raw or value"));
}

static void test_adapter_one_shot_start_failures_give_up(void **state) {
    (void)state;
    const char *argv[] = {"/nonexistent/one-shot", NULL};
    brine_adapter_opts o = {0};
    o.argv = argv;
    o.one_shot = true;
    o.name = "nothing";
    o.max_start_failures = 2;
    char err[256];
    brine_adapter *a = brine_adapter_start(&o, err, sizeof err);
    assert_non_null(a);
    brine_case cases[] = {CASE_STR("a"), CASE_STR("b"), CASE_STR("c")};
    rec c;
    assert_int_equal(run_all(a, cases, 3, &c), -1);
    for (size_t i = 0; i < 3; i++)
        assert_fail(&c.r[i], BRINE_CRASH, "could not be started: cannot start /nonexistent");
    brine_adapter_close(a);
    rec_free(&c);
}

/*------------------------------------------------------------------------------
 * Real adapters: brine serve and the oracle worker
 *----------------------------------------------------------------------------*/

typedef struct corpus {
    char **names;
    unsigned char **data;
    brine_case *cases;
    size_t n;
} corpus;

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every *.pkl of dir but those whose name starts with `skip` (NULL: none). */
static void corpus_load(corpus *cp, const char *dir, const char *skip) {
    memset(cp, 0, sizeof *cp);
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s: %s", dir, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".pkl") != 0)
            continue;
        if (skip && strncmp(e->d_name, skip, strlen(skip)) == 0)
            continue;
        if (cp->n == cap) {
            cap = cap ? cap * 2 : 64;
            cp->names = realloc(cp->names, cap * sizeof *cp->names);
            assert_non_null(cp->names);
        }
        cp->names[cp->n++] = dup_bytes(e->d_name, l);
    }
    closedir(d);
    assert_true(cp->n >= 10);
    qsort(cp->names, cp->n, sizeof *cp->names, cmp_str);
    cp->data = calloc(cp->n, sizeof *cp->data);
    cp->cases = calloc(cp->n, sizeof *cp->cases);
    assert_true(cp->data && cp->cases);
    for (size_t i = 0; i < cp->n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, cp->names[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        unsigned char *buf = malloc(1 << 20);
        assert_non_null(buf);
        size_t len = fread(buf, 1, 1 << 20, f);
        assert_true(feof(f));
        fclose(f);
        cp->data[i] = buf;
        cp->cases[i].data = buf;
        cp->cases[i].len = len;
    }
}

static void corpus_free(corpus *cp) {
    for (size_t i = 0; i < cp->n; i++) {
        free(cp->names[i]);
        free(cp->data[i]);
    }
    free(cp->names);
    free(cp->data);
    free(cp->cases);
}

/* Runs `cmd` (a `load --batch` of some implementation) and returns, per name
   of cp, the text that follows its "== name" line (caller frees each). */
static char **batch_texts(const char *cmd, const corpus *cp) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t k;
    while ((k = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 4096) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
    }
    out[len] = '\0';
    int st = pclose(p);
    if (st != 0)
        fail_msg("%s: status %d", cmd, st);
    char **texts = calloc(cp->n, sizeof *texts);
    assert_non_null(texts);
    for (size_t i = 0; i < cp->n; i++) {
        char head[600];
        snprintf(head, sizeof head, "== %s\n", cp->names[i]);
        char *s = strstr(out, head);
        if (!s)
            fail_msg("%s: no \"== %s\"", cmd, cp->names[i]);
        s += strlen(head);
        char *e = strstr(s, "\n== ");
        e = e ? e + 1 : out + len;
        texts[i] = dup_bytes(s, (size_t)(e - s));
    }
    free(out);
    return texts;
}

static void free_texts(char **t, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(t[i]);
    free(t);
}

static void test_adapter_brine_serve_matches_brine_load(void **state) {
    (void)state;
    corpus cp;
    corpus_load(&cp, CLASSICS, NULL);
    char **want = batch_texts(BRINE_TEST_BRINE " load --batch " CLASSICS " 2>/dev/null", &cp);

    const char *argv[] = {BRINE_TEST_BRINE, "serve", NULL};
    brine_adapter_opts o = {0};
    o.argv = argv;
    char err[256];
    brine_adapter *a = brine_adapter_start(&o, err, sizeof err);
    if (!a)
        fail_msg("%s", err);
    assert_string_equal(brine_adapter_name(a), "pkl");
    assert_true(brine_adapter_has_feature(a, "trace"));
    rec c;
    assert_int_equal(run_all(a, cp.cases, cp.n, &c), 0);
    for (size_t i = 0; i < cp.n; i++) {
        assert_int_equal(c.r[i].status, BRINE_OK);
        assert_string_equal(c.r[i].text, want[i]);
        brine_pkl_answer ans;
        assert_int_equal(brine_pkl_answer_load(cp.cases[i].data, cp.cases[i].len, NULL, &ans), 0);
        assert_non_null(c.r[i].trace);
        assert_string_equal(c.r[i].trace, ans.trace);
        assert_string_equal(c.r[i].text, ans.text);
        brine_pkl_answer_free(&ans);
    }
    assert_int_equal(brine_adapter_close(a), 0);
    rec_free(&c);

    const char *one[] = {BRINE_TEST_BRINE, "serve", "--one-shot", NULL};
    memset(&o, 0, sizeof o);
    o.argv = one;
    o.one_shot = true;
    o.name = "pkl";
    o.quiet = true;
    a = brine_adapter_start(&o, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(run_all(a, cp.cases, cp.n, &c), 0);
    for (size_t i = 0; i < cp.n; i++) {
        assert_int_equal(c.r[i].status, BRINE_OK);
        assert_string_equal(c.r[i].text, want[i]);
    }
    brine_adapter_close(a);
    rec_free(&c);
    free_texts(want, cp.n);
    corpus_free(&cp);
}

static void test_adapter_oracle_worker_matches_oracle(void **state) {
    (void)state;
    corpus cp;
    /* memo-huge-*: CPython spends seconds allocating a 512 MB memo, which
       tests the oracle, not the client, on a machine others share */
    corpus_load(&cp, CLASSICS, "memo-huge");
    /* CPython allocates eagerly on some hostile inputs: always a memory limit */
    char **want = batch_texts("PYTHONPATH=" BRINE_TEST_ORACLE " " PY
                              " -m brine_oracle load --quiet --memory-limit 2048 --batch " CLASSICS,
                              &cp);
    const char *env[] = {"PYTHONPATH=" BRINE_TEST_ORACLE, "PYTHONDONTWRITEBYTECODE=1", NULL};
    const char *argv[] = {PY, "-m", "brine_oracle", "serve", "--memory-limit", "2048", NULL};
    brine_adapter_opts o = {0};
    o.argv = argv;
    o.env = env;
    char err[256];
    brine_adapter *a = brine_adapter_start(&o, err, sizeof err);
    if (!a)
        fail_msg("%s", err);
    assert_true(strncmp(brine_adapter_name(a), "cpython-", 8) == 0);
    assert_true(brine_adapter_has_feature(a, "trace"));
    for (size_t window = 1; window <= 32; window += 31) {
        rec c;
        brine_adapter_close(a);
        o.window = window;
        a = brine_adapter_start(&o, err, sizeof err);
        assert_non_null(a);
        assert_int_equal(run_all(a, cp.cases, cp.n, &c), 0);
        for (size_t i = 0; i < cp.n; i++) {
            assert_int_equal(c.r[i].status, BRINE_OK);
            assert_string_equal(c.r[i].text, want[i]);
            assert_non_null(c.r[i].trace);
        }
        rec_free(&c);
    }
    assert_int_equal(brine_adapter_close(a), 0);

    const char *one[] = {PY, "-m", "brine_oracle", "load", "--one-shot", "--quiet",
                         "--memory-limit", "2048", NULL};
    memset(&o, 0, sizeof o);
    o.argv = one;
    o.env = env;
    o.one_shot = true;
    o.name = "cpython-one-shot";
    a = brine_adapter_start(&o, err, sizeof err);
    assert_non_null(a);
    /* one process per case: a handful is enough */
    rec c;
    assert_int_equal(run_all(a, cp.cases, 8, &c), 0);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(c.r[i].status, BRINE_OK);
        assert_string_equal(c.r[i].text, want[i]);
    }
    brine_adapter_close(a);
    rec_free(&c);
    free_texts(want, cp.n);
    corpus_free(&cp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_hello_fields),
        cmocka_unit_test(test_adapter_bad_hello_fails_start),
        cmocka_unit_test(test_adapter_answers_in_order_sync),
        cmocka_unit_test(test_adapter_answers_in_order_pipelined),
        cmocka_unit_test(test_adapter_batching_adapter),
        cmocka_unit_test(test_adapter_crash_exit_status),
        cmocka_unit_test(test_adapter_crash_signal),
        cmocka_unit_test(test_adapter_timeout_restarts),
        cmocka_unit_test(test_adapter_timeout_seconds),
        cmocka_unit_test(test_adapter_timeout_kills_process_group),
        cmocka_unit_test(test_adapter_huge_frame_is_crash),
        cmocka_unit_test(test_adapter_claimed_length_not_allocated),
        cmocka_unit_test(test_adapter_max_frame_option),
        cmocka_unit_test(test_adapter_short_frame_is_crash),
        cmocka_unit_test(test_adapter_garbage_is_crash),
        cmocka_unit_test(test_adapter_error_document_is_ok),
        cmocka_unit_test(test_adapter_restart_failures_give_up),
        cmocka_unit_test(test_adapter_oversized_request_not_sent),
        cmocka_unit_test(test_adapter_big_request_and_response_no_deadlock),
        cmocka_unit_test(test_adapter_closed_stdin_no_sigpipe),
        cmocka_unit_test(test_adapter_env_entries),
        cmocka_unit_test(test_adapter_stderr_passthrough_and_quiet),
        cmocka_unit_test(test_adapter_abandoned_run_not_reused),
        cmocka_unit_test(test_adapter_idle_death_blames_no_case),
        cmocka_unit_test(test_adapter_one_shot_fake),
        cmocka_unit_test(test_adapter_one_shot_needs_a_name),
        cmocka_unit_test(test_adapter_one_shot_start_failures_give_up),
        cmocka_unit_test(test_adapter_brine_serve_matches_brine_load),
        cmocka_unit_test(test_adapter_oracle_worker_matches_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
