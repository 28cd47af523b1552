/*-------------------------------------------------------------------------
 *
 * usage_direct.c
 *		The metering fast path: the rows of check_entitlement,
 *		consume_entitlement and record_usage read and written without SPI.
 *
 * The kept SPI statements of usage_cache.c are the reference
 * implementation and the fallback; this file does the same work the way
 * PostgreSQL reads its catalogs (systable_beginscan on an index, with the
 * snapshot the SPI statement would use) and logical replication applies
 * rows (execReplication.c: the table access method's insert, update and
 * lock, index entries through ExecInsertIndexTuples, and speculative
 * insertion for the idempotency key, as INSERT ... ON CONFLICT DO NOTHING
 * does).  test/t/usage_differential.t holds both paths to the same
 * answers, errors and rows.
 *
 * When it runs: ipai.usage_fast_path is on (the default), session_
 * replication_role is origin, no parallel mode, for writes a read-write
 * READ COMMITTED transaction (other isolation levels keep the executor's
 * serialization rules: SPI), and every table involved -- usage_events,
 * usage_counters, outbox, org_members, organizations -- is a plain local
 * heap table this file knows: an ordinary table (no view, partition,
 * inheritance parent, rule, temporary table), the heap access method, not
 * distributed by Citus (its shell table on the coordinator is an ordinary,
 * empty heap: pg_dist_partition is read when that catalog exists), only
 * columns it writes or can fill (a constant, now() or identity default, or
 * NULL), and no trigger or foreign key it does not know.  Anything else:
 * the SPI path.  The verdict is computed once per backend and dropped by a
 * relcache invalidation of any of these tables (DDL, a trigger or index
 * added, Citus distributing one).
 *
 * What the SPI statements' triggers and constraints do, done here:
 *	- usage_events_direct and usage_events_count fire only for rows not
 *	  counted inline (WHEN NOT counted_inline); every row written here is.
 *	- the outbox's foreign key to organizations: RI_FKey_check_ins locks the
 *	  organization FOR KEY SHARE with a fresh snapshot; lock_org_key_share
 *	  does the same and raises the same error when it is gone.
 *	- the counters' foreign keys: an UPDATE that keeps the key columns needs
 *	  no check, except that PostgreSQL re-checks a row version the same
 *	  transaction wrote, in case that INSERT's check was deferred and has
 *	  not fired.  The keys must not be deferrable here, so the INSERT's
 *	  check fired at the end of its statement and holds its KEY SHARE lock
 *	  to the end of the transaction; a version our UPDATE wrote holds the
 *	  row lock, which the referenced row's deletion (ON DELETE CASCADE)
 *	  waits for.
 *	- outbox CHECK constraints outbox_topic_check and outbox_sent_or_dead:
 *	  satisfied by the values written (topic stripe.meter_event, not sent,
 *	  not dead); any other CHECK constraint is evaluated (ExecConstraints).
 *	- outbox_notify (AFTER INSERT, for each statement): ipai_outbox_wake(),
 *	  the trigger's body, once per call.
 *	- every index of a table, whoever created it: ExecInsertIndexTuples
 *	  (partial and expression indexes, uniqueness, exclusion).
 *
 * Locking: relations are opened with the lock the SPI statement takes
 * (RowExclusiveLock to write, AccessShareLock to read, RowShareLock for
 * the foreign key's row lock) and kept to the end of the transaction; row
 * locks are those of the UPDATE and of the foreign key check.  Memory:
 * each write allocates in an EState freed before it returns; the verdict
 * and fill plans live in a context under CacheMemoryContext.  A relcache
 * callback only clears a flag: the verdict is recomputed at the start of
 * the next call, never during one.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include <math.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/index.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "fmgr.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "nodes/primnodes.h"
#include "parser/parse_func.h"
#include "parser/parse_relation.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* the tables of the fast path */
typedef enum DirectTable
{
	DT_EVENTS,
	DT_COUNTERS,
	DT_OUTBOX,
	DT_MEMBERS,
	DT_ORGS,
	DT_COUNT
} DirectTable;

static const char *const table_names[DT_COUNT] = {
	"usage_events", "usage_counters", "outbox", "org_members", "organizations"
};

/* the columns it names */
typedef enum DirectColumn
{
	C_EV_ORG,
	C_EV_ID,
	C_EV_FEATURE,
	C_EV_QUANTITY,
	C_EV_KEY,
	C_EV_OCCURRED,
	C_EV_PERIOD,
	C_EV_METERED,
	C_EV_INLINE,
	C_EV_HOLD,
	C_EV_RECORDED_BY,
	C_EV_RECORDED_AT,
	C_CT_ORG,
	C_CT_FEATURE,
	C_CT_PERIOD,
	C_CT_USED,
	C_CT_HELD,
	C_CT_HOLD_EXPIRES,
	C_CT_UPDATED,
	C_OB_ORG,
	C_OB_ID,
	C_OB_TOPIC,
	C_OB_PAYLOAD,
	C_OB_DEDUPE,
	C_MB_ORG,
	C_MB_USER,
	C_MB_ROLE,
	C_OR_ID,
	C_COUNT
} DirectColumn;

typedef struct KnownColumn
{
	DirectTable table;
	const char *name;
	Oid			type;			/* InvalidOid: an enum */
	bool		written;		/* set by the fast path's INSERT */
} KnownColumn;

static const KnownColumn known_columns[C_COUNT] = {
	[C_EV_ORG] = {DT_EVENTS, "org_id", UUIDOID, true},
	[C_EV_ID] = {DT_EVENTS, "id", INT8OID, true},
	[C_EV_FEATURE] = {DT_EVENTS, "feature", TEXTOID, true},
	[C_EV_QUANTITY] = {DT_EVENTS, "quantity", INT8OID, true},
	[C_EV_KEY] = {DT_EVENTS, "idempotency_key", TEXTOID, true},
	[C_EV_OCCURRED] = {DT_EVENTS, "occurred_at", TIMESTAMPTZOID, true},
	[C_EV_PERIOD] = {DT_EVENTS, "period_start", TIMESTAMPTZOID, true},
	[C_EV_METERED] = {DT_EVENTS, "metered", BOOLOID, true},
	[C_EV_INLINE] = {DT_EVENTS, "counted_inline", BOOLOID, true},
	[C_EV_HOLD] = {DT_EVENTS, "hold_id", UUIDOID, true},
	[C_EV_RECORDED_BY] = {DT_EVENTS, "recorded_by", UUIDOID, true},
	[C_EV_RECORDED_AT] = {DT_EVENTS, "recorded_at", TIMESTAMPTZOID, true},
	[C_CT_ORG] = {DT_COUNTERS, "org_id", UUIDOID, false},
	[C_CT_FEATURE] = {DT_COUNTERS, "feature", TEXTOID, false},
	[C_CT_PERIOD] = {DT_COUNTERS, "period_start", TIMESTAMPTZOID, false},
	[C_CT_USED] = {DT_COUNTERS, "used", INT8OID, false},
	[C_CT_HELD] = {DT_COUNTERS, "held", INT8OID, false},
	[C_CT_HOLD_EXPIRES] = {DT_COUNTERS, "hold_expires_at", TIMESTAMPTZOID, false},
	[C_CT_UPDATED] = {DT_COUNTERS, "updated_at", TIMESTAMPTZOID, false},
	[C_OB_ORG] = {DT_OUTBOX, "org_id", UUIDOID, true},
	[C_OB_ID] = {DT_OUTBOX, "id", INT8OID, true},
	[C_OB_TOPIC] = {DT_OUTBOX, "topic", TEXTOID, true},
	[C_OB_PAYLOAD] = {DT_OUTBOX, "payload", JSONBOID, true},
	[C_OB_DEDUPE] = {DT_OUTBOX, "dedupe_key", TEXTOID, true},
	[C_MB_ORG] = {DT_MEMBERS, "org_id", UUIDOID, false},
	[C_MB_USER] = {DT_MEMBERS, "user_id", UUIDOID, false},
	[C_MB_ROLE] = {DT_MEMBERS, "role", InvalidOid, false},
	[C_OR_ID] = {DT_ORGS, "id", UUIDOID, false},
};

