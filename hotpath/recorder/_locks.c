/*
 * hotpath's compiled thread locks: threading.Lock and RLock objects the program creates,
 * timed. The contract (what they record, how they behave) is written once, in
 * hotpath/recorder/locks.py, whose classes are their pure-Python twin; the same test suite
 * runs on both.
 *
 * Data layout
 * -----------
 * LockAccount (one per creation site; a Python object, subclassed by hotpath's
 * CompiledAccount for read())
 *   counts        acquisitions, contended, failed (non-blocking tries), timeouts, wait_ns.
 *   hold, wait    Tally: count, total, max and a Histogram (_shared.h) of hold times and of
 *                 contended waits.
 *   log           a ring of the last log_limit holds (Logged: acquired at, hold, wait, the
 *                 holder and the taker's code object, both strong, the code may be NULL);
 *                 log_next is where the next goes, log_count how many are filled.
 *   buckets       the module state's BucketTable (the account's type keeps the module, and
 *                 so its state, alive).
 * Tracked (TrackedLock and TrackedRLock share it)
 *   inner         the real lock (_thread.lock or _thread.RLock), strong.
 *   account       its site's LockAccount, strong.
 *   since_ns, wait_ns, who, code
 *                 the hold now: when it began, how long it waited for it, the holder (strong;
 *                 NULL: free), the code object of the function that took it (strong).
 *                 The holder is the thread's threading.Thread, or its ident for a thread
 *                 threading does not know; found by configure()'s find_thread at the thread's
 *                 first acquisition and kept in its thread state's dict, so that a name is
 *                 had even after the thread ends and its ident is reused.
 *   depth         RLock: acquisitions by the holder not released yet (the real lock's
 *                 count); a hold is an outermost acquisition.
 *   waiting       threads in a blocking acquire of it now.
 *   state         the module state (the type keeps the module alive).
 * ModuleState     the BucketTable, the three types, interned names, and what configure()
 *                 gave: Condition._is_owned's code, the codes of the frames that pass a lock
 *                 on for another function (Condition.__enter__, Condition.wait, ...: the
 *                 taker is the first frame above them), threading.TIMEOUT_MAX, find_thread.
 *
 * Invariants
 * ----------
 * - Every function runs with the GIL held; free-threaded builds use the Python twin.
 * - The hold fields of a Tracked are written only by the thread that holds the real lock,
 *   right after it got it or right after it released it, with no call into Python (and so
 *   no other thread running) between the real lock changing hands and the writes: the
 *   holder and the taker are found before the real lock is asked for. The real
 *   lock's non-blocking acquire and its release never let the GIL go; a blocking acquire
 *   does, while it waits, and the fields are written after it returns.
 * - An RLock's depth mirrors the real lock's count: every acquire and release goes through
 *   the Tracked (the real lock is never handed out).
 * - An account's counts and tallies change with no Python object made in between (a
 *   Logged's code reference is set after them), so a reading never sees half an update.
 * - Nothing here prints. Errors are the real lock's, raised as it raises them. hotpath's own
 *   failures are given up where they happen: finding the thread falls back to its ident, a
 *   histogram page not allocated loses a bucket, not a count; out of memory for a log ring
 *   fails the account's creation (a new site), never a lock operation. A BaseException
 *   that is not an Exception (KeyboardInterrupt from a signal handler that ran while hotpath
 *   called into Python) reaches the program, as it would have without hotpath.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_shared.h"

#define MAX_PASSING 8

typedef struct {
    int64_t since_ns, hold_ns, wait_ns;
    PyObject *who, *code;
} Logged;

typedef struct {
    uint64_t count;
    int64_t total, max;
    Histogram histogram;
} Tally;

typedef struct {
    BucketTable buckets;
    PyTypeObject *account_type, *lock_type, *rlock_type;
    PyObject *is_owned, *find_thread;
    PyObject *passing[MAX_PASSING];
    int npassing;
    double timeout_max;
    PyObject *s_acquire, *s_release, *s_is_owned, *s_release_save, *s_acquire_restore;
    PyObject *s_at_fork_reinit, *s_at, *s_thread_key;
} ModuleState;

typedef struct {
    PyObject_HEAD
    const BucketTable *buckets;
    uint64_t acquisitions, contended, failed, timeouts;
    int64_t wait_ns;
    Tally hold, wait;
    Logged *log;
    Py_ssize_t log_limit, log_next, log_count;
} Account;

typedef struct {
    PyObject_HEAD
    PyObject *inner;
    Account *account;
    ModuleState *state;
    int64_t since_ns, wait_ns;
    PyObject *who, *code;
    Py_ssize_t depth;
    Py_ssize_t waiting;
    int reentrant;
    PyObject *weakreflist;
} Tracked;

static struct PyModuleDef module_def;

/* ---------------------------------------------------------------------------------------- */
/* LockAccount                                                                               */

