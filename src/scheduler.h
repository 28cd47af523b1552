/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *		Scheduled publishing: the state the background worker shares with
 *		backends (scheduler.c) and the worker's entry points (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_SCHEDULER_H
#define IPAI_SCHEDULER_H

#include "ipai_saas.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"

/* what the worker is doing, for ipai.scheduler_status() */
typedef enum IpaiSchedulerState
{
	IPAI_SCHED_NOT_RUNNING = 0,
	IPAI_SCHED_STARTING,
	IPAI_SCHED_WAITING_FOR_SCHEMA,
	IPAI_SCHED_DISABLED,
	IPAI_SCHED_SLEEPING,
	IPAI_SCHED_WORKING
} IpaiSchedulerState;

/*
 * One per server, in shared memory when ipai_saas is preloaded.  Every
 * field is read and written under mutex; the worker is the only writer
 * except worker_starts, which it also bumps itself.
 */
typedef struct IpaiSchedulerShared
{
	slock_t		mutex;
	pid_t		worker_pid;		/* 0 when no worker runs */
	Latch	   *worker_latch;	/* its process latch, NULL when none */
	Oid			database_id;	/* the database it serves */
	IpaiSchedulerState state;
	TimestampTz started_at;
	TimestampTz heartbeat_at;	/* last time its loop ran */
	TimestampTz next_wakeup_at; /* 0 when sleeping without a due run */
	TimestampTz last_executed_at;
	int64		executed;		/* schedules done since start */
	int64		failed;			/* schedules failed since start */
	int64		deferred;		/* runs put back because the page was busy */
	int64		recovered;		/* dead claims reset to pending */
	int64		last_lateness_us;	/* -1 when nothing ran yet */
	int64		max_lateness_us;
	int32		worker_starts;	/* since the server (or shared memory) started */
	int32		helpers;		/* helper workers running now */
} IpaiSchedulerShared;

/* scheduler.c */
extern IpaiSchedulerShared *ipai_scheduler_shared;
extern void ipai_scheduler_request_shmem(void);

/* worker.c */
extern int	ipai_scheduler_max_lateness_log;
extern int	ipai_scheduler_helpers;
extern void ipai_scheduler_init(void);
ipai_noreturn extern PGDLLEXPORT void ipai_scheduler_main(Datum main_arg);
ipai_noreturn extern PGDLLEXPORT void ipai_scheduler_helper_main(Datum main_arg);

#endif							/* IPAI_SCHEDULER_H */
