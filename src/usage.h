/*-------------------------------------------------------------------------
 *
 * usage.h
 *		Metering internals shared by usage_cache.c, period.c,
 *		entitlement.c and usage_triggers.c.
 *
 * The entitlement functions answer from two per-backend caches (plans'
 * entitlements, and each organization's plan, time zone, subscription
 * period and Stripe customer), which triggers on the source tables
 * invalidate in every backend at commit (through ipai._usage_cache_signal),
 * plus one kept SPI statement per
 * call for what changes all the time (the live counter).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_USAGE_H
#define IPAI_USAGE_H

#include "ipai_saas.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "pgtime.h"

/* plan ids and feature names match ^[a-z][a-z0-9_]{0,62}$ */
#define USAGE_NAME_LEN 64
/* Stripe meter event names: at most 100 characters */
#define USAGE_METER_NAME_LEN 101
/* Stripe ids are short; anything longer is not cached as a customer */
#define USAGE_STRIPE_ID_LEN 256

/* where a feature's usage comes from (plan_entitlements.counted_by) */
typedef enum UsageSource
{
	USAGE_FROM_EVENTS,			/* ipai.usage_events, counted in usage_counters */
	USAGE_FROM_PAGES,			/* ipai.cms_pages that exist, counted too */
	USAGE_FROM_SEATS			/* members plus pending invitations, counted live */
} UsageSource;

/* one row of ipai.plan_entitlements */
typedef struct Entitlement
{
	char		plan_id[USAGE_NAME_LEN];
	char		feature[USAGE_NAME_LEN];
	bool		unlimited;		/* max_quantity IS NULL */
	int64		max_quantity;
	bool		hard;			/* enforcement = 'hard' */
	bool		per_period;		/* reset_period = 'billing_period' */
	UsageSource source;
	bool		metered;
	char		meter_event_name[USAGE_METER_NAME_LEN];
} Entitlement;

/* what the caches know about an organization */
typedef struct OrgInfo
{
	pg_uuid_t	org_id;
	char		plan_id[USAGE_NAME_LEN];
	pg_tz	   *tz;
	bool		has_subscription;	/* one that grants the plan, with a period */
	TimestampTz sub_start;
	TimestampTz sub_end;
	TimestampTz month_start;	/* last calendar month computed, or 0/0 */
	TimestampTz month_end;
	bool		has_customer;
	char		stripe_customer_id[USAGE_STRIPE_ID_LEN];
} OrgInfo;

/* a usage period: [start, end); end is 0 for features that never reset */
typedef struct UsagePeriod
{
	TimestampTz start;
	TimestampTz end;
	bool		has_end;
} UsagePeriod;

/* the kept SPI statements (usage_cache.c) */
typedef enum UsageStmt
{
	STMT_ORG_LOAD,
	STMT_ENTITLEMENTS_LOAD,
	STMT_MEMBER_ROLE,
	STMT_COUNTER_READ,
	STMT_COUNTER_READ_MEMBER,
	STMT_HOLDS_SUM,
	STMT_SEATS_COUNT,
	STMT_EVENT_INSERT,
	STMT_EVENT_INSERT_KEYED,
	STMT_EVENT_INSERT_METERED,
	STMT_EVENT_INSERT_METERED_KEYED,
	STMT_COUNTER_UPDATE,
	STMT_EVENT_BY_KEY,
	STMT_COUNTER_LOCK,
	STMT_COUNTER_ADD,
	STMT_ORG_LOCK,
	STMT_WINDOW_SUM,
	STMT_COUNT
} UsageStmt;

/* usage_cache.c */
extern SPIPlanPtr usage_stmt(UsageStmt stmt);
extern void usage_refresh_caches(void);
extern void usage_signal_caches(void);
extern bool usage_org_lookup(const pg_uuid_t *org_id, OrgInfo *out);
extern bool usage_entitlement_lookup(const char *plan_id, const char *feature,
									 Entitlement *out);
extern bool usage_feature_lookup(const char *feature, Entitlement *out);
extern int	usage_plan_features(const char *plan_id, UsageSource source,
								Entitlement *out, int max_out);
extern void usage_org_remember_month(const pg_uuid_t *org_id,
									 TimestampTz start, TimestampTz end);
extern Oid	usage_extension_owner(void);
extern void usage_become_owner(Oid *save_userid, int *save_sec_context);
extern void usage_restore_user(Oid save_userid, int save_sec_context);
extern bool usage_caller_is_privileged(void);
extern uint64 usage_exec(UsageStmt stmt, Datum *values, const char *nulls,
						 bool read_only, bool latest_snapshot);

/* period.c */
extern void usage_period_for(OrgInfo *org, const Entitlement *ent,
							 TimestampTz at, UsagePeriod *period);

/* usage_triggers.c */
extern void usage_raise_limit(const char *feature, int64 current, int64 held,
							  int64 maximum, int64 requested);
extern void usage_raise_seats(int64 current, int64 maximum, int64 requested);

#endif							/* IPAI_USAGE_H */
