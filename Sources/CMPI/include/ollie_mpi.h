#ifndef OLLIE_MPI_H
#define OLLIE_MPI_H

/* Open MPI, loaded at run time with dlopen, only when ollie was started by mpirun.
 *
 * Why not link it: MPI is optional. A build on a machine without Open MPI must work, and so
 * must every run outside mpirun, so nothing here needs mpi.h or libmpi at build time. The few
 * MPI calls ollie makes are declared with Open MPI's ABI (handles are pointers; MPI_COMM_WORLD
 * and MPI_BYTE are the addresses of the globals ompi_mpi_comm_world and ompi_mpi_byte).
 *
 * Every wait has a deadline: collectives are started non-blocking and polled, so a rank that
 * died or hangs turns into an error here instead of a job that never ends. */

/* 1 when this process was started by mpirun (Open MPI's or PMIx's environment is set). */
int ollie_mpi_launched(void);

/* Loads libmpi, calls MPI_Init, duplicates MPI_COMM_WORLD (errors returned, not fatal) and
 * installs a SIGTERM handler (mpirun's way of stopping a job) that makes waits return
 * OLLIE_MPI_STOPPED. Returns 0, or -1 with ollie_mpi_error() saying why. */
int ollie_mpi_start(int *rank, int *size);
const char *ollie_mpi_error(void);
/* 1 once mpirun asked this process to stop (SIGTERM): work between collectives can end early. */
int ollie_mpi_stop_requested(void);

#define OLLIE_MPI_OK 0
#define OLLIE_MPI_FAILED (-1)
#define OLLIE_MPI_TIMEOUT 1
#define OLLIE_MPI_STOPPED 2

/* Every rank's `bytes` bytes of `send`, in rank order, into `receive` (size × bytes), waiting
 * at most `timeout_seconds`. Returns an OLLIE_MPI_* code. */
int ollie_mpi_allgather(const void *send, long bytes, void *receive, double timeout_seconds);

/* Rank `root`'s `bytes` bytes of `buffer` into every rank's, waiting at most `timeout_seconds`. */
int ollie_mpi_broadcast(void *buffer, long bytes, int root, double timeout_seconds);

/* MPI_Finalize: the clean end, every rank together. */
void ollie_mpi_finish(void);
/* MPI_Abort: ends every rank of the job now (mpirun kills them) with `code`. */
void ollie_mpi_abort(int code);

#endif
