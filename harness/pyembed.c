/* CPython embedded as brine's oracle (pyembed.h). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyembed.h"
#include "pymem_cap.h"

#ifndef BRINE_ORACLE_DIR
#define BRINE_ORACLE_DIR "oracle"
#endif
#ifndef BRINE_PYEMBED_PROGRAM
#define BRINE_PYEMBED_PROGRAM "python3"
#endif

#if PY_VERSION_HEX < 0x03080000
#error "the embedded oracle needs CPython 3.8+ (PyConfig, audit hooks)"
#endif

static const char TRACE_MARKER[] = "--- trace\n";

/*------------------------------------------------------------------------------
 * State
 *----------------------------------------------------------------------------*/

typedef enum { ST_DOWN, ST_UP, ST_FINISHED } state;

static struct {
    state st;
    PyObject *respond;    /* brine_oracle.worker.respond */
    PyObject *unpickler;  /* "c" | "py" */
    PyObject *max_output; /* int */
    PyObject *timer;      /* brine_oracle.limits.CaseTimer, or None */
    PyObject *timer_cls;  /* CaseTimer */
    PyObject *forbidden;  /* exception type the audit hook raises */
    size_t mem_cap;
    char version[32];
    char name[64];
    char error[1024];
    char *text, *trace;   /* the last answer, split */
    size_t text_cap, trace_cap;
    brine_py_info info;
} g;

static void set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g.error, sizeof g.error, fmt, ap);
    va_end(ap);
}

/* brine_py_opts.mem_cap as pymem_cap takes it (0: no cap). */
static size_t cap_of(size_t mem_cap) {
    return mem_cap == 0 ? BRINE_PY_DEFAULT_MEM_CAP : mem_cap == SIZE_MAX ? 0 : mem_cap;
}

/* Appends the pending Python exception (cleared) to g.error. */
static void append_exception(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    const char *tname = type ? ((PyTypeObject *)type)->tp_name : "?";
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    if (!msg)
        PyErr_Clear();
    size_t n = strlen(g.error);
    snprintf(g.error + n, sizeof g.error - n, ": %s: %s", tname, msg ? msg : "?");
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/*------------------------------------------------------------------------------
 * The guard: a C audit hook, armed only while a case loads
 *
 * C rather than brine_oracle.adapt's Python hook: with a hook present every
 * audited operation calls it (id() is audited and the canonical emitter
 * calls it per node), and a C hook costs a string lookup, not a Python
 * call. The deny lists are adapt's (DENY, DENY_PREFIXES), read at start-up,
 * so both guards refuse the same events.
 *----------------------------------------------------------------------------*/

#define DENY_SLOTS 256 /* power of two, well above len(adapt.DENY) */

static struct {
    bool armed;
    char *names[DENY_SLOTS]; /* open addressing on an FNV-1a hash */
    char **prefixes;
    size_t nprefixes;
    char refused[1024];      /* the first refusal of the current load, with its stack */
} guard;

static size_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return (size_t)h;
}

static bool deny_add(const char *name) {
    size_t i = fnv1a(name) & (DENY_SLOTS - 1);
    for (size_t n = 0; n < DENY_SLOTS; n++, i = (i + 1) & (DENY_SLOTS - 1)) {
        if (!guard.names[i]) {
            guard.names[i] = strdup(name);
            return guard.names[i] != NULL;
        }
        if (!strcmp(guard.names[i], name))
            return true;
    }
    return false;
}

static bool deny_has(const char *name) {
    size_t i = fnv1a(name) & (DENY_SLOTS - 1);
    for (size_t n = 0; n < DENY_SLOTS && guard.names[i]; n++, i = (i + 1) & (DENY_SLOTS - 1))
        if (!strcmp(guard.names[i], name))
            return true;
    return false;
}

/* adapt's rule for "open": reading Python source is allowed (tracebacks),
   anything else refused. */