static void
tally_add(const BucketTable *buckets, Tally *t, int64_t value)
{
    t->count++;
    t->total += value;
    if (value > t->max) {
        t->max = value;
    }
    histogram_add(buckets, &t->histogram, value);
}

static PyObject *
Account_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t log_limit;
    static char *names[] = {"log_limit", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n", names, &log_limit)) {
        return NULL;
    }
    if (log_limit < 0) {
        PyErr_SetString(PyExc_ValueError, "log_limit must not be negative");
        return NULL;
    }
    PyObject *module = PyType_GetModuleByDef(type, &module_def);
    if (module == NULL) {
        return NULL;
    }
    ModuleState *state = PyModule_GetState(module);
    Account *a = (Account *)type->tp_alloc(type, 0);
    if (a == NULL) {
        return NULL;
    }
    a->buckets = &state->buckets;
    a->log_limit = log_limit;
    if (log_limit > 0) {
        a->log = hp_calloc((size_t)log_limit, sizeof(Logged));
        if (a->log == NULL) {
            Py_DECREF(a);
            return PyErr_NoMemory();
        }
    }
    return (PyObject *)a;
}

static int
Account_traverse(Account *a, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(a));
    for (Py_ssize_t i = 0; i < a->log_count; i++) {
        Py_VISIT(a->log[i].who);
        Py_VISIT(a->log[i].code);
    }
    return 0;
}

static int
Account_clear(Account *a)
{
    for (Py_ssize_t i = 0; i < a->log_count; i++) {
        Py_CLEAR(a->log[i].who);
        Py_CLEAR(a->log[i].code);
    }
    return 0;
}

static void
Account_dealloc(Account *a)
{
    PyTypeObject *type = Py_TYPE(a);
    PyObject_GC_UnTrack(a);
    Account_clear(a);
    hp_free(a->log);
    histogram_free(&a->hold.histogram);
    histogram_free(&a->wait.histogram);
    type->tp_free(a);
    Py_DECREF(type);
}

/* Takes the references to who and code. */
static void
account_held(Account *a, int64_t since, int64_t hold, int64_t wait, PyObject *who, PyObject *code)
{
    tally_add(a->buckets, &a->hold, hold);
    if (a->log_limit == 0) {
        Py_DECREF(who);
        Py_XDECREF(code);
        return;
    }
    Logged *slot = &a->log[a->log_next];
    int full = a->log_count == a->log_limit;
    PyObject *old_who = full ? slot->who : NULL, *old_code = full ? slot->code : NULL;
    slot->since_ns = since;
    slot->hold_ns = hold;
    slot->wait_ns = wait;
    slot->who = who;
    slot->code = code;
    a->log_next = (a->log_next + 1) % a->log_limit;
    if (!full) {
        a->log_count++;
    }
    /* Last, with the account whole: a Thread's end can run Python code. */
    Py_XDECREF(old_who);
    Py_XDECREF(old_code);
}

static void
account_waited(Account *a, int got, int64_t wait)
{
    a->wait_ns += wait;
    if (got) {
        a->acquisitions++;
        a->contended++;
        tally_add(a->buckets, &a->wait, wait);
    }
    else {
        a->timeouts++;
    }
}

typedef struct {
    uint64_t count;
    int64_t total, max;
    HistogramCopy histogram;
} TallyCopy;

static PyObject *
tally_tuple(TallyCopy *c)
{
    PyObject *buckets = buckets_dict(&c->histogram);
    if (buckets == NULL) {
        return NULL;
    }
    return Py_BuildValue("(KLLN)", (unsigned long long)c->count, (long long)c->total,
                         (long long)c->max, buckets);
}

