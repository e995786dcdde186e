// mul_mat_check: ggml's CPU product of an f16 matrix by an f32 matrix (the attention
// scores K x Q), computed through the built libraries, against a double-precision
// reference. Written for patch 0009 (vendor/patches): its short-row kernel
// (llamafile_sgemm_short_k_f16: k <= 128, at least 32 rows of keys and 16 of queries,
// AVX-512 or AVX2+FMA) and the usual path it falls back to.
//
// usage: mul_mat_check --expect avx512|avx2|none [--backend MODULE.so] [--perturb]
//   --expect   the kernel the CPU backend must have been built with: `avx512` (AVX-512
//              tiles of 6 queries x 32 keys), `avx2` (AVX2+FMA, 6 x 16), `none` (no
//              kernel: every product takes the usual path). Read from the features the
//              backend reports (AVX512; AVX2 and FMA; LLAMAFILE); a mismatch fails.
//   --backend  load this CPU backend module (the dynamic layout) with ggml_backend_load;
//              without it the backend is the one libggml links (the linked layout).
//   --perturb  change one value of the first product before it is checked: the run
//              must then fail (the test's own proof that a wrong product is caught).
//
// Error measure: |got - want| / sum_d |a_d * b_d| for each output (the sum of the
// absolute terms of its dot product), with `want` in double from the same f16 keys
// and f32 queries. Bounds:
//   kernel: (k + 2) * 2^-24. The kernel reads the queries in f32 and accumulates k
//           products with FMA in f32: each step rounds once, so the error is at most
//           gamma_k = k*u/(1 - k*u) of the sum of absolute terms (u = 2^-24; any
//           order of summation), which (k + 2)*u covers with the reference's own
//           rounding (double). A worst-case bound: it cannot fail on a right product,
//           whatever the data. k = 64: 3.9e-6.
//   usual:  2^-11 + (k + 2) * 2^-24. The usual path rounds the queries to f16 first
//           (each term then off by at most 2^-11 of itself: the queries here are
//           normal f16 numbers, |b| >= 2^-8), then sums in f32 (or double).
// The usual path's f16 rounding is 1e-4-sized (patch 0009's header: 1.4e-4; here 8.7e-5
// to 3.9e-4 per product), over 10 times the kernel bound, so the kernel bound rejects it: a product the kernel should
// have taken but the usual path computed fails, and a product expected on the usual
// path must show an error above the kernel bound (the routing check), or it did not
// take that path. A wrong product (a tile edge, a stride, a thread's share) is off by
// the size of the values themselves; an output nobody wrote keeps its NaN.
//
// The self-check at start runs the comparison on synthetic results: exact, one value
// over the bound, one NaN, and the f16-rounded-query product; each must be judged
// as it should, or the run fails before touching ggml.

#define _POSIX_C_SOURCE 199309L // clock_gettime

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Strides: patch 0009 takes a product whatever its row and head strides, as long as they
// are whole elements (ggml's product itself asserts contiguous rows: nb00 = 2, nb10 = 4,
// nb0 = 4), so the permuted and view layouts below are ones it takes, and the layout on
// the fallback side is the permuted one at k = 129 (the usual path then converts the
// non-contiguous queries itself). Strides of an odd number of bytes come only from
// byte-offset views, whose values would be misaligned: not tested.
enum layout {
    PLAIN,   // keys [k, m, hk] and queries [k, n, hq], contiguous (2-D when heads are 1)
    ENCODER, // whisper's encoder: keys and queries permuted from [k, heads, rows]
    DECODER, // whisper's decoder: keys a view of a layer of the KV cache, queries permuted
};

static const char * layout_name(enum layout l) {
    switch (l) {
        case PLAIN: return "contiguous";
        case ENCODER: return "permuted";
        case DECODER: return "kv-cache-view";
    }
    return "?";
}

