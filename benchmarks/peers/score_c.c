/*
 * score_c: scores rows with a peer's compiled tree-ensemble library, called from C.
 *
 * Built and driven by benchmarks/models.py (gcc -O2 at run time; no Python in the process):
 *
 *   score_c KIND LIBRARY MODEL ROWS predict MODE OUT
 *       one margin per row of ROWS, scored as MODE would, written to OUT as float64
 *   score_c KIND LIBRARY MODEL ROWS time MODE MIN_SAMPLES MAX_SAMPLES SECONDS
 *       prints {"p50_ns": ..., "p99_ns": ..., "per_row_ns": [...], ...} on standard output
 *
 * KIND is one of
 *   lightgbm  LIBRARY = lib_lightgbm.so, MODEL = the LightGBM model text. One row:
 *             LGBM_BoosterPredictForMatSingleRowFast (raw score, one thread); a block:
 *             LGBM_BoosterPredictForMat.
 *   tl2cgen   LIBRARY = a TL2cgen predictor.so (MODEL unused). One row: predict(Entry*, 1, out)
 *             with NaN passed as missing = -1 (the low 4 bytes of the union) and out zeroed
 *             before every call, since predict() adds to it. No block entry point.
 *   lleaves   LIBRARY = lleaves' object linked into a shared library (MODEL unused), compiled
 *             with raw_score: forest_root(rows, out, 0, n) for one row or a block.
 * ROWS is a binary file: int64 rows, int64 columns, then the float64 values row-major.
 * MODE is "single", "block16" or "candidates16" (blocks of rows sharing most columns). A sample is 64 rows (64 one-row calls, or four 16-row blocks)
 * timed with one pair of clock_gettime(CLOCK_MONOTONIC) calls; its per-row cost is the time over
 * 64. Rows cycle through the file (after a warm-up of 8 samples). Samples are taken until there
 * are at least MIN_SAMPLES and either SECONDS have passed or there are MAX_SAMPLES; p50 and p99
 * are nearest-rank percentiles over the samples, and every sample is printed too (per_row_ns, in
 * the order taken) so that runs can be pooled.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROWS_PER_SAMPLE 64
#define BLOCK 16

typedef struct {
  const char *name;
  int (*score_one)(const double *row, double *out);
  /* NULL when the library has no entry point that scores several rows in one call. */
  int (*score_block)(const double *rows, int32_t n, double *out);
} Scorer;

static int32_t g_ncol;

