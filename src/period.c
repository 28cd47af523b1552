/*-------------------------------------------------------------------------
 *
 * period.c
 *		Usage periods: which period a moment of usage counts in.
 *
 * A usage period is the subscription's current period when the
 * organization has a subscription that grants its plan (active, trialing,
 * or past_due while Stripe retries the payment: the statuses of
 * ipai.subscription_grants_plan()), otherwise the
 * calendar month in the organization's time zone: for an organization in
 * Asia/Manila, usage at 2026-03-31 20:00 UTC (04:00 on April 1st in
 * Manila) belongs to April.  Features that never reset (cms_items, seats)
 * have one period for the organization's lifetime, which starts at
 * -infinity and has no end.
 *
 * When Stripe's renewal has not arrived yet (a moment at or after the end
 * of the current subscription period), usage counts in the period that
 * starts where the current one ends, which is where Stripe's next period
 * starts.  Usage before the current subscription period counts in its
 * calendar month.
 *
 * Everything here works from the cached OrgInfo; no SPI except in the
 * SQL-callable functions, which load the caches.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

/*
 * calendar_month
 *		[start, end) of the calendar month containing at, in time zone tz.
 *
 * The same as date_trunc('month', at AT TIME ZONE tz) AT TIME ZONE tz and
 * one month later; local midnights that fall into a daylight-saving gap
 * resolve as timestamptz input does.
 */
static void
calendar_month(pg_tz *tz, TimestampTz at, TimestampTz *start, TimestampTz *end)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;

	if (timestamp2tm(at, &tzoff, &tm, &fsec, NULL, tz) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tm.tm_mday = 1;
	tm.tm_hour = 0;
	tm.tm_min = 0;
	tm.tm_sec = 0;
	tzoff = DetermineTimeZoneOffset(&tm, tz);
	if (tm2timestamp(&tm, 0, &tzoff, start) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	if (++tm.tm_mon > MONTHS_PER_YEAR)
	{
		tm.tm_mon = 1;
		tm.tm_year++;
	}
	tzoff = DetermineTimeZoneOffset(&tm, tz);
	if (tm2timestamp(&tm, 0, &tzoff, end) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
}

/*
 * usage_period_for
 *		The usage period of ent's usage at moment at for organization org.
 *
 * Caches the calendar month in *org and in the organization cache, so the
 * common case (at = now) costs two comparisons.  at must be finite.
 */
void
usage_period_for(OrgInfo *org, const Entitlement *ent, TimestampTz at,
				 UsagePeriod *period)
{
	if (!ent->per_period)
	{
		TIMESTAMP_NOBEGIN(period->start);
		period->end = 0;
		period->has_end = false;
		return;
	}

	period->has_end = true;
	if (org->has_subscription && at >= org->sub_start)
	{
		TimestampTz length = org->sub_end - org->sub_start;

		if (at < org->sub_end)
		{
			period->start = org->sub_start;
			period->end = org->sub_end;
			return;
		}
		/* the renewal has not arrived yet: Stripe's next period */
		if (at - org->sub_end < length)
		{
			period->start = org->sub_end;
			period->end = org->sub_end + length;
			return;
		}
	}

	if (org->month_end != 0 && at >= org->month_start && at < org->month_end)
	{
		period->start = org->month_start;
		period->end = org->month_end;
		return;
	}
	calendar_month(org->tz, at, &period->start, &period->end);
	org->month_start = period->start;
	org->month_end = period->end;
	usage_org_remember_month(&org->org_id, period->start, period->end);
}

/* the (period_start, period_end) row of the SQL functions below */
static Datum
period_row(FunctionCallInfo fcinfo, const UsagePeriod *period)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	if (TIMESTAMP_IS_NOBEGIN(period->start))
		nulls[0] = true;
	else
		values[0] = TimestampTzGetDatum(period->start);
	if (period->has_end)
		values[1] = TimestampTzGetDatum(period->end);
	else
		nulls[1] = true;
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/* the organization of argument 0; 22023 when NULL or unknown */
static void
org_argument(FunctionCallInfo fcinfo, OrgInfo *org)
{
	pg_uuid_t  *org_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("organization id must not be null")));
	org_id = PG_GETARG_UUID_P(0);
	if (!usage_org_lookup(org_id, org))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("organization \"%s\" does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out,
															UUIDPGetDatum(org_id))))));
}

/* an entitlement that resets every usage period */
static const Entitlement per_period_feature = {.per_period = true};

PG_FUNCTION_INFO_V1(ipai_usage_period);

/*
 * ipai.usage_period(org_id uuid, at timestamptz DEFAULT now())
 *		returns (period_start timestamptz, period_end timestamptz)
 *
 * The usage period that contains at for the organization.  Members of the
 * organization and privileged callers only (42501 otherwise); 22023 for a
 * NULL or unknown organization or a NULL or infinite moment.
 */
