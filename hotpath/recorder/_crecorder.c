/*
 * hotpath's compiled recorder: the sys.monitoring callbacks in C.
 *
 * The contract it fulfils (what the callbacks record, what read() answers) is written once,
 * in hotpath/recorder/__init__.py; hotpath/recorder/python.py is its pure-Python twin, and
 * the same test suite runs on both.
 *
 * Data layout
 * -----------
 * Recorder (one per profiled run; a Python object owning everything below)
 *   functions[]   Function*, one per timed code object, in the order they were decided.
 *                 Each Function is allocated on its own and lives as long as the Recorder,
 *                 so a Function* stays valid when the array grows.
 *   acts          open-addressing map: frame object address -> Activation* (one open call
 *                 of a generator or coroutine, alive across its suspensions), capped at
 *                 max_activations (given by Python: MAX_OPEN_ACTIVATIONS); an
 *                 insertion-ordered list beside it names the oldest.
 *   threads       doubly linked list of ThreadRec, one per thread that fired an event.
 *   tss           thread-specific storage: the calling thread's ThreadRec.
 * Function        totals of finished calls (count, sums, min, max), the first EXACT_CALLS
 *                 durations (exact percentiles while there are no more), a log-bucketed histogram
 *                 (32 buckets per doubling, pages of 32 counters allocated per octave on first
 *                 use), error counts by exception type (a dict replaced, never mutated), and a
 *                 ring of the last log_limit calls.
 * ThreadRec       the thread's stack of calls in progress (Entry: Function*, Activation* or
 *                 NULL, start time, code) and, per function, how many of its entries are on
 *                 that stack (on_stack[], indexed like functions[]).
 * Allocations     (only when the Recorder was made with count_allocations) each ThreadRec
 *                 holds the thread's running totals of allocator requests and bytes
 *                 requested; an Entry (and an Activation, across its segments) keeps the
 *                 totals at its start, so a call's figures are differences, credited to the
 *                 caller's child figures like time. Function keeps the sums and a histogram of
 *                 bytes per call beside the duration one.
 * AllocHook       (process-wide, static: the allocator is the process's) the MEM and OBJ
 *                 allocators found when counting first started, and the Recorder counting
 *                 now (strong, or NULL). The hooks pass every request on and, while a
 *                 Recorder counts, add to the calling thread's ThreadRec (found through that
 *                 Recorder's TSS; a thread with no record yet is not counted).
 * Code objects    carry the verdict in their co_extra slot (PyUnstable_Code_SetExtra):
 *                 (tag << SLOT_BITS) | slot, slot 1 = not timed, 2 + i = functions[i]. The
 *                 tag is this Recorder's, so a verdict from an earlier Recorder reads as
 *                 undecided. The verdict dies with its code object: a reused address never
 *                 inherits it, and no code object is kept alive for it.
 *
 * Invariants
 * ----------
 * - Every callback, method and destructor runs with the GIL held; free-threaded builds use
 *   the Python recorder (hotpath/recorder/__init__.py refuses this module there).
 * - Another thread can run only where this file calls into Python or allocates a Python
 *   container (which may start the garbage collector and so finalizers): decide(), the
 *   listener, the thread identity factory, the error-type dict copy, a Py_DECREF of a logged
 *   object, and the release of activations that read() found ended (sweep_ended unmaps them
 *   all before releasing any). Across those calls no pointer into a growable array
 *   (functions[], the act map's slots) is held; Function, Activation and ThreadRec structs
 *   never move.
 * - A ThreadRec is touched by its own thread (its allocation totals by the hooks, in that
 *   thread), except by read() and thread_allocations() (which copy it without allocating
 *   Python objects) and by its guard's destructor (at thread end).
 * - on_stack[i] equals the number of stack entries of functions[i] on that thread.
 * - An Activation is freed only when it is out of the map and off every stack.
 * - Nothing here prints, and no exception that is an Exception escapes into the program: a
 *   failure gives the event up. BaseExceptions (KeyboardInterrupt raised by a signal handler
 *   that ran inside decide()) propagate, as they would have without hotpath.
 * - C memory comes from libc (hp_calloc and friends), not from Python's allocators: it needs
 *   no GIL, is never counted as the program's, and tracemalloc does not see it (it traces
 *   PyMem_Raw*, and would show hotpath's tables as live memory at whatever line of the
 *   program was running when they grew).
 * - What a callback allocates is hotpath's, not the program's: every callback notes the
 *   thread's allocation totals when it starts (ThreadRec.event_allocs, by enter()) and puts
 *   them back when it returns (leave()); entries and ends read that note.
 * - The allocator hooks never call into Python and never allocate. Once installed they stay
 *   in the chain for the life of the process unless they are still its top (tracemalloc,
 *   started later, wraps them and restores them when it stops); removed from the top only.
 *   Only the main interpreter counts; sub-interpreters with a GIL of their own run the hooks
 *   too, find no record in their threads, and pass the request on.
 * - read_proc_self() keeps the GIL across its procfs reads, on purpose (its comment says why);
 *   it holds no state between calls.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_shared.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#endif
#ifdef _WIN32
#include <windows.h>
#endif

#define SLOT_BITS 24
#define SLOT_MASK ((uintptr_t)((1u << SLOT_BITS) - 1))
#define SLOT_REJECTED 1
#define MAX_FUNCTIONS ((Py_ssize_t)SLOT_MASK - 2)
#define FRAME_WALK 64 /* frames searched for the one an event is about */
#define EXACT_CALLS 16 /* durations kept as they are, for exact percentiles of few calls */
#define ENDED_THREADS 100 /* ended threads whose allocation totals are kept (store/threads.py) */

#define CO_GEN 0x20
#define CO_CORO 0x80
#define CO_ASYNC_GEN 0x200

/* ---------------------------------------------------------------------------------------- */

typedef struct {
    int64_t end_ns;
    int64_t duration_ns;
    PyObject *thread;  /* the thread's identity object (strong) */
    PyObject *outcome; /* exception type name (strong), or NULL: returned */
    uint64_t allocations, allocated_bytes; /* the call's, callees included */
} LoggedCall;

/* Allocator requests and bytes requested. */
typedef struct {
    uint64_t count, bytes;
} Allocs;

typedef struct Function {
    PyObject *info;  /* hotpath.store.functions.FunctionInfo (strong) */
    PyObject *code;  /* info.code: borrowed, info holds it */
    Py_ssize_t index;
    int generator;   /* a generator, coroutine or async generator: calls are activations */
    int coroutine;
    int async_gen;
    int64_t completed, all_ns, total_ns, child_ns, active_ns, starts, errors;
    int64_t min_ns, max_ns;
    int64_t first[EXACT_CALLS]; /* the first calls' durations: exact percentiles until full */
    Histogram durations;
    /* Allocations (when counted): every call's own sum (all), outermost calls only (total:
       recursion counted once), credited by callees (child); bytes per call. */
    Allocs alloc_all, alloc_total, alloc_child;
    Histogram *alloc_bytes; /* allocated at the first call counted: 520 B not paid otherwise */
    PyObject *error_types; /* dict: type name -> count; replaced on change, or NULL */
    LoggedCall *log;       /* ring of log_limit entries, allocated on first call */
    Py_ssize_t log_next, log_count;
    uint64_t read_mark;    /* read(): last thread walk that counted this function */
} Function;

typedef struct Activation {
    Function *fn;
    void *key;             /* the frame object's address */
    struct Activation *older, *newer; /* insertion order, while in the map */
    int in_map, on_stack;
    int64_t start_ns, active_ns, child_ns, polls;
    Allocs allocs, child_allocs; /* summed over its segments */
    PyObject *generator;   /* a weak reference to its generator (strong), or NULL */
    PyObject *watcher;     /* asyncio task progress (strong), or NULL */
    PyObject *stream;      /* async generator stream (strong), or NULL */
    PyObject *error;       /* type name it ended with (strong), or NULL */
} Activation;

typedef struct {
    Function *fn;
    Activation *act; /* NULL for a plain call */
    PyObject *code;  /* borrowed: fn->info holds it */
    int64_t start_ns;
    Allocs start_allocs; /* the thread's totals when it started */
} Entry;

struct Recorder;

typedef struct ThreadRec {
    struct ThreadRec *prev, *next;
    struct Recorder *recorder;
    PyObject *guard;    /* borrowed: owned by the thread's dict; its death frees this */
    PyObject *identity; /* made at the thread's first timed call (strong) */
    Entry *stack;
    Py_ssize_t depth, capacity;
    int32_t *on_stack;
    Py_ssize_t on_stack_size;
    unsigned long native_id; /* threading.get_native_id(), as the thread sampler sees it */
    Allocs allocs;        /* written by the allocator hooks while its Recorder counts */
    Allocs event_allocs;  /* allocs as the current callback found them */
    Allocs held;          /* allocs when the outermost held_call() began; put back at its end */
    int holding;          /* held_call()s in progress */
} ThreadRec;

typedef struct {
    void **keys;
    Activation **values;
    Py_ssize_t capacity, used; /* capacity: a power of two */
} ActMap;

typedef struct Recorder {
    PyObject_HEAD
    PyObject *decide;   /* (code, frame or None) -> FunctionInfo or None */
    PyObject *listener; /* None, or an object with task_started/stream_* methods */
    PyObject *new_identity; /* () -> the calling thread's identity object */
    PyObject *disable;  /* sys.monitoring.DISABLE */
    PyObject *guard_key;
    PyTypeObject *guard_type;
    /* Interned names: looking them up makes no string per event. */
    PyObject *s_task_started, *s_stream_opened, *s_stream_yielded, *s_stream_ended;
    PyObject *s_active_ns, *s_polls, *s_gi_suspended, *s_cr_suspended, *s_ag_suspended;
    Py_ssize_t code_index;
    uintptr_t tag;
    Py_ssize_t log_limit;
    Py_ssize_t max_activations;
    Function **functions;
    Py_ssize_t nfunctions, cfunctions;
    ActMap acts;
    Activation *oldest, *newest;
    ThreadRec *threads;
    Py_tss_t tss;
    int tss_ready;
    uint64_t read_marks;
    Py_ssize_t given_up; /* events given up: allocation failures, errors in decide */
    int count_allocations;
    /* The final totals of the last ENDED_THREADS threads that ended (a ring). */
    struct {
        unsigned long native_id;
        Allocs allocs;
    } ended[ENDED_THREADS];
    Py_ssize_t ended_next, ended_count;
    BucketTable buckets; /* histogram_add's tables */
} Recorder;

