/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *		Scheduled publishing, backend side: the state shared with the
 *		background worker, waking it when a schedule commits, and what
 *		operators can ask about it.
 *
 * The worker (worker.c) sleeps on its process latch until the next due
 * run_at.  A trigger on ipai.cms_schedule marks the transaction, and a
 * transaction callback sets the worker's latch once the transaction has
 * committed: only then can the worker's next snapshot see the new row.  A
 * wake-up set before commit would let the worker look, see nothing, and go
 * back to sleep until the old deadline.
 *
 * Shared memory exists only when ipai_saas is in shared_preload_libraries;
 * without it ipai_scheduler_shared is NULL, the trigger does nothing and
 * pg_cron (or any caller of ipai.run_due_publications()) does the work.
 *
 * Locking: every field of IpaiSchedulerShared is read and written under its
 * spinlock, held for a few loads and stores only.  SetLatch is called after
 * releasing it; setting a latch whose owner has gone is harmless (a
 * spurious wake-up for whoever owns it next, which every latch waiter
 * tolerates).
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "scheduler.h"

IpaiSchedulerShared *ipai_scheduler_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this transaction wrote a pending schedule: wake the worker at commit */
static bool wake_at_commit = false;
static bool xact_callback_registered = false;

static void
scheduler_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(IpaiSchedulerShared)));
}

/*
 * Create (postmaster, also after a crash restart) or attach to the shared
 * state.  A restart after a crash starts from zero, which is right: every
 * backend and the worker are new.
 */