/* CHECK constraints of the outbox that the rows written here satisfy */
static const char *const outbox_known_checks[] = {"outbox_topic_check", "outbox_sent_or_dead"};

#define METER_TOPIC "stripe.meter_event"

/* how an INSERT of the fast path fills one attribute */
typedef enum FillKind
{
	FILL_NULL,					/* dropped, or nullable without default */
	FILL_WRITTEN,				/* a value the fast path writes */
	FILL_CONST,					/* a constant default */
	FILL_NOW,					/* now(): the transaction's start */
	FILL_IDENTITY				/* nextval of the identity sequence */
} FillKind;

typedef struct AttrFill
{
	FillKind	kind;
	DirectColumn column;		/* FILL_WRITTEN */
	Datum		value;			/* FILL_CONST */
	bool		isnull;
	Oid			sequence;		/* FILL_IDENTITY */
} AttrFill;

/*
 * A unique index the fast path looks rows up by: its columns in index
 * order, with the equality function and collation of each.
 */
typedef struct KeyIndex
{
	Oid			oid;
	int			nkeys;
	DirectColumn column[3];
	RegProcedure proc[3];
	Oid			collation[3];
} KeyIndex;

/*
 * The indexes of a table the fast path writes, opened per call from this
 * cache (ExecOpenIndices builds the same every time): only when every one
 * is a btree index without expressions whose predicate, if any, calls no
 * function, so that the IndexInfo and the predicate's ExprState, built
 * once, hold nothing of a call.  Else ExecOpenIndices each time.
 */
typedef struct IndexCache
{
	bool		cached;
	int			n;
	Oid		   *oids;
	IndexInfo **infos;
} IndexCache;

/* the verdict, resolved once per backend */
typedef struct DirectState
{
	bool		valid;			/* resolved since the last invalidation */
	bool		usable;
	const char *why_not;		/* when not usable, for DEBUG1 */
	Oid			relid[DT_COUNT];
	AttrNumber	attnum[C_COUNT];
	KeyIndex	counters_key;	/* unique (org_id, feature, period_start) */
	KeyIndex	members_key;	/* unique (org_id, user_id) */
	KeyIndex	orgs_key;		/* unique (id) */
	IndexCache	indexes[DT_COUNT];	/* events, counters, outbox */
	List	   *event_arbiters; /* unique on (org_id, idempotency_key) */
	AttrFill   *fill[DT_COUNT]; /* per attribute: events and outbox */
	int			natts[DT_COUNT];
	bool		check_constraints[DT_COUNT];	/* run ExecConstraints */
	bool		outbox_notify;	/* the wake-up trigger is there and fires */
	char		outbox_fkey[NAMEDATALEN];
} DirectState;

static DirectState direct;
static MemoryContext direct_cxt = NULL;

/*
 * Where the HOT chain of a row the fast path looks up by key starts (the
 * TID its index entry holds), per key, remembered across transactions:
 * the next lookup reads the chain there without descending the index.  A
 * remembered TID is only a hint: the row found there must be visible and
 * carry the key, else the index is asked (VACUUM may have moved or freed
 * the line pointer, a non-HOT update started a new chain).  Dropped with
 * the verdict (relcache invalidation of the table).
 */
#define ROOT_CACHE_MAX 20000

typedef struct RootEntry
{
	char		key[sizeof(UsageCounterKey)];	/* must be first */
	ItemPointerData root;
} RootEntry;

static HTAB *root_cache[DT_COUNT];
static bool callback_registered = false;
static bool resolving = false;	/* an error left the verdict half made */
static int	direct_depth = 0;	/* writes running (nested through user code) */

/* the snapshot of the statement running, if any (none at pre-commit) */
static Snapshot
active_snapshot(void)
{
	return ActiveSnapshotSet() ? GetActiveSnapshot() : InvalidSnapshot;
}

/*
 * The calls running when each open subtransaction started: an error in a
 * subtransaction ends the calls it began (their usage_direct_end never
 * runs), an error of the transaction all of them.
 */
static int *depth_at_start = NULL;
static int	n_depth_at_start = 0;
static int	max_depth_at_start = 0;

static void
direct_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PREPARE)
	{
		direct_depth = 0;
		n_depth_at_start = 0;
	}
}

static void
direct_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (n_depth_at_start == max_depth_at_start)
			{
				max_depth_at_start = max_depth_at_start ? max_depth_at_start * 2 : 8;
				depth_at_start = depth_at_start ?
					repalloc(depth_at_start, sizeof(int) * max_depth_at_start) :
					MemoryContextAlloc(TopMemoryContext, sizeof(int) * max_depth_at_start);
			}
			depth_at_start[n_depth_at_start++] = direct_depth;
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			if (n_depth_at_start > 0)
				direct_depth = depth_at_start[--n_depth_at_start];
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
			if (n_depth_at_start > 0)
				n_depth_at_start--;
			break;
		default:
			break;
	}
}

/* relcache invalidation of one of the tables (or of everything) */
static void
direct_relcache_callback(Datum arg, Oid relid)
{
	int			i;

	if (relid == InvalidOid)
	{
		direct.valid = false;
		return;
	}
	for (i = 0; i < DT_COUNT; i++)
		if (direct.relid[i] == relid)
			direct.valid = false;
}

/* the key of a root cache entry: the key columns' values, zero padded */
static void
root_key(DirectTable t, const Datum *values, char *key)
{
	memset(key, 0, sizeof(UsageCounterKey));
	if (t == DT_COUNTERS)
	{
		UsageCounterKey *k = (UsageCounterKey *) key;
		text	   *feature = DatumGetTextPP(values[C_CT_FEATURE]);

		k->org_id = *DatumGetUUIDP(values[C_CT_ORG]);
		memcpy(k->feature, VARDATA_ANY(feature),
			   Min(VARSIZE_ANY_EXHDR(feature), USAGE_NAME_LEN - 1));
		k->period_start = DatumGetTimestampTz(values[C_CT_PERIOD]);
	}
	else
		memcpy(key, DatumGetUUIDP(values[C_OR_ID]), sizeof(pg_uuid_t));
}

