/*-------------------------------------------------------------------------
 *
 * entitlement.c
 *		ipai.check_entitlement, ipai.consume_entitlement, ipai.record_usage.
 *
 * They answer inside the caller's transaction, exactly: what changes
 * rarely (plans, the organization's plan, time zone, subscription period,
 * Stripe customer) comes from the per-backend caches of usage_cache.c;
 * what changes all the time is one kept SPI statement per call:
 *
 *	check	reads the live counter of (org, feature, period) and the active
 *			holds, plus the membership of the acting user when the caller is
 *			not privileged;
 *	consume and record
 *			insert the usage event (idempotency key unique per organization,
 *			ON CONFLICT DO NOTHING), add it to the counter with an UPDATE
 *			whose WHERE clause is the hard limit, and, for metered features,
 *			write the Stripe meter event to the outbox, all in one
 *			statement.  The counter row is the lock: concurrent consumers
 *			serialize on it and re-check the limit on the newest version,
 *			so they can never push usage past a hard limit.  When the UPDATE
 *			does not apply (no counter yet, an expired hold to forget, or
 *			the limit) a slow path locks the counter with
 *			ipai._usage_counter_lock() and decides under the lock.
 *
 * Identity: superusers, BYPASSRLS roles and service_role act for any
 * organization; anybody else must be a member of it: any role to check,
 * consume and hold, editor or higher to record usage directly (and then
 * hard limits apply to them as to consume).  Arguments are validated
 * first (22023), then the organization must exist (22023), then the
 * membership (42501, revealing nothing), then the feature (22023).
 *
 * The SQL statements run as the extension owner (usage_become_owner), so
 * RLS and table privileges of the caller do not apply to them.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* member roles, in order */
typedef enum OrgRank
{
	RANK_NONE = 0,
	RANK_VIEWER,
	RANK_EDITOR,
	RANK_ADMIN,
	RANK_OWNER
} OrgRank;

static const char *const rank_names[] = {"none", "viewer", "editor", "admin", "owner"};

/* everything one call knows */
typedef struct UsageCall
{
	pg_uuid_t	org_id;
	char		org_text[UUID_LEN * 2 + 5];
	char	   *feature;		/* as given */
	int64		quantity;
	OrgInfo		org;
	Entitlement ent;			/* the org plan's, or the feature's definition */
	bool		known;			/* the feature exists in some plan */
	bool		in_plan;		/* ... and in the organization's plan */
	bool		privileged;
	bool		has_user;
	pg_uuid_t	user;
	TimestampTz now;
	Oid			save_userid;
	int			save_sec;
	bool		spi;			/* connected to SPI (call_spi) */
	bool		reads_only;		/* check: the periods need not stay put */
} UsageCall;

/* the result of check and consume */
typedef struct UsageAnswer
{
	bool		allowed;
	int64		current;
	int64		held;
	const char *reason;
} UsageAnswer;

static OrgRank
rank_of(const char *role)
{
	int			i;

	for (i = RANK_VIEWER; i <= RANK_OWNER; i++)
		if (strcmp(role, rank_names[i]) == 0)
			return (OrgRank) i;
	return RANK_NONE;
}

static void
bad_argument(const char *message)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message)));
}

/*
 * Reads and validates the arguments shared by the three functions:
 * org_id (0), feature (1), quantity (2).  22023 for NULLs and a quantity
 * that is not positive.
 */
static void
call_arguments(FunctionCallInfo fcinfo, UsageCall *call)
{
	memset(call, 0, sizeof(*call));
	if (PG_ARGISNULL(0))
		bad_argument("organization id must not be null");
	if (PG_ARGISNULL(1))
		bad_argument("feature must not be null");
	if (PG_ARGISNULL(2))
		bad_argument("quantity must not be null");
	call->org_id = *PG_GETARG_UUID_P(0);
	call->feature = text_to_cstring(PG_GETARG_TEXT_PP(1));
	call->quantity = PG_GETARG_INT64(2);
	if (call->quantity <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity must be positive"),
				 errdetail("The quantity is %lld.", (long long) call->quantity)));
	call->now = GetCurrentTransactionStartTimestamp();
}

/* the organization id as text, for messages */
static const char *
org_text(UsageCall *call)
{
	if (call->org_text[0] == '\0')
		strlcpy(call->org_text,
				DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&call->org_id))),
				sizeof(call->org_text));
	return call->org_text;
}