typedef struct {
    PyObject_HEAD
    ThreadRec *rec;
} Guard;

typedef struct {
    Py_ssize_t code_index;
    uint64_t recorders; /* made so far in this interpreter: their tags */
    PyTypeObject *recorder_type;
    PyTypeObject *guard_type;
} ModuleState;

/* ---------------------------------------------------------------------------------------- */
/* Errors: an Exception gives the event up; anything else is the program's to see.           */

/* Returns 0 when the pending error was an Exception (now cleared), -1 to propagate. */
static int
give_up(Recorder *r)
{
    r->given_up++;
    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyErr_Clear();
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Allocation counting: hooks on the MEM and OBJ domains. Both are called with the GIL held
   (the RAW domain is not, and is left alone: hotpath's own C memory comes from it). Cost:
   about 2 ns per request on this machine (1.02x bare on an allocation-heavy loop).          */

typedef struct {
    PyMemAllocatorEx mem, obj; /* what was in place when the hooks were installed */
    int installed;
    Recorder *counting;        /* strong while set */
} AllocHook;

static AllocHook hook;

static inline void
count_request(size_t size)
{
    Recorder *r = hook.counting;
    if (r != NULL) {
        ThreadRec *t = PyThread_tss_get(&r->tss);
        if (t != NULL) {
            t->allocs.count++;
            t->allocs.bytes += size;
        }
    }
}

static void *
hook_malloc(void *ctx, size_t size)
{
    PyMemAllocatorEx *next = ctx;
    void *p = next->malloc(next->ctx, size);
    if (p != NULL) {
        count_request(size);
    }
    return p;
}

static void *
hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
    PyMemAllocatorEx *next = ctx;
    void *p = next->calloc(next->ctx, nelem, elsize);
    if (p != NULL) {
        count_request(nelem * elsize);
    }
    return p;
}

/* A request of the new size: the old one is not known (a free does not pass its size). */
static void *
hook_realloc(void *ctx, void *ptr, size_t new_size)
{
    PyMemAllocatorEx *next = ctx;
    void *p = next->realloc(next->ctx, ptr, new_size);
    if (p != NULL) {
        count_request(new_size);
    }
    return p;
}

static void
hook_free(void *ctx, void *ptr)
{
    PyMemAllocatorEx *next = ctx;
    next->free(next->ctx, ptr);
}

static int
hook_is_top(PyMemAllocatorDomain domain, PyMemAllocatorEx *next)
{
    PyMemAllocatorEx current;
    PyMem_GetAllocator(domain, &current);
    return current.malloc == hook_malloc && current.ctx == next;
}

static void
hook_install(void)
{
    if (hook.installed) {
        return;
    }
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &hook.mem);
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &hook.obj);
    PyMemAllocatorEx mem = {&hook.mem, hook_malloc, hook_calloc, hook_realloc, hook_free};
    PyMemAllocatorEx obj = {&hook.obj, hook_malloc, hook_calloc, hook_realloc, hook_free};
    PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &mem);
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &obj);
    hook.installed = 1;
}

/* Stops counting; takes the hooks out only if nothing was installed over them since. */
static void
hook_release(Recorder *r)
{
    if (hook.counting != r) {
        return;
    }
    hook.counting = NULL;
    if (hook_is_top(PYMEM_DOMAIN_MEM, &hook.mem) && hook_is_top(PYMEM_DOMAIN_OBJ, &hook.obj)) {
        PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &hook.mem);
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &hook.obj);
        hook.installed = 0;
    }
    Py_DECREF(r); /* last: it may free r */
}

/* ---------------------------------------------------------------------------------------- */
/* The activation map.                                                                       */

static inline Py_ssize_t
slot_of(const ActMap *map, void *key)
{
    uintptr_t h = (uintptr_t)key >> 4;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (Py_ssize_t)(h & (uintptr_t)(map->capacity - 1));
}

static Activation *
map_get(const ActMap *map, void *key)
{
    if (map->capacity == 0) {
        return NULL;
    }
    Py_ssize_t i = slot_of(map, key);
    while (map->keys[i] != NULL) {
        if (map->keys[i] == key) {
            return map->values[i];
        }
        i = (i + 1) & (map->capacity - 1);
    }
    return NULL;
}

static int
map_grow(ActMap *map)
{
    Py_ssize_t capacity = map->capacity ? map->capacity * 2 : 64;
    void **keys = hp_calloc((size_t)capacity, sizeof(void *));
    Activation **values = hp_calloc((size_t)capacity, sizeof(Activation *));
    if (keys == NULL || values == NULL) {
        hp_free(keys);
        hp_free(values);
        return -1;
    }
    ActMap bigger = {keys, values, capacity, 0};
    for (Py_ssize_t i = 0; i < map->capacity; i++) {
        if (map->keys[i] != NULL) {
            Py_ssize_t j = slot_of(&bigger, map->keys[i]);
            while (bigger.keys[j] != NULL) {
                j = (j + 1) & (capacity - 1);
            }
            bigger.keys[j] = map->keys[i];
            bigger.values[j] = map->values[i];
            bigger.used++;
        }
    }
    hp_free(map->keys);
    hp_free(map->values);
    *map = bigger;
    return 0;
}

static int
map_put(ActMap *map, void *key, Activation *value)
{
    if ((map->used + 1) * 2 > map->capacity && map_grow(map) < 0) {
        return -1;
    }
    Py_ssize_t i = slot_of(map, key);
    while (map->keys[i] != NULL && map->keys[i] != key) {
        i = (i + 1) & (map->capacity - 1);
    }
    if (map->keys[i] == NULL) {
        map->used++;
    }
    map->keys[i] = key;
    map->values[i] = value;
    return 0;
}

/* Linear probing with backward-shift deletion: no tombstones to accumulate. */
static void
map_remove(ActMap *map, void *key)
{
    if (map->capacity == 0) {
        return;
    }
    Py_ssize_t mask = map->capacity - 1;
    Py_ssize_t i = slot_of(map, key);
    while (map->keys[i] != key) {
        if (map->keys[i] == NULL) {
            return;
        }
        i = (i + 1) & mask;
    }
    Py_ssize_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (map->keys[j] == NULL) {
            break;
        }
        Py_ssize_t home = slot_of(map, map->keys[j]);
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        if ((i <= j) ? (i < home && home <= j) : (i < home || home <= j)) {
            continue;
        }
        map->keys[i] = map->keys[j];
        map->values[i] = map->values[j];
        i = j;
    }
    map->keys[i] = NULL;
    map->values[i] = NULL;
    map->used--;
}

/* ---------------------------------------------------------------------------------------- */
/* Activations.                                                                              */

static void
act_free(Activation *act)
{
    PyObject *watcher = act->watcher, *stream = act->stream, *error = act->error;
    PyObject *generator = act->generator;
    hp_free(act);
    Py_XDECREF(generator);
    Py_XDECREF(watcher);
    Py_XDECREF(stream);
    Py_XDECREF(error);
}

static void
act_unmap(Recorder *r, Activation *act)
{
    if (!act->in_map) {
        return;
    }
    map_remove(&r->acts, act->key);
    if (act->older) {
        act->older->newer = act->newer;
    }
    else {
        r->oldest = act->newer;
    }
    if (act->newer) {
        act->newer->older = act->older;
    }
    else {
        r->newest = act->older;
    }
    act->older = act->newer = NULL;
    act->in_map = 0;
}

/* Frees it if nothing refers to it any more. */
static void
act_release(Activation *act)
{
    if (!act->in_map && !act->on_stack) {
        act_free(act);
    }
}

static int
act_map(Recorder *r, Activation *act)
{
    Activation *stale = map_get(&r->acts, act->key);
    if (stale != NULL) {
        /* A new generator at the address of one that ended unseen (3.13 sends no event when
           a suspended generator is collected): the old one counts as started, not finished. */
        act_unmap(r, stale);
        act_release(stale);
    }
    while (r->acts.used >= r->max_activations) {
        Activation *victim = r->oldest;
        while (victim != NULL && victim->on_stack) {
            victim = victim->newer;
        }
        if (victim == NULL) {
            break;
        }
        act_unmap(r, victim);
        act_release(victim);
    }
    if (map_put(&r->acts, act->key, act) < 0) {
        return -1;
    }
    act->in_map = 1;
    act->older = r->newest;
    act->newer = NULL;
    if (r->newest) {
        r->newest->newer = act;
    }
    else {
        r->oldest = act;
    }
    r->newest = act;
    return 0;
}

/* Whether its generator ended without an event: collected, or closed (3.13 sends no event
   for a generator suspended outside any try that is closed or collected). Unknown: no. Runs
   no Python code: a weak reference and a C getter (gi_suspended and its kin). */
static int
act_ended(Recorder *r, const Activation *act)
{
    if (act->generator == NULL || act->on_stack) {
        return 0;
    }
    PyObject *generator = NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyWeakref_GetRef(act->generator, &generator) < 0) {
        PyErr_Clear();
        return 0;
    }
#else
    generator = Py_NewRef(PyWeakref_GetObject(act->generator));
    if (generator == Py_None) {
        Py_CLEAR(generator);
    }
#endif
    if (generator == NULL) {
        return 1;
    }
    PyObject *name = act->fn->coroutine  ? r->s_cr_suspended
                     : act->fn->async_gen ? r->s_ag_suspended
                                          : r->s_gi_suspended;
    PyObject *suspended = PyObject_GetAttr(generator, name);
    /* Alive, so referenced elsewhere too: this cannot be its last reference. */
    Py_DECREF(generator);
    if (suspended == NULL) {
        PyErr_Clear();
        return 0;
    }
    int ended = suspended == Py_False;
    Py_DECREF(suspended);
    return ended;
}