static RootEntry *
root_lookup(DirectTable t, const char *key, bool create)
{
	if (root_cache[t] == NULL ||
		(create && hash_get_num_entries(root_cache[t]) >= ROOT_CACHE_MAX))
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		if (root_cache[t])
			hash_destroy(root_cache[t]);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(UsageCounterKey);
		ctl.entrysize = sizeof(RootEntry);
		ctl.hcxt = CacheMemoryContext;
		root_cache[t] = hash_create("ipai metering row roots", 256, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return hash_search(root_cache[t], key, create ? HASH_ENTER : HASH_FIND, NULL);
}

/* a reason the tables do not qualify; false for the caller to return */
static bool
not_usable(const char *why)
{
	direct.why_not = why;
	return false;
}

/*
 * Is relid distributed by Citus?  pg_dist_partition lists every Citus
 * table (distributed, reference, ...); read only when the catalog exists.
 */
static bool
citus_table(Oid dist_relid, AttrNumber logicalrelid, Oid relid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	bool		found;

	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

	rel = table_open(dist_relid, AccessShareLock);
	ScanKeyInit(&key, logicalrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, snapshot, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snapshot);
	return found;
}

/* the function ipai.<name>() (no arguments), or InvalidOid */
static Oid
ipai_function(const char *name)
{
	return LookupFuncName(list_make2(makeString("ipai"), makeString(pstrdup(name))),
						  0, NULL, true);
}

/*
 * The unique, valid, immediate index of rel on exactly the given columns
 * (in any order), without expressions or predicate, as a KeyIndex; false
 * when there is none.
 */
static bool
find_key_index(Relation rel, const DirectColumn *columns, int n, KeyIndex *key)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = idx->rd_index;
		bool		match = form->indisunique && form->indimmediate &&
			form->indisvalid && form->indisready && form->indislive &&
			form->indnkeyatts == n &&
			RelationGetIndexExpressions(idx) == NIL &&
			RelationGetIndexPredicate(idx) == NIL;
		int			i,
					j;

		for (i = 0; match && i < n; i++)
		{
			/* index column i is which of the columns? */
			match = false;
			for (j = 0; j < n; j++)
				if (form->indkey.values[i] == direct.attnum[columns[j]])
				{
					Oid			type = known_columns[columns[j]].type;

					key->column[i] = columns[j];
					key->collation[i] = idx->rd_indcollation[i];
					key->proc[i] = type == UUIDOID ? F_UUID_EQ :
						type == TEXTOID ? F_TEXTEQ : F_TIMESTAMP_EQ;
					match = true;
				}
		}
		index_close(idx, AccessShareLock);
		if (match)
		{
			key->oid = lfirst_oid(lc);
			key->nkeys = n;
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/* does the predicate use more than columns, constants, AND/OR/NOT, IS [NOT] NULL? */
static bool
predicate_not_simple(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) || IsA(node, Const) || IsA(node, NullTest) ||
		IsA(node, BoolExpr) || IsA(node, List))
		return expression_tree_walker(node, predicate_not_simple, context);
	return true;				/* anything else: not simple */
}

/* builds the IndexCache of a table the fast path writes */
static void
cache_indexes(Relation rel, DirectTable t, bool speculative)
{
	IndexCache *cache = &direct.indexes[t];
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(direct_cxt);
	int			i = 0;

	cache->cached = true;
	cache->n = list_length(indexes);
	cache->oids = palloc(sizeof(Oid) * Max(cache->n, 1));
	cache->infos = palloc(sizeof(IndexInfo *) * Max(cache->n, 1));
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		IndexInfo  *ii = BuildIndexInfo(idx);

		if (idx->rd_rel->relam != BTREE_AM_OID || ii->ii_Expressions != NIL ||
			predicate_not_simple((Node *) ii->ii_Predicate, NULL))
			cache->cached = false;
		else
		{
			if (speculative && ii->ii_Unique && !idx->rd_index->indisexclusion)
				BuildSpeculativeIndexInfo(idx, ii);
			if (ii->ii_Predicate != NIL)
				ii->ii_PredicateState =
					ExecInitQual((List *) expression_planner((Expr *) ii->ii_Predicate), NULL);
		}
		cache->oids[i] = lfirst_oid(lc);
		cache->infos[i] = ii;
		i++;
		index_close(idx, AccessShareLock);
	}
	MemoryContextSwitchTo(old);
	list_free(indexes);
}

/*
 * The arbiter indexes of the SPI path's
 *	ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL:
 * unique indexes on exactly those columns whose predicate, if any, is that
 * one.  A unique index on them with another predicate or expressions would
 * leave the inference to the planner: not usable.
 */
static bool
find_event_arbiters(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	AttrNumber	org = direct.attnum[C_EV_ORG];
	AttrNumber	key = direct.attnum[C_EV_KEY];
	bool		ok = true;
	MemoryContext old;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = idx->rd_index;
		List	   *pred;
		bool		on_key;

		on_key = form->indisunique && form->indnkeyatts == 2 &&
			((form->indkey.values[0] == org && form->indkey.values[1] == key) ||
			 (form->indkey.values[0] == key && form->indkey.values[1] == org));
		if (on_key)
		{
			pred = RelationGetIndexPredicate(idx);
			if (RelationGetIndexExpressions(idx) != NIL || !form->indimmediate)
				ok = false;
			else if (pred != NIL)
			{
				NullTest   *nt = (NullTest *) linitial(pred);

				if (list_length(pred) != 1 || !IsA(nt, NullTest) ||
					nt->nulltesttype != IS_NOT_NULL || nt->argisrow ||
					!IsA(nt->arg, Var) || ((Var *) nt->arg)->varattno != key)
					ok = false;
			}
			if (ok && form->indisvalid && form->indisready && form->indislive)
			{
				old = MemoryContextSwitchTo(direct_cxt);
				direct.event_arbiters = lappend_oid(direct.event_arbiters,
													lfirst_oid(lc));
				MemoryContextSwitchTo(old);
			}
		}
		index_close(idx, AccessShareLock);
	}
	list_free(indexes);
	return ok && direct.event_arbiters != NIL;
}

/*
 * How an INSERT fills every attribute of rel: the columns the fast path
 * writes, and for the others their default when it is a constant, now() or
 * an identity, else NULL when nullable.  Any other default (or a generated
 * column) and the table is not usable: the SPI statement would compute it.
 */
static bool
plan_fill(Relation rel, DirectTable t)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TupleConstr *constr = desc->constr;
	AttrFill   *fill;
	int			i,
				c,
				d;

	fill = MemoryContextAllocZero(direct_cxt, sizeof(AttrFill) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AttrFill   *f = &fill[i];
		Node	   *expr = NULL;

		f->kind = FILL_NULL;
		f->isnull = true;
		if (att->attisdropped)
			continue;
		if (att->attgenerated)
			return not_usable("a generated column");
		for (c = 0; c < C_COUNT; c++)
			if (known_columns[c].table == t && known_columns[c].written &&
				direct.attnum[c] == att->attnum)
			{
				f->kind = FILL_WRITTEN;
				f->column = (DirectColumn) c;
			}
		if (att->attidentity)
		{
			/* the ids are written from their sequence, as the default */
			f->sequence = ipai_identity_sequence(rel, att->attnum);
			if (!OidIsValid(f->sequence))
				return not_usable("an identity column without its sequence");
			if (f->kind != FILL_WRITTEN)
				f->kind = FILL_IDENTITY;
			continue;
		}
		if (f->kind == FILL_WRITTEN)
		{
			if (f->column == C_EV_ID || f->column == C_OB_ID)
				return not_usable("an id column is not an identity");
			continue;
		}
		for (d = 0; constr && att->atthasdef && d < constr->num_defval; d++)
			if (constr->defval[d].adnum == att->attnum)
				expr = stringToNode(constr->defval[d].adbin);
		if (expr == NULL)
		{
			if (att->attnotnull)
				return not_usable("a NOT NULL column without a default");
			continue;
		}
		if (IsA(expr, Const))
		{
			Const	   *k = (Const *) expr;

			f->kind = FILL_CONST;
			f->isnull = k->constisnull;
			if (!k->constisnull)
			{
				MemoryContext old = MemoryContextSwitchTo(direct_cxt);

				f->value = datumCopy(k->constvalue, k->constbyval, k->constlen);
				MemoryContextSwitchTo(old);
			}
		}
		else if (IsA(expr, FuncExpr) && ((FuncExpr *) expr)->args == NIL &&
				 (((FuncExpr *) expr)->funcid == F_NOW ||
				  ((FuncExpr *) expr)->funcid == F_TRANSACTION_TIMESTAMP) &&
				 att->atttypid == TIMESTAMPTZOID)
			f->kind = FILL_NOW;
		else
			return not_usable("a column default other than a constant or now()");
		if (att->attnotnull && f->kind == FILL_CONST && f->isnull)
			return not_usable("a NOT NULL column with a NULL default");
	}
	direct.fill[t] = fill;
	direct.natts[t] = desc->natts;
	return true;
}

/*
 * The triggers of rel that fire on the fast path's operation (INSERT for
 * events and the outbox, UPDATE for counters; none for tables it only
 * reads) must be ones it knows: see the file header.
 */