/* the idempotency key argument: NULL, or 1 to 255 characters */
static text *
key_argument(FunctionCallInfo fcinfo, int argno)
{
	text	   *key;
	int			len;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	key = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(key);
	if (len == 0)
		bad_argument("idempotency key must not be empty");
	if (pg_mbstrlen_with_len(VARDATA_ANY(key), len) > 255)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key is too long"),
				 errdetail("At most 255 characters are allowed.")));
	return key;
}

/*
 * Connects to SPI on the first statement of the call: the fast path
 * (usage_direct.c) usually needs none.
 */
static void
call_spi(UsageCall *call)
{
	if (!call->spi)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		call->spi = true;
	}
}

/* a kept statement of usage_cache.c, through SPI */
static uint64
call_exec(UsageCall *call, UsageStmt stmt, Datum *values, const char *nulls,
		  bool read_only)
{
	call_spi(call);
	return usage_exec(stmt, values, nulls, read_only, false);
}

/*
 * Switches to the extension owner, and resolves the organization (22023
 * when unknown), the caller, and the feature (not judged yet: see
 * require_feature).  Connects to SPI when a cache must be loaded.  Every
 * call but a check first locks the organization's periods in place
 * (usage_period_lock.c).
 */
static void
call_begin(UsageCall *call)
{
	usage_become_owner(&call->save_userid, &call->save_sec);
	/* recording or holding usage: the periods stay put (usage_period_lock.c) */
	if (!call->reads_only)
		usage_periods_share(&call->org_id);
	usage_refresh_caches();
	if (!usage_caches_warm(&call->org_id))
		call_spi(call);

	if (!usage_org_lookup(&call->org_id, &call->org))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("organization \"%s\" does not exist", org_text(call))));

	call->privileged = usage_caller_is_privileged();
	call->has_user = ipai_current_user_uuid(&call->user);

	call->in_plan = usage_entitlement_lookup(call->org.plan_id, call->feature, &call->ent);
	call->known = call->in_plan || usage_feature_lookup(call->feature, &call->ent);
	if (call->known && !call->in_plan)
	{
		/* in another plan only: nothing allowed in this one */
		strlcpy(call->ent.plan_id, call->org.plan_id, sizeof(call->ent.plan_id));
		call->ent.unlimited = false;
		call->ent.max_quantity = 0;
		call->ent.hard = true;
		call->ent.metered = false;
	}
}

static void
call_end(UsageCall *call)
{
	usage_restore_user(call->save_userid, call->save_sec);
	if (call->spi)
		SPI_finish();
	call->spi = false;
}

static void
not_a_member(UsageCall *call)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for organization"),
			 call->has_user ?
			 errdetail("The acting user is not a member of organization %s.", org_text(call)) :
			 errdetail("No user is acting."),
			 call->has_user ? 0 :
			 errhint("Call as a member (JWT sub or the ipai.user_id setting), or as service_role.")));
}

/* 42501 unless rank is at least min_rank */
static void
judge_rank(UsageCall *call, OrgRank rank, OrgRank min_rank)
{
	if (rank == RANK_NONE)
		not_a_member(call);
	if (rank < min_rank)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for organization"),
				 errdetail("This needs role %s or higher in organization %s; the acting user is %s.",
						   rank_names[min_rank], org_text(call), rank_names[rank])));
}

/* the acting user's rank in the organization (one read) */
static OrgRank
member_rank(UsageCall *call)
{
	Datum		values[2];
	bool		isnull;
	Datum		d;

	if (!call->has_user)
		return RANK_NONE;
	if (usage_direct_usable(false))
	{
		UsageDirect d;
		const char *role;

		usage_direct_begin(&d, false);
		role = usage_direct_member_role(&d, &call->org_id, &call->user);
		usage_direct_end(&d);
		return role ? rank_of(role) : RANK_NONE;
	}
	values[0] = UUIDPGetDatum(&call->org_id);
	values[1] = UUIDPGetDatum(&call->user);
	if (call_exec(call, STMT_MEMBER_ROLE, values, NULL, true) == 0)
		return RANK_NONE;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? RANK_NONE : rank_of(TextDatumGetCString(d));
}

static void
require_rank(UsageCall *call, OrgRank min_rank)
{
	if (!call->privileged)
		judge_rank(call, member_rank(call), min_rank);
}

/* 22023 for a feature no plan has (after the membership was checked) */
static void
require_feature(UsageCall *call)
{
	if (!call->known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown feature \"%s\"", call->feature),
				 errhint("Features are the rows of ipai.plan_entitlements.")));
}

/*
 * The usage of a period that has no counter yet: nothing was recorded in
 * it, but usage recorded in another period may fall inside its window (the
 * periods moved: a time zone or subscription change; see
 * ipai._usage_window_sums).  values[0..2] hold org, feature, period start.
 */
