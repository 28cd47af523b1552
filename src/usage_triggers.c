/*-------------------------------------------------------------------------
 *
 * usage_triggers.c
 *		Limits where usage is created (seats), the metering cache
 *		invalidation triggers, and the limit errors.
 *
 * Subscription updates: ipai._usage_subscription_changed() decides in C
 * whether one matters to the metering caches or usage periods (below).
 *
 * Seats are members plus pending invitations (accepted_at and revoked_at
 * NULL, expires_at in the future).  ipai._seat_limit() runs BEFORE INSERT
 * on ipai.org_members and BEFORE INSERT OR UPDATE on ipai.org_invitations
 * (an invitation becoming pending again takes a seat), for every writer:
 * functions and plain INSERTs alike.  It locks the organization's row
 * (FOR NO KEY UPDATE), so seat changes of one organization are serialized,
 * and then counts with the latest snapshot, as foreign-key checks do, so
 * concurrent inserts cannot exceed the limit even in REPEATABLE READ.
 *
 * Accepting an invitation turns a pending invitation into a member: the
 * seat is the invitation's.  ipai._seat_limit('accepted') runs AFTER
 * UPDATE OF accepted_at and, when a pending invitation was accepted, leaves
 * a credit for (organization, accepted_by) in the transaction; the next
 * member INSERT for that user (any user when accepted_by is NULL) in that
 * organization uses the credit instead of a new seat, so it is never
 * refused, even when a plan downgrade left the organization over its
 * limit.  accept_invitation must therefore mark the invitation accepted
 * before inserting the member, in the same transaction.  Credits die with
 * their (sub)transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"

/*
 * usage_raise_limit
 *		IP001 for feature: current (including held) of maximum, requested
 *		more.  The one place its wording lives.
 */
void
usage_raise_limit(const char *feature, int64 current, int64 held, int64 maximum,
				  int64 requested)
{
	if (held > 0)
		ereport(ERROR,
				(errcode(ERRCODE_IPAI_ENTITLEMENT_EXCEEDED),
				 errmsg("usage limit reached for feature \"%s\"", feature),
				 errdetail("Current usage is %lld of %lld, including %lld reserved by holds; %lld more was requested.",
						   (long long) current, (long long) maximum,
						   (long long) held, (long long) requested),
				 errhint("Upgrade the organization's plan.")));
	ereport(ERROR,
			(errcode(ERRCODE_IPAI_ENTITLEMENT_EXCEEDED),
			 errmsg("usage limit reached for feature \"%s\"", feature),
			 errdetail("Current usage is %lld of %lld; %lld more was requested.",
					   (long long) current, (long long) maximum, (long long) requested),
			 errhint("Upgrade the organization's plan.")));
}

/* IP005: seats (members plus pending invitations) */
void
usage_raise_seats(int64 current, int64 maximum, int64 requested)
{
	ereport(ERROR,
			(errcode(ERRCODE_IPAI_SEAT_LIMIT_REACHED),
			 errmsg("seat limit reached"),
			 errdetail("Current usage is %lld of %lld seats (members plus pending invitations); %lld more was requested.",
					   (long long) current, (long long) maximum, (long long) requested),
			 errhint("Upgrade the organization's plan, remove a member or revoke a pending invitation.")));
}

PG_FUNCTION_INFO_V1(ipai_raise_usage_limit);

/*
 * ipai._raise_usage_limit(feature text, current bigint, held bigint,
 *						   maximum bigint, requested bigint) returns void
 *
 * Raises IP001 (IP005 when feature is counted as seats) for the PL/pgSQL
 * functions and triggers, with the same wording as the C functions.
 */
Datum
ipai_raise_usage_limit(PG_FUNCTION_ARGS)
{
	char	   *feature = PG_ARGISNULL(0) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	int64		current = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	int64		held = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	int64		maximum = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3);
	int64		requested = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT64(4);

	if (strcmp(feature, "seats") == 0)
		usage_raise_seats(current, maximum, requested);
	usage_raise_limit(feature, current, held, maximum, requested);
	PG_RETURN_VOID();
}

/*
 * Does a subscription in this status give the organization its plan (and
 * so its usage periods)?  The rule of ipai.subscription_grants_plan().
 */
static bool
status_grants_plan(HeapTuple tuple, TupleDesc desc, int attno)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, attno, &isnull);
	const char *status;

	if (isnull)
		return false;
	status = TextDatumGetCString(d);
	return strcmp(status, "active") == 0 || strcmp(status, "trialing") == 0 ||
		strcmp(status, "past_due") == 0;
}