/* (acquisitions, contended, failed, timeouts, wait_ns, hold, wait, log): hold and wait as
   (count, total, max, {bucket: count}), log as [(since, hold, wait, who, code)], oldest
   first. Copied into C memory first, so that the figures are of one moment. */
static PyObject *
Account_raw(Account *a, PyObject *Py_UNUSED(ignored))
{
    uint64_t counts[4] = {a->acquisitions, a->contended, a->failed, a->timeouts};
    int64_t wait_ns = a->wait_ns;
    TallyCopy hold = {a->hold.count, a->hold.total, a->hold.max, {0, NULL}};
    TallyCopy wait = {a->wait.count, a->wait.total, a->wait.max, {0, NULL}};
    Py_ssize_t n = a->log_count;
    Logged *log = hp_calloc((size_t)(n ? n : 1), sizeof(Logged));
    PyObject *result = NULL, *logged = NULL, *hold_t = NULL, *wait_t = NULL;
    if (log == NULL || histogram_copy(&hold.histogram, &a->hold.histogram) < 0 ||
        histogram_copy(&wait.histogram, &a->wait.histogram) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t first = n < a->log_limit ? 0 : a->log_next;
    for (Py_ssize_t i = 0; i < n; i++) {
        log[i] = a->log[(first + i) % a->log_limit];
        Py_INCREF(log[i].who);
        Py_XINCREF(log[i].code);
    }
    logged = PyList_New(n);
    if (logged == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = Py_BuildValue("(LLLOO)", (long long)log[i].since_ns,
                                       (long long)log[i].hold_ns, (long long)log[i].wait_ns,
                                       log[i].who, log[i].code ? log[i].code : Py_None);
        if (item == NULL) {
            goto done;
        }
        PyList_SET_ITEM(logged, i, item);
    }
    hold_t = tally_tuple(&hold);
    wait_t = tally_tuple(&wait);
    if (hold_t == NULL || wait_t == NULL) {
        goto done;
    }
    result = Py_BuildValue("(KKKKLOOO)", (unsigned long long)counts[0],
                           (unsigned long long)counts[1], (unsigned long long)counts[2],
                           (unsigned long long)counts[3], (long long)wait_ns, hold_t, wait_t,
                           logged);
done:
    if (log != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_XDECREF(log[i].who);
            Py_XDECREF(log[i].code);
        }
    }
    hp_free(log);
    hp_free(hold.histogram.buckets);
    hp_free(wait.histogram.buckets);
    Py_XDECREF(logged);
    Py_XDECREF(hold_t);
    Py_XDECREF(wait_t);
    return result;
}

static PyMethodDef Account_methods[] = {
    {"raw", (PyCFunction)Account_raw, METH_NOARGS,
     "The account's figures as plain tuples (CompiledAccount.read makes them readings)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Account_slots[] = {
    {Py_tp_new, Account_new},
    {Py_tp_dealloc, Account_dealloc},
    {Py_tp_traverse, Account_traverse},
    {Py_tp_clear, Account_clear},
    {Py_tp_methods, Account_methods},
    {Py_tp_doc, "What the tracked locks of one creation site record (hotpath/recorder/locks.py)."},
    {0, NULL},
};

static PyType_Spec Account_spec = {
    .name = "hotpath.recorder._locks.LockAccount",
    .basicsize = sizeof(Account),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Account_slots,
};

/* ---------------------------------------------------------------------------------------- */
/* Tracked locks                                                                             */

static PyObject *
Tracked_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *inner, *account;
    static char *names[] = {"inner", "account", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO", names, &inner, &account)) {
        return NULL;
    }
    ModuleState *state = PyType_GetModuleState(type);
    if (state == NULL) {
        return NULL;
    }
    if (!PyObject_TypeCheck(account, state->account_type)) {
        PyErr_SetString(PyExc_TypeError, "account must be a LockAccount");
        return NULL;
    }
    Tracked *t = (Tracked *)type->tp_alloc(type, 0);
    if (t == NULL) {
        return NULL;
    }
    t->inner = Py_NewRef(inner);
    t->account = (Account *)Py_NewRef(account);
    t->state = state;
    t->reentrant = type == state->rlock_type;
    return (PyObject *)t;
}