static const char *open_refusal(PyObject *args) {
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1)
        return "open";
    PyObject *path = PyTuple_GET_ITEM(args, 0);
    PyObject *mode = PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1) : Py_None;
    PyObject *flags = PyTuple_GET_SIZE(args) > 2 ? PyTuple_GET_ITEM(args, 2) : Py_None;
    if (PyUnicode_Check(mode)) {
        const char *m = PyUnicode_AsUTF8(mode);
        if (!m || strpbrk(m, "wax+"))
            return "open for writing";
    }
    if (PyLong_Check(flags)) {
        long f = PyLong_AsLong(flags);
        if (f == -1 && PyErr_Occurred())
            return "open with odd flags";
        if (f & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND))
            return "open for writing";
    }
    const char *p = NULL;
    Py_ssize_t n = 0;
    if (PyUnicode_Check(path))
        p = PyUnicode_AsUTF8AndSize(path, &n);
    else if (PyBytes_Check(path)) {
        p = PyBytes_AS_STRING(path);
        n = PyBytes_GET_SIZE(path);
    }
    if (!p) {
        PyErr_Clear();
        return "open of something that is not a path";
    }
    if (n >= 3 && !memcmp(p + n - 3, ".py", 3))
        return NULL;
    return "open of a file that is not Python source";
}

/* "<event> (<why>) in f (file:line) < g (file:line) ...": where in Python
   the refused event came from, innermost first. */
static void describe_refusal(const char *event, const char *why) {
    size_t n = (size_t)snprintf(guard.refused, sizeof guard.refused, "%s (%s)", event, why);
#if PY_VERSION_HEX >= 0x03090000
    PyFrameObject *f = PyEval_GetFrame(); /* borrowed */
    Py_XINCREF(f);
    for (int depth = 0; f && depth < 8 && n < sizeof guard.refused; depth++) {
        PyCodeObject *code = PyFrame_GetCode(f);
        const char *fn = code ? PyUnicode_AsUTF8(code->co_name) : NULL;
        const char *file = code ? PyUnicode_AsUTF8(code->co_filename) : NULL;
        const char *base = file ? strrchr(file, '/') : NULL;
        n += (size_t)snprintf(guard.refused + n, sizeof guard.refused - n, " %s %s (%s:%d)",
                              depth ? "<" : "in", fn ? fn : "?",
                              base ? base + 1 : file ? file : "?", PyFrame_GetLineNumber(f));
        Py_XDECREF(code);
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
#else
    (void)n; /* 3.8 has no public frame accessors: the event and reason only */
#endif
}

static int audit_hook(const char *event, PyObject *args, void *ud) {
    (void)ud;
    if (!guard.armed)
        return 0;
    const char *why = NULL;
    if (deny_has(event))
        why = "denied event";
    else if (!strcmp(event, "open"))
        why = open_refusal(args);
    else {
        for (size_t i = 0; i < guard.nprefixes && !why; i++)
            if (event[0] == guard.prefixes[i][0] &&
                !strncmp(event, guard.prefixes[i], strlen(guard.prefixes[i])))
                why = "denied event";
    }
    if (!why)
        return 0;
    if (!guard.refused[0])
        describe_refusal(event, why);
    g.info.guard_refused = true;
    PyErr_Format(g.forbidden ? g.forbidden : PyExc_SystemError,
                 "%s refused while a case loads: %s", event, why);
    return -1;
}

/* Reads adapt.DENY and adapt.DENY_PREFIXES into the hook's tables. */
static int guard_load_lists(PyObject *adapt) {
    PyObject *deny = PyObject_GetAttrString(adapt, "DENY");
    PyObject *pre = PyObject_GetAttrString(adapt, "DENY_PREFIXES");
    PyObject *seq = pre ? PySequence_Fast(pre, "DENY_PREFIXES") : NULL;
    PyObject *it = deny ? PyObject_GetIter(deny) : NULL;
    int rc = -1;
    if (!it || !seq)
        goto out;
    for (PyObject *item; (item = PyIter_Next(it));) {
        const char *s = PyUnicode_AsUTF8(item);
        bool ok = s && deny_add(s);
        Py_DECREF(item);
        if (!ok)
            goto out;
    }
    if (PyErr_Occurred())
        goto out;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    guard.prefixes = calloc((size_t)n + 1, sizeof *guard.prefixes);
    if (!guard.prefixes)
        goto out;
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        if (!s || !*s || !(guard.prefixes[guard.nprefixes] = strdup(s)))
            goto out;
        guard.nprefixes++;
    }
    rc = deny_has("import") && deny_has("pickle.find_class") ? 0 : -1;
    if (rc)
        set_error("brine_oracle.adapt.DENY lacks import or pickle.find_class");
out:
    Py_XDECREF(it);
    Py_XDECREF(seq);
    Py_XDECREF(pre);
    Py_XDECREF(deny);
    return rc;
}

