/*-------------------------------------------------------------------------
 *
 * usage_cache.c
 *		Per-backend caches and kept SPI statements of the entitlement
 *		functions.
 *
 * What rarely changes is cached per backend: the rows of
 * ipai.plan_entitlements, and per organization its plan, time zone,
 * current subscription period and Stripe customer.  Row-level triggers on
 * the source tables (ipai._usage_cache_invalidate), which fire only when a
 * cached column changes (and on INSERT, DELETE, TRUNCATE), register a
 * relcache invalidation of ipai._usage_cache_signal, a table without rows
 * or columns that no statement reads: PostgreSQL delivers it to every
 * backend at commit (and to the changing backend at its next command or on
 * abort), and the callback below marks the caches stale.  Because no plan
 * depends on that relation, the message re-plans nothing; invalidating the
 * source tables themselves would make every backend re-plan every cached
 * statement that reads them (the Stripe webhook's, for subscriptions) on
 * every write.  Callers run usage_refresh_caches() first, which accepts
 * pending invalidations and drops stale caches, so a call sees every change
 * committed before it started.  Loads read with the latest snapshot, never
 * an older transaction snapshot, so a repeatable-read transaction cannot
 * cache the past.  An aborted change sends nothing to other backends; the
 * changing backend drops its caches (which may hold the aborted rows).
 * On Citus the organization cache lasts one transaction (the triggers of
 * distributed tables fire on the workers; see usage_xact_callback).
 *
 * The callback only sets flags: it can run in the middle of a lookup (any
 * lock acquisition accepts invalidations), so entries are copied out
 * before they are used and freed only by the next refresh.
 *
 * What changes all the time (counters, holds, members) is never cached:
 * it is read by one kept SPI statement per call.  Statements are prepared
 * once per backend with a generic plan and kept (SPI_keepplan); every value
 * is a $n parameter and every object and operator is schema-qualified.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

/* more organizations than this and the cache starts over */
#define ORG_CACHE_MAX 10000

/*
 * Recording an event (see record_event in entitlement.c): the event INSERT,
 * then the counter UPDATE.  Parameters of the INSERTs:
 * $1 org, $2 feature, $3 quantity, $4 occurred_at, $5 period_start,
 * $6 metered, $7 hold_id, $8 recorded_by, $9 now, $10 idempotency key,
 * $11 meter event name, $12 Stripe customer.  Events without a key use a
 * plain INSERT: ON CONFLICT would make every insert speculative.
 */
#define EVENT_COLUMNS \
	"INSERT INTO ipai.usage_events AS e " \
	"       (org_id, feature, quantity, occurred_at, period_start, metered, hold_id, " \
	"        recorded_by, recorded_at, idempotency_key, counted_inline) "
#define EVENT_VALUES \
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true) "
#define EVENT_ON_KEY \
	"ON CONFLICT (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
#define EVENT_OUTBOX \
	", o AS (INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key) " \
	"        SELECT $1, 'stripe.meter_event', " \
	"               ipai._meter_event_payload($1, e.id, $11, $12, $3, e.occurred_at), " \
	"               ipai._meter_identifier($1, e.id) " \
	"          FROM e RETURNING 1) " \
	"SELECT e.id FROM e"
#define EVENT_ARGTYPES \
	{UUIDOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID, UUIDOID, \
	 UUIDOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID}

typedef struct UsageStmtDef
{
	const char *sql;
	int			nargs;
	Oid			argtypes[12];
} UsageStmtDef;

/*
 * Every distributed table a statement reads or writes is filtered by the
 * organization ($1) itself, not through a join: Citus routes a statement
 * to one worker only when each of its tables is (see citus.c).
 */
