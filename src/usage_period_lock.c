/*-------------------------------------------------------------------------
 *
 * usage_period_lock.c
 *		An organization's usage periods stay put while a transaction
 *		records usage for it.
 *
 * A consume judges the limit on the counter of the period it read.  If
 * the periods moved (a subscription inserted, deleted or moved, the time
 * zone changed) between that read and its write, it would write the old
 * period's counter while consumes after the move build the new period's
 * counter, whose carried part cannot count usage not yet committed: both
 * could fit, and the window pass the limit.  So the functions that record
 * usage or hold it (consume, record, reserve, finalize) take a lock of the
 * organization in SHARE mode for the rest of the transaction before they
 * read the periods, and a move (ipai._usage_counters_rebase) takes it in
 * EXCLUSIVE mode before it locks and recomputes the counters: it waits
 * for the transactions that recorded under the old periods, and the ones
 * after it wait for its commit and then read the new periods (pending
 * cache invalidations are taken in once the lock is held).
 *
 * The lock is an advisory lock of the database in a key space of its own
 * (field 4 = 7: pg_advisory_lock() and friends use 1 and 2), keyed by a
 * hash of the organization id (a collision only serializes two
 * organizations' moves and writes).  SHARE locks do not conflict with
 * each other, so consumers do not wait for each other here.
 *
 * Limits: a transaction holds one lock per organization it records for,
 * and the lock table is bounded (max_locks_per_transaction): after
 * IPAI_PERIOD_LOCKS organizations in one transaction, further ones are
 * not locked (that transaction is not protected from a concurrent move).
 * A transaction that already recorded usage for an organization and then
 * moves its periods does not take the EXCLUSIVE lock (it would wait for
 * the other consumers, who may wait for its counter: a deadlock).  On
 * Citus the lock is per node: it protects the calls delegated to the
 * worker that holds the organization, where the moves run too.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/uuid.h"

#define IPAI_PERIOD_LOCK_SPACE 7
#define IPAI_PERIOD_LOCK_CLASS 0x69706169	/* "ipai" */
#define IPAI_PERIOD_LOCKS 32

static int	locks_taken = 0;		/* in this transaction */
static bool callback_registered = false;

static void
period_lock_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		locks_taken = 0;
}

static void
period_locktag(const pg_uuid_t *org_id, LOCKTAG *tag)
{
	uint32		key = hash_bytes(org_id->data, UUID_LEN);

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, IPAI_PERIOD_LOCK_CLASS, key,
						 IPAI_PERIOD_LOCK_SPACE);
}

/*
 * usage_periods_share
 *		Before reading the organization's periods to record or hold usage:
 *		its periods cannot move until this transaction ends.  The caller
 *		then refreshes the caches (usage_refresh_caches), which takes in the
 *		signal of a move that committed before the lock was granted.
 */
void
usage_periods_share(const pg_uuid_t *org_id)
{
	LOCKTAG		tag;

	if (!callback_registered)
	{
		RegisterXactCallback(period_lock_xact_callback, NULL);
		callback_registered = true;
	}
	period_locktag(org_id, &tag);
	if (locks_taken >= IPAI_PERIOD_LOCKS && !ipai_lock_held_by_me(&tag, ShareLock))
		return;
	if (LockAcquire(&tag, ShareLock, false, false) == LOCKACQUIRE_OK)
		locks_taken++;
}

PG_FUNCTION_INFO_V1(ipai_usage_periods_lock);

/*
 * ipai._usage_periods_lock(org_id uuid) returns void
 *
 * Taken by a move of the organization's periods before it locks its
 * counters: waits for the transactions recording usage under the old
 * periods, and makes the next ones wait for this transaction.  Not
 * granted to anyone.
 */
Datum
ipai_usage_periods_lock(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	period_locktag(PG_GETARG_UUID_P(0), &tag);
	if (!ipai_lock_held_by_me(&tag, ShareLock))
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	PG_RETURN_VOID();
}