static void guard_free(void) {
    for (size_t i = 0; i < DENY_SLOTS; i++) {
        free(guard.names[i]);
        guard.names[i] = NULL;
    }
    for (size_t i = 0; i < guard.nprefixes; i++)
        free(guard.prefixes[i]);
    free(guard.prefixes);
    guard.prefixes = NULL;
    guard.nprefixes = 0;
}

/*------------------------------------------------------------------------------
 * Start-up
 *----------------------------------------------------------------------------*/

/* Runs, unguarded, before the first case. CPython reports some errors it
   cannot raise (3.11's "deallocated bytearray object has exported buffers"
   after a failed BYTEARRAY8 read goes through PyErr_Print, others through
   sys.unraisablehook), and the default hooks print a traceback, which
   compiles source lines for its carets: under the guard, a refused compile.
   The hooks here only count them; they do not change the answer (the
   embedding runs no code of its own that would need sys.excepthook). Then
   the modules the oracle imports
   lazily (pickletools, for the classifier's overrun check) and the codecs
   the unpicklers look up get imported now; then every protocol's benign
   pickles and a few faults go through respond() with both unpicklers. */
static const char WARM_UP[] =
    "import codecs, gc, pickle, pickletools, sys\n"
    "unraisable = [0]\n"
    "def quiet_unraisable(*args):\n"
    "    unraisable[0] += 1\n"
    "sys.unraisablehook = quiet_unraisable\n"
    "sys.excepthook = quiet_unraisable\n"
    "def warm(respond):\n"
    "    for enc in ('ascii', 'latin-1', 'utf-8', 'raw-unicode-escape',\n"
    "                'unicode-escape', 'utf-16', 'utf-32'):\n"
    "        codecs.lookup(enc)\n"
    "    base = [None, True, False, 0, 1, -1, 255, 65536, 2 ** 31, 2 ** 70,\n"
    "            -2 ** 70, 1.5, '', '\\xe9\\u20ac\\U0001f600', (), (1,), (1, 2),\n"
    "            (1, 2, 3), [], {}, {1: 2}]\n"
    "    base.append([base[-1], base[-2]])\n"
    "    cases = []\n"
    "    for proto in range(pickle.HIGHEST_PROTOCOL + 1):\n"
    "        value = list(base)\n"
    "        if proto >= 3:\n"
    "            value += [b'', b'x' * 300]\n"
    "        if proto >= 4:\n"
    "            value += [set([3]), frozenset([4])]\n"
    "        if proto >= 5:\n"
    "            value.append(bytearray(b'ab'))\n"
    "        cases.append(pickle.dumps(value, proto))\n"
    "    cases += [b'', b'K', b'\\xff', b'I\\n.', b\"S'a'\\n.\", b'Va\\n.', b'(t.',\n"
    "              b'Fx\\n.', b'\\x80\\x05N.', b\"cos\\nsystem\\n(S'x'\\ntR.\",\n"
    "              b'\\x8c\\x01m\\x8c\\x01n\\x93)\\x81}b.', b'P1\\n.', b'N\\x93.',\n"
    "              b'\\x82\\x01.', b'\\x80\\x02c__builtin__\\nset\\n]\\x85R.',\n"
    "              b'I99999999999999999999999\\n.', b'\\x8e\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x7f']\n"
    "    for u in ('c', 'py'):\n"
    "        for data in cases:\n"
    "            respond(data, u, True)\n";

/* A CaseTimer for `timeout` seconds (0: the default), or None (< 0). */
static PyObject *make_timer(double timeout) {
    if (timeout < 0) {
        Py_INCREF(Py_None);
        return Py_None;
    }
    return PyObject_CallFunction(g.timer_cls, "d", timeout > 0 ? timeout : BRINE_PY_DEFAULT_TIMEOUT);
}

static PyObject *import_attr(const char *module, const char *attr) {
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return NULL;
    PyObject *a = PyObject_GetAttrString(m, attr);
    Py_DECREF(m);
    return a;
}