/* Activations whose generator ended unseen leave the map: their calls count as started and
   never finished, and no longer as running. Unmapped first, released after: releasing drops
   references (a task's), which may run Python code that reaches the map. */
static void
sweep_ended(Recorder *r)
{
    Py_ssize_t count = 0, capacity = 0;
    Activation **ended = NULL;
    for (Activation *act = r->oldest; act != NULL; act = act->newer) {
        if (!act_ended(r, act)) {
            continue;
        }
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            Activation **grown = hp_realloc(ended, (size_t)capacity * sizeof(Activation *));
            if (grown == NULL) {
                break; /* the rest wait for the next read */
            }
            ended = grown;
        }
        ended[count++] = act;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        act_unmap(r, ended[i]);
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        act_release(ended[i]);
    }
    hp_free(ended);
}

/* ---------------------------------------------------------------------------------------- */
/* Threads.                                                                                  */

static void
thread_rec_free(ThreadRec *t)
{
    Recorder *r = t->recorder;
    if (t->prev) {
        t->prev->next = t->next;
    }
    else {
        r->threads = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    if (r->tss_ready && PyThread_tss_get(&r->tss) == t) {
        (void)PyThread_tss_set(&r->tss, NULL);
    }
    if (r->count_allocations) {
        r->ended[r->ended_next].native_id = t->native_id;
        r->ended[r->ended_next].allocs = t->allocs;
        r->ended_next = (r->ended_next + 1) % ENDED_THREADS;
        if (r->ended_count < ENDED_THREADS) {
            r->ended_count++;
        }
    }
    for (Py_ssize_t i = 0; i < t->depth; i++) {
        Activation *act = t->stack[i].act;
        if (act != NULL) {
            act->on_stack = 0;
            act_release(act);
        }
    }
    PyObject *identity = t->identity;
    hp_free(t->stack);
    hp_free(t->on_stack);
    hp_free(t);
    Py_XDECREF(identity);
}

static ThreadRec *
thread_rec_new(Recorder *r)
{
    PyObject *dict = PyThreadState_GetDict();
    if (dict == NULL) {
        return NULL;
    }
    ThreadRec *t = hp_calloc(1, sizeof(ThreadRec));
    if (t == NULL) {
        return NULL;
    }
    Guard *guard = PyObject_GC_New(Guard, r->guard_type);
    if (guard == NULL) {
        PyErr_Clear();
        hp_free(t);
        return NULL;
    }
    guard->rec = NULL;
    /* The dict owns the guard: when the thread's state is cleared, the guard's death frees
       the record. Storing it may run a finalizer, hence the order below. */
    if (PyDict_SetItem(dict, r->guard_key, (PyObject *)guard) < 0) {
        PyErr_Clear();
        Py_DECREF(guard);
        hp_free(t);
        return NULL;
    }
    Py_DECREF(guard);
    guard->rec = t;
    t->guard = (PyObject *)guard;
#ifdef PY_HAVE_THREAD_NATIVE_ID
    t->native_id = PyThread_get_thread_native_id();
#else
    t->native_id = PyThread_get_thread_ident();
#endif
    t->recorder = r;
    t->next = r->threads;
    if (r->threads) {
        r->threads->prev = t;
    }
    r->threads = t;
    if (PyThread_tss_set(&r->tss, t) != 0) {
        return NULL; /* freed with its guard when the thread ends */
    }
    return t;
}

static inline ThreadRec *
thread_rec(Recorder *r)
{
    ThreadRec *t = PyThread_tss_get(&r->tss);
    return t != NULL ? t : thread_rec_new(r);
}

static int
push(ThreadRec *t, Function *fn, Activation *act)
{
    if (t->depth == t->capacity) {
        Py_ssize_t capacity = t->capacity ? t->capacity * 2 : 64;
        Entry *stack = hp_realloc(t->stack, (size_t)capacity * sizeof(Entry));
        if (stack == NULL) {
            return -1;
        }
        t->stack = stack;
        t->capacity = capacity;
    }
    if (fn->index >= t->on_stack_size) {
        Py_ssize_t size = t->on_stack_size ? t->on_stack_size : 64;
        while (size <= fn->index) {
            size *= 2;
        }
        int32_t *counts = hp_realloc(t->on_stack, (size_t)size * sizeof(int32_t));
        if (counts == NULL) {
            return -1;
        }
        memset(counts + t->on_stack_size, 0,
               (size_t)(size - t->on_stack_size) * sizeof(int32_t));
        t->on_stack = counts;
        t->on_stack_size = size;
    }
    Entry *e = &t->stack[t->depth++];
    e->fn = fn;
    e->act = act;
    e->code = fn->code;
    t->on_stack[fn->index]++;
    if (act != NULL) {
        act->on_stack = 1;
    }
    e->start_allocs = t->event_allocs;
    e->start_ns = now_ns(); /* last: hotpath's bookkeeping is not the call's time */
    return 0;
}

/* Takes the top entry off; its activation stays alive until act_release. */
static Entry
pop(ThreadRec *t)
{
    Entry e = t->stack[--t->depth];
    t->on_stack[e.fn->index]--;
    if (e.act != NULL) {
        e.act->on_stack = 0;
    }
    return e;
}

static inline void
allocs_add(Allocs *to, Allocs more)
{
    to->count += more.count;
    to->bytes += more.bytes;
}

/* a - b, never below zero: totals only grow, but a release() could in principle put back
   totals older than an entry that started inside the held stretch. */
static inline Allocs
allocs_between(Allocs start, Allocs now)
{
    Allocs used = {now.count > start.count ? now.count - start.count : 0,
                   now.bytes > start.bytes ? now.bytes - start.bytes : 0};
    return used;
}

/* What the program allocated in this thread since the entry started, up to this event. */
static inline Allocs
allocs_since(const ThreadRec *t, const Entry *e)
{
    return allocs_between(e->start_allocs, t->event_allocs);
}

/* Time and allocations in a callee belong to the caller's child figures. */
static inline void
credit_caller(ThreadRec *t, int64_t ns, Allocs allocs)
{
    if (t->depth > 0) {
        Entry *caller = &t->stack[t->depth - 1];
        if (caller->act != NULL) {
            caller->act->child_ns += ns;
            allocs_add(&caller->act->child_allocs, allocs);
        }
        else {
            caller->fn->child_ns += ns;
            allocs_add(&caller->fn->alloc_child, allocs);
        }
    }
}

static int
ensure_identity(Recorder *r, ThreadRec *t)
{
    if (t->identity != NULL) {
        return 0;
    }
    PyObject *identity = PyObject_CallNoArgs(r->new_identity);
    if (identity == NULL) {
        return -1;
    }
    if (t->identity == NULL) {
        t->identity = identity;
    }
    else {
        Py_DECREF(identity);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Verdicts, once per code object.                                                           */

#define REJECTED ((Function *)1)

static Function *
verdict(Recorder *r, PyObject *code)
{
    void *extra = NULL;
    if (PyUnstable_Code_GetExtra(code, r->code_index, &extra) < 0) {
        PyErr_Clear();
        return NULL;
    }
    uintptr_t value = (uintptr_t)extra;
    if ((value >> SLOT_BITS) != r->tag) {
        return NULL; /* undecided */
    }
    uintptr_t slot = value & SLOT_MASK;
    if (slot == SLOT_REJECTED) {
        return REJECTED;
    }
    return r->functions[slot - 2];
}

static void
set_verdict(Recorder *r, PyObject *code, uintptr_t slot)
{
    if (PyUnstable_Code_SetExtra(code, r->code_index, (void *)((r->tag << SLOT_BITS) | slot)) < 0) {
        PyErr_Clear(); /* decided again next time */
    }
}

/* The frame an event is about (new reference), or NULL; found by its code, not by depth. */
static PyFrameObject *
frame_of(PyObject *code)
{
    PyFrameObject *frame = PyEval_GetFrame();
    Py_XINCREF(frame);
    for (int i = 0; frame != NULL && i < FRAME_WALK; i++) {
        PyCodeObject *its = PyFrame_GetCode(frame);
        Py_DECREF(its);
        if ((PyObject *)its == code) {
            return frame;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    return NULL;
}

static Function *
function_new(Recorder *r, PyObject *info, PyObject *code)
{
    if (r->nfunctions >= MAX_FUNCTIONS) {
        return NULL;
    }
    if (r->nfunctions == r->cfunctions) {
        Py_ssize_t capacity = r->cfunctions ? r->cfunctions * 2 : 64;
        Function **grown = hp_realloc(r->functions, (size_t)capacity * sizeof(Function *));
        if (grown == NULL) {
            return NULL;
        }
        r->functions = grown;
        r->cfunctions = capacity;
    }
    Function *fn = hp_calloc(1, sizeof(Function));
    if (fn == NULL) {
        return NULL;
    }
    int flags = ((PyCodeObject *)code)->co_flags;
    fn->info = Py_NewRef(info);
    fn->code = code;
    fn->coroutine = (flags & CO_CORO) != 0;
    fn->async_gen = (flags & CO_ASYNC_GEN) != 0;
    fn->generator = (flags & (CO_GEN | CO_CORO | CO_ASYNC_GEN)) != 0;
    fn->index = r->nfunctions;
    r->functions[r->nfunctions++] = fn;
    return fn;
}

/* The function timed for this code: NULL with an error set, or REJECTED. */
static Function *
decide(Recorder *r, PyObject *code)
{
    PyFrameObject *frame = frame_of(code);
    PyObject *info = PyObject_CallFunctionObjArgs(
        r->decide, code, frame != NULL ? (PyObject *)frame : Py_None, NULL);
    Py_XDECREF(frame);
    if (info == NULL) {
        return NULL;
    }
    /* decide() ran Python: another thread may have decided this code meanwhile. */
    Function *fn = verdict(r, code);
    if (fn == NULL) {
        if (info == Py_None) {
            set_verdict(r, code, SLOT_REJECTED);
            fn = REJECTED;
        }
        else {
            fn = function_new(r, info, code);
            if (fn == NULL) {
                Py_DECREF(info);
                if (!PyErr_Occurred()) {
                    PyErr_NoMemory();
                }
                return NULL;
            }
            set_verdict(r, code, (uintptr_t)fn->index + 2);
        }
    }
    Py_DECREF(info);
    return fn;
}

/* A verdict, deciding it if needed; NULL with an error set when the event must be given up. */
static Function *
lookup(Recorder *r, PyObject *code)
{
    Function *fn = verdict(r, code);
    return fn != NULL ? fn : decide(r, code);
}

/* ---------------------------------------------------------------------------------------- */
/* Finished calls.                                                                           */

static PyObject *
type_name(PyObject *exception)
{
    return PyType_GetName(Py_TYPE(exception));
}

static void
count_error(Function *fn, PyObject *outcome)
{
    fn->errors++;
    /* Copy, change, replace: read() may hold the old dict and copies none. */
    PyObject *types = fn->error_types != NULL ? PyDict_Copy(fn->error_types) : PyDict_New();
    if (types == NULL) {
        PyErr_Clear();
        return;
    }
    PyObject *count = PyDict_GetItemWithError(types, outcome);
    long long so_far = count != NULL ? PyLong_AsLongLong(count) : 0;
    PyObject *updated = PyLong_FromLongLong(so_far + 1);
    if (updated == NULL || PyDict_SetItem(types, outcome, updated) < 0) {
        PyErr_Clear();
        Py_XDECREF(updated);
        Py_DECREF(types);
        return;
    }
    Py_DECREF(updated);
    Py_XSETREF(fn->error_types, types);
}

static void
finish_call(Recorder *r, ThreadRec *t, Function *fn, int64_t duration, int64_t end,
            PyObject *outcome, Allocs allocs)
{
    if (fn->completed == 0 || duration < fn->min_ns) {
        fn->min_ns = duration;
    }
    if (duration > fn->max_ns) {
        fn->max_ns = duration;
    }
    if (fn->completed < EXACT_CALLS) {
        fn->first[fn->completed] = duration;
    }
    fn->completed++;
    fn->all_ns += duration;
    histogram_add(&r->buckets, &fn->durations, duration);
    if (r->count_allocations) {
        allocs_add(&fn->alloc_all, allocs);
        if (fn->alloc_bytes == NULL) {
            fn->alloc_bytes = hp_calloc(1, sizeof(Histogram));
        }
        if (fn->alloc_bytes != NULL) {
            histogram_add(&r->buckets, fn->alloc_bytes, (int64_t)allocs.bytes);
        }
    }
    if (r->log_limit > 0 && t->identity != NULL) {
        if (fn->log == NULL) {
            fn->log = hp_calloc((size_t)r->log_limit, sizeof(LoggedCall));
        }
        if (fn->log != NULL) {
            LoggedCall *slot = &fn->log[fn->log_next];
            PyObject *old_thread = slot->thread, *old_outcome = slot->outcome;
            slot->end_ns = end;
            slot->duration_ns = duration;
            slot->thread = Py_NewRef(t->identity);
            slot->outcome = Py_XNewRef(outcome);
            slot->allocations = allocs.count;
            slot->allocated_bytes = allocs.bytes;
            if (++fn->log_next == r->log_limit) {
                fn->log_next = 0;
            }
            if (fn->log_count < r->log_limit) {
                fn->log_count++;
            }
            Py_XDECREF(old_thread); /* last: a destructor may run Python */
            Py_XDECREF(old_outcome);
        }
    }
    if (outcome != NULL) {
        count_error(fn, outcome);
    }
}

/* Calls listener.NAME(args...); an Exception is swallowed, anything else kept to re-raise. */
static PyObject *
notify(Recorder *r, PyObject *name, PyObject *a, PyObject *b, PyObject **raised)
{
    PyObject *method = PyObject_GetAttr(r->listener, name);
    PyObject *result = NULL;
    if (method != NULL) {
        result = b != NULL ? PyObject_CallFunctionObjArgs(method, a, b, NULL)
                           : PyObject_CallOneArg(method, a);
        Py_DECREF(method);
    }
    if (result == NULL) {
        if (give_up(r) < 0 && *raised == NULL) {
            *raised = PyErr_GetRaisedException();
        }
        PyErr_Clear();
    }
    return result;
}

static void
report_progress(Recorder *r, Activation *act)
{
    PyObject *active = PyLong_FromLongLong(act->active_ns);
    PyObject *polls = PyLong_FromLongLong(act->polls);
    if (active == NULL || polls == NULL ||
        PyObject_SetAttr(act->watcher, r->s_active_ns, active) < 0 ||
        PyObject_SetAttr(act->watcher, r->s_polls, polls) < 0) {
        r->given_up++;
        PyErr_Clear();
    }
    Py_XDECREF(active);
    Py_XDECREF(polls);
}

/* The end of a generator's or coroutine's call: its last segment was just popped. */
static void
close_activation(Recorder *r, ThreadRec *t, Activation *act, int64_t now, int64_t resumed,
                 Allocs segment, PyObject *outcome, PyObject **raised)
{
    Function *fn = act->fn;
    int64_t running = now - resumed;
    act->active_ns += running;
    allocs_add(&act->allocs, segment);
    credit_caller(t, running, segment);
    act_unmap(r, act);
    act->on_stack = 1; /* kept alive across the Python calls below */
    if (act->watcher != NULL) {
        report_progress(r, act);
    }
    if (act->stream != NULL) {
        PyObject *done = notify(r, r->s_stream_ended, act->stream,
                                act->error != NULL ? act->error : Py_None, raised);
        Py_XDECREF(done);
    }
    int64_t duration = now - act->start_ns;
    fn->active_ns += act->active_ns;
    fn->child_ns += act->child_ns;
    allocs_add(&fn->alloc_child, act->child_allocs);
    /* Recursion: an enclosing call of the same function already counts this time. */
    if (t->on_stack[fn->index] == 0) {
        fn->total_ns += duration;
        allocs_add(&fn->alloc_total, act->allocs);
    }
    finish_call(r, t, fn, duration, now, outcome, act->allocs);
    act->on_stack = 0;
    act_release(act);
}

static int
first_referent(PyObject *referent, void *found)
{
    if (*(PyObject **)found == NULL) {
        *(PyObject **)found = referent;
    }
    return 0;
}

/* An async generator's item (new reference), or NULL when the value is an await's: an item
   comes wrapped in async_generator_wrapped_value (see Listener.stream_yielded), whose one
   referent, as its tp_traverse visits it, is the item. No Python runs to find it. */
static PyObject *
wrapped_item(PyObject *value)
{
    PyTypeObject *type = Py_TYPE(value);
    if (strcmp(type->tp_name, "async_generator_wrapped_value") != 0 || type->tp_traverse == NULL) {
        return NULL;
    }
    PyObject *item = NULL;
    type->tp_traverse(value, first_referent, &item);
    return Py_XNewRef(item);
}

/* The common end of PY_RETURN and PY_UNWIND; the top entry is this code's. */
static void
end_top(Recorder *r, ThreadRec *t, int64_t now, PyObject *outcome, PyObject **raised)
{
    Entry e = pop(t);
    Allocs used = allocs_since(t, &e);
    if (e.act != NULL) {
        close_activation(r, t, e.act, now, e.start_ns, used, outcome, raised);
        return;
    }
    int64_t duration = now - e.start_ns;
    if (t->on_stack[e.fn->index] == 0) {
        e.fn->total_ns += duration;
        allocs_add(&e.fn->alloc_total, used);
    }
    credit_caller(t, duration, used);
    finish_call(r, t, e.fn, duration, now, outcome, used);
}

/* An end whose start is not on top of this thread's stack. Returns 1 when the top is now
   this code's entry, 0 when there is nothing to end, -1 on an error to propagate. */
static int
resynchronise(Recorder *r, ThreadRec *t, PyObject *code, Function **found)
{
    Function *fn = lookup(r, code);
    *found = fn;
    if (fn == NULL) {
        return give_up(r);
    }
    if (fn == REJECTED) {
        return 0;
    }
    for (Py_ssize_t i = t->depth - 1; i >= 0; i--) {
        if (t->stack[i].code == code) {
            /* The entries above it missed their ends: drop them. */
            while (t->depth > i + 1) {
                Entry dropped = pop(t);
                if (dropped.act != NULL) {
                    act_release(dropped.act);
                }
            }
            return 1;
        }
    }
    return 0; /* started before hotpath was watching */
}

/* ---------------------------------------------------------------------------------------- */
/* Generators and coroutines.                                                               */

static int
open_activation(Recorder *r, ThreadRec *t, Function *fn, PyFrameObject *frame,
                PyObject **raised)
{
    Activation *act = hp_calloc(1, sizeof(Activation));
    if (act == NULL) {
        return -1;
    }
    void *key = frame;
    act->fn = fn;
    act->key = key;
    /* A weak reference to the generator: 3.13 sends no event when one suspended outside any
       try is closed or collected, and read() must not count it as running for ever. The
       frame is this generator-like code's own, so it has a generator. */
    PyObject *generator = PyFrame_GetGenerator(frame);
    if (generator != NULL) {
        act->generator = PyWeakref_NewRef(generator, NULL);
        Py_DECREF(generator);
    }
    if (act->generator == NULL) {
        PyErr_Clear(); /* then it counts as running until it ends or is evicted */
    }
    act->start_ns = now_ns();
    fn->starts++;
    /* Not yet reachable by any other thread while the listener runs Python. */
    if (r->listener != Py_None) {
        if (fn->coroutine) {
            PyObject *frame_id = PyLong_FromVoidPtr(key);
            if (frame_id != NULL) {
                PyObject *watcher = notify(r, r->s_task_started, frame_id, NULL, raised);
                Py_DECREF(frame_id);
                if (watcher != NULL && watcher != Py_None) {
                    act->watcher = watcher;
                    act->polls = 1;
                    report_progress(r, act);
                }
                else {
                    Py_XDECREF(watcher);
                }
            }
            else {
                PyErr_Clear();
            }
        }
        if (fn->async_gen) {
            PyObject *stream = notify(r, r->s_stream_opened, fn->info, NULL, raised);
            if (stream != NULL && stream != Py_None) {
                act->stream = stream;
            }
            else {
                Py_XDECREF(stream);
            }
        }
    }
    if (act_map(r, act) < 0 || push(t, fn, act) < 0) {
        act_unmap(r, act);
        act_free(act);
        return -1;
    }
    return 0;
}

static PyObject *
finish_event(PyObject *result, PyObject *raised)
{
    if (raised != NULL) {
        Py_XDECREF(result);
        PyErr_SetRaisedException(raised);
        return NULL;
    }
    return result;
}

/* PY_RESUME and PY_THROW: a generator or coroutine runs again, or for the first time under
   hotpath (started before it watched, or its activation was evicted): then counted anew. */
static PyObject *
resume(Recorder *r, ThreadRec *t, PyObject *code, int can_disable)
{
    /* Before the activation is looked up: making the identity runs Python, and meanwhile
       another thread could evict an activation that is not on a stack. */
    if (t->identity == NULL && ensure_identity(r, t) < 0 && give_up(r) < 0) {
        return NULL;
    }
    PyFrameObject *frame = frame_of(code); /* the generator holds it: only its address stays */
    Activation *act = frame != NULL ? map_get(&r->acts, frame) : NULL;
    PyObject *raised = NULL;
    if (act == NULL || act->fn->code != code) {
        Function *fn = lookup(r, code);
        if (fn == NULL || fn == REJECTED || frame == NULL) {
            Py_XDECREF(frame);
            if (fn == NULL) {
                return give_up(r) < 0 ? NULL : Py_NewRef(Py_None);
            }
            return Py_NewRef(can_disable && fn == REJECTED ? r->disable : Py_None);
        }
        if (open_activation(r, t, fn, frame, &raised) < 0) {
            r->given_up++;
        }
        Py_DECREF(frame);
        return finish_event(Py_NewRef(Py_None), raised);
    }
    Py_XDECREF(frame);
    if (act->on_stack) {
        return Py_NewRef(Py_None); /* already running: an event we cannot place */
    }
    if (act->watcher != NULL) {
        act->polls++;
    }
    if (push(t, act->fn, act) < 0) {
        r->given_up++;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------- */
/* The callbacks. Each one finds the thread's record with enter() and returns through
   leave(), so that what hotpath allocates in between is not counted as the program's.      */

static inline ThreadRec *
enter(Recorder *r)
{
    ThreadRec *t = thread_rec(r);
    if (t != NULL) {
        t->event_allocs = t->allocs;
    }
    return t;
}

static inline PyObject *
leave(ThreadRec *t, PyObject *result)
{
    t->allocs = t->event_allocs;
    return result;
}

static PyObject *
start_call(Recorder *r, ThreadRec *t, PyObject *code, Function *fn)
{
    if (fn == NULL || t->identity == NULL) {
        if (fn == NULL) {
            fn = decide(r, code);
            if (fn == NULL) {
                return give_up(r) < 0 ? NULL : Py_NewRef(Py_None);
            }
            if (fn == REJECTED) {
                return Py_NewRef(r->disable);
            }
        }
        /* The thread's first timed call: it runs inside Thread.run, so it is registered. */
        if (ensure_identity(r, t) < 0 && give_up(r) < 0) {
            return NULL;
        }
    }
    if (fn->generator) {
        PyFrameObject *frame = frame_of(code);
        PyObject *raised = NULL;
        if (frame != NULL && open_activation(r, t, fn, frame, &raised) < 0) {
            r->given_up++;
        }
        Py_XDECREF(frame);
        return finish_event(Py_NewRef(Py_None), raised);
    }
    if (push(t, fn, NULL) < 0) {
        r->given_up++;
    }
    Py_RETURN_NONE;
}

static PyObject *
on_start(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        Py_RETURN_NONE;
    }
    PyObject *code = args[0];
    Function *fn = verdict(r, code);
    if (fn == REJECTED) {
        return Py_NewRef(r->disable);
    }
    ThreadRec *t = enter(r);
    if (t == NULL) {
        return give_up(r) < 0 ? NULL : Py_NewRef(Py_None);
    }
    return leave(t, start_call(r, t, code, fn));
}

static PyObject *
end_call(Recorder *r, ThreadRec *t, PyObject *const *args, int64_t now, int unwinding)
{
    PyObject *code = args[0];
    if (t->depth == 0 || t->stack[t->depth - 1].code != code) {
        Function *fn;
        int found = resynchronise(r, t, code, &fn);
        if (found < 0) {
            return NULL;
        }
        if (found == 0) {
            /* Never DISABLE from PY_UNWIND: sys.monitoring raises and drops the callback. */
            return Py_NewRef(fn == REJECTED && !unwinding ? r->disable : Py_None);
        }
    }
    PyObject *outcome = NULL;
    if (unwinding) {
        outcome = type_name(args[2]);
        if (outcome == NULL) {
            PyErr_Clear();
        }
        Activation *act = t->stack[t->depth - 1].act;
        if (act != NULL && outcome != NULL) {
            Py_XSETREF(act->error, Py_NewRef(outcome));
        }
    }
    PyObject *raised = NULL;
    end_top(r, t, now, outcome, &raised);
    Py_XDECREF(outcome);
    return finish_event(Py_NewRef(Py_None), raised);
}


static PyObject *
resume_event(Recorder *r, PyObject *const *args, Py_ssize_t nargs, int can_disable)
{
    if (nargs < 1) {
        Py_RETURN_NONE;
    }
    ThreadRec *t = enter(r);
    if (t == NULL) {
        return give_up(r) < 0 ? NULL : Py_NewRef(Py_None);
    }
    return leave(t, resume(r, t, args[0], can_disable));
}

static PyObject *
on_resume(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    return resume_event(r, args, nargs, 1);
}

static PyObject *
on_throw(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    return resume_event(r, args, nargs, 0); /* PY_THROW never DISABLEs */
}

static PyObject *
yield_call(Recorder *r, ThreadRec *t, PyObject *const *args, int64_t now)
{
    PyObject *code = args[0];
    if (t->depth == 0 || t->stack[t->depth - 1].code != code ||
        t->stack[t->depth - 1].act == NULL) {
        Function *fn = lookup(r, code);
        if (fn == NULL) {
            return give_up(r) < 0 ? NULL : Py_NewRef(Py_None);
        }
        return Py_NewRef(fn == REJECTED ? r->disable : Py_None);
    }
    Entry e = pop(t);
    Activation *act = e.act;
    int64_t running = now - e.start_ns;
    Allocs segment = allocs_since(t, &e);
    act->active_ns += running;
    allocs_add(&act->allocs, segment);
    credit_caller(t, running, segment);
    act->on_stack = 1; /* kept alive across the Python calls below */
    PyObject *raised = NULL;
    if (act->watcher != NULL) {
        report_progress(r, act);
    }
    if (act->stream != NULL) {
        PyObject *item = wrapped_item(args[2]);
        if (item != NULL) {
            PyObject *done = notify(r, r->s_stream_yielded, act->stream, item, &raised);
            Py_XDECREF(done);
            Py_DECREF(item);
        }
    }
    act->on_stack = 0;
    act_release(act);
    return finish_event(Py_NewRef(Py_None), raised);
}

enum leaving { RETURNED, UNWOUND, YIELDED };

/* PY_RETURN, PY_UNWIND and PY_YIELD: the code on top of the thread's stack stops running. */
static PyObject *
leaving_event(Recorder *r, PyObject *const *args, Py_ssize_t nargs, enum leaving how)
{
    int64_t now = now_ns(); /* first: hotpath's work is not the call's time */
    if (nargs < 3) {
        Py_RETURN_NONE;
    }
    ThreadRec *t = enter(r);
    if (t == NULL) {
        return give_up(r) < 0 ? NULL : Py_NewRef(Py_None);
    }
    return leave(t, how == YIELDED ? yield_call(r, t, args, now)
                                   : end_call(r, t, args, now, how == UNWOUND));
}

static PyObject *
on_return(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    return leaving_event(r, args, nargs, RETURNED);
}

static PyObject *
on_unwind(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    return leaving_event(r, args, nargs, UNWOUND);
}

static PyObject *
on_yield(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    return leaving_event(r, args, nargs, YIELDED);
}

/* ---------------------------------------------------------------------------------------- */
/* Reading. Phase one copies into C memory (no Python object is made, so no other thread
   runs); phase two builds the answer from the copy.                                        */

typedef struct {
    Function *fn;
    PyObject *info, *error_types; /* strong */
    int64_t completed, all_ns, total_ns, child_ns, active_ns, starts, errors, min_ns, max_ns;
    int64_t first[EXACT_CALLS];
    /* Calls in progress: how many, their inclusive time so far (outermost ones), their own
       running time (plain calls: every one, as all_ns; generators: active), and the time of
       profiled callees still running or finished inside them. */
    int64_t running, running_ns, running_own_ns, running_child_ns;
    Allocs running_alloc_total, running_alloc_own, running_alloc_child; /* the same, counted */
    HistogramCopy durations, alloc_bytes;
    Allocs alloc_all, alloc_total, alloc_child;
} FunctionCopy;

static PyObject *
Recorder_read(Recorder *r, PyObject *arg)
{
    int64_t now = PyLong_AsLongLong(arg);
    if (now == -1 && PyErr_Occurred()) {
        return NULL;
    }
    sweep_ended(r);
    Py_ssize_t n = r->nfunctions;
    FunctionCopy *copies = hp_calloc((size_t)(n ? n : 1), sizeof(FunctionCopy));
    if (copies == NULL) {
        return PyErr_NoMemory();
    }
    /* Phase one. */
    int failed = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Function *fn = r->functions[i];
        FunctionCopy *c = &copies[i];
        c->fn = fn;
        c->info = Py_NewRef(fn->info);
        c->error_types = Py_XNewRef(fn->error_types);
        c->completed = fn->completed;
        memcpy(c->first, fn->first, sizeof c->first);
        c->all_ns = fn->all_ns;
        c->total_ns = fn->total_ns;
        c->child_ns = fn->child_ns;
        c->active_ns = fn->active_ns;
        c->starts = fn->starts;
        c->errors = fn->errors;
        c->min_ns = fn->min_ns;
        c->max_ns = fn->max_ns;
        c->alloc_all = fn->alloc_all;
        c->alloc_total = fn->alloc_total;
        c->alloc_child = fn->alloc_child;
        if (histogram_copy(&c->durations, &fn->durations) < 0 ||
            (fn->alloc_bytes != NULL && histogram_copy(&c->alloc_bytes, fn->alloc_bytes) < 0)) {
            failed = 1;
            break;
        }
    }
    /* Calls in progress, counted up to now. On the stacks: plain calls (the outermost one of
       a function on each thread gives its inclusive time), the running segments of
       generators, and what each entry adds to its caller's child time. */
    for (ThreadRec *t = r->threads; t != NULL && !failed; t = t->next) {
        uint64_t mark = ++r->read_marks;
        for (Py_ssize_t d = 0; d < t->depth; d++) {
            Entry *e = &t->stack[d];
            if (e->fn->index >= n) {
                continue;
            }
            FunctionCopy *c = &copies[e->fn->index];
            int64_t so_far = now - e->start_ns;
            /* Another thread's totals, read without its help: plain integers, and monotonic
               (a callback puts back only what it added itself). */
            Allocs used = allocs_between(e->start_allocs, t->allocs);
            c->running_own_ns += so_far;
            allocs_add(&c->running_alloc_own, used);
            if (d > 0 && t->stack[d - 1].fn->index < n) {
                FunctionCopy *caller = &copies[t->stack[d - 1].fn->index];
                caller->running_child_ns += so_far;
                allocs_add(&caller->running_alloc_child, used);
            }
            if (e->act != NULL) {
                allocs_add(&c->running_alloc_total, used); /* the rest with its activation */
                continue;
            }
            c->running++;
            if (e->fn->read_mark != mark) {
                e->fn->read_mark = mark;
                c->running_ns += so_far;
                allocs_add(&c->running_alloc_total, used);
            }
        }
    }
    /* Generators and coroutines started and not finished, from their starts. */
    for (Activation *act = r->oldest; act != NULL && !failed; act = act->newer) {
        if (act->fn->index >= n) {
            continue;
        }
        FunctionCopy *c = &copies[act->fn->index];
        c->running++;
        c->running_ns += now - act->start_ns;
        c->running_own_ns += act->active_ns;
        c->running_child_ns += act->child_ns;
        allocs_add(&c->running_alloc_total, act->allocs);
        allocs_add(&c->running_alloc_own, act->allocs);
        allocs_add(&c->running_alloc_child, act->child_allocs);
    }
    /* Phase two. */
    PyObject *result = failed ? NULL : PyList_New(n);
    for (Py_ssize_t i = 0; i < n && result != NULL; i++) {
        FunctionCopy *c = &copies[i];
        PyObject *buckets = buckets_dict(&c->durations);
        PyObject *first = Py_NewRef(Py_None);
        if (c->completed <= EXACT_CALLS) {
            Py_SETREF(first, PyList_New((Py_ssize_t)c->completed));
            for (Py_ssize_t k = 0; first != NULL && k < (Py_ssize_t)c->completed; k++) {
                PyObject *value = PyLong_FromLongLong(c->first[k]);
                if (value == NULL) {
                    Py_CLEAR(first);
                    break;
                }
                PyList_SET_ITEM(first, k, value);
            }
        }
        PyObject *allocs = NULL;
        if (!r->count_allocations) {
            allocs = Py_NewRef(Py_None);
        }
        else {
            PyObject *alloc_buckets = buckets_dict(&c->alloc_bytes);
            allocs = alloc_buckets == NULL ? NULL : Py_BuildValue(
                "((KK)(KK)(KK)O(KK)(KK)(KK))", (unsigned long long)c->alloc_all.count,
                (unsigned long long)c->alloc_all.bytes, (unsigned long long)c->alloc_total.count,
                (unsigned long long)c->alloc_total.bytes, (unsigned long long)c->alloc_child.count,
                (unsigned long long)c->alloc_child.bytes, alloc_buckets,
                (unsigned long long)c->running_alloc_total.count,
                (unsigned long long)c->running_alloc_total.bytes,
                (unsigned long long)c->running_alloc_own.count,
                (unsigned long long)c->running_alloc_own.bytes,
                (unsigned long long)c->running_alloc_child.count,
                (unsigned long long)c->running_alloc_child.bytes);
            Py_XDECREF(alloc_buckets);
        }
        PyObject *row = buckets == NULL || first == NULL || allocs == NULL ? NULL : Py_BuildValue(
            "(OLLLLLLLLLOOO(LLLL)O)", c->info, (long long)c->completed, (long long)c->all_ns,
            (long long)c->total_ns, (long long)c->child_ns, (long long)c->active_ns,
            (long long)c->starts, (long long)c->errors, (long long)c->min_ns,
            (long long)c->max_ns, c->error_types != NULL ? c->error_types : Py_None, buckets,
            first, (long long)c->running, (long long)c->running_ns, (long long)c->running_own_ns,
            (long long)c->running_child_ns, allocs);
        Py_XDECREF(buckets);
        Py_XDECREF(first);
        Py_XDECREF(allocs);
        if (row == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, i, row);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(copies[i].info);
        Py_XDECREF(copies[i].error_types);
        hp_free(copies[i].durations.buckets);
        hp_free(copies[i].alloc_bytes.buckets);
    }
    hp_free(copies);
    if (failed && !PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    return result;
}

/* recent(info, limit): the newest calls of that function, oldest first, as tuples
   (end_ns, duration_ns, thread identity, outcome or None, (allocations, bytes) or None). */
static PyObject *
Recorder_recent(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "recent(info, limit)");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Function *fn = NULL;
    for (Py_ssize_t i = 0; i < r->nfunctions; i++) {
        if (r->functions[i]->info == args[0]) {
            fn = r->functions[i];
            break;
        }
    }
    if (fn == NULL || fn->log == NULL || limit <= 0) {
        return PyList_New(0);
    }
    Py_ssize_t count = fn->log_count < limit ? fn->log_count : limit;
    LoggedCall *copy = hp_calloc((size_t)(count ? count : 1), sizeof(LoggedCall));
    if (copy == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_ssize_t at = (fn->log_next - count + k + r->log_limit) % r->log_limit;
        copy[k] = fn->log[at];
        Py_INCREF(copy[k].thread);
        Py_XINCREF(copy[k].outcome);
    }
    PyObject *result = PyList_New(count);
    for (Py_ssize_t k = 0; k < count && result != NULL; k++) {
        PyObject *allocs = r->count_allocations
                               ? Py_BuildValue("(KK)", (unsigned long long)copy[k].allocations,
                                               (unsigned long long)copy[k].allocated_bytes)
                               : Py_NewRef(Py_None);
        PyObject *row = allocs == NULL ? NULL : Py_BuildValue(
            "(LLOOO)", (long long)copy[k].end_ns, (long long)copy[k].duration_ns,
            copy[k].thread, copy[k].outcome != NULL ? copy[k].outcome : Py_None, allocs);
        Py_XDECREF(allocs);
        if (row == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, k, row);
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_DECREF(copy[k].thread);
        Py_XDECREF(copy[k].outcome);
    }
    hp_free(copy);
    return result;
}

typedef struct {
    unsigned long native_id;
    Allocs allocs;
    int alive;
} ThreadAllocs;

/* thread_allocations(): (native id, requests, bytes, alive) per thread with a record, and per
   thread among the last ENDED_THREADS that ended. */
static PyObject *
Recorder_thread_allocations(Recorder *r, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t n = r->ended_count;
    for (ThreadRec *t = r->threads; t != NULL; t = t->next) {
        n++;
    }
    ThreadAllocs *copy = hp_calloc((size_t)(n ? n : 1), sizeof(ThreadAllocs));
    if (copy == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < r->ended_count; i++, k++) {
        copy[k].native_id = r->ended[i].native_id;
        copy[k].allocs = r->ended[i].allocs;
    }
    for (ThreadRec *t = r->threads; t != NULL; t = t->next, k++) {
        copy[k].native_id = t->native_id;
        copy[k].allocs = t->allocs;
        copy[k].alive = 1;
    }
    PyObject *result = PyList_New(n);
    for (k = 0; k < n && result != NULL; k++) {
        PyObject *row = Py_BuildValue("(kKKO)", copy[k].native_id,
                                      (unsigned long long)copy[k].allocs.count,
                                      (unsigned long long)copy[k].allocs.bytes,
                                      copy[k].alive ? Py_True : Py_False);
        if (row == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, k, row);
    }
    hp_free(copy);
    return result;
}

/* start_counting(): the allocator hooks count for this Recorder from now on. */
static PyObject *
Recorder_start_counting(Recorder *r, PyObject *Py_UNUSED(ignored))
{
    if (!r->count_allocations) {
        PyErr_SetString(PyExc_RuntimeError, "this recorder was made without count_allocations");
        return NULL;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        PyErr_SetString(PyExc_RuntimeError, "allocations are counted in the main interpreter only");
        return NULL;
    }
    if (hook.counting == r) {
        Py_RETURN_NONE;
    }
    if (hook.counting != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "another recorder is counting allocations");
        return NULL;
    }
    /* The calling thread's record first: its allocations count from here. */
    if (thread_rec(r) == NULL) {
        PyErr_Clear();
        r->given_up++;
    }
    hook_install();
    hook.counting = (Recorder *)Py_NewRef(r);
    Py_RETURN_NONE;
}

/* held_call(func, *args): func(*args), and what the calling thread allocates meanwhile is
   hotpath's (the asyncio collectors' records, made in the program's calls): not counted.
   Called through vectorcall, so that no argument tuple is made outside the held stretch (a
   Python wrapper's *args was one, counted). Nested calls put back at the outermost one. A
   thread with no record counts nothing anyway. */
static PyObject *
Recorder_held_call(Recorder *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "held_call(func, *args)");
        return NULL;
    }
    ThreadRec *t = r->tss_ready ? PyThread_tss_get(&r->tss) : NULL;
    if (t != NULL && t->holding++ == 0) {
        t->held = t->allocs;
    }
    PyObject *result = PyObject_Vectorcall(args[0], args + 1, (size_t)(nargs - 1), NULL);
    /* The same thread's record: a thread's record is freed only at that thread's end. */
    if (t != NULL && t->holding > 0 && --t->holding == 0) {
        t->allocs = t->held;
    }
    return result;
}

/* stop_counting(): no more counting for this Recorder; its figures stay readable. */
static PyObject *
Recorder_stop_counting(Recorder *r, PyObject *Py_UNUSED(ignored))
{
    hook_release(r);
    Py_RETURN_NONE;
}

static PyObject *
Recorder_live_threads(Recorder *r, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t count = 0;
    for (ThreadRec *t = r->threads; t != NULL; t = t->next) {
        count++;
    }
    return PyLong_FromSsize_t(count);
}

static PyObject *
Recorder_open_activations(Recorder *r, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(r->acts.used);
}

static PyObject *
Recorder_given_up(Recorder *r, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(r->given_up);
}

static PyObject *
clock_ns(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(now_ns());
}

/* group_traces(traces): live memory by allocation site from tracemalloc's raw traces (the list
   tracemalloc._get_traces() returns: (domain, size, frames, total frames), newest frame first)
   -> {(filename, lineno): (bytes, blocks)} of each trace's newest frame. The same sums as
   Snapshot.statistics("lineno"), about ten times faster: that groups in Python, 1.3 s for a
   million traces here, which would make a program's exit wait. */
static PyObject *
group_traces(PyObject *Py_UNUSED(module), PyObject *traces)
{
    /* A list (what tracemalloc gives) is used as it is, not copied. */
    PyObject *items = PySequence_Fast(traces, "group_traces() takes a sequence");
    if (items == NULL) {
        return NULL;
    }
    PyObject *index = PyDict_New(); /* site -> position in the arrays below */
    PyObject *result = NULL;
    uint64_t *sums = NULL; /* bytes, blocks for each site */
    Py_ssize_t sites = 0, capacity = 0;
    if (index == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(items); i++) {
        PyObject *trace = PySequence_Fast_GET_ITEM(items, i);
        if (!PyTuple_Check(trace) || PyTuple_GET_SIZE(trace) < 3) {
            continue;
        }
        PyObject *frames = PyTuple_GET_ITEM(trace, 2);
        unsigned long long size = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(trace, 1));
        if ((size == (unsigned long long)-1 && PyErr_Occurred()) || !PyTuple_Check(frames) ||
            PyTuple_GET_SIZE(frames) == 0) {
            PyErr_Clear();
            continue;
        }
        PyObject *site = PyTuple_GET_ITEM(frames, 0);
        PyObject *at = PyDict_GetItemWithError(index, site);
        Py_ssize_t k;
        if (at != NULL) {
            k = PyLong_AsSsize_t(at);
        }
        else {
            if (PyErr_Occurred()) {
                goto done;
            }
            if (sites == capacity) {
                capacity = capacity ? capacity * 2 : 256;
                uint64_t *grown = hp_realloc(sums, (size_t)capacity * 2 * sizeof(uint64_t));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                sums = grown;
            }
            k = sites++;
            sums[2 * k] = sums[2 * k + 1] = 0;
            PyObject *position = PyLong_FromSsize_t(k);
            if (position == NULL || PyDict_SetItem(index, site, position) < 0) {
                Py_XDECREF(position);
                goto done;
            }
            Py_DECREF(position);
        }
        sums[2 * k] += size;
        sums[2 * k + 1]++;
    }
    result = PyDict_New();
    PyObject *site, *at;
    Py_ssize_t pos = 0;
    while (result != NULL && PyDict_Next(index, &pos, &site, &at)) {
        Py_ssize_t k = PyLong_AsSsize_t(at);
        PyObject *figures = Py_BuildValue("(KK)", (unsigned long long)sums[2 * k],
                                          (unsigned long long)sums[2 * k + 1]);
        if (figures == NULL || PyDict_SetItem(result, site, figures) < 0) {
            Py_XDECREF(figures);
            Py_CLEAR(result);
            break;
        }
        Py_DECREF(figures);
    }
done:
    hp_free(sums);
    Py_DECREF(index);
    Py_DECREF(items);
    return result;
}

/* ---------------------------------------------------------------------------------------- */
/* Types and the module.                                                                     */

static PyObject *
Recorder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"decide", "listener", "new_identity", "disable", "log_limit",
                               "max_activations", "count_allocations", NULL};
    PyObject *decide_fn, *listener, *new_identity, *disable;
    Py_ssize_t log_limit, max_activations;
    int count_allocations = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOnn|p", keywords, &decide_fn, &listener,
                                     &new_identity, &disable, &log_limit, &max_activations,
                                     &count_allocations)) {
        return NULL;
    }
    if (log_limit < 0 || max_activations < 1) {
        PyErr_SetString(PyExc_ValueError, "log_limit must be >= 0 and max_activations >= 1");
        return NULL;
    }
    ModuleState *state = PyType_GetModuleState(type);
    if (state == NULL) {
        return NULL;
    }
    Recorder *r = (Recorder *)type->tp_alloc(type, 0);
    if (r == NULL) {
        return NULL;
    }
    r->decide = Py_NewRef(decide_fn);
    r->listener = Py_NewRef(listener);
    r->new_identity = Py_NewRef(new_identity);
    r->disable = Py_NewRef(disable);
    r->guard_type = (PyTypeObject *)Py_NewRef(state->guard_type);
    r->code_index = state->code_index;
    r->log_limit = log_limit;
    r->max_activations = max_activations;
    r->count_allocations = count_allocations;
    bucket_table_init(&r->buckets);
    /* A tag of its own, never 0 (an empty co_extra slot) and within the bits above the slot. */
    uintptr_t tags = (UINTPTR_MAX >> SLOT_BITS);
    r->tag = (uintptr_t)(++state->recorders % tags);
    if (r->tag == 0) {
        r->tag = (uintptr_t)(++state->recorders % tags);
    }
    r->guard_key = PyUnicode_FromFormat("hotpath.recorder.%p.%zu", (void *)r, (size_t)r->tag);
    r->s_task_started = PyUnicode_InternFromString("task_started");
    r->s_stream_opened = PyUnicode_InternFromString("stream_opened");
    r->s_stream_yielded = PyUnicode_InternFromString("stream_yielded");
    r->s_stream_ended = PyUnicode_InternFromString("stream_ended");
    r->s_active_ns = PyUnicode_InternFromString("active_ns");
    r->s_polls = PyUnicode_InternFromString("polls");
    r->s_gi_suspended = PyUnicode_InternFromString("gi_suspended");
    r->s_cr_suspended = PyUnicode_InternFromString("cr_suspended");
    r->s_ag_suspended = PyUnicode_InternFromString("ag_suspended");
    if (r->guard_key == NULL || r->s_task_started == NULL || r->s_stream_opened == NULL ||
        r->s_stream_yielded == NULL || r->s_stream_ended == NULL || r->s_active_ns == NULL ||
        r->s_polls == NULL || r->s_gi_suspended == NULL || r->s_cr_suspended == NULL ||
        r->s_ag_suspended == NULL) {
        Py_DECREF(r);
        return NULL;
    }
    if (PyThread_tss_create(&r->tss) != 0) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "no thread-specific storage left");
        return NULL;
    }
    r->tss_ready = 1;
    return (PyObject *)r;
}

