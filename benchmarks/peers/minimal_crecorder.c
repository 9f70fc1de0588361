/*
 * The floor for a compiled sys.monitoring profiler: what hotpath's compiled recorder is
 * measured against (benchmarks/run.py). It times every function, with nothing hotpath adds:
 * no filter, generators, self time, logs, threads' names or readers.
 *
 * Data layout: a per-thread stack of start times (thread-specific storage); per code object a
 * slot in an open-addressing table keyed by the code's address, holding a reference to it (so
 * the address stays its own), with a call count, a total and a log-bucketed histogram
 * (32 buckets per doubling). CLOCK_MONOTONIC, as hotpath reads. Invariants: the GIL is held
 * in every callback; the table only grows; nothing is ever printed or read back.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <time.h>

#define BUCKETS 2048

typedef struct {
    PyObject *code;
    uint64_t calls, total_ns;
    uint32_t *histogram;
} Slot;

typedef struct {
    int64_t *starts;
    Py_ssize_t depth, capacity;
} Stack;

static Slot *slots;
static Py_ssize_t capacity, used;
static Py_tss_t key = Py_tss_NEEDS_INIT;

static inline int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static Stack *
stack(void)
{
    Stack *s = PyThread_tss_get(&key);
    if (s == NULL) {
        s = PyMem_RawCalloc(1, sizeof(Stack));
        if (s != NULL) {
            PyThread_tss_set(&key, s);
        }
    }
    return s;
}

static Slot *
slot(PyObject *code)
{
    if ((used + 1) * 2 > capacity) {
        Py_ssize_t bigger = capacity ? capacity * 2 : 1024;
        Slot *grown = PyMem_RawCalloc((size_t)bigger, sizeof(Slot));
        if (grown == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < capacity; i++) {
            if (slots[i].code != NULL) {
                Py_ssize_t j = (Py_ssize_t)(((uintptr_t)slots[i].code >> 4) & (uintptr_t)(bigger - 1));
                while (grown[j].code != NULL) {
                    j = (j + 1) & (bigger - 1);
                }
                grown[j] = slots[i];
            }
        }
        PyMem_RawFree(slots);
        slots = grown;
        capacity = bigger;
    }
    Py_ssize_t i = (Py_ssize_t)(((uintptr_t)code >> 4) & (uintptr_t)(capacity - 1));
    while (slots[i].code != NULL && slots[i].code != code) {
        i = (i + 1) & (capacity - 1);
    }
    if (slots[i].code == NULL) {
        slots[i].code = Py_NewRef(code);
        slots[i].histogram = PyMem_RawCalloc(BUCKETS, sizeof(uint32_t));
        used++;
    }
    return &slots[i];
}

static PyObject *
on_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Stack *s = stack();
    if (s != NULL) {
        if (s->depth == s->capacity) {
            Py_ssize_t bigger = s->capacity ? s->capacity * 2 : 64;
            int64_t *grown = PyMem_RawRealloc(s->starts, (size_t)bigger * sizeof(int64_t));
            if (grown == NULL) {
                Py_RETURN_NONE;
            }
            s->starts = grown;
            s->capacity = bigger;
        }
        s->starts[s->depth++] = now_ns();
    }
    Py_RETURN_NONE;
}

static PyObject *
on_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t now = now_ns();
    Stack *s = stack();
    if (s == NULL || s->depth == 0 || nargs < 1) {
        Py_RETURN_NONE;
    }
    int64_t duration = now - s->starts[--s->depth];
    Slot *entry = slot(args[0]);
    if (entry != NULL) {
        entry->calls++;
        entry->total_ns += (uint64_t)duration;
        if (duration > 0 && entry->histogram != NULL) {
            int bucket = (int)(log2((double)duration) * 32.0);
            entry->histogram[bucket < BUCKETS ? bucket : BUCKETS - 1]++;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
calls(PyObject *module, PyObject *unused)
{
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < capacity; i++) {
        total += slots[i].calls;
    }
    return PyLong_FromUnsignedLongLong(total);
}

static PyMethodDef methods[] = {
    {"on_start", (PyCFunction)(void (*)(void))on_start, METH_FASTCALL, NULL},
    {"on_end", (PyCFunction)(void (*)(void))on_end, METH_FASTCALL, NULL},
    {"calls", calls, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "minimal_crecorder", NULL, -1, methods};

PyMODINIT_FUNC
PyInit_minimal_crecorder(void)
{
    if (PyThread_tss_create(&key) != 0) {
        return NULL;
    }
    return PyModule_Create(&module);
}
