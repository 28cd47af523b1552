/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The scheduled-publishing background worker.
 *
 * Started by the postmaster when ipai_saas is in shared_preload_libraries.
 * It connects to ipai.scheduler_database as the bootstrap superuser and
 * loops:
 *
 *	1. recover runs claimed by backends that died (ipai.recover_stuck_runs),
 *	2. claim up to CLAIM_CHUNK due schedules and commit the claim
 *	   (status running, claimed by this pid and backend start time),
 *	3. execute them in a second transaction (each row in a subtransaction,
 *	   see ipai._execute_claimed_schedules) and commit,
 *	4. repeat 2-3 while claims come back; when a chunk comes back full (a
 *	   backlog), start up to ipai.scheduler_helpers helper workers that run
 *	   2-3 alongside until nothing is due, then exit (their exit wakes the
 *	   worker, whose next round recovers what a helper that died held),
 *	5. sleep on the process latch until the next due run_at, at most
 *	   MAX_SLEEP_MS; a committed schedule change sets the latch
 *	   (scheduler.c), so there is no polling interval.
 *
 * One transaction per unit of work: a crash between 2 and 3 leaves rows
 * "running" under a dead backend, which step 1 of the next worker (or
 * ipai.recover_stuck_runs() from pg_cron) puts back to pending; the
 * execution and its "done" mark commit together, so a row is never
 * executed twice.  Any ERROR outside the per-row subtransactions becomes
 * FATAL (no error handler is installed on purpose): the worker exits and
 * the postmaster restarts it after bgw_restart_time.
 *
 * Signals: SIGTERM -> die (exit at the next CHECK_FOR_INTERRUPTS), SIGHUP
 * -> reload settings: ipai.scheduler_enabled switches the worker between
 * working and idle, a new ipai.scheduler_database makes it exit so that it
 * is restarted connected to that database.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include <limits.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "scheduler.h"

/*
 * Schedules claimed and executed per pair of transactions.  Each row's
 * action runs in a subtransaction with an xid of its own: at most 64
 * (PGPROC_MAX_CACHED_SUBXIDS) keep every other backend's visibility checks
 * away from pg_subtrans.
 */
#define CLAIM_CHUNK			64
/* safety net: look at the schedule at least this often */
#define MAX_SLEEP_MS		60000L
/*
 * With Citus the schedule's trigger fires on the worker nodes, whose latch
 * is not ours: ipai.cms_schedule_publish() wakes this worker itself, and
 * for rows written otherwise it looks this often
 */
#define CITUS_POLL_MS		1000L
/* due rows held by another session (a concurrent run, a replace): retry */
#define CONTENDED_SLEEP_MS	100L

/* helpers the worker may start when a backlog builds up */
#define MAX_HELPERS			8

/* ipai.scheduler_max_lateness_log: log runs later than this (ms), -1 off */
int			ipai_scheduler_max_lateness_log = 1000;

/* ipai.scheduler_helpers: extra executors for a backlog */
int			ipai_scheduler_helpers = 1;

/* the main worker's helpers (dynamic background workers), NULL when free */
static BackgroundWorkerHandle *helpers[MAX_HELPERS];

/* this process is a helper: no recovery, exits when nothing is due */
static bool am_helper = false;

/* the database this process is connected to */
static char *served_database = NULL;

/* statements, prepared once the schema exists and kept for the process */
static SPIPlanPtr recover_plan = NULL;
static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr execute_plan = NULL;
static SPIPlanPtr next_due_plan = NULL;

/* ids claimed by the last claim transaction */
static int64 claimed_ids[CLAIM_CHUNK];
static int	nclaimed = 0;

/* what was last logged, so a state is announced once */
static IpaiSchedulerState logged_state = IPAI_SCHED_NOT_RUNNING;

/*
 * ipai_scheduler_init
 *		Called from _PG_init: define the worker's settings and, while
 *		shared_preload_libraries is processed, register the worker and its
 *		shared memory (the worker not in binary-upgrade mode).  Loaded any
 *		other way, only the settings exist.
 */