static int
Recorder_traverse(Recorder *r, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(r));
    Py_VISIT(r->decide);
    Py_VISIT(r->listener);
    Py_VISIT(r->new_identity);
    return 0;
}

static int
Recorder_clear(Recorder *r)
{
    Py_CLEAR(r->decide);
    Py_CLEAR(r->listener);
    Py_CLEAR(r->new_identity);
    return 0;
}

static void
Recorder_dealloc(Recorder *r)
{
    PyTypeObject *type = Py_TYPE(r);
    PyObject_GC_UnTrack(r);
    while (r->threads != NULL) {
        ThreadRec *t = r->threads;
        if (t->guard != NULL) {
            ((Guard *)t->guard)->rec = NULL; /* the thread's dict keeps an empty guard */
        }
        thread_rec_free(t);
    }
    while (r->oldest != NULL) {
        Activation *act = r->oldest;
        act_unmap(r, act);
        act_free(act);
    }
    hp_free(r->acts.keys);
    hp_free(r->acts.values);
    for (Py_ssize_t i = 0; i < r->nfunctions; i++) {
        Function *fn = r->functions[i];
        histogram_free(&fn->durations);
        if (fn->alloc_bytes != NULL) {
            histogram_free(fn->alloc_bytes);
            hp_free(fn->alloc_bytes);
        }
        if (fn->log != NULL) {
            for (Py_ssize_t k = 0; k < r->log_limit; k++) {
                Py_XDECREF(fn->log[k].thread);
                Py_XDECREF(fn->log[k].outcome);
            }
            hp_free(fn->log);
        }
        Py_XDECREF(fn->error_types);
        Py_XDECREF(fn->info);
        hp_free(fn);
    }
    hp_free(r->functions);
    if (r->tss_ready) {
        PyThread_tss_delete(&r->tss);
    }
    Recorder_clear(r);
    Py_XDECREF(r->disable);
    Py_XDECREF(r->guard_key);
    Py_XDECREF(r->s_task_started);
    Py_XDECREF(r->s_stream_opened);
    Py_XDECREF(r->s_stream_yielded);
    Py_XDECREF(r->s_stream_ended);
    Py_XDECREF(r->s_active_ns);
    Py_XDECREF(r->s_polls);
    Py_XDECREF(r->s_gi_suspended);
    Py_XDECREF(r->s_cr_suspended);
    Py_XDECREF(r->s_ag_suspended);
    Py_XDECREF(r->guard_type);
    type->tp_free((PyObject *)r);
    Py_DECREF(type);
}