static int
Tracked_traverse(Tracked *t, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->inner);
    Py_VISIT(t->account);
    Py_VISIT(t->who);
    Py_VISIT(t->code);
    return 0;
}

static int
Tracked_clear(Tracked *t)
{
    Py_CLEAR(t->inner);
    Py_CLEAR(t->account);
    Py_CLEAR(t->who);
    Py_CLEAR(t->code);
    return 0;
}

static void
Tracked_dealloc(Tracked *t)
{
    PyTypeObject *type = Py_TYPE(t);
    PyObject_GC_UnTrack(t);
    if (t->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)t);
    }
    Tracked_clear(t);
    type->tp_free(t);
    Py_DECREF(type);
}

/* The code object of the function that takes the lock (new reference, or NULL): the
   calling frame's, or the first above the frames that pass a lock on (Condition's). */
static PyObject *
taker(ModuleState *state)
{
    PyFrameObject *frame = PyEval_GetFrame(); /* borrowed */
    if (frame == NULL) {
        return NULL;
    }
    Py_INCREF(frame);
    for (int depth = 0; depth < 16; depth++) {
        PyObject *code = (PyObject *)PyFrame_GetCode(frame);
        int passing = 0;
        for (int i = 0; i < state->npassing; i++) {
            passing |= code == state->passing[i];
        }
        PyFrameObject *back = passing ? PyFrame_GetBack(frame) : NULL;
        if (back == NULL) {
            Py_DECREF(frame);
            return code;
        }
        Py_DECREF(code);
        Py_DECREF(frame);
        frame = back;
    }
    Py_DECREF(frame);
    return NULL;
}

/* The thread calling, as the program knows it (new reference, NULL on error): see the
   layout. */