static const UsageStmtDef stmt_defs[STMT_COUNT] = {
	/*
	 * The usage period follows the subscription whenever it grants the
	 * plan: the statuses of ipai.subscription_grants_plan() (billing), spelt
	 * out here so the plan never depends on how the caller's search_path
	 * resolves that function's body.
	 */
	[STMT_ORG_LOAD] = {
		"SELECT o.plan_id, o.timezone, s.current_period_start, s.current_period_end, "
		"       b.stripe_customer_id "
		"  FROM ipai.organizations o "
		"  LEFT JOIN LATERAL ( "
		"       SELECT s.current_period_start, s.current_period_end "
		"         FROM ipai.subscriptions s "
		"        WHERE s.org_id OPERATOR(pg_catalog.=) $1 "
		"          AND s.status OPERATOR(pg_catalog.=) ANY ('{active,trialing,past_due}'::pg_catalog.text[]) "
		"          AND s.current_period_start IS NOT NULL "
		"          AND s.current_period_end IS NOT NULL "
		"          AND s.current_period_end OPERATOR(pg_catalog.>) s.current_period_start "
		"        ORDER BY s.current_period_end DESC "
		"        LIMIT 1) s ON true "
		"  LEFT JOIN ipai.billing_customers b ON b.org_id OPERATOR(pg_catalog.=) $1 "
		" WHERE o.id OPERATOR(pg_catalog.=) $1",
		1, {UUIDOID}
	},
	[STMT_ENTITLEMENTS_LOAD] = {
		"SELECT e.plan_id, e.feature, e.max_quantity, "
		"       e.enforcement OPERATOR(pg_catalog.=) 'hard', "
		"       e.reset_period OPERATOR(pg_catalog.=) 'billing_period', "
		"       e.counted_by, e.metered, e.stripe_meter_event_name "
		"  FROM ipai.plan_entitlements e "
		" ORDER BY e.feature, e.plan_id",
		0, {InvalidOid}
	},
	[STMT_MEMBER_ROLE] = {
		"SELECT m.role::pg_catalog.text FROM ipai.org_members m "
		" WHERE m.org_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $2",
		2, {UUIDOID, UUIDOID}
	},
	[STMT_COUNTER_READ] = {
		"SELECT c.used, c.held, c.hold_expires_at "
		"  FROM ipai.usage_counters c "
		" WHERE c.org_id OPERATOR(pg_catalog.=) $1 AND c.feature OPERATOR(pg_catalog.=) $2 "
		"   AND c.period_start OPERATOR(pg_catalog.=) $3",
		3, {UUIDOID, TEXTOID, TIMESTAMPTZOID}
	},
	[STMT_COUNTER_READ_MEMBER] = {
		"SELECT m.role::pg_catalog.text, c.used, c.held, c.hold_expires_at "
		"  FROM (SELECT) AS k "
		"  LEFT JOIN ipai.org_members m "
		"         ON m.org_id OPERATOR(pg_catalog.=) $1 AND m.user_id OPERATOR(pg_catalog.=) $4 "
		"  LEFT JOIN ipai.usage_counters c "
		"         ON c.org_id OPERATOR(pg_catalog.=) $1 AND c.feature OPERATOR(pg_catalog.=) $2 "
		"        AND c.period_start OPERATOR(pg_catalog.=) $3",
		4, {UUIDOID, TEXTOID, TIMESTAMPTZOID, UUIDOID}
	},
	[STMT_HOLDS_SUM] = {
		"SELECT COALESCE(pg_catalog.sum(h.quantity), 0)::pg_catalog.int8 "
		"  FROM ipai.usage_holds h "
		" WHERE h.org_id OPERATOR(pg_catalog.=) $1 AND h.feature OPERATOR(pg_catalog.=) $2 "
		"   AND h.period_start OPERATOR(pg_catalog.=) $3 "
		"   AND h.status OPERATOR(pg_catalog.=) 'active' "
		"   AND h.expires_at OPERATOR(pg_catalog.>) $4",
		4, {UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
	},
	[STMT_SEATS_COUNT] = {
		"SELECT (SELECT pg_catalog.count(*) FROM ipai.org_members m "
		"         WHERE m.org_id OPERATOR(pg_catalog.=) $1) "
		"       OPERATOR(pg_catalog.+) "
		"       (SELECT pg_catalog.count(*) FROM ipai.org_invitations i "
		"         WHERE i.org_id OPERATOR(pg_catalog.=) $1 "
		"           AND i.accepted_at IS NULL AND i.revoked_at IS NULL "
		"           AND i.expires_at OPERATOR(pg_catalog.>) $2)",
		2, {UUIDOID, TIMESTAMPTZOID}
	},
	[STMT_EVENT_INSERT] = {
		EVENT_COLUMNS EVENT_VALUES "RETURNING e.id",
		12, EVENT_ARGTYPES
	},
	[STMT_EVENT_INSERT_KEYED] = {
		EVENT_COLUMNS EVENT_VALUES EVENT_ON_KEY "RETURNING e.id",
		12, EVENT_ARGTYPES
	},
	[STMT_EVENT_INSERT_METERED] = {
		"WITH e AS (" EVENT_COLUMNS EVENT_VALUES "RETURNING e.id, e.occurred_at) "
		EVENT_OUTBOX,
		12, EVENT_ARGTYPES
	},
	[STMT_EVENT_INSERT_METERED_KEYED] = {
		"WITH e AS (" EVENT_COLUMNS EVENT_VALUES EVENT_ON_KEY "RETURNING e.id, e.occurred_at) "
		EVENT_OUTBOX,
		12, EVENT_ARGTYPES
	},
	/*
	 * The counter row is the lock: concurrent recorders wait here and
	 * re-check the WHERE clause (the hard limit, $6; NULL for none) on the
	 * newest version.  No row: no counter yet, an expired hold to forget
	 * ($5 is now), or the limit -- the caller decides under
	 * STMT_COUNTER_LOCK.
	 */
	[STMT_COUNTER_UPDATE] = {
		"UPDATE ipai.usage_counters c "
		"   SET used = c.used OPERATOR(pg_catalog.+) $3, updated_at = $5 "
		" WHERE c.org_id OPERATOR(pg_catalog.=) $1 "
		"   AND c.feature OPERATOR(pg_catalog.=) $2 "
		"   AND c.period_start OPERATOR(pg_catalog.=) $4 "
		"   AND (c.hold_expires_at IS NULL OR c.hold_expires_at OPERATOR(pg_catalog.>) $5) "
		"   AND ($6 IS NULL OR ((c.used OPERATOR(pg_catalog.+) c.held) "
		"                       OPERATOR(pg_catalog.+) $3) OPERATOR(pg_catalog.<=) $6) "
		"RETURNING c.used, c.held",
		6, {UUIDOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID}
	},
	[STMT_EVENT_BY_KEY] = {
		"SELECT e.feature, e.quantity FROM ipai.usage_events e "
		" WHERE e.org_id OPERATOR(pg_catalog.=) $1 "
		"   AND e.idempotency_key OPERATOR(pg_catalog.=) $2",
		2, {UUIDOID, TEXTOID}
	},
	[STMT_COUNTER_LOCK] = {
		"SELECT l.used, l.held FROM ipai._usage_counter_lock($1, $2, $3, $4, $5) AS l",
		5, {UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
	},
	[STMT_COUNTER_ADD] = {
		"UPDATE ipai.usage_counters c "
		"   SET used = c.used OPERATOR(pg_catalog.+) $4, updated_at = $5 "
		" WHERE c.org_id OPERATOR(pg_catalog.=) $1 AND c.feature OPERATOR(pg_catalog.=) $2 "
		"   AND c.period_start OPERATOR(pg_catalog.=) $3 "
		"RETURNING c.used, c.held",
		5, {UUIDOID, TEXTOID, TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID}
	},
	[STMT_ORG_LOCK] = {
		"SELECT 1 FROM ipai.organizations o WHERE o.id OPERATOR(pg_catalog.=) $1 "
		"   FOR NO KEY UPDATE",
		1, {UUIDOID}
	},
	/*
	 * The usage inside a period's window that has no counter yet: events
	 * recorded in other periods before the organization's periods moved.
	 * ipai._usage_window_sums says what a window holds; $4 NULL: no end.
	 */
	[STMT_WINDOW_SUM] = {
		"SELECT w.own OPERATOR(pg_catalog.+) w.carried "
		"  FROM ipai._usage_window_sums($1, $2, $3, $4) w",
		4, {UUIDOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
	},
};

static SPIPlanPtr stmt_plans[STMT_COUNT];

/*
 * usage_stmt
 *		The kept plan of a statement, prepared on first use in this backend.
 *
 * Caller must be connected to SPI.  Plans are generic (no custom planning
 * per call); they are re-planned by the plan cache if a table they use
 * changes.
 */
SPIPlanPtr
usage_stmt(UsageStmt stmt)
{
	SPIPlanPtr	plan = stmt_plans[stmt];

	if (plan == NULL)
	{
		const UsageStmtDef *def = &stmt_defs[stmt];

		plan = SPI_prepare_cursor(def->sql, def->nargs, (Oid *) def->argtypes,
								  ipai_spi_plan_options(CURSOR_OPT_GENERIC_PLAN));
		if (plan == NULL)
			elog(ERROR, "could not prepare metering statement %d: %s",
				 (int) stmt, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep metering statement %d", (int) stmt);
		stmt_plans[stmt] = plan;
	}
	return plan;
}

/*
 * usage_exec
 *		Run a kept statement; returns the number of rows (in SPI_tuptable).
 *
 * latest_snapshot reads with a fresh snapshot even in a repeatable-read
 * transaction: cache loads and limit checks must see what is committed
 * now, as foreign-key checks do.
 */
uint64
usage_exec(UsageStmt stmt, Datum *values, const char *nulls, bool read_only,
		   bool latest_snapshot)
{
	SPIPlanPtr	plan = usage_stmt(stmt);
	int			rc;

	if (latest_snapshot)
		rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
								  InvalidSnapshot, read_only, true, 0);
	else
		rc = SPI_execute_plan(plan, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "metering statement %d failed: %s", (int) stmt,
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Caches
 */

typedef struct EntitlementKey
{
	char		plan_id[USAGE_NAME_LEN];
	char		feature[USAGE_NAME_LEN];
} EntitlementKey;

typedef struct EntitlementEntry
{
	EntitlementKey key;			/* must be first */
	Entitlement ent;
} EntitlementEntry;

typedef struct FeatureEntry
{
	char		feature[USAGE_NAME_LEN];	/* must be first */
	Entitlement ent;			/* the definition of one plan (all agree) */
} FeatureEntry;

typedef struct OrgEntry
{
	pg_uuid_t	org_id;			/* must be first */
	OrgInfo		info;
} OrgEntry;

static MemoryContext usage_cache_cxt = NULL;
static HTAB *entitlement_cache = NULL;
static HTAB *feature_cache = NULL;
static HTAB *org_cache = NULL;
static bool entitlements_stale = true;
static bool orgs_stale = true;
static bool callback_registered = false;

/* the relation whose relcache invalidations say "drop the caches" */
static Oid	rel_signal = InvalidOid;

/*
 * On Citus the organizations, subscriptions and customers live on the
 * workers: their triggers invalidate the caches of the worker that holds
 * the organization, never the coordinator's.  On the coordinator the
 * organization cache is trusted for one transaction only (the end of each
 * sets this flag); a worker's is invalidated as on one server.
 */
static bool xact_ended = false;

static void
usage_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		xact_ended = true;
}

/*
 * Relcache invalidation callback: only flags, see the file header.
 * InvalidOid means "everything" (for instance after a sinval overflow).
 * Dropping or recreating the signal relation (DROP EXTENSION) also sends
 * its OID, and the next load resolves the new one.
 */
static void
usage_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == rel_signal)
	{
		entitlements_stale = true;
		orgs_stale = true;
	}
}

/* the OID of ipai._usage_cache_signal, looked up by name */
static Oid
lookup_signal_relid(void)
{
	Oid			relid;

	relid = get_relname_relid("_usage_cache_signal", get_namespace_oid("ipai", false));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"ipai._usage_cache_signal\" does not exist"),
				 errhint("Run SELECT ipai.install_schema().")));
	return relid;
}