static PyMethodDef Recorder_methods[] = {
    {"on_start", (PyCFunction)(void (*)(void))on_start, METH_FASTCALL, "PY_START callback."},
    {"on_return", (PyCFunction)(void (*)(void))on_return, METH_FASTCALL, "PY_RETURN callback."},
    {"on_unwind", (PyCFunction)(void (*)(void))on_unwind, METH_FASTCALL, "PY_UNWIND callback."},
    {"on_resume", (PyCFunction)(void (*)(void))on_resume, METH_FASTCALL, "PY_RESUME callback."},
    {"on_throw", (PyCFunction)(void (*)(void))on_throw, METH_FASTCALL, "PY_THROW callback."},
    {"on_yield", (PyCFunction)(void (*)(void))on_yield, METH_FASTCALL, "PY_YIELD callback."},
    {"read", (PyCFunction)Recorder_read, METH_O,
     "read(now_ns) -> one tuple per function: (info, completed, all_ns, total_ns, child_ns, "
     "active_ns, starts, errors, min_ns, max_ns, error_types, buckets, durations of the first "
     "calls (while there are at most 16, else None), (running, running_ns, running_own_ns, "
     "running_child_ns), allocations); allocations: None, or ((count, bytes) of every finished "
     "call, of the outermost ones, of callees), the bytes-per-call histogram, and for calls in "
     "progress (outermost), (own), (callees')."},
    {"recent", (PyCFunction)(void (*)(void))Recorder_recent, METH_FASTCALL,
     "recent(info, limit) -> the newest calls, oldest first."},
    {"thread_allocations", (PyCFunction)Recorder_thread_allocations, METH_NOARGS,
     "thread_allocations() -> (native id, requests, bytes requested, alive) per thread."},
    {"start_counting", (PyCFunction)Recorder_start_counting, METH_NOARGS,
     "Count allocations from now on (needs count_allocations=True)."},
    {"stop_counting", (PyCFunction)Recorder_stop_counting, METH_NOARGS,
     "Stop counting allocations; the figures stay."},
    {"held_call", (PyCFunction)(void (*)(void))Recorder_held_call, METH_FASTCALL,
     "held_call(func, *args) -> func(*args), what it allocates not counted as the program's."},
    {"live_threads", (PyCFunction)Recorder_live_threads, METH_NOARGS,
     "Threads with a record: those that fired an event and have not ended."},
    {"open_activations", (PyCFunction)Recorder_open_activations, METH_NOARGS,
     "Generator and coroutine calls started and not finished."},
    {"given_up", (PyCFunction)Recorder_given_up, METH_NOARGS,
     "Events given up (an allocation failed, or deciding raised)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Recorder_slots[] = {
    {Py_tp_doc, "The sys.monitoring callbacks and their tables (see hotpath.recorder)."},
    {Py_tp_new, Recorder_new},
    {Py_tp_dealloc, Recorder_dealloc},
    {Py_tp_traverse, Recorder_traverse},
    {Py_tp_clear, Recorder_clear},
    {Py_tp_methods, Recorder_methods},
    {0, NULL},
};

static PyType_Spec Recorder_spec = {
    .name = "hotpath.recorder._crecorder.Recorder",
    .basicsize = sizeof(Recorder),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Recorder_slots,
};

static void
Guard_dealloc(Guard *g)
{
    PyTypeObject *type = Py_TYPE(g);
    PyObject_GC_UnTrack(g);
    if (g->rec != NULL) {
        ThreadRec *t = g->rec;
        g->rec = NULL;
        thread_rec_free(t);
    }
    PyObject_GC_Del(g);
    Py_DECREF(type);
}

static int
Guard_traverse(Guard *g, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(g));
    return 0;
}