static PyObject *
holder(ModuleState *state)
{
    PyObject *dict = PyThreadState_GetDict(); /* borrowed; NULL: none, no error set */
    if (dict != NULL) {
        PyObject *found = PyDict_GetItemWithError(dict, state->s_thread_key);
        if (found != NULL) {
            return Py_NewRef(found);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *who = state->find_thread ? PyObject_CallNoArgs(state->find_thread) : NULL;
    if (who == NULL) {
        /* An Exception here is hotpath's: the thread goes by its ident. Anything else (a
           KeyboardInterrupt from a signal handler that ran meanwhile) is the program's. */
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyErr_Clear();
        return PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    }
    if (dict != NULL && !PyLong_Check(who) && PyDict_SetItem(dict, state->s_thread_key, who) < 0) {
        PyErr_Clear(); /* not kept: asked again at the next acquisition */
    }
    return who;
}

/* Who takes the lock and in which function: found before the real lock is asked for. */
typedef struct {
    PyObject *who, *code; /* strong; code may be NULL */
} Taker;

static int
taker_find(ModuleState *state, Taker *taker_out)
{
    taker_out->who = holder(state);
    if (taker_out->who == NULL) {
        return -1;
    }
    taker_out->code = taker(state);
    return 0;
}

static void
taker_drop(Taker *k)
{
    Py_CLEAR(k->who);
    Py_CLEAR(k->code);
}

/* The lock was just got by this thread: start a hold, or count one level more of an RLock's
   (returns 0 then: no new hold). Takes the taker's references. */
static int
begin(Tracked *t, int64_t now, int64_t wait, Taker *k, Py_ssize_t depth)
{
    if (t->reentrant && t->depth > 0) {
        t->depth++;
        taker_drop(k);
        return 0;
    }
    PyObject *old_who = t->who, *old_code = t->code;
    t->depth = depth;
    t->since_ns = now;
    t->wait_ns = wait;
    t->who = k->who;
    t->code = k->code;
    k->who = k->code = NULL;
    Py_XDECREF(old_who);
    Py_XDECREF(old_code);
    return 1;
}

/* The hold ends (the real lock was just released by its holder): log it. */
static void
end(Tracked *t, int64_t now)
{
    PyObject *who = t->who, *code = t->code; /* their references go to the log */
    t->who = NULL;
    t->code = NULL;
    t->depth = 0;
    if (who == NULL) { /* Condition._is_owned's try held it: no hold was begun */
        Py_XDECREF(code);
        return;
    }
    account_held(t->account, t->since_ns, now - t->since_ns, t->wait_ns, who, code);
}

static PyObject *
call_inner(Tracked *t, PyObject *name, PyObject *arg)
{
    PyObject *args[2] = {t->inner, arg};
    size_t n = arg == NULL ? 1 : 2;
    return PyObject_VectorcallMethod(name, args, n | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* Whether a first try without blocking can stand for this call (as _quick in locks.py). */
static int
quick(ModuleState *state, int blocking, PyObject *timeout)
{
    if (timeout == NULL) {
        return 1;
    }
    if (!PyFloat_CheckExact(timeout) && !PyLong_CheckExact(timeout)) {
        return 0;
    }
    double seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1.0) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return 1;
    }
    return blocking && seconds >= 0 && seconds <= state->timeout_max;
}

static PyObject *
take(Tracked *t, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ModuleState *state = t->state;
    PyObject *blocking_arg = nargs > 0 ? args[0] : NULL;
    PyObject *timeout = nargs > 1 ? args[1] : NULL;
    int odd = nargs > 2;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw && !odd; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(key, "blocking") == 0 && blocking_arg == NULL) {
            blocking_arg = args[nargs + i];
        }
        else if (PyUnicode_CompareWithASCIIString(key, "timeout") == 0 && timeout == NULL) {
            timeout = args[nargs + i];
        }
        else {
            odd = 1;
        }
    }
    int blocking = 1;
    if (blocking_arg != NULL && !odd) {
        blocking = PyObject_IsTrue(blocking_arg);
        if (blocking < 0) {
            return NULL;
        }
    }
    Taker k;
    if (taker_find(state, &k) < 0) {
        return NULL;
    }
    if (!odd && quick(state, blocking, timeout)) {
        PyObject *got = call_inner(t, state->s_acquire, Py_False);
        if (got == NULL) {
            taker_drop(&k);
            return NULL;
        }
        int program = k.code == NULL || k.code != state->is_owned;
        if (got == Py_True) {
            /* Condition._is_owned's try is not the program's: no hold begins (who stays
               NULL, and the release that follows logs nothing). */
            if (program && begin(t, now_ns(), 0, &k, 1)) {
                t->account->acquisitions++;
            }
            taker_drop(&k);
            return got;
        }
        if (!blocking) {
            t->account->failed += program;
            taker_drop(&k);
            return got;
        }
        Py_DECREF(got);
    }
    /* It waits, or has arguments the real lock must judge: the call goes to it as made. */
    int64_t start = now_ns();
    t->waiting++;
    PyObject *method = PyObject_GetAttr(t->inner, state->s_acquire);
    PyObject *got = method == NULL ? NULL : PyObject_Vectorcall(method, args, (size_t)nargs, kwnames);
    Py_XDECREF(method);
    t->waiting--;
    int64_t now = now_ns();
    int ok = got == NULL ? -1 : PyObject_IsTrue(got);
    if (ok < 0) {
        Py_XDECREF(got);
        taker_drop(&k);
        return NULL;
    }
    if (ok && !begin(t, now, now - start, &k, 1)) {
        return got; /* an RLock its holder took again */
    }
    taker_drop(&k);
    account_waited(t->account, ok, now - start);
    return got;
}

static PyObject *
Tracked_acquire(Tracked *t, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return take(t, args, nargs, kwnames);
}

static PyObject *
Tracked_enter(Tracked *t, PyObject *Py_UNUSED(ignored))
{
    return take(t, NULL, 0, NULL);
}

static PyObject *
Tracked_release(Tracked *t, PyObject *Py_UNUSED(ignored))
{
    int64_t now = now_ns();
    if (t->reentrant) {
        /* Only the owner can release an RLock: the real one says so when this thread is
           not it, and the depth is this thread's to change once it has said nothing. */
        PyObject *owned = call_inner(t, t->state->s_is_owned, NULL);
        if (owned == NULL) {
            return NULL;
        }
        int mine = owned == Py_True;
        Py_DECREF(owned);
        PyObject *done = call_inner(t, t->state->s_release, NULL);
        if (done == NULL) {
            return NULL;
        }
        if (mine && t->depth > 1) {
            t->depth--;
        }
        else if (mine) {
            end(t, now);
        }
        return done;
    }
    PyObject *done = call_inner(t, t->state->s_release, NULL);
    if (done == NULL) {
        return NULL;
    }
    end(t, now);
    return done;
}

