/*
 * What hotpath's C modules share (_crecorder.c, _locks.c): the clock, where their C memory
 * comes from, and log-bucketed histograms. Each module includes it and compiles its own
 * copy of these static functions; nothing here holds state.
 *
 * Data layout
 * -----------
 * Histogram      zeros, and a page of STEPS counters per octave (OCTAVES of them, the
 *                double's exponent), allocated on the first value in it: bucket
 *                floor(log2(v) * STEPS), as hotpath/store/histogram.py computes it (the two
 *                differ only for a value within a rounding error of a bucket's edge).
 * BucketTable    what histogram_add needs to find a bucket without log2() per value (it cost
 *                8-15 ns of ~105 on W1): for a mantissa m in [1, 2), cell_bucket[top 10 bits
 *                of m] is floor(STEPS * log2(m)) at the cell's low end, and at most one bucket
 *                boundary (bucket_low[b] = 2^(b / STEPS)) lies in a cell, since a cell (0.1%)
 *                is narrower than a bucket (2.2%). Filled once by bucket_table_init, then
 *                only read.
 * HistogramCopy  a histogram copied into one C block without making a Python object (so
 *                that no other thread runs while it is copied), turned into {bucket: count}
 *                by buckets_dict afterwards.
 *
 * Invariants
 * ----------
 * - C memory comes from libc (hp_calloc and friends), not from Python's allocators: it needs
 *   no GIL, is never counted as the program's allocations, and tracemalloc does not see it.
 * - now_ns() reads the clock time.perf_counter_ns() reads, so that timestamps mix.
 * - histogram_add never fails: out of memory, the value's bucket is lost, not its count.
 */

#ifndef HOTPATH_SHARED_H
#define HOTPATH_SHARED_H

#include <Python.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#endif

#define STEPS 32   /* histogram buckets per doubling: within 1.1% at the midpoint */
#define OCTAVES 64
#define CELLS 1024 /* histogram: the mantissa's top 10 bits index the sub-bucket table */

#define hp_calloc calloc
#define hp_realloc realloc
#define hp_free free

/* The clock: the one time.perf_counter_ns() reads, so that timestamps mix with Python's.     */

static inline int64_t
now_ns(void)
{
#if defined(_WIN32)
    /* What time.perf_counter_ns() reads on Windows (Python's own conversion, for 3.12). */
    static LARGE_INTEGER frequency;
    LARGE_INTEGER ticks;
    if (frequency.QuadPart == 0) {
        QueryPerformanceFrequency(&frequency);
    }
    QueryPerformanceCounter(&ticks);
    int64_t whole = ticks.QuadPart / frequency.QuadPart;
    int64_t rest = ticks.QuadPart % frequency.QuadPart;
    return whole * 1000000000 + rest * 1000000000 / frequency.QuadPart;
#elif defined(__APPLE__)
    return (int64_t)clock_gettime_nsec_np(CLOCK_UPTIME_RAW);
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

/* A histogram of values: 32 buckets per doubling, a page of STEPS counters per octave
   allocated on first use. */
typedef struct {
    uint64_t zeros;
    uint64_t *octaves[OCTAVES];
} Histogram;

typedef struct {
    unsigned char cell_bucket[CELLS];
    double bucket_low[STEPS + 1];
} BucketTable;

static inline void
bucket_table_init(BucketTable *t)
{
    for (int b = 0; b <= STEPS; b++) {
        t->bucket_low[b] = pow(2.0, (double)b / STEPS);
    }
    for (int cell = 0; cell < CELLS; cell++) {
        double low = 1.0 + (double)cell / CELLS;
        int b = 0;
        while (b + 1 < STEPS && t->bucket_low[b + 1] <= low) {
            b++;
        }
        t->cell_bucket[cell] = (unsigned char)b;
    }
}

static inline void
histogram_add(const BucketTable *t, Histogram *h, int64_t value)
{
    if (value <= 0) {
        h->zeros++;
        return;
    }
    /* The double's exponent is the octave; its mantissa's top bits find the step. */
    double as_double = (double)value;
    uint64_t bits;
    memcpy(&bits, &as_double, sizeof bits);
    int octave = (int)((bits >> 52) & 0x7FF) - 1023;
    uint64_t fraction = bits & ((UINT64_C(1) << 52) - 1);
    int step = t->cell_bucket[fraction >> (52 - 10)];
    double mantissa = 1.0 + (double)fraction / (double)(UINT64_C(1) << 52);
    if (mantissa >= t->bucket_low[step + 1]) {
        step++;
    }
    if (octave >= OCTAVES) {
        octave = OCTAVES - 1;
    }
    uint64_t *page = h->octaves[octave];
    if (page == NULL) {
        page = hp_calloc(STEPS, sizeof(uint64_t));
        if (page == NULL) {
            return; /* the count is kept; only its bucket is lost */
        }
        h->octaves[octave] = page;
    }
    page[step]++;
}

static inline void
histogram_free(Histogram *h)
{
    for (int o = 0; o < OCTAVES; o++) {
        hp_free(h->octaves[o]);
        h->octaves[o] = NULL;
    }
}

typedef struct {
    uint64_t zeros;
    uint64_t *buckets; /* OCTAVES * STEPS counts, or NULL when there were none */
} HistogramCopy;

/* Copies without making a Python object; -1 when out of memory. */
static inline int
histogram_copy(HistogramCopy *c, const Histogram *h)
{
    c->zeros = h->zeros;
    for (int o = 0; o < OCTAVES; o++) {
        if (h->octaves[o] == NULL) {
            continue;
        }
        if (c->buckets == NULL) {
            c->buckets = hp_calloc(OCTAVES * STEPS, sizeof(uint64_t));
            if (c->buckets == NULL) {
                return -1;
            }
        }
        memcpy(c->buckets + o * STEPS, h->octaves[o], STEPS * sizeof(uint64_t));
    }
    return 0;
}

/* {bucket: count}, bucket -1 holding the zeros, as store/histogram.py keeps them. */
static inline PyObject *
buckets_dict(const HistogramCopy *c)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (int b = -1; b < OCTAVES * STEPS; b++) {
        uint64_t count = b < 0 ? c->zeros : (c->buckets != NULL ? c->buckets[b] : 0);
        if (count == 0) {
            continue;
        }
        PyObject *key = PyLong_FromLong(b);
        PyObject *value = PyLong_FromUnsignedLongLong(count);
        if (key == NULL || value == NULL || PyDict_SetItem(dict, key, value) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(value);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return dict;
}

#endif /* HOTPATH_SHARED_H */