static int start_python(const char *program) {
    PyStatus st;
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st)) {
        set_error("Py_PreInitialize: %s", st.err_msg ? st.err_msg : "failed");
        return -1;
    }
    /* CPython's window for custom allocators: after pre-initialisation,
       before the first object. The audit hook goes in before any code
       runs, so nothing can be imported around it. */
    brine_pymem_cap_install();
    if (PySys_AddAuditHook(audit_hook, NULL) < 0) {
        set_error("PySys_AddAuditHook failed");
        return -1;
    }
    PyConfig cfg;
    PyConfig_InitIsolatedConfig(&cfg);
    cfg.install_signal_handlers = 0; /* SIGINT & co. stay the host's (libFuzzer's) */
    cfg.site_import = 0;
    cfg.user_site_directory = 0;
    cfg.write_bytecode = 0;          /* no __pycache__ in the source tree */
    cfg.parse_argv = 0;
    cfg.use_hash_seed = 1;           /* reproducible runs */
    cfg.hash_seed = 0;
    st = PyConfig_SetBytesString(&cfg, &cfg.program_name, program);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&cfg);
    PyConfig_Clear(&cfg);
    if (PyStatus_Exception(st)) {
        set_error("starting CPython (program %s): %s", program,
                  st.err_msg ? st.err_msg : "failed");
        return -1;
    }
    return 0;
}

static int load_oracle(const char *oracle_dir, const brine_py_opts *o) {
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    PyObject *dir = PyUnicode_DecodeFSDefault(oracle_dir);
    if (!path || !dir || PyList_Insert(path, 0, dir) < 0) {
        Py_XDECREF(dir);
        set_error("cannot put %s on sys.path", oracle_dir);
        return -1;
    }
    Py_DECREF(dir);

    PyObject *adapt = PyImport_ImportModule("brine_oracle.adapt");
    if (!adapt) {
        set_error("import brine_oracle.adapt from %s", oracle_dir);
        return -1;
    }
    int rc = guard_load_lists(adapt);
    Py_DECREF(adapt);
    if (rc < 0) {
        if (PyErr_Occurred())
            set_error("reading brine_oracle.adapt's deny lists");
        return -1;
    }
    g.forbidden = PyErr_NewException("brine_embed.Forbidden", PyExc_BaseException, NULL);
    g.respond = import_attr("brine_oracle.worker", "respond");
    PyObject *name_fn = import_attr("brine_oracle.worker", "implementation_name");
    PyObject *timer_cls = import_attr("brine_oracle.limits", "CaseTimer");
    PyObject *default_out = import_attr("brine_oracle.canon", "DEFAULT_MAX_OUTPUT");
    rc = -1;
    if (!g.forbidden || !g.respond || !name_fn || !timer_cls || !default_out) {
        set_error("importing the oracle from %s", oracle_dir);
        goto out;
    }
    g.unpickler = PyUnicode_FromString(o->unpickler);
    g.max_output = o->max_output ? PyLong_FromSize_t(o->max_output) : (Py_INCREF(default_out),
                                                                      default_out);
    g.timer_cls = timer_cls;
    Py_INCREF(timer_cls);
    g.timer = make_timer(o->timeout);
    PyObject *name = g.unpickler ? PyObject_CallFunctionObjArgs(name_fn, g.unpickler, NULL) : NULL;
    const char *cname = name ? PyUnicode_AsUTF8(name) : NULL;
    if (!g.unpickler || !g.max_output || !g.timer || !cname) {
        Py_XDECREF(name);
        set_error("setting up the oracle");
        goto out;
    }
    snprintf(g.name, sizeof g.name, "%s", cname);
    Py_DECREF(name);

    PyObject *ns = PyDict_New();
    PyObject *res = NULL, *warm = NULL, *done = NULL;
    if (ns && PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) == 0)
        res = PyRun_String(WARM_UP, Py_file_input, ns, ns);
    if (res)
        warm = PyDict_GetItemString(ns, "warm"); /* borrowed */
    if (warm)
        done = PyObject_CallFunctionObjArgs(warm, g.respond, NULL);
    if (!done)
        set_error("warming up the oracle");
    else
        rc = 0;
    Py_XDECREF(done);
    Py_XDECREF(res);
    Py_XDECREF(ns);
out:
    Py_XDECREF(name_fn);
    Py_XDECREF(timer_cls);
    Py_XDECREF(default_out);
    return rc;
}