static void
read_window_usage(UsageCall *call, const UsagePeriod *period, Datum *values, bool fresh,
				  int64 *used)
{
	bool		isnull;

	if (call->ent.source != USAGE_FROM_EVENTS || TIMESTAMP_IS_NOBEGIN(period->start))
		return;
	values[3] = TimestampTzGetDatum(period->end);
	call_exec(call, STMT_WINDOW_SUM, values, period->has_end ? NULL : "   n", !fresh);
	*used = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										1, &isnull));
}

/* the active holds of the counter at values[0..2] (one had expired) */
static void
read_live_holds(UsageCall *call, Datum *values, bool fresh, int64 *held)
{
	bool		isnull;

	values[3] = TimestampTzGetDatum(call->now);
	call_exec(call, STMT_HOLDS_SUM, values, NULL, !fresh);
	*held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										1, &isnull));
}

/* the counter key of the call's feature in period */
static void
counter_key(UsageCall *call, const UsagePeriod *period, UsageCounterKey *key)
{
	memset(key, 0, sizeof(*key));
	key->org_id = call->org_id;
	strlcpy(key->feature, call->ent.feature, sizeof(key->feature));
	key->period_start = period->start;
}

/*
 * read_usage on the fast path: the same reads as the SPI statements (the
 * membership and the counter with the caller's snapshot, or a fresh one
 * after CommandCounterIncrement when fresh, as a read-write SPI statement
 * takes), and what this transaction recorded and has not written yet.
 * values[0..2]: org, feature, period start.
 */
static void
read_usage_direct(UsageCall *call, OrgRank min_rank, bool fresh, const UsagePeriod *period,
				  Datum *values, int64 *used, int64 *held)
{
	UsageDirect d;
	UsageCounterKey key;
	UsageCounterRow row;
	int64		pending = 0;
	bool		found;

	if (fresh)
	{
		CommandCounterIncrement();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	usage_direct_begin(&d, false);
	if (!call->privileged)
	{
		const char *role;

		if (!call->has_user)
			not_a_member(call);
		role = usage_direct_member_role(&d, &call->org_id, &call->user);
		judge_rank(call, role ? rank_of(role) : RANK_NONE, min_rank);
	}
	counter_key(call, period, &key);
	found = usage_deltas_get(&key, &row, &pending) || usage_direct_counter_read(&d, &key, &row);
	usage_direct_end(&d);
	if (!found)
		read_window_usage(call, period, values, fresh, used);
	else
	{
		*used = row.used + pending;
		if (row.has_hold_expiry && row.hold_expires_at > call->now)
			*held = row.held;
		else if (row.has_hold_expiry)
			read_live_holds(call, values, fresh, held);
	}
	if (fresh)
		PopActiveSnapshot();
}

/*
 * read_usage
 *		Current usage of the call's feature: used and held (active holds)
 *		for counted features, members plus pending invitations for seats.
 *		When not privileged, also checks the acting user's rank, in the
 *		same statement where it can.  check_entitlement (STABLE) reads with
 *		the caller's snapshot; consume_entitlement asks for a fresh one
 *		(fresh), so that it describes what it waited for.
 */
static void
read_usage(UsageCall *call, OrgRank min_rank, bool fresh, int64 *used, int64 *held)
{
	Datum		values[4];
	bool		isnull;
	Datum		d;
	UsagePeriod period;
	HeapTuple	tup;
	TupleDesc	desc;
	int			col;

	*used = 0;
	*held = 0;
	if (call->ent.source == USAGE_FROM_SEATS)
	{
		require_rank(call, min_rank);
		values[0] = UUIDPGetDatum(&call->org_id);
		values[1] = TimestampTzGetDatum(call->now);
		call_exec(call, STMT_SEATS_COUNT, values, NULL, !fresh);
		*used = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
		return;
	}

	usage_period_for(&call->org, &call->ent, call->now, &period);
	values[0] = UUIDPGetDatum(&call->org_id);
	values[1] = CStringGetTextDatum(call->ent.feature);
	values[2] = TimestampTzGetDatum(period.start);
	if (usage_direct_usable(false))
	{
		read_usage_direct(call, min_rank, fresh, &period, values, used, held);
		return;
	}
	if (call->privileged)
	{
		if (call_exec(call, STMT_COUNTER_READ, values, NULL, !fresh) == 0)
		{
			read_window_usage(call, &period, values, fresh, used);
			return;
		}
		col = 1;
	}
	else
	{
		if (!call->has_user)
			not_a_member(call);
		values[3] = UUIDPGetDatum(&call->user);
		call_exec(call, STMT_COUNTER_READ_MEMBER, values, NULL, !fresh);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		judge_rank(call, isnull ? RANK_NONE : rank_of(TextDatumGetCString(d)), min_rank);
		col = 2;
	}

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tup, desc, col, &isnull);
	if (isnull)
	{
		/*
		 * No counter yet: nothing recorded in this period, but usage
		 * recorded in another period may fall inside its window (the
		 * periods moved: a time zone or subscription change).
		 */
		read_window_usage(call, &period, values, fresh, used);
		return;
	}
	*used = DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, col + 2, &isnull);
	if (isnull)
		return;					/* no holds */
	if (DatumGetTimestampTz(d) > call->now)
	{
		*held = DatumGetInt64(SPI_getbinval(tup, desc, col + 1, &isnull));
		return;
	}
	/* a hold has expired since the counter was written: sum the live ones */
	read_live_holds(call, values, fresh, held);
}