/*
 * resolve_relids
 *		Called before every cache load: the load's data is good until the
 *		next signal of this relation.
 */
static void
resolve_relids(void)
{
	rel_signal = lookup_signal_relid();
}

/*
 * usage_signal_caches
 *		Drop the metering caches of every backend when the current
 *		transaction commits (of this backend at its next command, and on
 *		abort).  Called by the invalidation triggers.
 */
static int64 signals_sent = 0;

void
usage_signal_caches(void)
{
	CacheInvalidateRelcacheByRelid(lookup_signal_relid());
	signals_sent++;
}

PG_FUNCTION_INFO_V1(ipai_usage_cache_signals);

/*
 * ipai._usage_cache_signals() returns bigint
 *
 * How many cache signals this backend has sent (usage_signal_caches): for
 * the tests of the invalidation triggers.  Not granted to anyone.
 */
Datum
ipai_usage_cache_signals(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(signals_sent);
}

static HTAB *
create_cache(const char *name, Size keysize, Size entrysize, long nelem)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = usage_cache_cxt;
	return hash_create(name, nelem, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * usage_refresh_caches
 *		Accept pending invalidations and drop what they made stale.
 *
 * Called at the start of every entitlement function and trigger, before
 * any cached value is used.
 */
void
usage_refresh_caches(void)
{
	if (!callback_registered)
	{
		usage_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
												"ipai metering cache",
												ALLOCSET_DEFAULT_SIZES);
		CacheRegisterRelcacheCallback(usage_relcache_callback, (Datum) 0);
		RegisterXactCallback(usage_xact_callback, NULL);
		callback_registered = true;
	}

	AcceptInvalidationMessages();
	if (xact_ended)
	{
		xact_ended = false;
		if (ipai_citus_is_coordinator_cached())
			orgs_stale = true;
	}

	if (entitlements_stale)
	{
		/* set before loading: an invalidation during the load wins */
		entitlements_stale = false;
		if (entitlement_cache)
			hash_destroy(entitlement_cache);
		if (feature_cache)
			hash_destroy(feature_cache);
		entitlement_cache = NULL;
		feature_cache = NULL;
	}
	if (orgs_stale)
	{
		orgs_stale = false;
		if (org_cache)
			hash_destroy(org_cache);
		org_cache = NULL;
	}
}