static bool
check_triggers(Relation rel, DirectTable t)
{
	TriggerDesc *trigdesc = rel->trigdesc;
	Oid			ev_direct = ipai_function("_usage_events_direct");
	Oid			ev_count = ipai_function("_usage_events_count");
	Oid			ob_notify = ipai_function("_outbox_notify");
	int			i;

	if (trigdesc == NULL)
		return true;
	for (i = 0; i < trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &trigdesc->triggers[i];
		bool		fires_here;
		bool		enabled = tg->tgenabled == TRIGGER_FIRES_ON_ORIGIN ||
			tg->tgenabled == TRIGGER_FIRES_ALWAYS;

		switch (t)
		{
			case DT_EVENTS:
			case DT_OUTBOX:
				fires_here = TRIGGER_FOR_INSERT(tg->tgtype);
				break;
			case DT_COUNTERS:
				fires_here = TRIGGER_FOR_UPDATE(tg->tgtype);
				break;
			default:
				fires_here = false;
				break;
		}
		if (!fires_here || tg->tgenabled == TRIGGER_DISABLED)
			continue;
		if (t == DT_EVENTS && (tg->tgfoid == ev_direct || tg->tgfoid == ev_count) &&
			TRIGGER_FOR_ROW(tg->tgtype) && tg->tgqual != NULL)
			continue;			/* WHEN (NOT NEW.counted_inline) */
		if (t == DT_OUTBOX && tg->tgfoid == F_RI_FKEY_CHECK_INS && enabled &&
			OidIsValid(tg->tgconstraint))
			continue;			/* the foreign key, checked in check_fkeys */
		if (t == DT_OUTBOX && tg->tgfoid == ob_notify && !TRIGGER_FOR_ROW(tg->tgtype))
		{
			direct.outbox_notify = enabled;
			continue;
		}
		if (t == DT_COUNTERS && tg->tgfoid == F_RI_FKEY_CHECK_UPD && enabled &&
			OidIsValid(tg->tgconstraint))
			continue;			/* keys never change: see check_fkeys */
		return not_usable("a trigger the fast path does not know");
	}
	return true;
}

/*
 * Foreign keys of rel: none on events; the outbox's to organizations(id),
 * which lock_org_key_share checks; on counters, only keys of columns the
 * UPDATE keeps.  None deferrable.
 */
static bool
check_fkeys(Relation rel, DirectTable t)
{
	List	   *fkeys = RelationGetFKeyList(rel);
	ListCell   *lc;
	int			n = 0;

	foreach(lc, fkeys)
	{
		ForeignKeyCacheInfo *fk = lfirst_node(ForeignKeyCacheInfo, lc);
		HeapTuple	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
		Form_pg_constraint con;
		bool		ok;
		int			i;

		if (!HeapTupleIsValid(tup))
			return not_usable("a foreign key vanished");
		con = (Form_pg_constraint) GETSTRUCT(tup);
		ok = !con->condeferrable;
		if (t == DT_OUTBOX)
		{
			ok = ok && n == 0 && fk->nkeys == 1 &&
				fk->conkey[0] == direct.attnum[C_OB_ORG] &&
				fk->confrelid == direct.relid[DT_ORGS] &&
				fk->confkey[0] == direct.attnum[C_OR_ID];
			if (ok)
				strlcpy(direct.outbox_fkey, NameStr(con->conname), NAMEDATALEN);
		}
		else if (t == DT_COUNTERS)
		{
			for (i = 0; ok && i < fk->nkeys; i++)
				ok = fk->conkey[i] == direct.attnum[C_CT_ORG] ||
					fk->conkey[i] == direct.attnum[C_CT_FEATURE] ||
					fk->conkey[i] == direct.attnum[C_CT_PERIOD];
		}
		else if (t == DT_EVENTS)
			ok = false;
		ReleaseSysCache(tup);
		if (!ok)
			return not_usable("a foreign key the fast path does not know");
		n++;
	}
	if (t == DT_OUTBOX && n != 1)
		return not_usable("the outbox lacks its foreign key to organizations");
	return true;
}

/* CHECK constraints: which ones ExecConstraints must evaluate */
static void
check_checks(Relation rel, DirectTable t)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	int			i;
	size_t		k;

	direct.check_constraints[t] = false;
	for (i = 0; constr && i < constr->num_check; i++)
	{
		bool		known = false;

		for (k = 0; t == DT_OUTBOX && k < lengthof(outbox_known_checks); k++)
			if (strcmp(constr->check[i].ccname, outbox_known_checks[k]) == 0)
				known = true;
		if (!known)
			direct.check_constraints[t] = true;
	}
}

/* does one table qualify?  see the file header */
static bool
check_table(Relation rel, DirectTable t)
{
	Form_pg_class form = rel->rd_rel;
	TupleDesc	desc = RelationGetDescr(rel);
	int			c;

	if (form->relkind != RELKIND_RELATION || form->relispartition ||
		form->relhassubclass || rel->rd_rules != NULL ||
		form->relpersistence == RELPERSISTENCE_TEMP)
		return not_usable("not an ordinary table");
	if (form->relam != HEAP_TABLE_AM_OID)
		return not_usable("not the heap access method");

	for (c = 0; c < C_COUNT; c++)
	{
		const KnownColumn *k = &known_columns[c];
		AttrNumber	attnum;
		Form_pg_attribute att;

		if (k->table != t)
			continue;
		attnum = attnameAttNum(rel, k->name, false);
		if (attnum <= 0)
			return not_usable("a column is missing");
		att = TupleDescAttr(desc, attnum - 1);
		if (OidIsValid(k->type) ? att->atttypid != k->type :
			get_typtype(att->atttypid) != TYPTYPE_ENUM)
			return not_usable("a column has another type");
		direct.attnum[c] = attnum;
	}

	if (t == DT_EVENTS || t == DT_OUTBOX)
	{
		if (!plan_fill(rel, t))
			return false;
		check_checks(rel, t);
		cache_indexes(rel, t, t == DT_EVENTS);
	}
	if (t == DT_COUNTERS)
	{
		check_checks(rel, t);
		cache_indexes(rel, t, false);
	}
	if ((t == DT_EVENTS || t == DT_OUTBOX || t == DT_COUNTERS) &&
		(!check_triggers(rel, t) || !check_fkeys(rel, t)))
		return false;

	switch (t)
	{
		case DT_EVENTS:
			if (!find_event_arbiters(rel))
				return not_usable("no unique index on the idempotency key");
			break;
		case DT_COUNTERS:
			{
				static const DirectColumn cols[3] = {C_CT_ORG, C_CT_FEATURE, C_CT_PERIOD};

				if (!find_key_index(rel, cols, 3, &direct.counters_key))
					return not_usable("no unique index on the counter's key");
				break;
			}
		case DT_MEMBERS:
			{
				static const DirectColumn cols[2] = {C_MB_ORG, C_MB_USER};

				if (!find_key_index(rel, cols, 2, &direct.members_key))
					return not_usable("no unique index on memberships");
				break;
			}
		case DT_ORGS:
			{
				static const DirectColumn cols[1] = {C_OR_ID};

				if (!find_key_index(rel, cols, 1, &direct.orgs_key))
					return not_usable("no unique index on organization ids");
				break;
			}
		default:
			break;
	}
	return true;
}