/* does quantity more fit?  (current + quantity <= max, without overflow) */
static bool
fits(const Entitlement *ent, int64 current, int64 quantity)
{
	int64		total;

	if (ent->unlimited)
		return true;
	if (pg_add_s64_overflow(current, quantity, &total))
		return false;
	return total <= ent->max_quantity;
}

/* judges current + quantity against the entitlement */
static void
judge(UsageCall *call, int64 used, int64 held, UsageAnswer *answer)
{
	answer->current = used + held;
	answer->held = held;
	if (!call->in_plan)
	{
		answer->allowed = false;
		answer->reason = "not_in_plan";
	}
	else if (call->ent.unlimited)
	{
		answer->allowed = true;
		answer->reason = "unlimited";
	}
	else if (fits(&call->ent, answer->current, call->quantity))
	{
		answer->allowed = true;
		answer->reason = "ok";
	}
	else if (!call->ent.hard)
	{
		answer->allowed = true;
		answer->reason = "soft_limit_exceeded";
	}
	else
	{
		answer->allowed = false;
		answer->reason = "limit_exceeded";
	}
}

/* raises the limit error of the call's feature (IP005 for seats) */
static void
raise_limit(UsageCall *call, int64 current, int64 held)
{
	if (call->ent.source == USAGE_FROM_SEATS)
		usage_raise_seats(current, call->ent.max_quantity, call->quantity);
	usage_raise_limit(call->ent.feature, current, held, call->ent.max_quantity,
					  call->quantity);
}

/*
 * The result row of check and consume:
 * (allowed, feature, plan_id, current, max, remaining, reason), type
 * ipai.entitlement_check.  The blessed descriptor is kept per backend and
 * per function (a re-created extension has new function and type OIDs).
 */
static Datum
answer_row(FunctionCallInfo fcinfo, UsageCall *call, UsageAnswer *answer)
{
	static Oid	desc_fn[2] = {InvalidOid, InvalidOid};
	static TupleDesc desc_cache[2] = {NULL, NULL};
	static int	next_slot = 0;
	Oid			fn = fcinfo->flinfo->fn_oid;
	TupleDesc	result_desc;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	int			slot;

	for (slot = 0; slot < 2; slot++)
		if (desc_fn[slot] == fn)
			break;
	if (slot == 2)
	{
		TupleDesc	desc;
		MemoryContext old;

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		/* check and consume take one slot each; replaced in turn */
		slot = next_slot;
		next_slot = 1 - next_slot;
		if (desc_cache[slot])
			FreeTupleDesc(desc_cache[slot]);
		old = MemoryContextSwitchTo(TopMemoryContext);
		desc_cache[slot] = BlessTupleDesc(CreateTupleDescCopy(desc));
		MemoryContextSwitchTo(old);
		desc_fn[slot] = fn;
	}
	result_desc = desc_cache[slot];

	values[0] = BoolGetDatum(answer->allowed);
	values[1] = CStringGetTextDatum(call->ent.feature);
	values[2] = CStringGetTextDatum(call->org.plan_id);
	values[3] = Int64GetDatum(answer->current);
	if (call->ent.unlimited)
	{
		nulls[4] = true;
		nulls[5] = true;
	}
	else
	{
		values[4] = Int64GetDatum(call->ent.max_quantity);
		values[5] = Int64GetDatum(answer->current >= call->ent.max_quantity ? 0 :
								  call->ent.max_quantity - answer->current);
	}
	values[6] = CStringGetTextDatum(answer->reason);
	return HeapTupleGetDatum(heap_form_tuple(result_desc, values, nulls));
}

/*
 * The key was used before by an event of (old_feature, old_quantity): the
 * same usage again (false: nothing to record), or a mistake (22023).
 */