static char *
copy_name(HeapTuple tup, TupleDesc desc, int col, char *dst, Size dstlen)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	char	   *s;

	if (isnull)
	{
		dst[0] = '\0';
		return NULL;
	}
	s = TextDatumGetCString(d);
	strlcpy(dst, s, dstlen);
	return s;
}

static UsageSource
source_from_name(const char *name)
{
	if (strcmp(name, "cms_pages") == 0)
		return USAGE_FROM_PAGES;
	if (strcmp(name, "seats") == 0)
		return USAGE_FROM_SEATS;
	return USAGE_FROM_EVENTS;
}

/* loads all of ipai.plan_entitlements; caller is connected to SPI */
static void
load_entitlements(void)
{
	uint64		n;
	uint64		i;

	resolve_relids();
	n = usage_exec(STMT_ENTITLEMENTS_LOAD, NULL, NULL, true, true);

	entitlement_cache = create_cache("ipai plan entitlements", sizeof(EntitlementKey),
									 sizeof(EntitlementEntry), 64);
	feature_cache = create_cache("ipai features", USAGE_NAME_LEN,
								 sizeof(FeatureEntry), 32);

	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Entitlement ent;
		EntitlementKey key;
		EntitlementEntry *entry;
		FeatureEntry *fentry;
		bool		isnull;
		bool		found;
		char		counted_by[USAGE_NAME_LEN];
		Datum		d;

		memset(&ent, 0, sizeof(ent));
		copy_name(tup, desc, 1, ent.plan_id, sizeof(ent.plan_id));
		copy_name(tup, desc, 2, ent.feature, sizeof(ent.feature));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		ent.unlimited = isnull;
		ent.max_quantity = isnull ? 0 : DatumGetInt64(d);
		ent.hard = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		ent.per_period = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		copy_name(tup, desc, 6, counted_by, sizeof(counted_by));
		ent.source = source_from_name(counted_by);
		ent.metered = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		copy_name(tup, desc, 8, ent.meter_event_name, sizeof(ent.meter_event_name));

		memset(&key, 0, sizeof(key));
		strlcpy(key.plan_id, ent.plan_id, sizeof(key.plan_id));
		strlcpy(key.feature, ent.feature, sizeof(key.feature));
		entry = hash_search(entitlement_cache, &key, HASH_ENTER, &found);
		entry->ent = ent;

		fentry = hash_search(feature_cache, key.feature, HASH_ENTER, &found);
		if (!found)
			fentry->ent = ent;
	}
}

