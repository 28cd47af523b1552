/*-------------------------------------------------------------------------
 *
 * usage_triggers.c
 *		Limits where usage is created (seats), the metering cache
 *		invalidation trigger, and the limit errors.
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
#include "utils/builtins.h"
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