static bool
key_reused(UsageCall *call, text *key, const char *old_feature, int64 old_quantity)
{
	if (old_quantity != call->quantity || strcmp(old_feature, call->ent.feature) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key \"%s\" was already used for different usage",
						text_to_cstring(key)),
				 errdetail("It recorded %lld of \"%s\"; this call asks for %lld of \"%s\".",
						   (long long) old_quantity, old_feature,
						   (long long) call->quantity, call->ent.feature),
				 errhint("Use a new idempotency key for new usage.")));
	return false;
}

/*
 * The slow path of a counter update: no counter for this period yet, an
 * expired hold to forget, or over the limit.  Decides under the counter's
 * row lock (ipai._usage_counter_lock, which creates a missing counter with
 * what it carries), raises IP001 when the event does not fit, else adds it.
 */
static void
counter_decide(UsageCall *call, const UsagePeriod *period, bool limited,
			   int64 *used, int64 *held)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	/* $1 org, $2 feature, $3 period_start, $4 period_end, $5 now */
	values[0] = UUIDPGetDatum(&call->org_id);
	values[1] = CStringGetTextDatum(call->ent.feature);
	values[2] = TimestampTzGetDatum(period->start);
	values[3] = TimestampTzGetDatum(period->end);
	nulls[3] = period->has_end ? ' ' : 'n';
	values[4] = TimestampTzGetDatum(call->now);
	call_exec(call, STMT_COUNTER_LOCK, values, nulls, false);
	*used = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (limited && !fits(&call->ent, *used + *held, call->quantity))
		raise_limit(call, *used + *held, *held);

	/* $1 org, $2 feature, $3 period_start, $4 quantity, $5 now */
	values[3] = Int64GetDatum(call->quantity);
	nulls[3] = ' ';
	if (call_exec(call, STMT_COUNTER_ADD, values, nulls, false) != 1)
		elog(ERROR, "usage counter disappeared");
	*used = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/*
 * record_event through SPI (the reference implementation): two kept
 * statements, the event INSERT (with the Stripe meter event in the same
 * statement for metered features), then the counter UPDATE whose WHERE
 * clause is the hard limit when limited.  A refused UPDATE goes to the
 * slow path.
 */
static bool
record_event_spi(UsageCall *call, text *key, const UsagePeriod *period, bool metered,
				 bool limited, TimestampTz occurred_at, Datum hold_id, bool has_hold,
				 int64 *used, int64 *held)
{
	Datum		values[12];
	char		nulls[12];
	UsageStmt	stmt;
	bool		isnull;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = UUIDPGetDatum(&call->org_id);
	values[1] = CStringGetTextDatum(call->ent.feature);
	values[2] = Int64GetDatum(call->quantity);
	values[3] = TimestampTzGetDatum(occurred_at);
	values[4] = TimestampTzGetDatum(period->start);
	values[5] = BoolGetDatum(metered);
	values[6] = hold_id;
	nulls[6] = has_hold ? ' ' : 'n';
	values[7] = UUIDPGetDatum(&call->user);
	nulls[7] = call->has_user ? ' ' : 'n';
	values[8] = TimestampTzGetDatum(call->now);
	values[9] = PointerGetDatum(key);
	nulls[9] = key ? ' ' : 'n';
	if (metered)
	{
		values[10] = CStringGetTextDatum(call->ent.meter_event_name);
		values[11] = CStringGetTextDatum(call->org.stripe_customer_id);
		nulls[11] = call->org.has_customer ? ' ' : 'n';
		stmt = key ? STMT_EVENT_INSERT_METERED_KEYED : STMT_EVENT_INSERT_METERED;
	}
	else
	{
		nulls[10] = 'n';
		nulls[11] = 'n';
		stmt = key ? STMT_EVENT_INSERT_KEYED : STMT_EVENT_INSERT;
	}

	if (call_exec(call, stmt, values, nulls, false) == 0)
	{
		/* the key was used before: the same usage again, or a mistake? */
		Datum		kvalues[2];

		kvalues[0] = UUIDPGetDatum(&call->org_id);
		kvalues[1] = PointerGetDatum(key);
		if (key == NULL || call_exec(call, STMT_EVENT_BY_KEY, kvalues, NULL, false) == 0)
			elog(ERROR, "usage event was neither recorded nor found");
		return key_reused(call, key,
						  TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 1, &isnull)),
						  DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull)));
	}

	/* $1 org, $2 feature, $3 quantity, $4 period_start, $5 now, $6 limit */
	memset(nulls, ' ', sizeof(nulls));
	values[3] = TimestampTzGetDatum(period->start);
	values[4] = TimestampTzGetDatum(call->now);
	values[5] = Int64GetDatum(call->ent.max_quantity);
	nulls[5] = limited ? ' ' : 'n';
	if (call_exec(call, STMT_COUNTER_UPDATE, values, nulls, false) == 1)
	{
		*used = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											1, &isnull));
		*held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											2, &isnull));
		return true;
	}
	counter_decide(call, period, limited, used, held);
	return true;
}