int brine_py_init(const char *oracle_dir, const brine_py_opts *opts, char *err, size_t errlen) {
    if (g.st == ST_UP)
        return 0;
    g.error[0] = 0;
    int rc = -1;
    brine_py_opts o = {0};
    if (opts)
        o = *opts;
    if (!o.unpickler)
        o.unpickler = "c";
    if (!o.program)
        o.program = BRINE_PYEMBED_PROGRAM;
    if (!oracle_dir)
        oracle_dir = BRINE_ORACLE_DIR;
    g.mem_cap = cap_of(o.mem_cap);
    if (g.st == ST_FINISHED)
        set_error("the embedded CPython was finalized; it cannot start again in this process");
    else if (strcmp(o.unpickler, "c") && strcmp(o.unpickler, "py"))
        set_error("unpickler must be \"c\" or \"py\", not \"%s\"", o.unpickler);
    else if (!Py_IsInitialized() && start_python(o.program) < 0)
        ;
    else if (load_oracle(oracle_dir, &o) < 0) {
        if (PyErr_Occurred())
            append_exception();
    } else {
        const char *v = Py_GetVersion();
        size_t n = strcspn(v, " ");
        snprintf(g.version, sizeof g.version, "%.*s", (int)(n < 31 ? n : 31), v);
        g.st = ST_UP;
        rc = 0;
    }
    if (rc < 0 && err && errlen)
        snprintf(err, errlen, "%s", g.error);
    return rc;
}

/*------------------------------------------------------------------------------
 * One case
 *----------------------------------------------------------------------------*/

static int keep(char **buf, size_t *cap, const char *s, size_t n) {
    if (n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < n + 1)
            ncap *= 2;
        char *p = realloc(*buf, ncap);
        if (!p)
            return -1;
        *buf = p;
        *cap = ncap;
    }
    memcpy(*buf, s, n);
    (*buf)[n] = 0;
    return 0;
}

/* Splits the worker's response (document, marker line, trace lines) into
   the two buffers. The marker is the first line "--- trace": no canonical
   line can read so. */
static int split_response(const char *r, size_t n) {
    const size_t mlen = sizeof TRACE_MARKER - 1;
    const char *m = NULL;
    for (const char *p = r; p + mlen <= r + n; p++) {
        if (!memcmp(p, TRACE_MARKER, mlen)) {
            m = p;
            break;
        }
        p = memchr(p, '\n', (size_t)(r + n - p));
        if (!p)
            break;
    }
    if (!m || m == r || m[-1] != '\n') {
        set_error("the oracle's response has no document before a trace marker");
        return -1;
    }
    const char *t = m + mlen;
    if (keep(&g.text, &g.text_cap, r, (size_t)(m - r)) < 0 ||
        keep(&g.trace, &g.trace_cap, t, (size_t)(r + n - t)) < 0) {
        set_error("out of memory keeping the answer");
        return -1;
    }
    return 0;
}

int brine_py_load(const uint8_t *data, size_t len, const char **text, size_t *text_len,
                  const char **trace, size_t *trace_len) {
    memset(&g.info, 0, sizeof g.info);
    g.error[0] = 0;
    if (g.st != ST_UP) {
        set_error("the embedded CPython is not running (brine_py_init)");
        return -1;
    }
    if (len > (size_t)PY_SSIZE_T_MAX) {
        set_error("input too large");
        return -1;
    }
    guard.refused[0] = 0;
    /* The input's own copy counts against the cap, like the worker's
       request frame counts against its address space. */
    brine_pymem_cap_begin(g.mem_cap);
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)len);
    PyObject *r = NULL;
    if (bytes) {
        guard.armed = true;
        r = PyObject_CallFunctionObjArgs(g.respond, bytes, g.unpickler, Py_True, g.max_output,
                                         g.timer, NULL);
        guard.armed = false;
    }
    brine_pymem_cap_end();
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    PyErr_Fetch(&et, &ev, &etb); /* kept aside while the timer is asked */
    brine_pymem_stats ms = brine_pymem_cap_stats();
    g.info.mem_refused = ms.refused;
    g.info.mem_peak = ms.peak;
    if (g.timer != Py_None) {
        PyObject *fired = PyObject_GetAttrString(g.timer, "fired");
        g.info.timed_out = fired && PyObject_IsTrue(fired) == 1;
        Py_XDECREF(fired);
        if (!fired)
            PyErr_Clear();
    }
    bool input_refused = !bytes;
    Py_XDECREF(bytes);
    PyErr_Restore(et, ev, etb);
    int rc = -1;
    if (input_refused && PyErr_ExceptionMatches(PyExc_MemoryError)) {
        /* the input alone is over the cap: the worker answers a request
           frame it cannot hold the same way */
        PyErr_Clear();
        static const char LIMIT[] = "brine-canonical 1 raw\nerror resource-limit\n--- trace\n";
        rc = split_response(LIMIT, sizeof LIMIT - 1);
    } else if (!r) {
        set_error("the oracle raised instead of answering");
        append_exception();
    } else if (!PyUnicode_Check(r) || !PyUnicode_IS_ASCII(r)) {
        set_error("the oracle's response is not ASCII text");
    } else {
        rc = split_response((const char *)PyUnicode_DATA(r), (size_t)PyUnicode_GET_LENGTH(r));
    }
    Py_XDECREF(r);
    if (g.info.guard_refused) {
        /* Whatever the oracle answered after a refusal is not an answer. */
        set_error("the guard refused %s", guard.refused);
        rc = -1;
    }
    if (rc < 0)
        return -1;
    *text = g.text;
    *text_len = strlen(g.text);
    *trace = g.trace;
    *trace_len = strlen(g.trace);
    return 0;
}