/* resolve the tables and judge them; see the file header */
static void
resolve(void)
{
	Oid			nsp;
	Oid			dist;
	AttrNumber	logicalrelid = InvalidAttrNumber;
	int			i;
	int			t;

	if (!callback_registered)
	{
		direct_cxt = AllocSetContextCreate(CacheMemoryContext, "ipai metering fast path",
										   ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(direct_relcache_callback, (Datum) 0);
		callback_registered = true;
	}
	/* set first: an invalidation while judging wins */
	direct.valid = true;
	resolving = true;
	direct.usable = false;
	MemoryContextReset(direct_cxt);
	direct.event_arbiters = NIL;
	direct.outbox_notify = false;
	memset(direct.fill, 0, sizeof(direct.fill));
	memset(direct.indexes, 0, sizeof(direct.indexes));
	for (t = 0; t < DT_COUNT; t++)
	{
		if (root_cache[t])
			hash_destroy(root_cache[t]);
		root_cache[t] = NULL;
	}

	nsp = get_namespace_oid("ipai", true);
	for (t = 0; t < DT_COUNT; t++)
	{
		direct.relid[t] = OidIsValid(nsp) ? get_relname_relid(table_names[t], nsp) : InvalidOid;
		if (!OidIsValid(direct.relid[t]))
		{
			not_usable("a table does not exist");
			resolving = false;
			return;
		}
	}

	/* Citus: its tables are listed in pg_dist_partition */
	dist = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
	if (OidIsValid(dist))
		logicalrelid = get_attnum(dist, "logicalrelid");
	for (i = 0; i < DT_COUNT; i++)
	{
		/* referenced tables first: the foreign keys name their columns */
		static const DirectTable order[DT_COUNT] = {DT_ORGS, DT_MEMBERS, DT_EVENTS,
		DT_COUNTERS, DT_OUTBOX};
		Relation	rel;
		bool		ok;

		t = order[i];
		if (AttributeNumberIsValid(logicalrelid) &&
			citus_table(dist, logicalrelid, direct.relid[t]))
		{
			not_usable("a table is distributed by Citus");
			break;
		}
		rel = table_open(direct.relid[t], AccessShareLock);
		ok = check_table(rel, (DirectTable) t);
		table_close(rel, AccessShareLock);
		if (!ok)
			break;
	}
	direct.usable = i == DT_COUNT;
	if (direct.usable)
		direct.why_not = NULL;
	resolving = false;
}

/*
 * usage_direct_usable
 *		May this call take the fast path?  write: it records usage.
 *
 * Reads follow the caller's snapshot whatever the isolation level, as the
 * SPI path's read-only statements do; writes need READ COMMITTED (the
 * other levels' serialization failures stay the executor's) and a
 * read-write transaction (the SPI path raises the read-only error).
 */
bool
usage_direct_usable(bool write)
{
	if (!ipai_usage_fast_path || IsInParallelMode() ||
		SessionReplicationRole != SESSION_REPLICATION_ROLE_ORIGIN)
		return false;
	if (write && (XactIsoLevel != XACT_READ_COMMITTED || XactReadOnly))
		return false;
	if (!direct.valid || resolving)
	{
		/* never while a fast-path call uses the previous verdict */
		if (direct_depth > 0)
			return false;
		resolve();
		if (!direct.usable)
			elog(DEBUG1, "ipai metering fast path not used: %s", direct.why_not);
	}
	return direct.usable;
}

/*
 * usage_direct_init
 *		The transaction callbacks that keep count of the calls running
 *		(_PG_init: from the start, so that every subtransaction is seen).
 */
void
usage_direct_init(void)
{
	RegisterXactCallback(direct_xact_callback, NULL);
	RegisterSubXactCallback(direct_subxact_callback, NULL);
}

PG_FUNCTION_INFO_V1(ipai_usage_fast_path_status);

/*
 * ipai._usage_fast_path() returns text
 *
 * Why a consume in this session would take the SPI path (the setting, the
 * transaction, or what disqualifies a table), or NULL when it takes the
 * fast path.  For tests and operators; not granted to anyone.
 */
Datum
ipai_usage_fast_path_status(PG_FUNCTION_ARGS)
{
	const char *why = NULL;

	if (!ipai_usage_fast_path)
		why = "ipai.usage_fast_path is off";
	else if (SessionReplicationRole != SESSION_REPLICATION_ROLE_ORIGIN)
		why = "session_replication_role is not origin";
	else if (XactIsoLevel != XACT_READ_COMMITTED)
		why = "the transaction is not READ COMMITTED";
	else if (XactReadOnly)
		why = "the transaction is read-only";
	else if (!usage_direct_usable(true))
		why = direct.why_not ? direct.why_not : "a fast-path call is running";
	if (why == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(why));
}

/* the counters table, for usage_deltas.c (InvalidOid before resolution) */
Oid
usage_direct_counters_relid(void)
{
	return direct.relid[DT_COUNTERS];
}

/*
 * A fast-path call: one EState for all its reads and writes, and each
 * table opened once, with the lock the SPI statement would take.
 */
static DirectTarget *
target(UsageDirect *d, DirectTable t)
{
	DirectTarget *tg = &d->target[t];

	if (tg->rel == NULL)
	{
		LOCKMODE	mode;
		MemoryContext old = MemoryContextSwitchTo(d->estate->es_query_cxt);

		if (t == DT_MEMBERS || !d->write)
			mode = AccessShareLock;
		else if (t == DT_ORGS)
			mode = RowShareLock;	/* the foreign key's FOR KEY SHARE */
		else
			mode = RowExclusiveLock;
		tg->rel = table_open(direct.relid[t], mode);
		tg->rri = makeNode(ResultRelInfo);
		/* range table index 0: no range table, as ExecGetTriggerResultRel */
		InitResultRelInfo(tg->rri, tg->rel, 0, NULL, 0);
		tg->slot = ExecInitExtraTupleSlot(d->estate, RelationGetDescr(tg->rel),
										  table_slot_callbacks(tg->rel));
		tg->indexes_open = false;
		MemoryContextSwitchTo(old);
	}
	return tg;
}

/*
 * usage_direct_begin / usage_direct_end
 *		Bracket the fast path's work of one call; write: it records usage.
 *		The caller has made the snapshot the SPI statements would use the
 *		active one.
 */
void
usage_direct_begin(UsageDirect *d, bool write)
{
	memset(d, 0, sizeof(*d));
	d->write = write;
	d->estate = CreateExecutorState();
	d->estate->es_output_cid = write ? GetCurrentCommandId(true) : GetCurrentCommandId(false);
	d->estate->es_snapshot = active_snapshot();
	direct_depth++;
}

void
usage_direct_end(UsageDirect *d)
{
	int			t;

	for (t = 0; t < DT_COUNT; t++)
	{
		DirectTarget *tg = &d->target[t];

		if (tg->rel == NULL)
			continue;
		if (tg->indexes_open)
			ExecCloseIndices(tg->rri);
		/* locks are kept to the end of the transaction, as the executor does */
		table_close(tg->rel, NoLock);
	}
	ExecResetTupleTable(d->estate->es_tupleTable, false);
	FreeExecutorState(d->estate);
	d->estate = NULL;
	direct_depth--;
}

/* opens the indexes of a target for insertion, from the cache if it can */
static void
open_indexes(UsageDirect *d, DirectTable t, bool speculative)
{
	DirectTarget *tg = target(d, t);
	IndexCache *cache = &direct.indexes[t];
	int			i;

	if (tg->indexes_open)
		return;
	if (!cache->cached)
	{
		MemoryContext old = MemoryContextSwitchTo(d->estate->es_query_cxt);

		ExecOpenIndices(tg->rri, speculative);
		MemoryContextSwitchTo(old);
	}
	else if (cache->n > 0)
	{
		tg->rri->ri_NumIndices = cache->n;
		tg->rri->ri_IndexRelationDescs =
			MemoryContextAlloc(d->estate->es_query_cxt, sizeof(Relation) * cache->n);
		tg->rri->ri_IndexRelationInfo = cache->infos;
		for (i = 0; i < cache->n; i++)
			tg->rri->ri_IndexRelationDescs[i] = index_open(cache->oids[i], RowExclusiveLock);
	}
	tg->indexes_open = true;
}

/* inserts the index entries of the tuple in the target's slot */
static List *
insert_index_entries(UsageDirect *d, DirectTable t, TupleTableSlot *slot, bool update,
					 bool speculative, bool *conflict, ipai_update_indexes which)
{
	open_indexes(d, t, speculative);
	if (d->target[t].rri->ri_NumIndices == 0)
		return NIL;
	return ipai_insert_index_tuples(d->target[t].rri, slot, d->estate, update, speculative,
									conflict, speculative ? direct.event_arbiters : NIL,
									which);
}

/* fills the target's slot for an INSERT into table t; values by DirectColumn */
static TupleTableSlot *
fill_slot(UsageDirect *d, DirectTable t, const Datum *values, const bool *nulls)
{
	DirectTarget *tg = target(d, t);
	TupleTableSlot *slot = tg->slot;
	const AttrFill *fill = direct.fill[t];
	int			i;

	ExecClearTuple(slot);
	for (i = 0; i < direct.natts[t]; i++)
	{
		const AttrFill *f = &fill[i];

		switch (f->kind)
		{
			case FILL_WRITTEN:
				slot->tts_values[i] = values[f->column];
				slot->tts_isnull[i] = nulls[f->column];
				break;
			case FILL_IDENTITY:
				slot->tts_values[i] = Int64GetDatum(nextval_internal(f->sequence, false));
				slot->tts_isnull[i] = false;
				break;
			case FILL_CONST:
				slot->tts_values[i] = f->value;
				slot->tts_isnull[i] = f->isnull;
				break;
			case FILL_NOW:
				slot->tts_values[i] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
				slot->tts_isnull[i] = false;
				break;
			case FILL_NULL:
				slot->tts_values[i] = (Datum) 0;
				slot->tts_isnull[i] = true;
				break;
		}
	}
	ExecStoreVirtualTuple(slot);
	if (direct.check_constraints[t])
		ExecConstraints(tg->rri, slot, d->estate);
	return slot;
}

/* the identity sequence of a written id column */
static Oid
id_sequence(DirectTable t, DirectColumn column)
{
	return direct.fill[t][direct.attnum[column] - 1].sequence;
}

/* does the row in slot carry the key (values by DirectColumn)? */
static bool
slot_has_key(TupleTableSlot *slot, const KeyIndex *key, const Datum *values)
{
	int			i;

	for (i = 0; i < key->nkeys; i++)
	{
		DirectColumn c = key->column[i];
		bool		isnull;
		Datum		v = slot_getattr(slot, direct.attnum[c], &isnull);

		if (isnull)
			return false;
		switch (known_columns[c].type)
		{
			case UUIDOID:
				if (memcmp(DatumGetUUIDP(v), DatumGetUUIDP(values[c]), sizeof(pg_uuid_t)) != 0)
					return false;
				break;
			case TEXTOID:
				if (!DatumGetBool(DirectFunctionCall2Coll(texteq, key->collation[i], v, values[c])))
					return false;
				break;
			default:
				if (DatumGetTimestampTz(v) != DatumGetTimestampTz(values[c]))
					return false;
				break;
		}
	}
	return true;
}

/*
 * The version visible to snapshot of the HOT chain starting at root, into
 * the target's slot, when it carries the key; false otherwise (nothing
 * there any more, another row, not visible).  As an index scan fetches the
 * heap: prune the page first, then follow the chain under a share lock.
 */
static bool
fetch_at_root(DirectTarget *tg, const KeyIndex *key, const Datum *values,
			  ItemPointer root, Snapshot snapshot)
{
	Buffer		buf;
	HeapTupleData tup;
	ItemPointerData tid = *root;
	bool		all_dead;
	bool		found;

	if (ItemPointerGetBlockNumber(root) >= RelationGetNumberOfBlocks(tg->rel))
		return false;			/* VACUUM truncated the table */
	buf = ReadBuffer(tg->rel, ItemPointerGetBlockNumber(root));
	heap_page_prune_opt(tg->rel, buf);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	found = heap_hot_search_buffer(&tid, tg->rel, buf, snapshot, &tup, &all_dead, true);
	if (found)
		ExecStoreBufferHeapTuple(&tup, tg->slot, buf);
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buf);
	if (!found)
		return false;
	ExecMaterializeSlot(tg->slot);
	return slot_has_key(tg->slot, key, values);
}