static void
ensure_entitlements(void)
{
	if (entitlement_cache == NULL)
		load_entitlements();
}

/*
 * usage_entitlement_lookup
 *		The entitlement of feature in plan_id; false when the plan has none.
 */
bool
usage_entitlement_lookup(const char *plan_id, const char *feature, Entitlement *out)
{
	EntitlementKey key;
	EntitlementEntry *entry;

	if (strlen(plan_id) >= USAGE_NAME_LEN || strlen(feature) >= USAGE_NAME_LEN)
		return false;
	ensure_entitlements();
	memset(&key, 0, sizeof(key));
	strlcpy(key.plan_id, plan_id, sizeof(key.plan_id));
	strlcpy(key.feature, feature, sizeof(key.feature));
	entry = hash_search(entitlement_cache, &key, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	*out = entry->ent;
	return true;
}

/*
 * usage_feature_lookup
 *		Is feature known at all (in any plan)?  Fills *out with one plan's
 *		definition (how it is counted; plans agree on that).
 */
bool
usage_feature_lookup(const char *feature, Entitlement *out)
{
	char		key[USAGE_NAME_LEN];
	FeatureEntry *entry;

	if (strlen(feature) >= USAGE_NAME_LEN)
		return false;
	ensure_entitlements();
	memset(key, 0, sizeof(key));
	strlcpy(key, feature, sizeof(key));
	entry = hash_search(feature_cache, key, HASH_FIND, NULL);
	if (entry == NULL)
		return false;
	*out = entry->ent;
	return true;
}

/*
 * usage_plan_features
 *		Up to max_out entitlements of plan_id counted from source; returns
 *		how many were found.
 */
int
usage_plan_features(const char *plan_id, UsageSource source, Entitlement *out,
					int max_out)
{
	HASH_SEQ_STATUS status;
	EntitlementEntry *entry;
	int			n = 0;

	ensure_entitlements();
	hash_seq_init(&status, entitlement_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->ent.source != source || strcmp(entry->ent.plan_id, plan_id) != 0)
			continue;
		if (n < max_out)
			out[n++] = entry->ent;
	}
	return n;
}