struct product_case {
    const char * name;
    enum layout layout;
    int64_t k;  // inner dimension (the head width)
    int64_t m;  // rows of keys (outputs per query)
    int64_t n;  // rows of queries
    int64_t hk; // heads of keys
    int64_t hq; // heads of queries (a multiple of hk: ggml broadcasts the keys)
};

// Whisper's shapes and the kernel's edges: rows of keys and queries that are not
// multiples of the tiles (6 queries x 32 or 16 keys), k from 1 to 128 and 129 (too
// long: usual path), 31 keys and 15 queries (too few: usual path), broadcast heads.
static const struct product_case CASES[] = {
    {"thresholds", PLAIN, 64, 32, 16, 1, 1},
    {"odd-edges", PLAIN, 64, 33, 17, 1, 1},
    {"k40", PLAIN, 40, 77, 29, 1, 1},
    {"k128", PLAIN, 128, 100, 45, 1, 1},
    {"k1", PLAIN, 1, 47, 23, 1, 1},
    {"k129", PLAIN, 129, 100, 45, 1, 1},
    {"m31", PLAIN, 64, 31, 40, 1, 1},
    {"n15", PLAIN, 64, 100, 15, 1, 1},
    {"broadcast", PLAIN, 64, 50, 20, 2, 4},
    {"encoder", ENCODER, 64, 1500, 1500, 2, 2},
    {"encoder-k40", ENCODER, 40, 203, 97, 3, 3},
    {"encoder-k129", ENCODER, 129, 70, 37, 3, 3},
    {"decoder-prompt", DECODER, 64, 77, 35, 3, 3},
    {"decoder-token", DECODER, 64, 77, 1, 3, 3},
};
static const int THREADS[] = {1, 2, 3};

// Entries of the KV cache of the decoder layout (keys of 2 layers, the second used).
static const int64_t KV_CTX = 448;

static double bound_kernel(int64_t k) { return (double) (k + 2) * ldexp(1.0, -24); }
static double bound_usual(int64_t k) { return ldexp(1.0, -11) + bound_kernel(k); }

static uint64_t rng_state;
static double uniform(void) { // splitmix64, [0, 1)
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double) (z >> 11) * ldexp(1.0, -53);
}
static float key_value(void) { return (float) (2.0 * uniform() - 1.0); }
static float query_value(void) { // +-[2^-8, 1): normal as f16, so its rounding is relative
    const double magnitude = ldexp(1.0, -8) + (1.0 - ldexp(1.0, -8)) * uniform();
    return (float) (uniform() < 0.5 ? -magnitude : magnitude);
}

// Outputs whose error exceeds `bound` times their sum of absolute terms (NaN counts).
struct verdict {
    int64_t violations;
    int64_t first;  // index of the first violation, -1 when none
    double max_rel; // largest |got - want| / sum of absolute terms
};

static struct verdict compare(const float * got, const double * want, const double * mag, int64_t count,
                              double bound) {
    struct verdict v = {0, -1, 0.0};
    for (int64_t i = 0; i < count; i++) {
        const double err = fabs((double) got[i] - want[i]);
        const bool ok = err <= bound * mag[i];
        if (!ok) {
            if (v.violations == 0) {
                v.first = i;
            }
            v.violations++;
        }
        const double rel = mag[i] > 0 ? err / mag[i] : (err == 0 ? 0.0 : INFINITY);
        if (!(rel <= v.max_rel)) {
            v.max_rel = isnan(rel) ? INFINITY : rel;
        }
    }
    return v;
}