void
ipai_scheduler_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("ipai.scheduler_max_lateness_log",
							"Logs scheduled runs of the background worker that ran later than this after run_at.",
							"-1 disables the log; 0 logs every run.",
							&ipai_scheduler_max_lateness_log,
							1000,
							-1, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ipai.scheduler_helpers",
							"Helper workers the scheduled-publishing worker may start for a backlog.",
							"They claim and execute due schedules alongside it and exit when none is left; 0 disables them.",
							&ipai_scheduler_helpers,
							1,
							0, MAX_HELPERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	ipai_scheduler_request_shmem();

	/*
	 * pg_upgrade runs the servers in binary-upgrade mode and drops and
	 * recreates every database of the new cluster, "postgres" included: a
	 * worker connected to the one it serves makes that fail ("database is
	 * being accessed by other users").  Nothing is due there anyway.
	 */
	if (IsBinaryUpgrade)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* back within a second after a crash or SIGTERM */
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "ipai_saas", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "ipai_scheduler_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "ipai scheduler", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "ipai scheduler", BGW_MAXLEN);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/* shared state helpers; the spinlock is held for plain stores only */

static void
worker_attach(void)
{
	IpaiSchedulerShared *s = ipai_scheduler_shared;

	SpinLockAcquire(&s->mutex);
	s->worker_pid = MyProcPid;
	s->worker_latch = MyLatch;
	s->database_id = MyDatabaseId;
	s->state = IPAI_SCHED_STARTING;
	s->started_at = GetCurrentTimestamp();
	s->heartbeat_at = s->started_at;
	s->next_wakeup_at = 0;
	s->worker_starts++;
	SpinLockRelease(&s->mutex);
}

static void
worker_detach(int code, Datum arg)
{
	IpaiSchedulerShared *s = ipai_scheduler_shared;

	SpinLockAcquire(&s->mutex);
	if (s->worker_pid == MyProcPid)
	{
		s->worker_pid = 0;
		s->worker_latch = NULL;
		s->state = IPAI_SCHED_NOT_RUNNING;
		s->next_wakeup_at = 0;
	}
	SpinLockRelease(&s->mutex);
}

static void
helper_detach(int code, Datum arg)
{
	IpaiSchedulerShared *s = ipai_scheduler_shared;

	SpinLockAcquire(&s->mutex);
	s->helpers--;
	SpinLockRelease(&s->mutex);
}

static void
set_state(IpaiSchedulerState state, TimestampTz next_wakeup_at)
{
	IpaiSchedulerShared *s = ipai_scheduler_shared;

	SpinLockAcquire(&s->mutex);
	s->state = state;
	s->heartbeat_at = GetCurrentTimestamp();
	s->next_wakeup_at = next_wakeup_at;
	SpinLockRelease(&s->mutex);

	if (state == logged_state)
		return;
	if (state == IPAI_SCHED_DISABLED)
		ereport(LOG,
				(errmsg("ipai scheduler is disabled by ipai.scheduler_enabled"),
				 errhint("Scheduled pages are still shown live by ipai.cms_live_pages; "
						 "pg_cron or ipai.run_due_publications() executes them.")));
	else if (state == IPAI_SCHED_WAITING_FOR_SCHEMA)
		ereport(LOG,
				(errmsg("ipai scheduler is waiting for the ipai schema in database \"%s\"",
						served_database),
				 errhint("Run CREATE EXTENSION ipai_saas and SELECT ipai.install_schema() there.")));
	else if (state == IPAI_SCHED_WORKING &&
			 (logged_state == IPAI_SCHED_DISABLED ||
			  logged_state == IPAI_SCHED_WAITING_FOR_SCHEMA))
		ereport(LOG,
				(errmsg("ipai scheduler is serving database \"%s\"", served_database)));
	if (state != IPAI_SCHED_SLEEPING)
		logged_state = state;
}

/* one unit of work: a transaction with SPI and a snapshot */
static void
begin_work(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end_work(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, ipai_spi_plan_options(0));

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/*
 * Does the served database have the scheduling schema?  Prepares the
 * worker's statements the first time it does; after that the kept plans
 * stand for the schema (if it is dropped they fail, the worker exits and
 * its successor waits for the schema again).
 */
static bool
schema_ready(void)
{
	bool		ready;
	bool		isnull;
	int			ret;

	begin_work("ipai scheduler: looking for the ipai schema");
	ret = SPI_execute("SELECT pg_catalog.to_regclass('ipai.cms_schedule') IS NOT NULL"
					  " AND pg_catalog.to_regprocedure('ipai._execute_claimed_schedules(bigint[])') IS NOT NULL"
					  " AND pg_catalog.to_regprocedure('ipai._claim_due_schedules(integer)') IS NOT NULL",
					  true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look for the ipai schema: %s", SPI_result_code_string(ret));
	ready = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	if (ready && claim_plan == NULL)
	{
		Oid			int4arg[1] = {INT4OID};
		Oid			int8arr[1] = {INT8ARRAYOID};

		recover_plan = prepare_kept("SELECT ipai.recover_stuck_runs()", 0, NULL);
		claim_plan = prepare_kept("SELECT c.claimed_id FROM ipai._claim_due_schedules($1) c",
								  1, int4arg);
		execute_plan = prepare_kept("SELECT e.o_id, e.o_page_id::text, e.o_action::text, e.o_outcome,"
									" (pg_catalog.date_part('epoch', e.o_lateness)"
									"  OPERATOR(pg_catalog.*) 1000000)::bigint, e.o_error"
									" FROM ipai._execute_claimed_schedules($1) e",
									1, int8arr);
		next_due_plan = prepare_kept("SELECT ipai._next_schedule_due()", 0, NULL);
	}
	end_work();
	return ready;
}

/* account for one executed row and log it when late or failed */
static void
account_row(HeapTuple tuple, TupleDesc desc)
{
	IpaiSchedulerShared *s = ipai_scheduler_shared;
	bool		isnull;
	int64		id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
	char	   *page = SPI_getvalue(tuple, desc, 2);
	char	   *action = SPI_getvalue(tuple, desc, 3);
	char	   *outcome = SPI_getvalue(tuple, desc, 4);
	Datum		late_datum = SPI_getbinval(tuple, desc, 5, &isnull);
	int64		lateness_us = isnull ? -1 : DatumGetInt64(late_datum);
	char	   *error = SPI_getvalue(tuple, desc, 6);
	bool		done = strcmp(outcome, "done") == 0;
	bool		failed = strcmp(outcome, "failed") == 0;

	SpinLockAcquire(&s->mutex);
	if (done)
		s->executed++;
	else if (failed)
		s->failed++;
	else
		s->deferred++;
	if ((done || failed) && lateness_us >= 0)
	{
		s->last_lateness_us = lateness_us;
		if (lateness_us > s->max_lateness_us)
			s->max_lateness_us = lateness_us;
		s->last_executed_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&s->mutex);

	if (failed)
		ereport(LOG,
				(errmsg("scheduled %s of page %s failed (schedule %lld)",
						action, page, (long long) id),
				 errdetail("%s", error ? error : "no reason recorded")));
	if ((done || failed) && ipai_scheduler_max_lateness_log >= 0 &&
		lateness_us > (int64) ipai_scheduler_max_lateness_log * 1000)
		ereport(LOG,
				(errmsg("scheduled %s of page %s ran %.3f ms after its run_at (schedule %lld)",
						action, page, lateness_us / 1000.0, (long long) id),
				 errdetail("ipai.scheduler_max_lateness_log is %d ms.",
						   ipai_scheduler_max_lateness_log)));
}

/*
 * Start helpers up to ipai.scheduler_helpers, reusing the slots of those
 * that have exited.  Without a free background worker slot (see
 * max_worker_processes) the worker simply goes on alone.
 */
static void
start_helpers(void)
{
	MemoryContext old;
	int			i;

	old = MemoryContextSwitchTo(TopMemoryContext);
	for (i = 0; i < MAX_HELPERS; i++)
	{
		pid_t		pid;

		if (helpers[i] != NULL &&
			GetBackgroundWorkerPid(helpers[i], &pid) == BGWH_STOPPED)
		{
			pfree(helpers[i]);
			helpers[i] = NULL;
		}
	}
	for (i = 0; i < ipai_scheduler_helpers && i < MAX_HELPERS; i++)
	{
		BackgroundWorker worker;

		if (helpers[i] != NULL)
			continue;
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;
		strlcpy(worker.bgw_library_name, "ipai_saas", BGW_MAXLEN);
		strlcpy(worker.bgw_function_name, "ipai_scheduler_helper_main", BGW_MAXLEN);
		strlcpy(worker.bgw_name, "ipai scheduler helper", BGW_MAXLEN);
		strlcpy(worker.bgw_type, "ipai scheduler helper", BGW_MAXLEN);
		worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
		/* the postmaster signals us when it stops: we then recover its claims */
		worker.bgw_notify_pid = MyProcPid;
		if (!RegisterDynamicBackgroundWorker(&worker, &helpers[i]))
		{
			helpers[i] = NULL;
			break;
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * One claim transaction and, when it claimed something, one execution
 * transaction.  Returns how many schedules were claimed.
 */
static int
claim_and_execute(bool recover)
{
	Datum		arg;
	int			ret;
	uint64		i;

	begin_work("ipai scheduler: claiming due schedules");
	if (recover)
	{
		bool		isnull;
		int32		recovered;

		ret = SPI_execute_plan(recover_plan, NULL, NULL, false, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not recover stuck runs: %s", SPI_result_code_string(ret));
		recovered = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
		if (!isnull && recovered > 0)
		{
			SpinLockAcquire(&ipai_scheduler_shared->mutex);
			ipai_scheduler_shared->recovered += recovered;
			SpinLockRelease(&ipai_scheduler_shared->mutex);
			ereport(LOG,
					(errmsg("ipai scheduler recovered %d scheduled runs whose backend died",
							recovered)));
		}
	}
	arg = Int32GetDatum(CLAIM_CHUNK);
	ret = SPI_execute_plan(claim_plan, &arg, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not claim due schedules: %s", SPI_result_code_string(ret));
	nclaimed = 0;
	for (i = 0; i < SPI_processed && nclaimed < CLAIM_CHUNK; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			claimed_ids[nclaimed++] = DatumGetInt64(d);
	}
	end_work();

	if (nclaimed == 0)
		return 0;

	/* a full chunk means a backlog: let helpers share it */
	if (!am_helper && nclaimed == CLAIM_CHUNK && ipai_scheduler_helpers > 0)
		start_helpers();

	begin_work("ipai scheduler: executing due schedules");
	{
		Datum		elems[CLAIM_CHUNK];
		ArrayType  *ids;
		int			k;

		for (k = 0; k < nclaimed; k++)
			elems[k] = Int64GetDatum(claimed_ids[k]);
		ids = construct_array(elems, nclaimed, INT8OID, sizeof(int64),
							  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		arg = PointerGetDatum(ids);
		ret = SPI_execute_plan(execute_plan, &arg, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not execute due schedules: %s", SPI_result_code_string(ret));
		for (i = 0; i < SPI_processed; i++)
			account_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	}
	end_work();
	return nclaimed;
}

/*
 * Recover dead claims, then claim and execute due schedules chunk by chunk
 * until a claim comes back empty (a later schedule of a page becomes
 * claimable once the earlier one ran; deferred rows wait for their
 * retry_at, so this ends).
 */
static void
run_round(void)
{
	bool		first = true;

	for (;;)
	{
		if (claim_and_execute(first) == 0)
			return;
		first = false;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			return;
	}
}

/* milliseconds to sleep until the next due run, within the safety net */
static long
next_timeout(void)
{
	bool		isnull;
	Datum		d;
	int			ret;
	TimestampTz next = 0;
	TimestampTz now;
	long		timeout;
	bool		citus;

	begin_work("ipai scheduler: reading the next due schedule");
	ret = SPI_execute_plan(next_due_plan, NULL, NULL, true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the next due schedule: %s", SPI_result_code_string(ret));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		next = DatumGetTimestampTz(d);
	citus = ipai_citus_installed();
	end_work();

	now = GetCurrentTimestamp();
	if (isnull)
		timeout = MAX_SLEEP_MS;
	else if (next <= now)
		timeout = CONTENDED_SLEEP_MS;
	else
	{
		/* round up: waking a little late is fine, early is a wasted round */
		int64		us = next - now;

		timeout = (us >= MAX_SLEEP_MS * 1000) ? MAX_SLEEP_MS : (long) ((us + 999) / 1000);
	}
	if (citus && timeout > CITUS_POLL_MS)
		timeout = CITUS_POLL_MS;
	set_state(IPAI_SCHED_SLEEPING,
			  isnull ? 0 : TimestampTzPlusMilliseconds(now, timeout));
	return timeout;
}

/*
 * ipai_scheduler_main
 *		Entry point of the background worker (bgw_function_name).
 */
void
ipai_scheduler_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (ipai_scheduler_shared == NULL)
		elog(FATAL, "ipai scheduler started without its shared memory");

	served_database = MemoryContextStrdup(TopMemoryContext,
										  ipai_scheduler_database ? ipai_scheduler_database : "postgres");
	BackgroundWorkerInitializeConnection(served_database, NULL, 0);
	SetConfigOption("application_name", "ipai scheduler", PGC_USERSET, PGC_S_SESSION);

	worker_attach();
	before_shmem_exit(worker_detach, (Datum) 0);
	ereport(LOG,
			(errmsg("ipai scheduler started for database \"%s\"", served_database)));

	for (;;)
	{
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (ipai_scheduler_database == NULL ||
				strcmp(served_database, ipai_scheduler_database) != 0)
			{
				ereport(LOG,
						(errmsg("ipai scheduler restarts to serve database \"%s\" instead of \"%s\"",
								ipai_scheduler_database ? ipai_scheduler_database : "",
								served_database)));
				proc_exit(1);
			}
		}

		if (!ipai_scheduler_enabled)
		{
			set_state(IPAI_SCHED_DISABLED, 0);
			timeout = MAX_SLEEP_MS;
		}
		else if (claim_plan == NULL && !schema_ready())
		{
			set_state(IPAI_SCHED_WAITING_FOR_SCHEMA, 0);
			timeout = MAX_SLEEP_MS;
		}
		else
		{
			set_state(IPAI_SCHED_WORKING, 0);
			run_round();
			timeout = next_timeout();
		}

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * ipai_scheduler_helper_main
 *		Entry point of a helper (bgw_function_name), started by the worker
 *		for a backlog: claims and executes chunks like the worker until a
 *		claim comes back empty, then exits.  It recovers nothing and is not
 *		restarted; if it dies, the worker's recovery retries its claims.
 */
void
ipai_scheduler_helper_main(Datum main_arg)
{
	IpaiSchedulerShared *s = ipai_scheduler_shared;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	am_helper = true;

	if (s == NULL)
		elog(FATAL, "ipai scheduler helper started without its shared memory");
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);
	SetConfigOption("application_name", "ipai scheduler", PGC_USERSET, PGC_S_SESSION);

	SpinLockAcquire(&s->mutex);
	s->helpers++;
	SpinLockRelease(&s->mutex);
	before_shmem_exit(helper_detach, (Datum) 0);

	if (!schema_ready())
		proc_exit(0);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!ipai_scheduler_enabled)
			break;
		if (claim_and_execute(false) == 0)
			break;
	}
	proc_exit(0);
}