/*
 * record_event on the fast path (usage_direct.c): the same rows, checks
 * and errors without SPI, in the order of the SPI statements -- the event
 * (the idempotency key decided first), its meter event, then the counter.
 * The first event of the transaction on a counter updates the row, which
 * this transaction then holds; later ones add to a delta written before
 * any reader and at commit (usage_deltas.c), judged against the limit on
 * the row as written plus the delta.  What the UPDATE's WHERE clause would
 * refuse goes to the same slow path as the SPI version.
 */
static bool
record_event_direct(UsageCall *call, text *key, const UsagePeriod *period, bool metered,
					bool limited, TimestampTz occurred_at, Datum hold_id, bool has_hold,
					int64 *used, int64 *held)
{
	UsageDirect d;
	UsageCounterKey ckey;
	UsageCounterRow row;
	UsageEventRow ev;
	int64		pending = 0;
	int64		event_id;
	char	   *old_feature = NULL;
	int64		old_quantity = 0;
	bool		known;
	bool		have_row = false;

	/* as a read-write SPI statement: a new command, a fresh snapshot */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	usage_direct_begin(&d, true);

	memset(&ev, 0, sizeof(ev));
	ev.org_id = call->org_id;
	ev.feature = call->ent.feature;
	ev.quantity = call->quantity;
	ev.idempotency_key = key;
	ev.occurred_at = occurred_at;
	ev.period_start = period->start;
	ev.metered = metered;
	ev.has_hold = has_hold;
	if (has_hold)
		ev.hold_id = *DatumGetUUIDP(hold_id);
	ev.has_recorded_by = call->has_user;
	ev.recorded_by = call->user;
	ev.recorded_at = call->now;
	if (!usage_direct_event_insert(&d, &ev, &event_id, &old_feature, &old_quantity))
	{
		usage_direct_end(&d);
		PopActiveSnapshot();
		return key_reused(call, key, old_feature, old_quantity);
	}
	if (metered)
		usage_direct_meter_event(&d, &call->org_id, event_id, call->ent.meter_event_name,
								 call->org.has_customer ? call->org.stripe_customer_id : NULL,
								 call->quantity, occurred_at);

	counter_key(call, period, &ckey);
	known = usage_deltas_get(&ckey, &row, &pending);
	if (known && row.has_hold_expiry && row.hold_expires_at <= call->now)
		known = false;			/* a hold to forget: the slow path recounts */
	else if (known)
	{
		/* this transaction holds the row: judge it with the delta */
		int64		after;

		row.used += pending;
		if (!usage_counter_accepts(&row, call->quantity, limited, call->ent.max_quantity,
								   call->now))
			raise_limit(call, row.used + row.held, row.held);
		if (pg_add_s64_overflow(row.used, call->quantity, &after))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("bigint out of range")));
		usage_deltas_add(&ckey, call->quantity);
		*used = after;
		*held = row.held;
	}
	else
	{
		have_row = usage_direct_counter_read(&d, &ckey, &row);
		if (have_row &&
			usage_counter_accepts(&row, call->quantity, limited, call->ent.max_quantity,
								  call->now) &&
			usage_direct_counter_add(&d, &row, call->quantity, limited, call->ent.max_quantity,
									 call->now) == COUNTER_ADDED)
		{
			usage_deltas_remember(&ckey, &row);
			*used = row.used;
			*held = row.held;
		}
		else
			have_row = false;
	}
	usage_direct_end(&d);
	if (!known && !have_row)
		counter_decide(call, period, limited, used, held);
	PopActiveSnapshot();
	return true;
}

/*
 * record_event
 *		Inserts one usage event and adds it to its counter; the heart of
 *		record_usage, consume_entitlement and finalize_hold.  The fast path
 *		when the tables qualify (usage_direct.c), else SPI.
 *
 * Returns false, recording nothing, when key was already used with the same
 * feature and quantity; raises 22023 when it was used for other usage, and
 * IP001 when enforce is set and the event does not fit a hard limit (the
 * error undoes the insert).  Fills *used and *held with the counter after
 * the event.
 */