static PyType_Slot Guard_slots[] = {
    {Py_tp_doc, "Frees a thread's recorder state when the thread's state is cleared."},
    {Py_tp_dealloc, Guard_dealloc},
    {Py_tp_traverse, Guard_traverse},
    {0, NULL},
};

static PyType_Spec Guard_spec = {
    .name = "hotpath.recorder._crecorder.ThreadGuard",
    .basicsize = sizeof(Guard),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Guard_slots,
};

static int
module_exec(PyObject *module)
{
    ModuleState *state = PyModule_GetState(module);
    state->code_index = PyUnstable_Eval_RequestCodeExtraIndex(NULL);
    if (state->code_index < 0) {
        PyErr_SetString(PyExc_RuntimeError, "no code object extra slot left");
        return -1;
    }
    state->recorders = 0;
    state->guard_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Guard_spec, NULL);
    if (state->guard_type == NULL) {
        return -1;
    }
    state->recorder_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Recorder_spec, NULL);
    if (state->recorder_type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, state->recorder_type) < 0) {
        return -1;
    }
    const char *clock =
#if defined(_WIN32)
        "QueryPerformanceCounter";
#elif defined(__APPLE__)
        "CLOCK_UPTIME_RAW";
#else
        "CLOCK_MONOTONIC";