int brine_py_set_limits(size_t mem_cap, double timeout) {
    g.error[0] = 0;
    if (g.st != ST_UP) {
        set_error("the embedded CPython is not running (brine_py_init)");
        return -1;
    }
    PyObject *t = make_timer(timeout);
    if (!t) {
        set_error("making the case timer");
        append_exception();
        return -1;
    }
    if (g.timer != Py_None) {
        PyObject *r = PyObject_CallMethod(g.timer, "disarm", NULL);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    Py_SETREF(g.timer, t);
    g.mem_cap = cap_of(mem_cap);
    return 0;
}

int brine_py_run_guarded(const char *src, char *why, size_t whylen) {
    g.error[0] = 0;
    if (why && whylen)
        why[0] = 0;
    if (g.st != ST_UP) {
        set_error("the embedded CPython is not running (brine_py_init)");
        return -1;
    }
    PyObject *code = Py_CompileString(src, "<brine_py_run_guarded>", Py_file_input);
    PyObject *ns = PyDict_New();
    if (!code || !ns || PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0) {
        set_error("compiling the probe");
        append_exception();
        Py_XDECREF(code);
        Py_XDECREF(ns);
        return -1;
    }
    guard.refused[0] = 0;
    g.info.guard_refused = false;
    guard.armed = true;
    PyObject *r = PyEval_EvalCode(code, ns, ns);
    guard.armed = false;
    int rc = 0;
    if (g.info.guard_refused) {
        rc = 1;
        if (why && whylen)
            snprintf(why, whylen, "%s", guard.refused);
        PyErr_Clear();
    } else if (!r) {
        set_error("the probe raised");
        append_exception();
        rc = -1;
    }
    Py_XDECREF(r);
    Py_DECREF(ns);
    Py_DECREF(code);
    return rc;
}

brine_py_info brine_py_last_info(void) { return g.info; }

const char *brine_py_error(void) { return g.error; }

const char *brine_py_version(void) { return g.st == ST_UP ? g.version : NULL; }

const char *brine_py_name(void) { return g.st == ST_UP ? g.name : NULL; }

int64_t brine_py_held_bytes(void) { return brine_pymem_cap_stats().held; }

void brine_py_finish(void) {
    if (g.st != ST_UP) {
        if (g.st == ST_DOWN && Py_IsInitialized())
            g.st = ST_FINISHED; /* a failed init left it running: stop it */
        else
            return;
    }
    Py_CLEAR(g.respond);
    Py_CLEAR(g.unpickler);
    Py_CLEAR(g.max_output);
    if (g.timer && g.timer != Py_None) {
        PyObject *r = PyObject_CallMethod(g.timer, "disarm", NULL);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    Py_CLEAR(g.timer);
    Py_CLEAR(g.timer_cls);
    Py_CLEAR(g.forbidden);
    if (Py_IsInitialized())
        Py_FinalizeEx();
    guard_free();
    free(g.text);
    free(g.trace);
    g.text = g.trace = NULL;
    g.text_cap = g.trace_cap = 0;
    g.st = ST_FINISHED;
}