/*
 * usage_org_lookup
 *		What the cache knows about an organization; false when it does not
 *		exist.  Loads it on a miss (caller is connected to SPI).
 */
bool
usage_org_lookup(const pg_uuid_t *org_id, OrgInfo *out)
{
	OrgEntry   *entry;
	OrgInfo		info;
	Datum		values[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		found;
	char		tzname[TZ_STRLEN_MAX + 1];
	char	   *customer;
	Datum		d;

	if (org_cache != NULL)
	{
		entry = hash_search(org_cache, org_id, HASH_FIND, NULL);
		if (entry != NULL)
		{
			*out = entry->info;
			return true;
		}
	}

	resolve_relids();
	values[0] = UUIDPGetDatum(org_id);
	if (usage_exec(STMT_ORG_LOAD, values, NULL, true, true) == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(&info, 0, sizeof(info));
	info.org_id = *org_id;
	copy_name(tup, desc, 1, info.plan_id, sizeof(info.plan_id));
	copy_name(tup, desc, 2, tzname, sizeof(tzname));
	info.tz = pg_tzset(tzname);
	if (info.tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("organization has an invalid time zone \"%s\"", tzname),
				 errhint("Set ipai.organizations.timezone to a name from pg_timezone_names.")));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	if (!isnull)
	{
		info.has_subscription = true;
		info.sub_start = DatumGetTimestampTz(d);
		info.sub_end = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
	}
	customer = copy_name(tup, desc, 5, info.stripe_customer_id,
						 sizeof(info.stripe_customer_id));
	info.has_customer = customer != NULL &&
		strlen(customer) < sizeof(info.stripe_customer_id);

	if (org_cache == NULL || hash_get_num_entries(org_cache) >= ORG_CACHE_MAX)
	{
		if (org_cache)
			hash_destroy(org_cache);
		org_cache = create_cache("ipai organizations", sizeof(pg_uuid_t),
								 sizeof(OrgEntry), 256);
	}
	entry = hash_search(org_cache, org_id, HASH_ENTER, &found);
	entry->info = info;
	*out = info;
	return true;
}

/*
 * usage_caches_warm
 *		Can usage_org_lookup and the entitlement lookups answer without
 *		loading (and so without SPI)?  Call after usage_refresh_caches.
 */
bool
usage_caches_warm(const pg_uuid_t *org_id)
{
	return entitlement_cache != NULL && org_cache != NULL &&
		hash_search(org_cache, org_id, HASH_FIND, NULL) != NULL;
}

/* remembers the calendar month computed for an organization */
void
usage_org_remember_month(const pg_uuid_t *org_id, TimestampTz start, TimestampTz end)
{
	OrgEntry   *entry;

	if (org_cache == NULL)
		return;
	entry = hash_search(org_cache, org_id, HASH_FIND, NULL);
	if (entry != NULL)
	{
		entry->info.month_start = start;
		entry->info.month_end = end;
	}
}

/*
 * usage_extension_owner
 *		The role that owns the extension (a superuser: the extension is
 *		not trusted).  The entitlement functions run their SPI statements
 *		as this role, like SECURITY DEFINER functions.
 */
Oid
usage_extension_owner(void)
{
	static Oid	owner = InvalidOid;

	if (!OidIsValid(owner))
	{
		Relation	rel;
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		rel = table_open(ExtensionRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
					F_NAMEEQ, CStringGetDatum("ipai_saas"));
		scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
		tup = systable_getnext(scan);
		if (HeapTupleIsValid(tup))
			owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
		systable_endscan(scan);
		table_close(rel, AccessShareLock);
		if (!OidIsValid(owner))
			elog(ERROR, "extension \"ipai_saas\" is not installed in this database");
	}
	return owner;
}

/*
 * usage_become_owner / usage_restore_user
 *		Switch the current user to the extension owner and back.
 *
 * An error in between needs no cleanup: transaction and subtransaction
 * abort restore the user, as for SECURITY DEFINER functions.
 */
void
usage_become_owner(Oid *save_userid, int *save_sec_context)
{
	Oid			owner = usage_extension_owner();

	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(owner, *save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
}

void
usage_restore_user(Oid save_userid, int save_sec_context)
{
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * usage_caller_is_privileged
 *		May the calling role act for any organization?  The same rule as
 *		ipai.caller_is_privileged(): superuser, BYPASSRLS or a member of
 *		service_role, judged on the outer user (unchanged by SECURITY
 *		DEFINER and by usage_become_owner).
 */
bool
usage_caller_is_privileged(void)
{
	Oid			outer = GetOuterUserId();
	Oid			service_role;

	if (superuser_arg(outer) || has_bypassrls_privilege(outer))
		return true;
	service_role = get_role_oid("service_role", true);
	return OidIsValid(service_role) && is_member_of_role(outer, service_role);
}