#endif
    return PyModule_AddStringConstant(module, "CLOCK", clock);
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    ModuleState *state = PyModule_GetState(module);
    Py_VISIT(state->recorder_type);
    Py_VISIT(state->guard_type);
    return 0;
}

static int
module_clear(PyObject *module)
{
    ModuleState *state = PyModule_GetState(module);
    Py_CLEAR(state->recorder_type);
    Py_CLEAR(state->guard_type);
    return 0;
}

#ifdef __linux__
/* One small procfs file, whole, as bytes; NULL with no exception set when it cannot be read
   (a thread that ended between the listing and the reading). */
static PyObject *
read_small_file(const char *path)
{
    char buffer[4096];
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return NULL;
    }
    Py_ssize_t length = 0;
    while (length < (Py_ssize_t)sizeof(buffer)) {
        ssize_t got = read(fd, buffer + length, sizeof(buffer) - (size_t)length);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        length += got;
    }
    close(fd);
    return PyBytes_FromStringAndSize(buffer, length);
}

/* Entries of a /proc directory whose names are numbers, by calling `each` with the name. */
static int
for_numbered(const char *folder, int (*each)(const char *, void *), void *context)
{
    DIR *dir = opendir(folder);
    if (dir == NULL) {
        return -1;
    }
    int result = 0;
    struct dirent *entry;
    while (result == 0 && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] >= '0' && entry->d_name[0] <= '9') {
            result = each(entry->d_name, context);
        }
    }
    closedir(dir);
    return result;
}