/* is column name of the two row versions the same (NULLs equal)? */
static bool
column_same(HeapTuple a, HeapTuple b, TupleDesc desc, int attno)
{
	Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
	bool		anull,
				bnull;
	Datum		ad = SPI_getbinval(a, desc, attno, &anull);
	Datum		bd = SPI_getbinval(b, desc, attno, &bnull);

	if (anull || bnull)
		return anull == bnull;
	return datumIsEqual(ad, bd, att->attbyval, att->attlen);
}

/* the attribute number of a column of the trigger's table */
static int
attno_of(TupleDesc desc, const char *name)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" is missing", name);
	return attno;
}

/*
 * What changed in an UPDATE of ipai.subscriptions, for the metering
 * triggers: the organization, the period window, whether the status grants
 * the plan (the caches and usage periods depend on these), and the plan.
 */
typedef struct SubscriptionChange
{
	bool		org;
	bool		window;
	bool		grants;
	bool		plan;
} SubscriptionChange;

static void
subscription_change(TriggerData *trigdata, SubscriptionChange *ch)
{
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	oldt = trigdata->tg_trigtuple;
	HeapTuple	newt = trigdata->tg_newtuple;
	int			status = attno_of(desc, "status");

	ch->org = !column_same(oldt, newt, desc, attno_of(desc, "org_id"));
	ch->window = !column_same(oldt, newt, desc, attno_of(desc, "current_period_start")) ||
		!column_same(oldt, newt, desc, attno_of(desc, "current_period_end"));
	ch->grants = status_grants_plan(oldt, desc, status) != status_grants_plan(newt, desc, status);
	ch->plan = !column_same(oldt, newt, desc, attno_of(desc, "plan_id"));
}

PG_FUNCTION_INFO_V1(ipai_usage_subscription_changed);

/*
 * ipai._usage_subscription_changed(what) trigger, AFTER UPDATE ... FOR EACH
 * ROW on ipai.subscriptions: the metering work of a subscription update,
 * done only when what it depends on changed.  Decided here, in C, instead
 * of in the triggers' WHEN clauses, which PostgreSQL parses and plans anew
 * for every statement (a tenth of a webhook's cost).
 *
 *	'cache'		the organization, the period or whether the status grants the
 *				plan changed: drop every backend's metering caches (as
 *				ipai._usage_cache_invalidate does).
 *	'periods'	the same or the plan changed: ipai._usage_subscription_moved()
 *				rebases the counters and back-fills meter events, for what
 *				changed only.  A status change between two statuses that
 *				grant the plan (active, past_due) changes nothing.
 */
Datum
ipai_usage_subscription_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	SubscriptionChange ch;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ipai._usage_subscription_changed() must be called as a trigger");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) || trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "ipai._usage_subscription_changed() must fire after each updated row");
	what = trigdata->tg_trigger->tgargs[0];
	subscription_change(trigdata, &ch);

	if (strcmp(what, "cache") == 0)
	{
		if (ch.org || ch.window || ch.grants)
			usage_signal_caches();
	}
	else if (strcmp(what, "periods") == 0)
	{
		if (ch.org || ch.window || ch.grants || ch.plan)
		{
			static SPIPlanPtr plan = NULL;
			static const char *const cols[5] = {
				"org_id", "status", "plan_id", "current_period_start", "current_period_end"
			};
			Oid			types[10] = {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
			UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
			TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
			Datum		values[10];
			char		nulls[10];
			Oid			save_userid;
			int			save_sec;
			int			i;

			for (i = 0; i < 10; i++)
			{
				bool		isnull;
				HeapTuple	t = i < 5 ? trigdata->tg_trigtuple : trigdata->tg_newtuple;

				values[i] = SPI_getbinval(t, desc, attno_of(desc, cols[i % 5]), &isnull);
				nulls[i] = isnull ? 'n' : ' ';
			}
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			usage_become_owner(&save_userid, &save_sec);
			if (plan == NULL)
			{
				plan = SPI_prepare("SELECT ipai._usage_subscription_moved($1, $2, $3, $4, $5, "
								   "$6, $7, $8, $9, $10)", 10, types);
				if (plan == NULL || SPI_keepplan(plan) != 0)
					elog(ERROR, "could not prepare the subscription trigger's statement");
			}
			if (SPI_execute_plan(plan, values, nulls, false, 0) < 0)
				elog(ERROR, "ipai._usage_subscription_moved() failed");
			usage_restore_user(save_userid, save_sec);
			SPI_finish();
		}
	}
	else
		elog(ERROR, "unknown ipai._usage_subscription_changed() kind \"%s\"", what);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(ipai_usage_cache_invalidate);

/*
 * ipai._usage_cache_invalidate() trigger on the tables the metering caches
 * read: row level AFTER INSERT, DELETE and UPDATE (WHEN a cached column
 * changed), statement level AFTER TRUNCATE.  Registers a relcache
 * invalidation of ipai._usage_cache_signal, which every backend receives
 * at commit and no plan depends on (see usage_cache.c).  Several rows
 * register one message: the transaction's invalidations are deduplicated.
 */
Datum
ipai_usage_cache_invalidate(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ipai._usage_cache_invalidate() must be called as a trigger");
	usage_signal_caches();
	return PointerGetDatum(NULL);
}

/*
 * Seat credits: invitations accepted in this transaction whose member has
 * not been inserted yet.  Kept in TopTransactionContext.
 */
typedef struct SeatCredit
{
	pg_uuid_t	org_id;
	bool		any_user;
	pg_uuid_t	user_id;
	SubTransactionId subid;
	bool		used;
} SeatCredit;

static List *seat_credits = NIL;
static bool seat_callbacks_registered = false;

static void
seat_xact_callback(XactEvent event, void *arg)
{
	/* the list lived in TopTransactionContext */
	seat_credits = NIL;
}

static void
seat_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	/* credits of the aborted subtransaction and its children are gone */
	foreach(lc, seat_credits)
	{
		SeatCredit *credit = (SeatCredit *) lfirst(lc);

		if (credit->subid >= mySubid)
			credit->used = true;
	}
}