static PyObject *
Tracked_exit(Tracked *t, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *done = Tracked_release(t, NULL);
    if (done == NULL) {
        return NULL;
    }
    Py_DECREF(done);
    Py_RETURN_NONE;
}

/* RLock, for Condition.wait: let the lock go however deep (the hold ends), then take it back
   as deep as it was (a new hold). */
static PyObject *
Tracked_release_save(Tracked *t, PyObject *Py_UNUSED(ignored))
{
    int64_t now = now_ns();
    PyObject *owned = call_inner(t, t->state->s_is_owned, NULL);
    if (owned == NULL) {
        return NULL;
    }
    int mine = owned == Py_True;
    Py_DECREF(owned);
    PyObject *saved = call_inner(t, t->state->s_release_save, NULL);
    if (saved != NULL && mine) {
        end(t, now);
    }
    return saved;
}

static PyObject *
Tracked_acquire_restore(Tracked *t, PyObject *saved)
{
    ModuleState *state = t->state;
    if (!PyTuple_Check(saved) || PyTuple_GET_SIZE(saved) < 1) {
        return call_inner(t, state->s_acquire_restore, saved); /* the real one's error */
    }
    Py_ssize_t count = PyLong_AsSsize_t(PyTuple_GET_ITEM(saved, 0));
    if (count < 1) {
        PyErr_Clear();
        return call_inner(t, state->s_acquire_restore, saved);
    }
    Taker k;
    if (taker_find(state, &k) < 0) {
        return NULL;
    }
    PyObject *got = call_inner(t, state->s_acquire, Py_False);
    if (got == NULL) {
        taker_drop(&k);
        return NULL;
    }
    if (got == Py_True) {
        Py_DECREF(got);
        for (Py_ssize_t i = 1; i < count; i++) { /* the owner's: at once */
            PyObject *again = call_inner(t, state->s_acquire, NULL);
            if (again == NULL) {
                taker_drop(&k);
                return NULL;
            }
            Py_DECREF(again);
        }
        begin(t, now_ns(), 0, &k, count);
        t->account->acquisitions++;
        Py_RETURN_NONE;
    }
    Py_DECREF(got);
    int64_t start = now_ns();
    t->waiting++;
    PyObject *done = call_inner(t, state->s_acquire_restore, saved);
    t->waiting--;
    int64_t now = now_ns();
    if (done == NULL) {
        taker_drop(&k);
        return NULL;
    }
    begin(t, now, now - start, &k, count);
    account_waited(t->account, 1, now - start);
    return done;
}

static PyObject *
Tracked_at_fork_reinit(Tracked *t, PyObject *Py_UNUSED(ignored))
{
    PyObject *done = call_inner(t, t->state->s_at_fork_reinit, NULL);
    if (done == NULL) {
        return NULL;
    }
    t->depth = 0;
    t->waiting = 0;
    Py_CLEAR(t->who);
    Py_CLEAR(t->code);
    return done;
}

static PyObject *
Tracked_state(Tracked *t, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(OLn)", t->who ? t->who : Py_None, (long long)t->since_ns, t->waiting);
}

static PyObject *
Tracked_reduce_ex(Tracked *t, PyObject *Py_UNUSED(protocol))
{
    return PyErr_Format(PyExc_TypeError, "cannot pickle '%s' object", Py_TYPE(t->inner)->tp_name);
}

static PyObject *
Tracked_repr(Tracked *t)
{
    PyObject *repr = PyObject_Repr(t->inner);
    if (repr == NULL) {
        return NULL;
    }
    Py_ssize_t at = PyUnicode_Find(repr, t->state->s_at, 0, PyUnicode_GET_LENGTH(repr), -1);
    if (at < 0) {
        if (at == -2) {
            Py_DECREF(repr);
            return NULL;
        }
        return repr;
    }
    PyObject *head = PyUnicode_Substring(repr, 0, at);
    Py_DECREF(repr);
    if (head == NULL) {
        return NULL;
    }
    PyObject *result = PyUnicode_FromFormat("%U at %p>", head, (void *)t);
    Py_DECREF(head);
    return result;
}

