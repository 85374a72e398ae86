#define _GNU_SOURCE
#include "ollie_mpi.h"
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Open MPI's handles are pointers to its internal structs; MPI_Status* may be NULL (MPI_STATUS_IGNORE). */
typedef void *Handle;

static int (*p_init)(int *, char ***);
static int (*p_comm_rank)(Handle, int *);
static int (*p_comm_size)(Handle, int *);
static int (*p_comm_dup)(Handle, Handle *);
static int (*p_comm_set_errhandler)(Handle, Handle);
static int (*p_iallgather)(const void *, int, Handle, void *, int, Handle, Handle, Handle *);
static int (*p_ibcast)(void *, int, Handle, int, Handle, Handle *);
static int (*p_test)(Handle *, int *, void *);
static int (*p_error_string)(int, char *, int *);
static int (*p_finalize)(void);
static int (*p_abort)(Handle, int);
static Handle world, byte_type, errors_return;
/* ollie's own communicator: its collectives never match a library's on MPI_COMM_WORLD. */
static Handle comm;

static char error_text[600];
static volatile sig_atomic_t stop_requested;

static void on_sigterm(int sig) { (void)sig; stop_requested = 1; }

int ollie_mpi_launched(void) {
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    const char *pmix = getenv("PMIX_RANK");
    return (size && *size) || (pmix && *pmix);
}

const char *ollie_mpi_error(void) { return error_text; }

int ollie_mpi_stop_requested(void) { return stop_requested != 0; }

static int mpi_failure(const char *what, int code) {
    char text[256] = "";
    int length = 0;
    if (p_error_string) p_error_string(code, text, &length);
    snprintf(error_text, sizeof error_text, "%s failed: %s (MPI error %d)", what, text, code);
    return OLLIE_MPI_FAILED;
}

#define FIND(pointer, name)                                                                        \
    do {                                                                                           \
        *(void **)(&pointer) = dlsym(lib, name);                                                  \
        if (!pointer) {                                                                            \
            snprintf(error_text, sizeof error_text, "libmpi has no %s; is it Open MPI 4 or later?", name); \
            return OLLIE_MPI_FAILED;                                                               \
        }                                                                                          \
    } while (0)

int ollie_mpi_start(int *rank, int *size) {
    const char *names[] = {"libmpi.so.40", "libmpi.so"};
    void *lib = NULL;
    /* RTLD_GLOBAL: Open MPI's own plugins, which it dlopens, resolve symbols against libmpi. */
    for (unsigned i = 0; i < sizeof names / sizeof *names && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(error_text, sizeof error_text,
                 "started by mpirun, but Open MPI's library cannot be loaded (%s); install it: apt-get install openmpi-bin libopenmpi-dev (or bash scripts/setup.sh)",
                 dlerror());
        return OLLIE_MPI_FAILED;
    }
    FIND(p_init, "MPI_Init");
    FIND(p_comm_rank, "MPI_Comm_rank");
    FIND(p_comm_size, "MPI_Comm_size");
    FIND(p_comm_dup, "MPI_Comm_dup");
    FIND(p_comm_set_errhandler, "MPI_Comm_set_errhandler");
    FIND(p_iallgather, "MPI_Iallgather");
    FIND(p_ibcast, "MPI_Ibcast");
    FIND(p_test, "MPI_Test");
    FIND(p_error_string, "MPI_Error_string");
    FIND(p_finalize, "MPI_Finalize");
    FIND(p_abort, "MPI_Abort");
    FIND(world, "ompi_mpi_comm_world");
    FIND(byte_type, "ompi_mpi_byte");
    FIND(errors_return, "ompi_mpi_errors_return");
    int rc = p_init(NULL, NULL);
    if (rc != 0) return mpi_failure("MPI_Init", rc);
    if ((rc = p_comm_dup(world, &comm)) != 0) return mpi_failure("MPI_Comm_dup", rc);
    p_comm_set_errhandler(comm, errors_return);
    if ((rc = p_comm_rank(comm, rank)) != 0) return mpi_failure("MPI_Comm_rank", rc);
    if ((rc = p_comm_size(comm, size)) != 0) return mpi_failure("MPI_Comm_size", rc);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigterm;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    return OLLIE_MPI_OK;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Polls a request until it completes, the deadline passes or mpirun asks us to stop. Spins
 * first (a step's exchange usually completes within microseconds), then naps 50 µs between
 * tests so a rank waiting for a slower one leaves the core to it. A timed-out collective
 * cannot be cancelled: the caller must end the job. */
static int wait_for(Handle *request, double timeout_seconds, const char *what) {
    double deadline = now_seconds() + timeout_seconds;
    for (long spin = 0;; spin++) {
        int done = 0;
        int rc = p_test(request, &done, NULL);
        if (rc != 0) return mpi_failure(what, rc);
        if (done) return OLLIE_MPI_OK;
        if (stop_requested) return OLLIE_MPI_STOPPED;
        if ((spin & 63) == 0 && now_seconds() > deadline) return OLLIE_MPI_TIMEOUT;
        if (spin > 2000) {
            struct timespec nap = {0, 50000};
            nanosleep(&nap, NULL);
        }
    }
}

int ollie_mpi_allgather(const void *send, long bytes, void *receive, double timeout_seconds) {
    if (bytes < 0 || bytes > INT_MAX) {
        snprintf(error_text, sizeof error_text, "one exchange of %ld bytes is more than MPI's 2 GB per message", bytes);
        return OLLIE_MPI_FAILED;
    }
    Handle request = NULL;
    int rc = p_iallgather(send, (int)bytes, byte_type, receive, (int)bytes, byte_type, comm, &request);
    if (rc != 0) return mpi_failure("MPI_Iallgather", rc);
    return wait_for(&request, timeout_seconds, "MPI_Iallgather");
}

int ollie_mpi_broadcast(void *buffer, long bytes, int root, double timeout_seconds) {
    /* In pieces of at most 1 GB: MPI counts are ints. */
    char *at = buffer;
    while (bytes > 0) {
        int piece = bytes > (1L << 30) ? (1 << 30) : (int)bytes;
        Handle request = NULL;
        int rc = p_ibcast(at, piece, byte_type, root, comm, &request);
        if (rc != 0) return mpi_failure("MPI_Ibcast", rc);
        if ((rc = wait_for(&request, timeout_seconds, "MPI_Ibcast")) != OLLIE_MPI_OK) return rc;
        at += piece;
        bytes -= piece;
    }
    return OLLIE_MPI_OK;
}

void ollie_mpi_finish(void) {
    if (p_finalize) p_finalize();
}

void ollie_mpi_abort(int code) {
    if (p_abort) p_abort(world, code);
    _exit(code);
}
