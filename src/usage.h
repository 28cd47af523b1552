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
#include "storage/itemptr.h"

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

/* a counter row's key: organization, feature, usage period */
typedef struct UsageCounterKey
{
	pg_uuid_t	org_id;
	char		feature[USAGE_NAME_LEN];
	TimestampTz period_start;
} UsageCounterKey;

/* what one version of a counter row holds (usage_direct.c) */
typedef struct UsageCounterRow
{
	ItemPointerData tid;		/* where this version is */
	int64		used;
	int64		held;
	bool		has_hold_expiry;	/* hold_expires_at is not NULL */
	TimestampTz hold_expires_at;
} UsageCounterRow;

/* one usage event to insert (usage_direct.c) */
typedef struct UsageEventRow
{
	pg_uuid_t	org_id;
	const char *feature;
	int64		quantity;
	text	   *idempotency_key;	/* NULL: none */
	TimestampTz occurred_at;
	TimestampTz period_start;
	bool		metered;
	bool		has_hold;
	pg_uuid_t	hold_id;
	bool		has_recorded_by;
	pg_uuid_t	recorded_by;
	TimestampTz recorded_at;
} UsageEventRow;

/* outcome of usage_direct_counter_add */
typedef enum UsageCounterAdd
{
	COUNTER_ADDED,				/* the row was updated */
	COUNTER_DECIDE_LOCKED		/* not updated: the caller decides under the
								 * SPI slow path (no row any more, a hold
								 * expired, or the limit on the newest
								 * version) */
} UsageCounterAdd;

/* usage_cache.c */
extern SPIPlanPtr usage_stmt(UsageStmt stmt);
extern void usage_refresh_caches(void);
extern void usage_signal_caches(void);
extern bool usage_org_lookup(const pg_uuid_t *org_id, OrgInfo *out);
extern bool usage_caches_warm(const pg_uuid_t *org_id);

/* usage_period_lock.c */
extern void usage_periods_share(const pg_uuid_t *org_id);
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

/* usage_direct.c: the fast path (setting ipai.usage_fast_path) */
#define USAGE_DIRECT_TABLES 5

/* one table a fast-path call reads or writes */
typedef struct DirectTarget
{
	Relation	rel;			/* NULL: not opened in this call */
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	bool		indexes_open;
} DirectTarget;

/* one fast-path call (usage_direct_begin ... usage_direct_end) */
typedef struct UsageDirect
{
	EState	   *estate;
	bool		write;
	DirectTarget target[USAGE_DIRECT_TABLES];
} UsageDirect;

extern bool usage_direct_usable(bool write);
extern void usage_direct_begin(UsageDirect *d, bool write);
extern void usage_direct_end(UsageDirect *d);
extern bool usage_counter_accepts(const UsageCounterRow *row, int64 quantity,
								  bool limited, int64 max_quantity, TimestampTz now);
extern Oid	usage_direct_counters_relid(void);
extern const char *usage_direct_member_role(UsageDirect *d, const pg_uuid_t *org_id,
											const pg_uuid_t *user_id);
extern bool usage_direct_counter_read(UsageDirect *d, const UsageCounterKey *key,
									  UsageCounterRow *row);
extern UsageCounterAdd usage_direct_counter_add(UsageDirect *d, UsageCounterRow *row, int64 quantity,
												bool limited, int64 max_quantity,
												TimestampTz now);
extern void usage_direct_counter_apply(UsageCounterRow *row, int64 quantity,
									   TimestampTz now);
extern bool usage_direct_event_insert(UsageDirect *d, const UsageEventRow *ev, int64 *event_id,
									  char **old_feature, int64 *old_quantity);
extern void usage_direct_meter_event(UsageDirect *d, const pg_uuid_t *org_id, int64 event_id,
									 const char *event_name, const char *customer,
									 int64 value, TimestampTz occurred_at);

/* usage_deltas.c: counter deltas kept until commit */
extern bool usage_deltas_get(const UsageCounterKey *key, UsageCounterRow *row,
							 int64 *pending);
extern void usage_deltas_remember(const UsageCounterKey *key, const UsageCounterRow *row);
extern void usage_deltas_add(const UsageCounterKey *key, int64 quantity);

/* period.c */
extern void usage_period_for(OrgInfo *org, const Entitlement *ent,
							 TimestampTz at, UsagePeriod *period);

/* usage_triggers.c */
extern void usage_raise_limit(const char *feature, int64 current, int64 held,
							  int64 maximum, int64 requested);
extern void usage_raise_seats(int64 current, int64 maximum, int64 requested);

#endif							/* IPAI_USAGE_H */