static void
scheduler_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ipai_scheduler_shared = ShmemInitStruct("ipai_saas scheduler",
											sizeof(IpaiSchedulerShared),
											&found);
	if (!found)
	{
		memset(ipai_scheduler_shared, 0, sizeof(IpaiSchedulerShared));
		SpinLockInit(&ipai_scheduler_shared->mutex);
		ipai_scheduler_shared->last_lateness_us = -1;
		ipai_scheduler_shared->max_lateness_us = -1;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * ipai_scheduler_request_shmem
 *		Install the shared-memory hooks.  Only from _PG_init while
 *		shared_preload_libraries is being processed.
 */
void
ipai_scheduler_request_shmem(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = scheduler_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = scheduler_shmem_startup;
}

/*
 * Set the worker's latch if it serves the database we are connected to.
 * Returns whether a worker was woken.
 */
static bool
wake_worker(void)
{
	Latch	   *latch = NULL;

	if (ipai_scheduler_shared == NULL)
		return false;
	SpinLockAcquire(&ipai_scheduler_shared->mutex);
	if (ipai_scheduler_shared->worker_pid != 0 &&
		ipai_scheduler_shared->database_id == MyDatabaseId)
		latch = ipai_scheduler_shared->worker_latch;
	SpinLockRelease(&ipai_scheduler_shared->mutex);
	if (latch == NULL)
		return false;
	SetLatch(latch);
	return true;
}

/*
 * At commit (after the commit is visible to new snapshots) wake the
 * worker; forget the request on abort or PREPARE.  A prepared transaction
 * that commits later is picked up by the worker's periodic safety-net wake.
 */
static void
scheduler_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit)
			{
				wake_at_commit = false;
				(void) wake_worker();
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

PG_FUNCTION_INFO_V1(ipai_cms_schedule_wake_worker);

/*
 * ipai._cms_schedule_wake_worker() trigger
 *		AFTER INSERT OR UPDATE ... FOR EACH ROW WHEN (NEW.status = 'pending')
 *		on ipai.cms_schedule: the worker re-reads its next deadline once
 *		this transaction commits.  Costs a flag per row; no SPI.
 */
Datum
ipai_cms_schedule_wake_worker(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ipai._cms_schedule_wake_worker() must be called as a trigger");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "ipai._cms_schedule_wake_worker() must be fired AFTER");

	if (ipai_scheduler_shared != NULL)
	{
		if (!xact_callback_registered)
		{
			RegisterXactCallback(scheduler_xact_callback, NULL);
			xact_callback_registered = true;
		}
		wake_at_commit = true;
	}
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(ipai_scheduler_wake_at_commit);

/*
 * ipai._scheduler_wake_at_commit() returns void
 *		What the trigger does, for a caller on the Citus coordinator, where
 *		the trigger fires on a worker: the worker here re-reads its next
 *		deadline once this transaction commits.  Nothing without the
 *		worker's shared memory.
 */
Datum
ipai_scheduler_wake_at_commit(PG_FUNCTION_ARGS)
{
	if (ipai_scheduler_shared != NULL)
	{
		if (!xact_callback_registered)
		{
			RegisterXactCallback(scheduler_xact_callback, NULL);
			xact_callback_registered = true;
		}
		wake_at_commit = true;
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ipai_scheduler_wakeup);

/*
 * ipai.scheduler_wakeup() returns boolean
 *		Make the worker look at the schedule now (after bulk loads with
 *		triggers disabled, for instance).  True when a worker serving this
 *		database was woken.  Raises 55000 when ipai_saas is not preloaded.
 */
Datum
ipai_scheduler_wakeup(PG_FUNCTION_ARGS)
{
	if (ipai_scheduler_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the scheduled-publishing worker is not available"),
				 errdetail("ipai_saas is not loaded through shared_preload_libraries."),
				 errhint("Add ipai_saas to shared_preload_libraries in postgresql.conf and restart the server, "
						 "or let pg_cron run ipai.run_due_publications() (see ipai.schedule_jobs()).")));
	PG_RETURN_BOOL(wake_worker());
}

PG_FUNCTION_INFO_V1(ipai_backend_start);

/*
 * ipai._backend_start() returns timestamptz
 *		When this backend started: pg_stat_activity.backend_start of
 *		pg_backend_pid().  With the pid it names a backend uniquely, even
 *		when the operating system reuses pids.
 */
Datum
ipai_backend_start(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(MyStartTimestamp);
}

static const char *
state_name(IpaiSchedulerState state)
{
	switch (state)
	{
		case IPAI_SCHED_NOT_RUNNING:
			return "not running";
		case IPAI_SCHED_STARTING:
			return "starting";
		case IPAI_SCHED_WAITING_FOR_SCHEMA:
			return "waiting for schema";
		case IPAI_SCHED_DISABLED:
			return "disabled";
		case IPAI_SCHED_SLEEPING:
			return "sleeping";
		case IPAI_SCHED_WORKING:
			return "working";
	}
	return "unknown";
}

static Datum
interval_from_us(int64 us)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = us;
	return IntervalPGetDatum(result);
}

PG_FUNCTION_INFO_V1(ipai_scheduler_status);

/*
 * ipai.scheduler_status() returns one row about the background worker:
 *		preloaded, enabled, database, serves_this_database, worker_pid,
 *		state, started_at, heartbeat_at, next_wakeup_at, executed, failed,
 *		deferred, recovered, last_lateness, max_lateness, last_executed_at,
 *		worker_starts, helpers.
 *
 * Counters cover the worker's runs since it last started (executions by
 * pg_cron or other callers are in ipai.cms_schedule, not here).  Without
 * preloading the row says preloaded = false and state 'not loaded'.
 */
Datum
ipai_scheduler_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[18];
	bool		nulls[18];
	IpaiSchedulerShared snap;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (tupdesc->natts != 18)
		elog(ERROR, "ipai.scheduler_status() must return 18 columns");

	memset(nulls, true, sizeof(nulls));
	values[0] = BoolGetDatum(ipai_scheduler_shared != NULL);
	nulls[0] = false;
	values[1] = BoolGetDatum(ipai_scheduler_enabled);
	nulls[1] = false;
	if (ipai_scheduler_database != NULL)
	{
		values[2] = CStringGetTextDatum(ipai_scheduler_database);
		nulls[2] = false;
	}

	if (ipai_scheduler_shared == NULL)
	{
		values[3] = BoolGetDatum(false);
		nulls[3] = false;
		values[5] = CStringGetTextDatum("not loaded");
		nulls[5] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}

	SpinLockAcquire(&ipai_scheduler_shared->mutex);
	memcpy(&snap, ipai_scheduler_shared, sizeof(snap));
	SpinLockRelease(&ipai_scheduler_shared->mutex);

	values[3] = BoolGetDatum(snap.worker_pid != 0 && snap.database_id == MyDatabaseId);
	nulls[3] = false;
	if (snap.worker_pid != 0)
	{
		values[4] = Int32GetDatum((int32) snap.worker_pid);
		nulls[4] = false;
	}
	values[5] = CStringGetTextDatum(state_name(snap.worker_pid != 0 ? snap.state
											   : IPAI_SCHED_NOT_RUNNING));
	nulls[5] = false;
	if (snap.worker_pid != 0)
	{
		values[6] = TimestampTzGetDatum(snap.started_at);
		nulls[6] = false;
		values[7] = TimestampTzGetDatum(snap.heartbeat_at);
		nulls[7] = snap.heartbeat_at == 0;
		values[8] = TimestampTzGetDatum(snap.next_wakeup_at);
		nulls[8] = snap.next_wakeup_at == 0;
	}
	values[9] = Int64GetDatum(snap.executed);
	values[10] = Int64GetDatum(snap.failed);
	values[11] = Int64GetDatum(snap.deferred);
	values[12] = Int64GetDatum(snap.recovered);
	nulls[9] = nulls[10] = nulls[11] = nulls[12] = false;
	if (snap.last_lateness_us >= 0)
	{
		values[13] = interval_from_us(snap.last_lateness_us);
		nulls[13] = false;
		values[14] = interval_from_us(snap.max_lateness_us);
		nulls[14] = false;
		values[15] = TimestampTzGetDatum(snap.last_executed_at);
		nulls[15] = false;
	}
	values[16] = Int32GetDatum(snap.worker_starts);
	nulls[16] = false;
	values[17] = Int32GetDatum(snap.helpers);
	nulls[17] = false;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
