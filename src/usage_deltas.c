/*-------------------------------------------------------------------------
 *
 * usage_deltas.c
 *		Counter updates of one transaction, applied once: usage recorded
 *		many times on one counter costs one UPDATE at the first event and
 *		one at commit, not one per event.
 *
 * Why: every UPDATE of a row leaves a new version that no one can prune
 * before the transaction ends, and each next UPDATE reaches the row
 * through the index and the whole chain of versions before it (and, once
 * the page is full, adds an index entry the unique index re-checks
 * against all the others): 100,000 record_usage calls on one counter in
 * one transaction cost quadratic time.
 *
 * How (the fast path of usage_direct.c only): the first event of a
 * transaction on a counter updates the row there and then, as the SPI path
 * does: the row is then this transaction's, locked against every other
 * writer until commit, so concurrent consumers at a hard limit wait for it
 * and re-check on the version it commits.  The transaction remembers the
 * version it wrote (where, and what it holds); later events on that
 * counter add to a pending delta in memory, judged against the limit with
 * the row's values plus the delta.  The delta is written:
 *	- at commit (XACT_EVENT_PRE_COMMIT, and PRE_PREPARE), one UPDATE of the
 *	  remembered version;
 *	- before any query of this transaction that reads ipai.usage_counters
 *	  (ExecutorStart_hook: a SELECT from the table or ipai.org_usage_current,
 *	  the holds' and refresh's PL/pgSQL, the SPI path), which then sees it:
 *	  the write is followed by CommandCounterIncrement and the query's
 *	  snapshot is advanced to that command;
 *	- before any utility statement (COPY, TRUNCATE, ALTER TABLE, ...)
 *	  except transaction control, SET, NOTIFY, DO and CALL.
 * A query that may change counters (anything but a plain SELECT) also
 * makes the transaction forget what it remembered: the next event reads
 * the row again.  So every reader in the transaction sees exact counters,
 * readers elsewhere see the committed ones, and nobody can pass a limit.
 *
 * Subtransactions: the first change of an entry in a subtransaction saves
 * the entry's state on an undo stack; a subtransaction's abort restores
 * it (its row versions are gone with it), its commit hands the saved
 * state to the parent.  The transaction's abort forgets everything.
 *
 * Memory: entries and the undo stack live in TopTransactionContext.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* what the transaction knows about one counter row */
typedef struct CounterState
{
	bool		known;			/* row: the version this transaction wrote */
	UsageCounterRow row;
	int64		pending;		/* recorded, not yet written */
} CounterState;

typedef struct CounterEntry
{
	UsageCounterKey key;		/* must be first */
	CounterState cur;
	SubTransactionId cur_subid; /* the subtransaction that last changed cur */
	int			last_undo;		/* this entry's newest undo item, or -1 */
} CounterEntry;

/* the state of an entry before a subtransaction first changed it */
typedef struct UndoItem
{
	CounterEntry *entry;
	SubTransactionId subid;
	CounterState saved;
	SubTransactionId saved_subid;
	int			prev;			/* the entry's previous undo item, or -1 */
} UndoItem;

static HTAB *entries = NULL;
static long n_entries = 0;
static UndoItem *undo = NULL;
static int	n_undo = 0;
static int	max_undo = 0;
static Oid	counters_relid = InvalidOid;

static ExecutorStart_hook_type prev_executor_start = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* saves an entry's state before the current subtransaction changes it */
static void
entry_changing(CounterEntry *e)
{
	SubTransactionId subid = GetCurrentSubTransactionId();

	if (e->cur_subid == subid)
		return;
	if (subid != TopSubTransactionId)
	{
		UndoItem   *u;

		if (n_undo == max_undo)
		{
			max_undo = max_undo ? max_undo * 2 : 16;
			undo = undo ? repalloc(undo, sizeof(UndoItem) * max_undo) :
				MemoryContextAlloc(TopTransactionContext, sizeof(UndoItem) * max_undo);
		}
		u = &undo[n_undo];
		u->entry = e;
		u->subid = subid;
		u->saved = e->cur;
		u->saved_subid = e->cur_subid;
		u->prev = e->last_undo;
		e->last_undo = n_undo++;
	}
	e->cur_subid = subid;
}