/* What it does not wrap (locked(), _is_owned, _recursion_count, ...) is the real lock's. */
static PyObject *
Tracked_getattro(Tracked *t, PyObject *name)
{
    PyObject *found = PyObject_GenericGetAttr((PyObject *)t, name);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return found;
    }
    PyErr_Clear();
    return PyObject_GetAttr(t->inner, name);
}

/* isinstance() against the real lock's type holds. */
static PyObject *
Tracked_class(Tracked *t, void *Py_UNUSED(closure))
{
    return Py_NewRef(Py_TYPE(t->inner));
}

static PyGetSetDef Tracked_getset[] = {
    {"__class__", (getter)Tracked_class, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Tracked_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(Tracked, weakreflist), Py_READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

#define COMMON_METHODS                                                                        \
    {"acquire", (PyCFunction)(void (*)(void))Tracked_acquire, METH_FASTCALL | METH_KEYWORDS,   \
     NULL},                                                                                   \
        {"__enter__", (PyCFunction)Tracked_enter, METH_NOARGS, NULL},                         \
        {"release", (PyCFunction)Tracked_release, METH_NOARGS, NULL},                         \
        {"__exit__", (PyCFunction)(void (*)(void))Tracked_exit, METH_FASTCALL, NULL},         \
        {"_at_fork_reinit", (PyCFunction)Tracked_at_fork_reinit, METH_NOARGS, NULL},          \
        {"_hotpath_state", (PyCFunction)Tracked_state, METH_NOARGS,                           \
         "(holder or None, held since, threads waiting now)."},                   \
        {"__reduce_ex__", (PyCFunction)Tracked_reduce_ex, METH_O, NULL}

static PyMethodDef Lock_methods[] = {
    COMMON_METHODS,
    {"acquire_lock", (PyCFunction)(void (*)(void))Tracked_acquire, METH_FASTCALL | METH_KEYWORDS,
     NULL},
    {"release_lock", (PyCFunction)Tracked_release, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef RLock_methods[] = {
    COMMON_METHODS,
    {"_release_save", (PyCFunction)Tracked_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)Tracked_acquire_restore, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Lock_slots[] = {
    {Py_tp_new, Tracked_new},
    {Py_tp_dealloc, Tracked_dealloc},
    {Py_tp_traverse, Tracked_traverse},
    {Py_tp_clear, Tracked_clear},
    {Py_tp_methods, Lock_methods},
    {Py_tp_getset, Tracked_getset},
    {Py_tp_members, Tracked_members},
    {Py_tp_repr, Tracked_repr},
    {Py_tp_getattro, Tracked_getattro},
    {0, NULL},
};

static PyType_Slot RLock_slots[] = {
    {Py_tp_new, Tracked_new},
    {Py_tp_dealloc, Tracked_dealloc},
    {Py_tp_traverse, Tracked_traverse},
    {Py_tp_clear, Tracked_clear},
    {Py_tp_methods, RLock_methods},
    {Py_tp_getset, Tracked_getset},
    {Py_tp_members, Tracked_members},
    {Py_tp_repr, Tracked_repr},
    {Py_tp_getattro, Tracked_getattro},
    {0, NULL},
};

/* Named as the real types: what type(lock).__name__ shows. */
static PyType_Spec Lock_spec = {
    .name = "_thread.lock",
    .basicsize = sizeof(Tracked),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Lock_slots,
};

static PyType_Spec RLock_spec = {
    .name = "_thread.RLock",
    .basicsize = sizeof(Tracked),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = RLock_slots,
};

/* ---------------------------------------------------------------------------------------- */
/* The module                                                                                */

/* configure(is_owned, passing, timeout_max, find_thread): Condition._is_owned's code, the
   codes of the frames that pass a lock on, threading.TIMEOUT_MAX, and what finds the calling
   thread's threading.Thread (or else its ident). */
static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *is_owned, *passing, *find_thread;
    double timeout_max;
    if (!PyArg_ParseTuple(args, "OO!dO", &is_owned, &PyTuple_Type, &passing, &timeout_max,
                          &find_thread)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(passing) > MAX_PASSING) {
        PyErr_SetString(PyExc_ValueError, "too many passing frames");
        return NULL;
    }
    ModuleState *state = PyModule_GetState(module);
    Py_XSETREF(state->is_owned, Py_NewRef(is_owned));
    Py_XSETREF(state->find_thread, Py_NewRef(find_thread));
    for (int i = 0; i < state->npassing; i++) {
        Py_CLEAR(state->passing[i]);
    }
    state->npassing = (int)PyTuple_GET_SIZE(passing);
    for (int i = 0; i < state->npassing; i++) {
        state->passing[i] = Py_NewRef(PyTuple_GET_ITEM(passing, i));
    }
    state->timeout_max = timeout_max;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(is_owned, passing, timeout_max, find_thread): see hotpath/recorder/locks.py."},
    {NULL, NULL, 0, NULL},
};

/* The locks' types are named as the real ones; the module exports them under its names. */
static int
add_type(PyObject *module, PyType_Spec *spec, const char *exported, PyTypeObject **slot)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    if (*slot == NULL) {
        return -1;
    }
    return PyModule_AddObjectRef(module, exported, (PyObject *)*slot);
}

static int
module_exec(PyObject *module)
{
    ModuleState *state = PyModule_GetState(module);
    bucket_table_init(&state->buckets);
    state->timeout_max = 0;
    if ((state->s_acquire = PyUnicode_InternFromString("acquire")) == NULL ||
        (state->s_release = PyUnicode_InternFromString("release")) == NULL ||
        (state->s_is_owned = PyUnicode_InternFromString("_is_owned")) == NULL ||
        (state->s_release_save = PyUnicode_InternFromString("_release_save")) == NULL ||
        (state->s_acquire_restore = PyUnicode_InternFromString("_acquire_restore")) == NULL ||
        (state->s_at_fork_reinit = PyUnicode_InternFromString("_at_fork_reinit")) == NULL ||
        (state->s_at = PyUnicode_InternFromString(" at 0x")) == NULL ||
        (state->s_thread_key = PyUnicode_InternFromString("hotpath.locks.thread")) == NULL) {
        return -1;
    }
    if (add_type(module, &Account_spec, "LockAccount", &state->account_type) < 0 ||
        add_type(module, &Lock_spec, "TrackedLock", &state->lock_type) < 0 ||
        add_type(module, &RLock_spec, "TrackedRLock", &state->rlock_type) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    ModuleState *state = PyModule_GetState(module);
    Py_VISIT(state->account_type);
    Py_VISIT(state->lock_type);
    Py_VISIT(state->rlock_type);
    Py_VISIT(state->is_owned);
    Py_VISIT(state->find_thread);
    for (int i = 0; i < state->npassing; i++) {
        Py_VISIT(state->passing[i]);
    }
    return 0;
}

static int
module_clear(PyObject *module)
{
    ModuleState *state = PyModule_GetState(module);
    Py_CLEAR(state->account_type);
    Py_CLEAR(state->lock_type);
    Py_CLEAR(state->rlock_type);
    Py_CLEAR(state->is_owned);
    Py_CLEAR(state->find_thread);
    for (int i = 0; i < state->npassing; i++) {
        Py_CLEAR(state->passing[i]);
    }
    state->npassing = 0;
    Py_CLEAR(state->s_acquire);
    Py_CLEAR(state->s_release);
    Py_CLEAR(state->s_is_owned);
    Py_CLEAR(state->s_release_save);
    Py_CLEAR(state->s_acquire_restore);
    Py_CLEAR(state->s_at_fork_reinit);
    Py_CLEAR(state->s_at);
    Py_CLEAR(state->s_thread_key);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hotpath.recorder._locks",
    .m_doc = "hotpath's compiled thread locks; see hotpath/recorder/locks.py.",
    .m_size = sizeof(ModuleState),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__locks(void)
{
    return PyModuleDef_Init(&module_def);
}
