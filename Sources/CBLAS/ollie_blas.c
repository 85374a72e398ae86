#define _GNU_SOURCE
#include "ollie_blas.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CBLAS enum values, fixed by the CBLAS standard. */
enum { RowMajor = 101, NoTrans = 111, Trans = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*corename_fn)(void);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *requested_core;
static int status = -1;
static char error_text[512];
static sgemm_fn sgemm;
static set_threads_fn set_threads;
static get_threads_fn get_threads;
static corename_fn corename;

static void load(void) {
    if (requested_core && requested_core[0]) setenv("OPENBLAS_CORETYPE", requested_core, 1);
    const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"};
    void *lib = NULL;
    for (unsigned i = 0; i < sizeof names / sizeof *names && !lib; i++)
        lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(error_text, sizeof error_text,
                 "OpenBLAS not found (%s); install it: apt-get install libopenblas-dev", dlerror());
        return;
    }
    sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
    set_threads = (set_threads_fn)dlsym(lib, "openblas_set_num_threads");
    get_threads = (get_threads_fn)dlsym(lib, "openblas_get_num_threads");
    corename = (corename_fn)dlsym(lib, "openblas_get_corename");
    if (!sgemm) {
        snprintf(error_text, sizeof error_text, "libopenblas has no cblas_sgemm");
        return;
    }
    status = 0;
}

int ollie_blas_open(const char *coretype) {
    requested_core = coretype;
    pthread_once(&once, load);
    return status;
}

const char *ollie_blas_error(void) { return error_text; }

const char *ollie_blas_corename(void) {
    if (ollie_blas_open(NULL) != 0 || !corename) return "unknown";
    return corename();
}

void ollie_blas_set_threads(int n) {
    if (ollie_blas_open(NULL) == 0 && set_threads) set_threads(n);
}

int ollie_blas_get_threads(void) {
    if (ollie_blas_open(NULL) == 0 && get_threads) return get_threads();
    return 1;
}


void ollie_sgemm(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc) {
    sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans,
          M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