static int
count_entry(const char *Py_UNUSED(name), void *context)
{
    *(Py_ssize_t *)context += 1;
    return 0;
}

static int
read_task(const char *name, void *context)
{
    char path[300]; /* a d_name is at most 255 bytes */
    snprintf(path, sizeof(path), "/proc/self/task/%s/stat", name);
    PyObject *stat = read_small_file(path);
    if (stat == NULL) {
        return 0; /* ended meanwhile */
    }
    PyObject *tid = PyLong_FromString(name, NULL, 10);
    int failed = tid == NULL || PyDict_SetItem((PyObject *)context, tid, stat) < 0;
    Py_XDECREF(tid);
    Py_DECREF(stat);
    return failed ? -1 : 0;
}
#endif

/* read_proc_self() -> (stat, statm, {thread id: its stat}, open descriptors), the files as
   bytes; None where there is no /proc.
   What the thread sampler needs of /proc, read in one call that keeps the GIL. Read from
   Python (psutil), each open, read and close released the GIL, some thirty times per sample:
   each time, the sampler thread waited out a busy thread's switch interval (5 ms) and then
   forced it to switch, so one sample took 90-150 ms of wall time, forced a switch every 5 ms
   throughout, and those switches fell in step with the program's rhythm (they skewed the
   stack sampler's picture of a loop spending 57% in json.dumps to 70-75%). procfs reads do
   not block; kept, the GIL is held for well under a millisecond. The descriptor count leaves
   out the one opendir uses to count them. */
static PyObject *
read_proc_self(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
#ifdef __linux__
    PyObject *stat = read_small_file("/proc/self/stat");
    if (stat == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *statm = read_small_file("/proc/self/statm");
    PyObject *tasks = PyDict_New();
    Py_ssize_t fds = 0;
    if (statm == NULL || tasks == NULL || for_numbered("/proc/self/task", read_task, tasks) < 0
        || for_numbered("/proc/self/fd", count_entry, &fds) < 0) {
        Py_DECREF(stat);
        Py_XDECREF(statm);
        Py_XDECREF(tasks);
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(NNNn)", stat, statm, tasks, fds > 0 ? fds - 1 : 0);
#else
    Py_RETURN_NONE;
#endif
}

static PyMethodDef module_methods[] = {
    {"clock_ns", clock_ns, METH_NOARGS, "The recorder's clock, in nanoseconds."},
    {"group_traces", group_traces, METH_O,
     "group_traces(tracemalloc._get_traces()) -> {(filename, lineno): (bytes, blocks)}."},
    {"read_proc_self", read_proc_self, METH_NOARGS,
     "read_proc_self() -> (stat, statm, {thread id: stat}, open fds), or None without /proc."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hotpath.recorder._crecorder",
    .m_doc = "hotpath's compiled recorder (see hotpath/recorder/__init__.py).",
    .m_size = sizeof(ModuleState),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
};

PyMODINIT_FUNC
PyInit__crecorder(void)
{
    return PyModuleDef_Init(&module_def);
}