static void
seat_credit_add(const pg_uuid_t *org_id, const pg_uuid_t *user_id)
{
	MemoryContext old;
	SeatCredit *credit;

	if (!seat_callbacks_registered)
	{
		RegisterXactCallback(seat_xact_callback, NULL);
		RegisterSubXactCallback(seat_subxact_callback, NULL);
		seat_callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	credit = palloc0(sizeof(SeatCredit));
	credit->org_id = *org_id;
	credit->any_user = user_id == NULL;
	if (user_id)
		credit->user_id = *user_id;
	credit->subid = GetCurrentSubTransactionId();
	seat_credits = lappend(seat_credits, credit);
	MemoryContextSwitchTo(old);
}

/* uses a credit for this member insert, if there is one */
static bool
seat_credit_use(const pg_uuid_t *org_id, const pg_uuid_t *user_id)
{
	ListCell   *lc;

	foreach(lc, seat_credits)
	{
		SeatCredit *credit = (SeatCredit *) lfirst(lc);

		if (credit->used || memcmp(&credit->org_id, org_id, sizeof(pg_uuid_t)) != 0)
			continue;
		if (credit->any_user || memcmp(&credit->user_id, user_id, sizeof(pg_uuid_t)) == 0)
		{
			credit->used = true;
			return true;
		}
	}
	return false;
}

/* a column of the trigger's tuple, by name */
static Datum
column(HeapTuple tuple, TupleDesc desc, const char *name, bool *isnull)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" is missing", name);
	return SPI_getbinval(tuple, desc, attno, isnull);
}

/* is this invitation row pending (holding a seat) at now? */
static bool
invitation_pending(HeapTuple tuple, TupleDesc desc, TimestampTz now)
{
	bool		isnull;
	Datum		expires;

	(void) column(tuple, desc, "accepted_at", &isnull);
	if (!isnull)
		return false;
	(void) column(tuple, desc, "revoked_at", &isnull);
	if (!isnull)
		return false;
	expires = column(tuple, desc, "expires_at", &isnull);
	return !isnull && DatumGetTimestampTz(expires) > now;
}

/*
 * check_seats
 *		IP005 unless one more seat fits every hard seats limit of the
 *		organization's plan.  Locks the organization's row first.
 */