Datum
ipai_usage_period(PG_FUNCTION_ARGS)
{
	OrgInfo		org;
	UsagePeriod period;
	TimestampTz at;
	Oid			save_userid;
	int			save_sec;

	if (PG_ARGISNULL(1) || TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("moment must be a finite timestamp")));
	at = PG_GETARG_TIMESTAMPTZ(1);

	SPI_connect();
	usage_become_owner(&save_userid, &save_sec);
	usage_refresh_caches();
	org_argument(fcinfo, &org);
	if (!usage_caller_is_privileged())
	{
		pg_uuid_t	user;
		Datum		values[2];

		if (!ipai_current_user_uuid(&user))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for organization"),
					 errdetail("No user is acting.")));
		values[0] = UUIDPGetDatum(&org.org_id);
		values[1] = UUIDPGetDatum(&user);
		if (usage_exec(STMT_MEMBER_ROLE, values, NULL, true, false) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for organization"),
					 errdetail("The acting user is not a member of this organization.")));
	}
	usage_period_for(&org, &per_period_feature, at, &period);
	usage_restore_user(save_userid, save_sec);
	SPI_finish();
	PG_RETURN_DATUM(period_row(fcinfo, &period));
}

PG_FUNCTION_INFO_V1(ipai_usage_period_internal);

/*
 * ipai._usage_period(org_id uuid, feature text, at timestamptz)
 *		returns (period_start timestamptz, period_end timestamptz)
 *
 * The period of feature's usage at moment at, for the extension's own
 * functions and triggers (no permission checks; not granted to anyone).
 * period_start is '-infinity' for features that never reset.  22023 for
 * an unknown organization or feature, or a NULL or infinite moment.
 */
Datum
ipai_usage_period_internal(PG_FUNCTION_ARGS)
{
	OrgInfo		org;
	Entitlement ent;
	UsagePeriod period;
	TimestampTz at;
	char	   *feature;
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	Oid			save_userid;
	int			save_sec;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature must not be null")));
	if (PG_ARGISNULL(2) || TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("moment must be a finite timestamp")));
	feature = text_to_cstring(PG_GETARG_TEXT_PP(1));
	at = PG_GETARG_TIMESTAMPTZ(2);

	SPI_connect();
	usage_become_owner(&save_userid, &save_sec);
	usage_refresh_caches();
	org_argument(fcinfo, &org);
	if (!usage_entitlement_lookup(org.plan_id, feature, &ent) &&
		!usage_feature_lookup(feature, &ent))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown feature \"%s\"", feature),
				 errhint("Features are the rows of ipai.plan_entitlements.")));
	usage_period_for(&org, &ent, at, &period);
	usage_restore_user(save_userid, save_sec);
	SPI_finish();

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	values[0] = TimestampTzGetDatum(period.start);
	if (period.has_end)
		values[1] = TimestampTzGetDatum(period.end);
	else
		nulls[1] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

PG_FUNCTION_INFO_V1(ipai_usage_period_is_current);

/*
 * ipai._usage_period_is_current(org_id uuid, period_start timestamptz)
 *		returns boolean
 *
 * Is period_start the start of the organization's usage period now?
 * True for '-infinity' (features that never reset).  NULL for an unknown
 * organization, and for organizations the acting user does not belong to
 * (so the view ipai.org_usage_current reveals nothing more than RLS).
 */
Datum
ipai_usage_period_is_current(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *org_id;
	TimestampTz start;
	OrgInfo		org;
	UsagePeriod period;
	Oid			save_userid;
	int			save_sec;
	bool		known;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	org_id = PG_GETARG_UUID_P(0);
	start = PG_GETARG_TIMESTAMPTZ(1);

	SPI_connect();
	usage_become_owner(&save_userid, &save_sec);
	usage_refresh_caches();
	known = usage_org_lookup(org_id, &org);
	if (known && !usage_caller_is_privileged())
	{
		pg_uuid_t	user;
		Datum		values[2];

		values[0] = UUIDPGetDatum(org_id);
		values[1] = UUIDPGetDatum(&user);
		known = ipai_current_user_uuid(&user) &&
			usage_exec(STMT_MEMBER_ROLE, values, NULL, true, false) > 0;
	}
	if (known)
		usage_period_for(&org, &per_period_feature,
						 GetCurrentTransactionStartTimestamp(), &period);
	usage_restore_user(save_userid, save_sec);
	SPI_finish();

	if (!known)
		PG_RETURN_NULL();
	if (TIMESTAMP_IS_NOBEGIN(start))
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(start == period.start);
}