static bool self_check(void) {
    const int64_t k = 64, m = 37, n = 19, count = m * n;
    float * a = malloc(sizeof(float) * k * m);
    float * b = malloc(sizeof(float) * k * n);
    double * want = malloc(sizeof(double) * count);
    double * mag = malloc(sizeof(double) * count);
    float * got = malloc(sizeof(float) * count);
    float * rounded = malloc(sizeof(float) * count);
    rng_state = 12345;
    for (int64_t i = 0; i < k * m; i++) {
        a[i] = ggml_fp16_to_fp32(ggml_fp32_to_fp16(key_value()));
    }
    for (int64_t i = 0; i < k * n; i++) {
        b[i] = query_value();
    }
    for (int64_t j = 0; j < n; j++) {
        for (int64_t i = 0; i < m; i++) {
            double s = 0, s16 = 0, sa = 0;
            for (int64_t d = 0; d < k; d++) {
                const double t = (double) a[i * k + d] * b[j * k + d];
                s += t;
                sa += fabs(t);
                s16 += (double) a[i * k + d] * ggml_fp16_to_fp32(ggml_fp32_to_fp16(b[j * k + d]));
            }
            want[j * m + i] = s;
            mag[j * m + i] = sa;
            got[j * m + i] = (float) s;
            rounded[j * m + i] = (float) s16;
        }
    }
    bool ok = true;
    const double tight = bound_kernel(k);
    struct verdict v = compare(got, want, mag, count, tight);
    if (v.violations != 0) {
        fprintf(stderr, "SELF-CHECK FAILED: the exact product is rejected (%lld outputs)\n", (long long) v.violations);
        ok = false;
    }
    const int64_t at = 5 * m + 11;
    got[at] = (float) (want[at] + 2.0 * tight * mag[at]);
    v = compare(got, want, mag, count, tight);
    if (v.violations != 1 || v.first != at) {
        fprintf(stderr, "SELF-CHECK FAILED: one value off by twice the bound gave %lld violations (first %lld)\n",
                (long long) v.violations, (long long) v.first);
        ok = false;
    }
    got[at] = NAN;
    v = compare(got, want, mag, count, tight);
    if (v.violations != 1 || v.first != at) {
        fprintf(stderr, "SELF-CHECK FAILED: a NaN output gave %lld violations\n", (long long) v.violations);
        ok = false;
    }
    const struct verdict old_tight = compare(rounded, want, mag, count, tight);
    const struct verdict old_loose = compare(rounded, want, mag, count, bound_usual(k));
    if (old_tight.violations == 0 || old_loose.violations != 0) {
        fprintf(stderr,
                "SELF-CHECK FAILED: the f16-query product (max error %.3g) is not rejected by the kernel bound %.3g "
                "and accepted by the usual bound %.3g\n",
                old_tight.max_rel, tight, bound_usual(k));
        ok = false;
    }
    printf("self-check: exact product accepted, one value at twice the bound and a NaN rejected; "
           "f16-rounded queries (k=%lld): max error %.2e, %lld of %lld outputs over the kernel bound %.2e\n",
           (long long) k, old_tight.max_rel, (long long) old_tight.violations, (long long) count, tight);
    free(a);
    free(b);
    free(want);
    free(mag);
    free(got);
    free(rounded);
    return ok;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct totals {
    int64_t products;
    int64_t failures;
    double max_kernel; // largest error of the products the kernel computed
    double max_usual;  // and of the usual path
    double min_usual;  // smallest per-product maximum on the usual path (the routing margin)
};

static const char * kernel_name;
static ggml_backend_set_n_threads_t set_n_threads;

static void run_case(ggml_backend_t backend, const struct product_case * c, int case_index, bool perturb,
                     struct totals * t) {
    const int64_t k = c->k, m = c->m, n = c->n, hk = c->hk, hq = c->hq;
    struct ggml_init_params params = {
        .mem_size = ggml_tensor_overhead() * 16 + ggml_graph_overhead(),
        .mem_buffer = NULL,
        .no_alloc = true,
    };
    struct ggml_context * ctx = ggml_init(params);
    struct ggml_tensor *a_base, *a, *b_base, *b;
    switch (c->layout) {
        case PLAIN:
            a = a_base = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, k, m, hk);
            b = b_base = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, k, n, hq);
            break;
        case ENCODER:
            a_base = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, k, hk, m);
            a = ggml_permute(ctx, a_base, 0, 2, 1, 3);
            b_base = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, k, hq, n);
            b = ggml_permute(ctx, b_base, 0, 2, 1, 3);
            break;
        case DECODER:
        default: {
            a_base = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, k * hk, KV_CTX, 2);
            const size_t es = ggml_element_size(a_base);
            a = ggml_view_3d(ctx, a_base, k, m, hk, es * k * hk, es * k, es * k * hk * KV_CTX);
            b_base = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, k, hq, n);
            b = ggml_permute(ctx, b_base, 0, 2, 1, 3);
            break;
        }
    }
    struct ggml_tensor * out = ggml_mul_mat(ctx, a, b);
    // Right after the product in the buffer: a write past its end changes it.
    struct ggml_tensor * canary = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 256);
    struct ggml_cgraph * graph = ggml_new_graph(ctx);
    ggml_build_forward_expand(graph, out);
    ggml_backend_buffer_t buffer = ggml_backend_alloc_ctx_tensors(ctx, backend);
    if (buffer == NULL) {
        fprintf(stderr, "error: cannot allocate the tensors of case %s\n", c->name);
        exit(2);
    }

    // Keys and queries, and the reference read from the same bytes through the views' strides.
    rng_state = 0x5eed0000u + (uint64_t) case_index;
    const size_t a_bytes = ggml_nbytes(a_base), b_bytes = ggml_nbytes(b_base);
    ggml_fp16_t * a_host = malloc(a_bytes);
    float * a_dec = malloc(a_bytes / 2 * sizeof(float));
    float * b_host = malloc(b_bytes);
    for (size_t i = 0; i < a_bytes / 2; i++) {
        a_host[i] = ggml_fp32_to_fp16(key_value());
        a_dec[i] = ggml_fp16_to_fp32(a_host[i]);
    }
    for (size_t i = 0; i < b_bytes / 4; i++) {
        b_host[i] = query_value();
    }
    ggml_backend_tensor_set(a_base, a_host, 0, a_bytes);
    ggml_backend_tensor_set(b_base, b_host, 0, b_bytes);
    const size_t a_off = (size_t) ((char *) a->data - (char *) a_base->data);
    const size_t b_off = (size_t) ((char *) b->data - (char *) b_base->data);
    if (a->nb[0] != 2 || b->nb[0] != 4 || out->nb[1] != (size_t) m * 4 || out->nb[2] != (size_t) (m * n * 4)) {
        fprintf(stderr, "error: case %s: unexpected strides\n", c->name);
        exit(2);
    }
    const int64_t count = m * n * hq, r2 = hq / hk;
    double * want = malloc(sizeof(double) * count);
    double * mag = malloc(sizeof(double) * count);
    for (int64_t h = 0; h < hq; h++) {
        for (int64_t j = 0; j < n; j++) {
            const float * bq = (const float *) ((const char *) b_host + b_off + j * b->nb[1] + h * b->nb[2]);
            for (int64_t i = 0; i < m; i++) {
                const float * ak = a_dec + (a_off + i * a->nb[1] + (h / r2) * a->nb[2]) / 2;
                double s = 0, sa = 0;
                for (int64_t d = 0; d < k; d++) {
                    const double term = (double) ak[d] * bq[d];
                    s += term;
                    sa += fabs(term);
                }
                want[h * m * n + j * m + i] = s;
                mag[h * m * n + j * m + i] = sa;
            }
        }
    }

    const bool by_kernel = strcmp(kernel_name, "none") != 0 && k <= 128 && m >= 32 && n >= 16;
    const double bound = by_kernel ? bound_kernel(k) : bound_usual(k);
    float * got = malloc(sizeof(float) * count);
    float * nans = malloc(sizeof(float) * count);
    for (int64_t i = 0; i < count; i++) {
        nans[i] = NAN;
    }
    unsigned char pattern[256 * 4], after[256 * 4];
    memset(pattern, 0xa5, sizeof(pattern));

    for (size_t ti = 0; ti < sizeof(THREADS) / sizeof(THREADS[0]); ti++) {
        const int threads = THREADS[ti];
        set_n_threads(backend, threads);
        ggml_backend_tensor_set(out, nans, 0, sizeof(float) * count);
        ggml_backend_tensor_set(canary, pattern, 0, sizeof(pattern));
        const double t0 = now_ms();
        if (ggml_backend_graph_compute(backend, graph) != GGML_STATUS_SUCCESS) {
            fprintf(stderr, "error: case %s: graph compute failed\n", c->name);
            exit(2);
        }
        const double ms = now_ms() - t0;
        ggml_backend_tensor_get(out, got, 0, sizeof(float) * count);
        ggml_backend_tensor_get(canary, after, 0, sizeof(after));
        if (perturb && t->products == 0) {
            const int64_t at = count / 2 + 3;
            printf("perturbed: output %lld of %s changed from %.9g to %.9g\n", (long long) at, c->name, got[at],
                   got[at] + 4.0 * bound * mag[at]);
            got[at] += (float) (4.0 * bound * mag[at]);
        }
        const struct verdict v = compare(got, want, mag, count, bound);
        const bool canary_ok = memcmp(pattern, after, sizeof(pattern)) == 0;
        // Routing: the usual path's f16 queries put some output above the kernel bound.
        const bool routed = by_kernel || v.max_rel > bound_kernel(k);
        const bool ok = v.violations == 0 && canary_ok && routed;
        t->products++;
        printf("%s %-14s %-13s k=%-3lld m=%-4lld n=%-4lld heads=%lld/%lld threads=%d path=%-6s "
               "max_err=%.2e bound=%.2e %7.2f ms\n",
               ok ? "ok      " : "MISMATCH", c->name, layout_name(c->layout), (long long) k, (long long) m,
               (long long) n, (long long) hk, (long long) hq, threads, by_kernel ? kernel_name : "usual", v.max_rel,
               bound, ms);
        if (by_kernel) {
            t->max_kernel = fmax(t->max_kernel, v.max_rel);
        } else {
            t->max_usual = fmax(t->max_usual, v.max_rel);
            t->min_usual = fmin(t->min_usual, v.max_rel);
        }
        if (ok) {
            continue;
        }
        t->failures++;
        const char * what = by_kernel ? kernel_name : "usual";
        if (v.violations > 0) {
            const int64_t at = v.first, h = at / (m * n), j = at / m % n, i = at % m;
            fprintf(stderr,
                    "MISMATCH %s (k=%lld m=%lld n=%lld heads=%lld/%lld, %s), %d threads, path %s: %lld of %lld "
                    "outputs off; first: key %lld, query %lld, head %lld: got %.9g, want %.9g, error %.3g of the sum "
                    "of absolute terms %.6g, bound %.3g\n",
                    c->name, (long long) k, (long long) m, (long long) n, (long long) hk, (long long) hq,
                    layout_name(c->layout), threads, what, (long long) v.violations, (long long) count, (long long) i,
                    (long long) j, (long long) h, got[at], want[at], fabs((double) got[at] - want[at]) / mag[at],
                    mag[at], bound);
        }
        if (!canary_ok) {
            fprintf(stderr, "MISMATCH %s, %d threads: the bytes after the product were written\n", c->name, threads);
        }
        if (!routed) {
            fprintf(stderr,
                    "MISMATCH %s, %d threads: expected the usual path (f16 queries), but the largest error %.3g "
                    "is within the kernel bound %.3g: the short-row kernel took a product it should refuse\n",
                    c->name, threads, v.max_rel, bound_kernel(k));
        }
    }
    free(a_host);
    free(a_dec);
    free(b_host);
    free(want);
    free(mag);
    free(got);
    free(nans);
    ggml_backend_buffer_free(buffer);
    ggml_free(ctx);
}