static void
check_seats(const pg_uuid_t *org_id)
{
	Oid			save_userid;
	int			save_sec;
	OrgInfo		org;
	Entitlement limits[8];
	int			nlimits;
	int			i;
	bool		limited = false;
	Datum		values[2];
	bool		isnull;
	int64		seats;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	usage_become_owner(&save_userid, &save_sec);
	usage_refresh_caches();

	/* an unknown organization is the foreign key's to report */
	if (usage_org_lookup(org_id, &org))
	{
		nlimits = usage_plan_features(org.plan_id, USAGE_FROM_SEATS, limits,
									  lengthof(limits));
		for (i = 0; i < nlimits; i++)
			if (limits[i].hard && !limits[i].unlimited)
				limited = true;
		if (limited)
		{
			values[0] = UUIDPGetDatum(org_id);
			usage_exec(STMT_ORG_LOCK, values, NULL, false, true);
			values[1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
			usage_exec(STMT_SEATS_COUNT, values, NULL, false, true);
			seats = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
			for (i = 0; i < nlimits; i++)
				if (limits[i].hard && !limits[i].unlimited &&
					seats + 1 > limits[i].max_quantity)
					usage_raise_seats(seats, limits[i].max_quantity, 1);
		}
	}
	usage_restore_user(save_userid, save_sec);
	SPI_finish();
}

/*
 * A member row inserted by a role under row-level security must pass the
 * INSERT policy of ipai.org_members (admin or owner of the organization),
 * which PostgreSQL checks only after the BEFORE triggers: refuse it here
 * first, with the policy's own error, so that a viewer learns nothing of
 * the organization's seats (IP005) and gets 42501 like anywhere else.
 */
static void
check_member_insert_policy(Relation rel, const pg_uuid_t *org_id)
{
	pg_uuid_t	user;
	Oid			save_userid;
	int			save_sec;
	Datum		values[2];
	bool		isnull;
	bool		allowed = false;

	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, true) != RLS_ENABLED)
		return;
	if (ipai_current_user_uuid(&user))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		usage_become_owner(&save_userid, &save_sec);
		values[0] = UUIDPGetDatum(org_id);
		values[1] = UUIDPGetDatum(&user);
		if (usage_exec(STMT_MEMBER_ROLE, values, NULL, false, true) > 0)
		{
			Datum		role = SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull);
			const char *name = isnull ? "" : TextDatumGetCString(role);

			allowed = strcmp(name, "owner") == 0 || strcmp(name, "admin") == 0;
		}
		usage_restore_user(save_userid, save_sec);
		SPI_finish();
	}
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("new row violates row-level security policy for table \"%s\"",
						RelationGetRelationName(rel))));
}

PG_FUNCTION_INFO_V1(ipai_seat_limit);

/*
 * ipai._seat_limit(kind) trigger, for each row.
 *
 *	'member'	 BEFORE INSERT ON ipai.org_members: one more seat must fit,
 *				 unless an invitation of this transaction holds it.
 *	'invitation' BEFORE INSERT OR UPDATE ON ipai.org_invitations: a row that
 *				 becomes pending takes a seat.
 *	'accepted'	 AFTER UPDATE OF accepted_at ON ipai.org_invitations: a
 *				 pending invitation accepted leaves its seat to the member
 *				 inserted next.
 */
Datum
ipai_seat_limit(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtuple;
	const char *kind;
	bool		isnull;
	pg_uuid_t	org_id;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ipai._seat_limit() must be called as a trigger");
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		trigdata->tg_trigger->tgnargs != 1)
		elog(ERROR, "ipai._seat_limit() must fire for each inserted or updated row");

	kind = trigdata->tg_trigger->tgargs[0];
	desc = RelationGetDescr(trigdata->tg_relation);
	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	org_id = *DatumGetUUIDP(column(newtuple, desc, "org_id", &isnull));

	if (strcmp(kind, "member") == 0)
	{
		pg_uuid_t	user_id = *DatumGetUUIDP(column(newtuple, desc, "user_id", &isnull));

		if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		{
			check_member_insert_policy(trigdata->tg_relation, &org_id);
			if (!seat_credit_use(&org_id, &user_id))
				check_seats(&org_id);
		}
	}
	else if (strcmp(kind, "invitation") == 0)
	{
		bool		takes_seat = invitation_pending(newtuple, desc, now);

		if (takes_seat && TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
			takes_seat = !invitation_pending(trigdata->tg_trigtuple, desc, now) ||
				memcmp(&org_id,
					   DatumGetUUIDP(column(trigdata->tg_trigtuple, desc, "org_id", &isnull)),
					   sizeof(pg_uuid_t)) != 0;
		if (takes_seat)
			check_seats(&org_id);
	}
	else if (strcmp(kind, "accepted") == 0)
	{
		Datum		accepted_by;

		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
			invitation_pending(trigdata->tg_trigtuple, desc, now))
		{
			(void) column(newtuple, desc, "accepted_at", &isnull);
			if (!isnull)
			{
				accepted_by = column(newtuple, desc, "accepted_by", &isnull);
				seat_credit_add(&org_id, isnull ? NULL : DatumGetUUIDP(accepted_by));
			}
		}
		return PointerGetDatum(NULL);
	}
	else
		elog(ERROR, "unknown ipai._seat_limit() kind \"%s\"", kind);

	return PointerGetDatum(newtuple);
}