_Noreturn static void die(const char *what, const char *detail) {
  fprintf(stderr, "score_c: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void *symbol(void *lib, const char *name) {
  void *found = dlsym(lib, name);
  if (found == NULL) die("missing symbol", name);
  return found;
}

/* ---- LightGBM C API ---------------------------------------------------------------------- */

typedef int (*lgbm_create_fn)(const char *, int *, void **);
typedef int (*lgbm_fast_init_fn)(void *, int, int, int, int, int32_t, const char *, void **);
typedef int (*lgbm_fast_fn)(void *, const void *, int64_t *, double *);
typedef int (*lgbm_mat_fn)(void *, const void *, int, int32_t, int32_t, int, int, int, int,
                           const char *, int64_t *, double *);
typedef const char *(*lgbm_error_fn)(void);

enum { LGBM_PREDICT_RAW_SCORE = 1, LGBM_DTYPE_FLOAT64 = 1, LGBM_ROW_MAJOR = 1 };

static void *g_booster, *g_fast;
static lgbm_fast_fn g_lgbm_fast;
static lgbm_mat_fn g_lgbm_mat;
static lgbm_error_fn g_lgbm_error;

static int lgbm_one(const double *row, double *out) {
  int64_t len = 0;
  if (g_lgbm_fast(g_fast, row, &len, out) != 0) die("LightGBM", g_lgbm_error());
  return len == 1 ? 0 : -1;
}

static int lgbm_block(const double *rows, int32_t n, double *out) {
  int64_t len = 0;
  if (g_lgbm_mat(g_booster, rows, LGBM_DTYPE_FLOAT64, n, g_ncol, LGBM_ROW_MAJOR,
                 LGBM_PREDICT_RAW_SCORE, 0, -1, "num_threads=1", &len, out) != 0)
    die("LightGBM", g_lgbm_error());
  return len == n ? 0 : -1;
}

static Scorer open_lightgbm(void *lib, const char *model) {
  lgbm_create_fn create = (lgbm_create_fn)symbol(lib, "LGBM_BoosterCreateFromModelfile");
  lgbm_fast_init_fn init =
      (lgbm_fast_init_fn)symbol(lib, "LGBM_BoosterPredictForMatSingleRowFastInit");
  g_lgbm_fast = (lgbm_fast_fn)symbol(lib, "LGBM_BoosterPredictForMatSingleRowFast");
  g_lgbm_mat = (lgbm_mat_fn)symbol(lib, "LGBM_BoosterPredictForMat");
  g_lgbm_error = (lgbm_error_fn)symbol(lib, "LGBM_GetLastError");
  int iterations = 0;
  if (create(model, &iterations, &g_booster) != 0) die("LightGBM", g_lgbm_error());
  if (init(g_booster, LGBM_PREDICT_RAW_SCORE, 0, -1, LGBM_DTYPE_FLOAT64, g_ncol,
           "num_threads=1", &g_fast) != 0)
    die("LightGBM", g_lgbm_error());
  return (Scorer){"lightgbm", lgbm_one, lgbm_block};
}

/* ---- TL2cgen ------------------------------------------------------------------------------ */

union Entry {
  int missing;
  double fvalue;
  int qvalue;
};

typedef void (*tl2cgen_predict_fn)(union Entry *, int, double *);
typedef int32_t (*tl2cgen_int_fn)(void);
typedef void (*tl2cgen_num_class_fn)(int32_t *);

static tl2cgen_predict_fn g_tl2cgen_predict;
static union Entry *g_entries;
static double *g_tl2cgen_out;
static size_t g_tl2cgen_outputs;

static int tl2cgen_one(const double *row, double *out) {
  for (int32_t j = 0; j < g_ncol; j++) {
    if (isnan(row[j]))
      g_entries[j].missing = -1;
    else
      g_entries[j].fvalue = row[j];
  }
  memset(g_tl2cgen_out, 0, g_tl2cgen_outputs * sizeof(double)); /* predict() adds to it */
  g_tl2cgen_predict(g_entries, 1, g_tl2cgen_out);
  out[0] = g_tl2cgen_out[0];
  return 0;
}

static Scorer open_tl2cgen(void *lib) {
  g_tl2cgen_predict = (tl2cgen_predict_fn)symbol(lib, "predict");
  int32_t features = ((tl2cgen_int_fn)symbol(lib, "get_num_feature"))();
  int32_t targets = ((tl2cgen_int_fn)symbol(lib, "get_num_target"))();
  int32_t classes = 0;
  ((tl2cgen_num_class_fn)symbol(lib, "get_num_class"))(&classes);
  if (targets != 1 || classes != 1) die("tl2cgen", "only single-output models are benchmarked");
  if (features > g_ncol) die("tl2cgen", "the model has more features than the rows");
  g_tl2cgen_outputs = (size_t)targets * (size_t)classes;
  g_entries = calloc((size_t)g_ncol, sizeof(union Entry));
  g_tl2cgen_out = calloc(g_tl2cgen_outputs, sizeof(double));
  if (g_entries == NULL || g_tl2cgen_out == NULL) die("out of memory", NULL);
  return (Scorer){"tl2cgen", tl2cgen_one, NULL};
}

/* ---- lleaves ------------------------------------------------------------------------------ */

typedef void (*lleaves_fn)(const double *, double *, int32_t, int32_t);
static lleaves_fn g_forest_root;

/* forest_root stores each row's result (it adds to out only between its own tree blocks, after
 * storing the first), so out needs no zeroing. */
static int lleaves_one(const double *row, double *out) {
  g_forest_root(row, out, 0, 1);
  return 0;
}

static int lleaves_block(const double *rows, int32_t n, double *out) {
  g_forest_root(rows, out, 0, n);
  return 0;
}

static Scorer open_lleaves(void *lib) {
  g_forest_root = (lleaves_fn)symbol(lib, "forest_root");
  return (Scorer){"lleaves", lleaves_one, lleaves_block};
}

/* ---- driver ------------------------------------------------------------------------------- */

static double *read_rows(const char *path, int64_t *n_rows) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die("cannot open", path);
  int64_t shape[2];
  if (fread(shape, sizeof(int64_t), 2, f) != 2 || shape[0] <= 0 || shape[1] <= 0)
    die("bad rows file", path);
  size_t count = (size_t)shape[0] * (size_t)shape[1];
  double *rows = malloc(count * sizeof(double));
  if (rows == NULL) die("out of memory", NULL);
  if (fread(rows, sizeof(double), count, f) != count) die("short rows file", path);
  fclose(f);
  *n_rows = shape[0];
  g_ncol = (int32_t)shape[1];
  return rows;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Whether MODE scores blocks; checks that the scorer can. */
static int is_block(Scorer s, const char *mode, int64_t n) {
  /* "candidates16" is a 16-row block too: only the rows differ (they share most columns). */
  int block = strcmp(mode, "block16") == 0 || strcmp(mode, "candidates16") == 0;
  if (!block && strcmp(mode, "single") != 0) die("unknown mode", mode);
  if (block && s.score_block == NULL) die(s.name, "has no block entry point");
  if (n % ROWS_PER_SAMPLE != 0) die("the row count must be a multiple of 64", NULL);
  return block;
}

/* Scores rows [first, first + count) as MODE does; count is a multiple of BLOCK for blocks. */
static void score(Scorer s, int block, const double *first, int64_t count, double *out) {
  if (block) {
    for (int64_t k = 0; k < count; k += BLOCK)
      if (s.score_block(first + k * g_ncol, BLOCK, out + k) != 0)
        die(s.name, "unexpected output length");
  } else {
    for (int64_t k = 0; k < count; k++)
      if (s.score_one(first + k * g_ncol, out + k) != 0) die(s.name, "unexpected output length");
  }
}

static int predict_all(Scorer s, const double *rows, int64_t n, const char *mode,
                       const char *out_path) {
  int block = is_block(s, mode, n);
  double *out = malloc((size_t)n * sizeof(double));
  if (out == NULL) die("out of memory", NULL);
  score(s, block, rows, n, out);
  FILE *f = fopen(out_path, "wb");
  if (f == NULL || fwrite(out, sizeof(double), (size_t)n, f) != (size_t)n || fclose(f) != 0)
    die("cannot write", out_path);
  free(out);
  return 0;
}

static int time_mode(Scorer s, const double *rows, int64_t n, const char *mode, long min_samples,
                     long max_samples, double seconds) {
  int block = is_block(s, mode, n);
  if (min_samples < 1 || max_samples < min_samples) die("bad sample counts", NULL);
  double *per_row = malloc((size_t)max_samples * sizeof(double));
  double out[ROWS_PER_SAMPLE];
  double checksum = 0.0;
  if (per_row == NULL) die("out of memory", NULL);
  for (int64_t i = 0; i < 8 * ROWS_PER_SAMPLE; i += ROWS_PER_SAMPLE) /* warm-up */
    score(s, block, rows + (i % n) * g_ncol, ROWS_PER_SAMPLE, out);
  int64_t started = now_ns(), next = 0;
  long samples = 0;
  while (samples < max_samples &&
         (samples < min_samples || (double)(now_ns() - started) < seconds * 1e9)) {
    const double *first = rows + next * g_ncol;
    int64_t t0 = now_ns();
    score(s, block, first, ROWS_PER_SAMPLE, out);
    int64_t t1 = now_ns();
    per_row[samples++] = (double)(t1 - t0) / ROWS_PER_SAMPLE;
    checksum += out[0] + out[ROWS_PER_SAMPLE - 1]; /* the results are used */
    next = (next + ROWS_PER_SAMPLE) % n;
  }
  printf("{\"rows_per_sample\": %d, \"samples\": %ld, \"checksum\": %.17g, \"per_row_ns\": [",
         ROWS_PER_SAMPLE, samples, checksum);
  for (long i = 0; i < samples; i++) printf("%s%.1f", i ? ", " : "", per_row[i]);
  qsort(per_row, (size_t)samples, sizeof(double), compare_doubles);
  double p50 = per_row[(samples - 1) / 2];
  double p99 = per_row[(long)ceil(0.99 * (double)samples) - 1];
  printf("], \"p50_ns\": %.1f, \"p99_ns\": %.1f}\n", p50, p99);
  free(per_row);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr,
            "usage: score_c KIND LIBRARY MODEL ROWS predict MODE OUT\n"
            "       score_c KIND LIBRARY MODEL ROWS time MODE MIN_SAMPLES MAX_SAMPLES SECONDS\n");
    return 2;
  }
  const char *kind = argv[1], *library = argv[2], *model = argv[3], *command = argv[5];
  int64_t n_rows = 0;
  double *rows = read_rows(argv[4], &n_rows);
  void *lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) die("dlopen", dlerror());
  Scorer s;
  if (strcmp(kind, "lightgbm") == 0)
    s = open_lightgbm(lib, model);
  else if (strcmp(kind, "tl2cgen") == 0)
    s = open_tl2cgen(lib);
  else if (strcmp(kind, "lleaves") == 0)
    s = open_lleaves(lib);
  else
    die("unknown kind", kind);
  if (strcmp(command, "predict") == 0 && argc == 8)
    return predict_all(s, rows, n_rows, argv[6], argv[7]);
  if (strcmp(command, "time") == 0 && argc == 10)
    return time_mode(s, rows, n_rows, argv[6], atol(argv[7]), atol(argv[8]), atof(argv[9]));
  die("bad command line", command);
  return 2;
}