/*
 * The row of table t whose key index columns equal values (by
 * DirectColumn), visible to snapshot, into the target's slot
 * (materialized); false when there is none.  Counters and organizations
 * start at the root their index gave last time (see RootEntry).
 */
static bool
fetch_by_key(UsageDirect *d, DirectTable t, const KeyIndex *key, const Datum *values,
			 Snapshot snapshot)
{
	DirectTarget *tg = target(d, t);
	ScanKeyData keys[3];
	Relation	idx;
	IndexScanDesc scan;
	bool		found;
	char		rkey[sizeof(UsageCounterKey)];
	ItemPointerData root;
	bool		cached = t == DT_COUNTERS || t == DT_ORGS;
	RootEntry  *entry = NULL;
	int			i;

	if (cached)
	{
		root_key(t, values, rkey);
		entry = root_lookup(t, rkey, false);
		if (entry && fetch_at_root(tg, key, values, &entry->root, snapshot))
			return true;
	}

	for (i = 0; i < key->nkeys; i++)
		ScanKeyEntryInitialize(&keys[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   key->collation[i], key->proc[i], values[key->column[i]]);
	idx = index_open(key->oid, AccessShareLock);
	scan = ipai_index_beginscan(tg->rel, idx, snapshot, key->nkeys, 0);
	index_rescan(scan, keys, key->nkeys, NULL, 0);
	/* index_getnext_slot, keeping the index entry's TID (the chain's root) */
	found = false;
	while (!found)
	{
		ItemPointer tid = NULL;

		if (!scan->xs_heap_continue)
		{
			tid = index_getnext_tid(scan, ForwardScanDirection);
			if (tid == NULL)
				break;
			ItemPointerCopy(tid, &root);
		}
		found = index_fetch_heap(scan, tg->slot);
	}
	if (found)
	{
		ExecMaterializeSlot(tg->slot);
		if (cached)
		{
			entry = root_lookup(t, rkey, true);
			entry->root = root;
		}
	}
	index_endscan(scan);
	index_close(idx, AccessShareLock);
	return found;
}

/*
 * usage_direct_member_role
 *		The acting user's role in the organization (enum label), or NULL:
 *		the SPI path's STMT_MEMBER_ROLE, with the active snapshot.
 */
const char *
usage_direct_member_role(UsageDirect *d, const pg_uuid_t *org_id, const pg_uuid_t *user_id)
{
	Datum		values[C_COUNT];
	bool		isnull;
	Datum		role;
	HeapTuple	etup;
	const char *label;

	values[C_MB_ORG] = UUIDPGetDatum(org_id);
	values[C_MB_USER] = UUIDPGetDatum(user_id);
	if (!fetch_by_key(d, DT_MEMBERS, &direct.members_key, values, active_snapshot()))
		return NULL;
	role = slot_getattr(d->target[DT_MEMBERS].slot, direct.attnum[C_MB_ROLE], &isnull);
	if (isnull)
		return NULL;
	etup = SearchSysCache1(ENUMOID, role);
	if (!HeapTupleIsValid(etup))
		elog(ERROR, "cache lookup failed for enum value %u", DatumGetObjectId(role));
	label = pstrdup(NameStr(((Form_pg_enum) GETSTRUCT(etup))->enumlabel));
	ReleaseSysCache(etup);
	return label;
}

/* the values of the counter row version in slot */
static void
counter_values(TupleTableSlot *slot, UsageCounterRow *row)
{
	bool		isnull;
	Datum		v;

	row->tid = slot->tts_tid;
	row->used = DatumGetInt64(slot_getattr(slot, direct.attnum[C_CT_USED], &isnull));
	row->held = DatumGetInt64(slot_getattr(slot, direct.attnum[C_CT_HELD], &isnull));
	v = slot_getattr(slot, direct.attnum[C_CT_HOLD_EXPIRES], &isnull);
	row->has_hold_expiry = !isnull;
	row->hold_expires_at = isnull ? 0 : DatumGetTimestampTz(v);
}

/*
 * usage_direct_counter_read
 *		The counter row of key visible to the active snapshot: the SPI
 *		path's STMT_COUNTER_READ.  False when there is none.  The version
 *		stays in the call for usage_direct_counter_add.
 */
bool
usage_direct_counter_read(UsageDirect *d, const UsageCounterKey *key, UsageCounterRow *row)
{
	Datum		values[C_COUNT];

	values[C_CT_ORG] = UUIDPGetDatum(&key->org_id);
	values[C_CT_FEATURE] = CStringGetTextDatum(key->feature);
	values[C_CT_PERIOD] = TimestampTzGetDatum(key->period_start);
	if (!fetch_by_key(d, DT_COUNTERS, &direct.counters_key, values, active_snapshot()))
		return false;
	counter_values(d->target[DT_COUNTERS].slot, row);
	return true;
}

/* SQL's int8pl: 22003 on overflow, as the SPI statements' arithmetic */
static int64
int8_add(int64 a, int64 b)
{
	int64		r;

	if (pg_add_s64_overflow(a, b, &r))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	return r;
}

/*
 * usage_counter_accepts
 *		Would the SPI path's counter UPDATE apply to this version?  Its
 *		WHERE clause: no hold has expired at now, and, under a limit,
 *		used + held + quantity <= max_quantity (22003 on overflow, as in
 *		SQL).
 */
bool
usage_counter_accepts(const UsageCounterRow *row, int64 quantity, bool limited,
					  int64 max_quantity, TimestampTz now)
{
	if (row->has_hold_expiry && row->hold_expires_at <= now)
		return false;
	return !limited || int8_add(int8_add(row->used, row->held), quantity) <= max_quantity;
}

/*
 * Writes a new version of the counter row version in the counters target's
 * slot (at row->tid): used + quantity, updated_at now; index entries when
 * the update was not HOT.  Returns the table AM's verdict; on TM_Ok row
 * describes the new version.
 */
static TM_Result
counter_update(UsageDirect *d, UsageCounterRow *row, int64 quantity, TimestampTz now,
			   TM_FailureData *tmfd)
{
	DirectTarget *tg = target(d, DT_COUNTERS);
	TupleDesc	desc = RelationGetDescr(tg->rel);
	TupleTableSlot *newslot;
	LockTupleMode lockmode;
	ipai_update_indexes update_indexes;
	TM_Result	result;
	MemoryContext old = MemoryContextSwitchTo(d->estate->es_query_cxt);

	slot_getallattrs(tg->slot);
	newslot = ExecInitExtraTupleSlot(d->estate, desc, &TTSOpsVirtual);
	memcpy(newslot->tts_values, tg->slot->tts_values, sizeof(Datum) * desc->natts);
	memcpy(newslot->tts_isnull, tg->slot->tts_isnull, sizeof(bool) * desc->natts);
	newslot->tts_values[direct.attnum[C_CT_USED] - 1] =
		Int64GetDatum(int8_add(row->used, quantity));
	newslot->tts_values[direct.attnum[C_CT_UPDATED] - 1] = TimestampTzGetDatum(now);
	newslot->tts_isnull[direct.attnum[C_CT_UPDATED] - 1] = false;
	ExecStoreVirtualTuple(newslot);
	if (direct.check_constraints[DT_COUNTERS])
		ExecConstraints(tg->rri, newslot, d->estate);

	result = table_tuple_update(tg->rel, &row->tid, newslot, d->estate->es_output_cid,
								active_snapshot(), InvalidSnapshot, true, tmfd,
								&lockmode, &update_indexes);
	if (result == TM_Ok)
	{
		if (ipai_update_needs_index_entries(update_indexes))
			list_free(insert_index_entries(d, DT_COUNTERS, newslot, true, false, NULL,
										   update_indexes));
		row->tid = newslot->tts_tid;
		row->used = int8_add(row->used, quantity);
	}
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * usage_direct_counter_add
 *		Adds quantity to the counter row usage_direct_counter_read found in
 *		this call (row, which the caller found acceptable), as the SPI
 *		path's STMT_COUNTER_UPDATE: when a concurrent transaction updated
 *		the row since the snapshot, it waits for it, locks the newest
 *		version and judges that one (EvalPlanQual's re-check).
 *		COUNTER_ADDED: row describes the new version, which this transaction
 *		now holds.  COUNTER_DECIDE_LOCKED: not updated (the row is gone, or
 *		the newest version has an expired hold or no room under the limit);
 *		the caller decides under the slow path's lock.
 */
UsageCounterAdd
usage_direct_counter_add(UsageDirect *d, UsageCounterRow *row, int64 quantity, bool limited,
						 int64 max_quantity, TimestampTz now)
{
	DirectTarget *tg = target(d, DT_COUNTERS);
	TM_FailureData tmfd;
	TM_Result	result;

	for (;;)
	{
		result = counter_update(d, row, quantity, now, &tmfd);
		if (result == TM_Ok)
			return COUNTER_ADDED;
		if (result == TM_Deleted)
			return COUNTER_DECIDE_LOCKED;
		if (result != TM_Updated)
			elog(ERROR, "unexpected result %d updating a usage counter", (int) result);

		/* updated by a transaction that committed: judge the newest version */
		result = table_tuple_lock(tg->rel, &row->tid, active_snapshot(), tg->slot,
								  d->estate->es_output_cid, LockTupleNoKeyExclusive,
								  LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		if (result == TM_Deleted)
			return COUNTER_DECIDE_LOCKED;
		if (result != TM_Ok)
			elog(ERROR, "unexpected result %d locking a usage counter", (int) result);
		ExecMaterializeSlot(tg->slot);
		counter_values(tg->slot, row);
		if (!usage_counter_accepts(row, quantity, limited, max_quantity, now))
			return COUNTER_DECIDE_LOCKED;
		/* locked: the update cannot fail now */
	}
}

/*
 * usage_direct_counter_apply
 *		Adds quantity (a delta kept until now) to the counter version at
 *		row->tid, which this transaction wrote and still holds; row then
 *		describes the new version.  A call of its own: it runs before
 *		queries and at commit (usage_deltas.c).
 */
void
usage_direct_counter_apply(UsageCounterRow *row, int64 quantity, TimestampTz now)
{
	UsageDirect d;
	DirectTarget *tg;
	TM_FailureData tmfd;
	TM_Result	result;

	bool		pushed = false;

	/* at commit no statement runs: take a snapshot, as deferred triggers do */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	usage_direct_begin(&d, true);
	tg = target(&d, DT_COUNTERS);
	if (!table_tuple_fetch_row_version(tg->rel, &row->tid, SnapshotAny, tg->slot))
		elog(ERROR, "usage counter row vanished");
	result = counter_update(&d, row, quantity, now, &tmfd);
	if (result != TM_Ok)
		elog(ERROR, "usage counter changed under a pending delta (result %d)", (int) result);
	usage_direct_end(&d);
	if (pushed)
		PopActiveSnapshot();
}

/*
 * usage_direct_event_insert
 *		Inserts a usage event: the SPI path's STMT_EVENT_INSERT[_KEYED].
 *
 * With an idempotency key, a speculative insertion that does nothing when
 * the key exists (after waiting for an inserter still in progress), as
 * INSERT ... ON CONFLICT DO NOTHING: then returns false with the existing
 * event's feature and quantity.  Else returns true and the new event's id.
 */
bool
usage_direct_event_insert(UsageDirect *d, const UsageEventRow *ev, int64 *event_id,
						  char **old_feature, int64 *old_quantity)
{
	DirectTarget *tg;
	TupleTableSlot *slot;
	Datum		values[C_COUNT];
	bool		nulls[C_COUNT];
	CommandId	cid = d->estate->es_output_cid;

	memset(nulls, true, sizeof(nulls));
#define SET(c, v) (values[c] = (v), nulls[c] = false)
	SET(C_EV_ORG, UUIDPGetDatum(&ev->org_id));
	SET(C_EV_ID, Int64GetDatum(nextval_internal(id_sequence(DT_EVENTS, C_EV_ID), false)));
	SET(C_EV_FEATURE, CStringGetTextDatum(ev->feature));
	SET(C_EV_QUANTITY, Int64GetDatum(ev->quantity));
	if (ev->idempotency_key)
		SET(C_EV_KEY, PointerGetDatum(ev->idempotency_key));
	SET(C_EV_OCCURRED, TimestampTzGetDatum(ev->occurred_at));
	SET(C_EV_PERIOD, TimestampTzGetDatum(ev->period_start));
	SET(C_EV_METERED, BoolGetDatum(ev->metered));
	SET(C_EV_INLINE, BoolGetDatum(true));
	if (ev->has_hold)
		SET(C_EV_HOLD, UUIDPGetDatum(&ev->hold_id));
	if (ev->has_recorded_by)
		SET(C_EV_RECORDED_BY, UUIDPGetDatum(&ev->recorded_by));
	SET(C_EV_RECORDED_AT, TimestampTzGetDatum(ev->recorded_at));
#undef SET
	slot = fill_slot(d, DT_EVENTS, values, nulls);
	tg = &d->target[DT_EVENTS];
	*event_id = DatumGetInt64(values[C_EV_ID]);

	if (ev->idempotency_key == NULL)
	{
		table_tuple_insert(tg->rel, slot, cid, 0, NULL);
		list_free(insert_index_entries(d, DT_EVENTS, slot, false, false, NULL,
									   IPAI_INDEXES_ALL));
		return true;
	}

	open_indexes(d, DT_EVENTS, true);
	for (;;)
	{
		ItemPointerData conflict;
		uint32		token;
		bool		spec_conflict = false;
		List	   *recheck;

		CHECK_FOR_INTERRUPTS();
		if (!ipai_check_index_constraints(tg->rri, slot, d->estate, &conflict,
										  direct.event_arbiters))
		{
			/* the key exists (committed, or ours): what did it record? */
			TupleTableSlot *old = table_slot_create(tg->rel, &d->estate->es_tupleTable);
			bool		isnull;

			if (!table_tuple_fetch_row_version(tg->rel, &conflict, SnapshotAny, old))
				elog(ERROR, "usage event was neither recorded nor found");
			*old_feature = TextDatumGetCString(slot_getattr(old, direct.attnum[C_EV_FEATURE],
															&isnull));
			*old_quantity = DatumGetInt64(slot_getattr(old, direct.attnum[C_EV_QUANTITY],
													   &isnull));
			return false;
		}
		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
		table_tuple_insert_speculative(tg->rel, slot, cid, 0, NULL, token);
		recheck = insert_index_entries(d, DT_EVENTS, slot, false, true, &spec_conflict,
									   IPAI_INDEXES_ALL);
		table_tuple_complete_speculative(tg->rel, slot, token, !spec_conflict);
		SpeculativeInsertionLockRelease(GetCurrentTransactionId());
		list_free(recheck);
		if (!spec_conflict)
			return true;
	}
}

/*
 * RI_FKey_check_ins of the outbox row: lock the organization FOR KEY SHARE
 * (its newest version, waiting for a transaction changing it), or raise
 * the foreign key's error when it is gone.
 */
static void
lock_org_key_share(UsageDirect *d, const pg_uuid_t *org_id)
{
	DirectTarget *tg = target(d, DT_ORGS);
	Datum		values[C_COUNT];
	TM_FailureData tmfd;
	TM_Result	result = TM_Deleted;

	values[C_OR_ID] = UUIDPGetDatum(org_id);
	if (fetch_by_key(d, DT_ORGS, &direct.orgs_key, values, active_snapshot()))
	{
		ItemPointerData tid = tg->slot->tts_tid;

		result = table_tuple_lock(tg->rel, &tid, active_snapshot(), tg->slot,
								  d->estate->es_output_cid, LockTupleKeyShare,
								  LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	}
	if (result == TM_Deleted)
	{
		Relation	outbox = target(d, DT_OUTBOX)->rel;

		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
						RelationGetRelationName(outbox), direct.outbox_fkey),
				 errdetail("Key (%s)=(%s) is not present in table \"%s\".",
						   known_columns[C_OB_ORG].name,
						   DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(org_id))),
						   RelationGetRelationName(tg->rel)),
				 errtableconstraint(outbox, direct.outbox_fkey)));
	}
	if (result != TM_Ok)
		elog(ERROR, "unexpected result %d locking an organization", (int) result);
}

