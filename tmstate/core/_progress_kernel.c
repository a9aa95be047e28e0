/* The local search of ProgressTracker.update() (tmstate/core/progress.py), in C.
 *
 * Why hand-written C: update() runs on every env step, and in pure Python its cost
 * (~4 us) is nearly all interpreter overhead, which caps it at ~85x a full argmin
 * over a 19,503-point line. numba would compile the same loop but brings ~200 MB
 * (llvmlite) for it. This file mirrors ProgressTracker._local and _best_of operation for
 * operation (same doubles, same order, no FMA contraction: -ffp-contract=off), so both
 * give identical results; the Python code stays the fallback where no compiler was
 * found at install (the extension is optional).
 *
 * local(points_addr, n_points, segs_addr, n_segs, start, max_walk, per_metre, moved_m,
 *       x, y, z) -> (arc_length_m, lateral_m, distance_m, segment, walked_out)
 *
 * points: C-contiguous float64 (n_points, 3); segs: C-contiguous float64 (n_segs, 11)
 * rows (start xyz, vector xyz, 1/length^2, arc length at start, length, right x, right z).
 * The caller keeps both arrays alive and passes their addresses (arr.ctypes.data), and
 * guarantees 0 <= start < n_points, n_segs == n_points - 1.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define SEG_FIELDS 11

static inline double dist2(const double *p, double x, double y, double z) {
    double ex = p[0] - x, ey = p[1] - y, ez = p[2] - z;
    return ex * ex + ey * ey + ez * ez;
}

static PyObject *local(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "local() takes 11 arguments, got %zd", nargs);
        return NULL;
    }
    const double *pts = PyLong_AsVoidPtr(args[0]);
    Py_ssize_t n_points = PyLong_AsSsize_t(args[1]);
    const double *segs = PyLong_AsVoidPtr(args[2]);
    Py_ssize_t n_segs = PyLong_AsSsize_t(args[3]);
    Py_ssize_t start = PyLong_AsSsize_t(args[4]);
    Py_ssize_t max_walk = PyLong_AsSsize_t(args[5]);
    double per_metre = PyFloat_AsDouble(args[6]);
    double moved_m = PyFloat_AsDouble(args[7]);
    double x = PyFloat_AsDouble(args[8]);
    double y = PyFloat_AsDouble(args[9]);
    double z = PyFloat_AsDouble(args[10]);
    if (PyErr_Occurred()) return NULL;
    if (start < 0 || start >= n_points || n_segs != n_points - 1) {
        PyErr_SetString(PyExc_ValueError, "local(): start outside the line, or n_segs != n_points - 1");
        return NULL;
    }

    /* Scan the points the car can have reached, then walk on downhill (bounded). */
    Py_ssize_t last = n_points - 1;
    Py_ssize_t limit = start + max_walk < last ? start + max_walk : last;
    Py_ssize_t reach = start + (Py_ssize_t)((moved_m + 1.0) * per_metre) + 1;
    Py_ssize_t ahead = reach < limit ? reach : limit;
    Py_ssize_t j = start;
    double best = dist2(pts + 3 * start, x, y, z);
    for (Py_ssize_t k = start + 1; k <= ahead; ++k) {
        double d = dist2(pts + 3 * k, x, y, z);
        if (d < best) {
            best = d;
            j = k;
        }
    }
    int walked_out;
    if (j > start) {
        while (j < limit) {
            double d = dist2(pts + 3 * (j + 1), x, y, z);
            if (d >= best) break;
            best = d;
            ++j;
        }
        walked_out = j == limit && limit < last;
    } else {
        Py_ssize_t floor_ = start - max_walk > 0 ? start - max_walk : 0;
        while (j > floor_) {
            double d = dist2(pts + 3 * (j - 1), x, y, z);
            if (d >= best) break;
            best = d;
            --j;
        }
        walked_out = j == floor_ && floor_ > 0;
    }

    /* Project onto segments j-1..j+1 and keep the nearest. */
    Py_ssize_t lo = j - 1 > 0 ? j - 1 : 0;
    Py_ssize_t hi = j + 2 < n_segs ? j + 2 : n_segs;
    double best_d2 = INFINITY, best_t = 0.0;
    Py_ssize_t best_k = 0;
    for (Py_ssize_t k = lo; k < hi; ++k) {
        const double *s = segs + SEG_FIELDS * k;
        double ex = x - s[0], ey = y - s[1], ez = z - s[2];
        double t = (ex * s[3] + ey * s[4] + ez * s[5]) * s[6];
        if (t < 0.0) {
            t = 0.0;
        } else if (t > 1.0) {
            t = 1.0;
        }
        ex -= t * s[3];
        ey -= t * s[4];
        ez -= t * s[5];
        double d2 = ex * ex + ey * ey + ez * ez;
        if (d2 < best_d2) {
            best_d2 = d2;
            best_k = k;
            best_t = t;
        }
    }
    const double *s = segs + SEG_FIELDS * best_k;
    double lateral = (x - s[0] - best_t * s[3]) * s[9] + (z - s[2] - best_t * s[5]) * s[10];
    return Py_BuildValue("dddnO", s[7] + best_t * s[8], lateral, sqrt(best_d2), best_k,
                         walked_out ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"local", (PyCFunction)(void (*)(void))local, METH_FASTCALL,
     "The local search of ProgressTracker.update() (see tmstate/core/progress.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tmstate.core._progress_kernel",
    "Compiled local search for tmstate.core.progress (optional; Python is the fallback).", -1, methods,
};

PyMODINIT_FUNC PyInit__progress_kernel(void) { return PyModule_Create(&module_def); }