static void usage(void) {
    fprintf(stderr, "usage: mul_mat_check --expect avx512|avx2|none [--backend MODULE.so] [--perturb]\n");
    exit(2);
}

int main(int argc, char ** argv) {
    const char * expect = NULL;
    const char * module = NULL;
    bool perturb = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            expect = argv[++i];
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            module = argv[++i];
        } else if (strcmp(argv[i], "--perturb") == 0) {
            perturb = true;
        } else {
            usage();
        }
    }
    if (expect == NULL ||
        (strcmp(expect, "avx512") != 0 && strcmp(expect, "avx2") != 0 && strcmp(expect, "none") != 0)) {
        usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (!self_check()) {
        return 3;
    }

    if (module != NULL && ggml_backend_load(module) == NULL) {
        fprintf(stderr, "error: ggml_backend_load(%s) failed (not this CPU's, or not a backend)\n", module);
        return 2;
    }
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (dev == NULL) {
        fprintf(stderr, "error: no CPU device registered%s\n", module ? "" : " (dynamic layout: pass --backend)");
        return 2;
    }
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
    ggml_backend_t backend = ggml_backend_dev_init(dev, NULL);
    set_n_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
    ggml_backend_get_features_t get_features =
        (ggml_backend_get_features_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
    if (backend == NULL || set_n_threads == NULL || get_features == NULL) {
        fprintf(stderr, "error: the CPU backend did not initialize or lacks set_n_threads/get_features\n");
        return 2;
    }
    bool avx512 = false, avx2 = false, fma = false, llamafile = false;
    printf("backend: %s (%s), features:", ggml_backend_reg_name(reg), module ? module : "linked");
    for (struct ggml_backend_feature * f = get_features(reg); f->name != NULL; f++) {
        printf(" %s", f->name);
        avx512 |= strcmp(f->name, "AVX512") == 0;
        avx2 |= strcmp(f->name, "AVX2") == 0;
        fma |= strcmp(f->name, "FMA") == 0;
        llamafile |= strcmp(f->name, "LLAMAFILE") == 0;
    }
    printf("\n");
    // The kernel is compiled for AVX-512F, else AVX2 with FMA, inside ggml's llamafile path.
    kernel_name = !llamafile ? "none" : avx512 ? "avx512" : (avx2 && fma) ? "avx2" : "none";
    printf("short-row kernel: %s%s\n", kernel_name,
           strcmp(kernel_name, "avx512") == 0 ? " (tiles of 6 queries x 32 keys)"
           : strcmp(kernel_name, "avx2") == 0 ? " (tiles of 6 queries x 16 keys)"
                                              : " (every product takes the usual path)");
    if (strcmp(kernel_name, expect) != 0) {
        fprintf(stderr, "MISMATCH: expected the %s kernel, the backend's features give %s\n", expect, kernel_name);
        return 1;
    }

    struct totals t = {0, 0, 0.0, 0.0, INFINITY};
    const double t0 = now_ms();
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        run_case(backend, &CASES[i], (int) i, perturb, &t);
    }
    char kernel_max[32] = "none computed";
    if (strcmp(kernel_name, "none") != 0) {
        snprintf(kernel_max, sizeof(kernel_max), "%.2e", t.max_kernel);
    }
    printf("summary: kernel %s, %lld products (%zu shapes x %zu thread counts), %lld failed; largest error: "
           "kernel %s (bound (k+2)*2^-24, %.2e at k=64), usual path %.2e (bound 2^-11+(k+2)*2^-24, %.2e at k=64; "
           "smallest per-product maximum %.2e); %.0f ms\n",
           kernel_name, (long long) t.products, sizeof(CASES) / sizeof(CASES[0]), sizeof(THREADS) / sizeof(THREADS[0]),
           (long long) t.failures, kernel_max, bound_kernel(64), t.max_usual, bound_usual(64), t.min_usual,
           now_ms() - t0);
    ggml_backend_free(backend);
    if (t.failures > 0) {
        fprintf(stderr, "MISMATCH: %lld of %lld products are wrong (see above)\n", (long long) t.failures,
                (long long) t.products);
        return 1;
    }
    return 0;
}