static bool
record_event(UsageCall *call, text *key, TimestampTz occurred_at, bool enforce,
			 Datum hold_id, bool has_hold, int64 *used, int64 *held)
{
	UsagePeriod period;
	bool		metered = call->ent.metered && call->in_plan;
	bool		limited = enforce && call->ent.hard && !call->ent.unlimited;

	usage_period_for(&call->org, &call->ent, occurred_at, &period);
	if (usage_direct_usable(true))
		return record_event_direct(call, key, &period, metered, limited, occurred_at,
								   hold_id, has_hold, used, held);
	return record_event_spi(call, key, &period, metered, limited, occurred_at,
							hold_id, has_hold, used, held);
}

PG_FUNCTION_INFO_V1(ipai_check_entitlement);

/*
 * ipai.check_entitlement(org_id uuid, feature text, quantity bigint DEFAULT 1)
 *		returns (allowed, feature, plan_id, current, max, remaining, reason)
 *
 * Would quantity more usage of feature be allowed now?  Reads only.
 * current counts recorded usage of the current period plus active holds
 * (seats: members plus pending invitations); max and remaining are NULL
 * when unlimited.  reason: ok, unlimited, soft_limit_exceeded,
 * limit_exceeded, not_in_plan.  Any member may check.
 */
Datum
ipai_check_entitlement(PG_FUNCTION_ARGS)
{
	UsageCall	call;
	UsageAnswer answer;
	int64		used;
	int64		held;

	call_arguments(fcinfo, &call);
	call.reads_only = true;
	call_begin(&call);
	if (!call.known)
	{
		require_rank(&call, RANK_VIEWER);
		require_feature(&call);
	}
	read_usage(&call, RANK_VIEWER, false, &used, &held);
	judge(&call, used, held, &answer);
	call_end(&call);
	PG_RETURN_DATUM(answer_row(fcinfo, &call, &answer));
}

PG_FUNCTION_INFO_V1(ipai_consume_entitlement);

/*
 * ipai.consume_entitlement(org_id uuid, feature text, quantity bigint DEFAULT 1,
 *							idempotency_key text DEFAULT NULL)
 *		returns (allowed, feature, plan_id, current, max, remaining, reason)
 *
 * Checks and records quantity usage atomically.  Over a hard limit it
 * raises IP001 (seats: IP005) with current and maximum in the DETAIL and
 * records nothing.  With an idempotency key already recorded with the same
 * quantity it records nothing and answers reason 'duplicate'.  Features
 * counted from what exists (cms_items, seats) are checked the same way but
 * nothing is recorded: creating the page or inviting the member uses
 * them, and their triggers enforce the same limit.  Any member may
 * consume.  The row describes usage after the call.
 */
Datum
ipai_consume_entitlement(PG_FUNCTION_ARGS)
{
	UsageCall	call;
	UsageAnswer answer;
	text	   *key;
	int64		used = 0;
	int64		held = 0;

	call_arguments(fcinfo, &call);
	key = key_argument(fcinfo, 3);
	call_begin(&call);
	if (!call.known)
	{
		require_rank(&call, RANK_VIEWER);
		require_feature(&call);
	}

	if (call.ent.source != USAGE_FROM_EVENTS || !call.in_plan)
	{
		read_usage(&call, RANK_VIEWER, true, &used, &held);
		judge(&call, used, held, &answer);
		if (!answer.allowed)
			raise_limit(&call, answer.current, held);
	}
	else
	{
		require_rank(&call, RANK_VIEWER);
		if (record_event(&call, key, call.now, true, (Datum) 0, false, &used, &held))
			judge(&call, used - call.quantity, held, &answer);
		else
		{
			read_usage(&call, RANK_VIEWER, true, &used, &held);
			judge(&call, used, held, &answer);
			answer.allowed = true;
			answer.reason = "duplicate";
		}
		answer.current = used + held;
	}
	call_end(&call);
	PG_RETURN_DATUM(answer_row(fcinfo, &call, &answer));
}

PG_FUNCTION_INFO_V1(ipai_record_usage);

/*
 * ipai.record_usage(org_id uuid, feature text, quantity bigint DEFAULT 1,
 *					 idempotency_key text DEFAULT NULL,
 *					 occurred_at timestamptz DEFAULT now()) returns boolean
 *
 * Records usage that happened at occurred_at (in that moment's usage
 * period): true when recorded, false when the idempotency key was already
 * recorded with the same feature and quantity; the same key for other
 * usage is 22023.  Privileged callers (service_role, superusers) report
 * usage that already happened and are never refused by a limit; members
 * with role editor or higher may record too, and then hard limits apply
 * (IP001) so that no member can bypass consume_entitlement.  Only features
 * counted from usage events can be recorded (22023 otherwise).
 */