static CounterEntry *
entry_find(const UsageCounterKey *key, bool create)
{
	CounterEntry *e;
	bool		found;

	if (entries == NULL)
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(UsageCounterKey);
		ctl.entrysize = sizeof(CounterEntry);
		ctl.hcxt = TopTransactionContext;
		entries = hash_create("ipai counter deltas", 16, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(entries, key, create ? HASH_ENTER : HASH_FIND, &found);
	if (create && !found)
	{
		memset(&e->cur, 0, sizeof(e->cur));
		e->cur_subid = InvalidSubTransactionId;
		e->last_undo = -1;
		n_entries++;
	}
	return e;
}

/*
 * usage_deltas_get
 *		What this transaction knows of the counter: false when nothing (the
 *		caller reads the row); else the version it wrote and the delta not
 *		written yet.
 */
bool
usage_deltas_get(const UsageCounterKey *key, UsageCounterRow *row, int64 *pending)
{
	CounterEntry *e = entry_find(key, false);

	if (e == NULL || !e->cur.known)
		return false;
	*row = e->cur.row;
	*pending = e->cur.pending;
	return true;
}

/*
 * usage_deltas_remember
 *		The fast path has just written this version of the counter row (the
 *		first event of the transaction on it): later events add to a delta.
 */
void
usage_deltas_remember(const UsageCounterKey *key, const UsageCounterRow *row)
{
	CounterEntry *e = entry_find(key, true);

	entry_changing(e);
	e->cur.known = true;
	e->cur.row = *row;
	e->cur.pending = 0;
	counters_relid = usage_direct_counters_relid();
}

/* usage_deltas_add: quantity more for a counter usage_deltas_get knows */
void
usage_deltas_add(const UsageCounterKey *key, int64 quantity)
{
	CounterEntry *e = entry_find(key, false);

	if (e == NULL || !e->cur.known)
		elog(ERROR, "no usage counter to add a delta to");
	entry_changing(e);
	e->cur.pending += quantity;
}

/*
 * Writes every pending delta; forget: also drop what is known of the rows
 * (a statement is about to change them).
 */
static void
deltas_flush(bool forget)
{
	HASH_SEQ_STATUS status;
	CounterEntry *e;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (entries == NULL || n_entries == 0)
		return;
	hash_seq_init(&status, entries);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (!e->cur.known || (e->cur.pending == 0 && !forget))
			continue;
		entry_changing(e);
		if (e->cur.pending != 0)
		{
			usage_direct_counter_apply(&e->cur.row, e->cur.pending, now);
			e->cur.pending = 0;
		}
		if (forget)
			e->cur.known = false;
	}
}

/* is anything pending or remembered? */
static bool
deltas_active(void)
{
	return entries != NULL && n_entries > 0;
}

static void
deltas_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			deltas_flush(true);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/* the memory went with TopTransactionContext */
			entries = NULL;
			n_entries = 0;
			undo = NULL;
			n_undo = max_undo = 0;
			break;
		default:
			break;
	}
}

static void
deltas_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			i,
				kept;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* the subtransaction's items are on top of the stack */
		while (n_undo > 0 && undo[n_undo - 1].subid == mySubid)
		{
			UndoItem   *u = &undo[--n_undo];

			u->entry->cur = u->saved;
			u->entry->cur_subid = u->saved_subid;
			u->entry->last_undo = u->prev;
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/*
		 * The parent inherits the changes: an item is kept (as the parent's)
		 * unless the parent saved the entry itself before, or the parent is
		 * the top transaction, which needs no undo.
		 */
		for (i = n_undo; i > 0 && undo[i - 1].subid == mySubid; i--)
			;
		kept = i;
		for (; i < n_undo; i++)
		{
			UndoItem   *u = &undo[i];
			CounterEntry *e = u->entry;

			if (e->cur_subid == mySubid)
				e->cur_subid = parentSubid;
			if (parentSubid == TopSubTransactionId ||
				(u->prev >= 0 && undo[u->prev].subid == parentSubid))
			{
				e->last_undo = u->prev;
				continue;
			}
			u->subid = parentSubid;
			undo[kept] = *u;
			e->last_undo = kept++;
		}
		n_undo = kept;
	}
}

/* does the plan read ipai.usage_counters? */
static bool
reads_counters(PlannedStmt *stmt)
{
	return OidIsValid(counters_relid) &&
		list_member_oid(stmt->relationOids, counters_relid);
}

/*
 * ExecutorStart: a query of this transaction that reads the counters sees
 * the deltas.  The write is given its own command; the query's snapshot,
 * taken before, is advanced past it, as SPI advances its snapshot between
 * statements.
 */
static void
deltas_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (deltas_active() && !(eflags & EXEC_FLAG_EXPLAIN_ONLY) &&
		reads_counters(queryDesc->plannedstmt))
	{
		PlannedStmt *stmt = queryDesc->plannedstmt;
		bool		changes = stmt->commandType != CMD_SELECT || stmt->rowMarks != NIL ||
			stmt->hasModifyingCTE;

		deltas_flush(changes);
		CommandCounterIncrement();
		if (queryDesc->snapshot != InvalidSnapshot &&
			queryDesc->snapshot->curcid < GetCurrentCommandId(false))
			queryDesc->snapshot->curcid = GetCurrentCommandId(false);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* utility statements that cannot read or change counters by themselves */
static bool
utility_harmless(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_TransactionStmt:
		case T_VariableSetStmt:
		case T_VariableShowStmt:
		case T_NotifyStmt:
		case T_ListenStmt:
		case T_UnlistenStmt:
		case T_DoStmt:
		case T_CallStmt:
			return true;
		default:
			return false;
	}
}

static void
deltas_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest,
					   QueryCompletion *qc)
{
	if (deltas_active() && !utility_harmless(pstmt->utilityStmt))
	{
		deltas_flush(true);
		CommandCounterIncrement();
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/*
 * usage_deltas_init
 *		Install the hooks and transaction callbacks (_PG_init).
 */
void
usage_deltas_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = deltas_executor_start;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = deltas_process_utility;
	RegisterXactCallback(deltas_xact_callback, NULL);
	RegisterSubXactCallback(deltas_subxact_callback, NULL);
}