/* a member of a jsonb object under construction */
static void
push_key(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &v);
}

static void
push_string(JsonbParseState **st, const char *key, const char *value)
{
	JsonbValue	v;

	push_key(st, key);
	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

static void
push_int8(JsonbParseState **st, const char *key, int64 value)
{
	JsonbValue	v;

	push_key(st, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * The payload ipai._meter_event_payload() builds (see 50_metering.sql):
 * event_name, stripe_customer_id, value, identifier, timestamp (Unix
 * seconds of occurred_at, as floor(date_part('epoch', ...)) computes them
 * in float8), and payload {stripe_customer_id, value as text}.
 */
static Jsonb *
meter_payload(const char *event_name, const char *customer, int64 value,
			  const char *identifier, TimestampTz occurred_at)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	char		value_text[32];
	float8		epoch;

	epoch = (occurred_at - SetEpochTimestamp()) / 1000000.0;
	snprintf(value_text, sizeof(value_text), INT64_FORMAT, value);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_string(&st, "event_name", event_name);
	push_string(&st, "stripe_customer_id", customer);
	push_int8(&st, "value", value);
	push_string(&st, "identifier", identifier);
	push_int8(&st, "timestamp", (int64) floor(epoch));
	push_key(&st, "payload");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_string(&st, "stripe_customer_id", customer);
	push_string(&st, "value", value_text);
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * usage_direct_meter_event
 *		The Stripe meter event of a metered usage event in the outbox, as
 *		the SPI path's EVENT_OUTBOX writes it (the same row: defaults,
 *		payload, dedupe_key = the meter identifier), with the outbox's
 *		foreign key checked and its senders woken.
 */
void
usage_direct_meter_event(UsageDirect *d, const pg_uuid_t *org_id, int64 event_id,
						 const char *event_name, const char *customer, int64 value,
						 TimestampTz occurred_at)
{
	DirectTarget *tg;
	TupleTableSlot *slot;
	Datum		values[C_COUNT];
	bool		nulls[C_COUNT];
	char	   *identifier;
	MemoryContext old;

	lock_org_key_share(d, org_id);
	old = MemoryContextSwitchTo(d->estate->es_query_cxt);
	identifier = psprintf("ipai_%s_" INT64_FORMAT,
						  DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(org_id))),
						  event_id);
	memset(nulls, false, sizeof(nulls));
	values[C_OB_ORG] = UUIDPGetDatum(org_id);
	values[C_OB_ID] = Int64GetDatum(nextval_internal(id_sequence(DT_OUTBOX, C_OB_ID), false));
	values[C_OB_TOPIC] = CStringGetTextDatum(METER_TOPIC);
	values[C_OB_PAYLOAD] = JsonbPGetDatum(meter_payload(event_name, customer, value,
														identifier, occurred_at));
	values[C_OB_DEDUPE] = CStringGetTextDatum(identifier);
	slot = fill_slot(d, DT_OUTBOX, values, nulls);
	tg = &d->target[DT_OUTBOX];
	table_tuple_insert(tg->rel, slot, d->estate->es_output_cid, 0, NULL);
	list_free(insert_index_entries(d, DT_OUTBOX, slot, false, false, NULL, IPAI_INDEXES_ALL));
	MemoryContextSwitchTo(old);
	if (direct.outbox_notify)
		ipai_outbox_wake();
}