Datum
ipai_record_usage(PG_FUNCTION_ARGS)
{
	UsageCall	call;
	text	   *key;
	TimestampTz occurred_at;
	bool		recorded;
	int64		used;
	int64		held;

	call_arguments(fcinfo, &call);
	key = key_argument(fcinfo, 3);
	if (PG_ARGISNULL(4))
		bad_argument("occurred_at must not be null");
	occurred_at = PG_GETARG_TIMESTAMPTZ(4);
	if (TIMESTAMP_NOT_FINITE(occurred_at))
		bad_argument("occurred_at must be a finite timestamp");

	call_begin(&call);
	require_rank(&call, RANK_EDITOR);
	require_feature(&call);
	if (call.ent.source != USAGE_FROM_EVENTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("usage of feature \"%s\" cannot be recorded", call.ent.feature),
				 errdetail("It is counted from what exists (%s).",
						   call.ent.source == USAGE_FROM_PAGES ? "pages" :
						   "members and pending invitations"),
				 errhint("Create or delete the page, member or invitation instead.")));
	recorded = record_event(&call, key, occurred_at, !call.privileged, (Datum) 0, false,
							&used, &held);
	call_end(&call);
	PG_RETURN_BOOL(recorded);
}

PG_FUNCTION_INFO_V1(ipai_record_usage_internal);

/*
 * ipai._record_usage(org_id uuid, feature text, quantity bigint, hold_id uuid)
 *		returns boolean
 *
 * Records usage now without permission or limit checks, for the
 * extension's own functions (finalize_hold decides the limit under the
 * counter lock before calling it).  Not granted to anyone.
 */
Datum
ipai_record_usage_internal(PG_FUNCTION_ARGS)
{
	UsageCall	call;
	bool		recorded;
	int64		used;
	int64		held;

	call_arguments(fcinfo, &call);
	call_begin(&call);
	call.privileged = true;
	call.has_user = ipai_current_user_uuid(&call.user);
	require_feature(&call);
	if (call.ent.source != USAGE_FROM_EVENTS)
		bad_argument("only usage events can be recorded");
	recorded = record_event(&call, NULL, call.now, false, PG_GETARG_DATUM(3),
							!PG_ARGISNULL(3), &used, &held);
	call_end(&call);
	PG_RETURN_BOOL(recorded);
}

PG_FUNCTION_INFO_V1(ipai_usage_resolve);

/*
 * ipai._usage_resolve(org_id uuid, feature text, at timestamptz)
 *		returns (plan_id text, in_plan boolean, max_quantity bigint,
 *				 hard boolean, counted_by text, metered boolean,
 *				 period_start timestamptz, period_end timestamptz)
 *
 * The entitlement of the organization's plan for feature and the period
 * of at, from the caches, for the extension's PL/pgSQL functions (holds,
 * invoices).  22023 for an unknown organization or feature.  No permission
 * checks; not granted to anyone.
 */
Datum
ipai_usage_resolve(PG_FUNCTION_ARGS)
{
	UsageCall	call;
	UsagePeriod period;
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};

	if (PG_ARGISNULL(0))
		bad_argument("organization id must not be null");
	if (PG_ARGISNULL(1))
		bad_argument("feature must not be null");
	if (PG_ARGISNULL(2) || TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(2)))
		bad_argument("moment must be a finite timestamp");

	memset(&call, 0, sizeof(call));
	call.org_id = *PG_GETARG_UUID_P(0);
	call.feature = text_to_cstring(PG_GETARG_TEXT_PP(1));
	call.now = GetCurrentTransactionStartTimestamp();
	call_begin(&call);
	require_feature(&call);
	usage_period_for(&call.org, &call.ent, PG_GETARG_TIMESTAMPTZ(2), &period);
	call_end(&call);

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	values[0] = CStringGetTextDatum(call.org.plan_id);
	values[1] = BoolGetDatum(call.in_plan);
	values[2] = Int64GetDatum(call.ent.max_quantity);
	nulls[2] = call.ent.unlimited;
	values[3] = BoolGetDatum(call.ent.hard);
	values[4] = CStringGetTextDatum(call.ent.source == USAGE_FROM_PAGES ? "cms_pages" :
									call.ent.source == USAGE_FROM_SEATS ? "seats" :
									"usage_events");
	values[5] = BoolGetDatum(call.ent.metered);
	values[6] = TimestampTzGetDatum(period.start);
	values[7] = TimestampTzGetDatum(period.end);
	nulls[7] = !period.has_end;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
