/*-------------------------------------------------------------------------
 *
 * stripe_apply.c
 *		What a Stripe event does to the billing tables: the customer link
 *		of checkout.session.completed, subscription snapshots, invoices, and
 *		the organization's plan, which follows its subscriptions.
 *
 * Ordering rule (docs/billing.md): every subscription and invoice row
 * remembers the event that last wrote it.  An incoming event is applied
 * only when its ordering key is not lower than the stored one, the keys
 * being compared field by field:
 *
 *	1. terminal: a canceled (or incomplete_expired, or deleted) subscription,
 *	   a paid or void invoice, ranks above any live state whatever the
 *	   time, so it never comes back to life;
 *	2. created: Stripe's event time, in seconds ("<=", not "<": an event of
 *	   the same second is not older);
 *	3. current_period_end (subscriptions): the later period is the later
 *	   state;
 *	4. status rank: incomplete < trialing < active < past_due < unpaid <
 *	   paused (subscriptions); draft < open < uncollectible < paid/void
 *	   (invoices);
 *	5. event type rank: created < updated < deleted; payment_failed <
 *	   payment_succeeded < paid;
 *	6. event id, bytewise: arbitrary but deterministic.
 *
 * Since the key is a total order and each row always holds the maximum key
 * applied so far, the final state is the state of the maximum event,
 * whatever the delivery order.
 *
 * Concurrency: the caller (webhook.c) holds a transaction advisory lock on
 * the event's Stripe customer, so events of one customer are serialized;
 * the object row (subscription, invoice) is then locked FOR UPDATE before
 * it is compared and written.  When a change matters to the plan, the
 * organization row is locked (FOR NO KEY UPDATE) and the plan recomputed
 * from a fresh snapshot, so two subscriptions of one organization changing
 * at once are always counted one after the other.  Lock order: advisory
 * lock, object row, organization row.
 *
 * Cost: every statement is prepared once per backend with a generic plan;
 * an event that changes nothing about the plan costs one lookup of the
 * price, one read and one write (with its audit row) of the object.
 *
 * Runs inside the caller's SPI connection, as the extension owner.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "stripe_apply.h"

/*
 * The hot statements write their audit row in the same statement, with the
 * columns ipai._audit() writes (actor: ipai.current_user_id(), role:
 * session_user), instead of calling it: one PL/pgSQL call less per event.
 */
#define AUDIT_INSERT \
	"INSERT INTO ipai.audit_log (org_id, actor_id, actor_role, action," \
	" object_type, object_id, old_values, new_values)"

/* ---- SPI helpers ---- */

/*
 * The statements are key lookups and single-row writes whose best plan does
 * not depend on the values: always the generic plan, planned once per
 * backend (the plan cache would otherwise keep re-planning statements
 * whose custom plans look cheaper, at a cost far above their execution).
 */
SPIPlanPtr
stripe_spi_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, (Oid *) argtypes,
											  ipai_spi_plan_options(CURSOR_OPT_GENERIC_PLAN));

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

uint64
stripe_spi_exec(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	int			rc = SPI_execute_plan(plan, values, nulls, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/* column col (1-based) of result row 0, or (Datum) 0 with *isnull */
static Datum
result_datum(int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
}

/* column col of result row 0 as a palloc'd C string, or NULL */
static char *
result_text(int col)
{
	bool		isnull;
	Datum		d = result_datum(col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* a timestamptz argument, or a null flag */
static void
time_arg(Datum *values, char *nulls, int i, bool has, TimestampTz t)
{
	values[i] = has ? TimestampTzGetDatum(t) : (Datum) 0;
	nulls[i] = has ? ' ' : 'n';
}

/* an int8 argument from an integral field of obj, or a null flag */
static void
int64_arg(Datum *values, char *nulls, int i, JsonbContainer *obj, const char *key)
{
	int64		v;

	if (stripe_json_int64(obj, key, &v))
	{
		values[i] = Int64GetDatum(v);
		nulls[i] = ' ';
	}
	else
	{
		values[i] = (Datum) 0;
		nulls[i] = 'n';
	}
}

/* ---- the ordering key ---- */

typedef struct OrderKey
{
	bool		terminal;
	TimestampTz created;
	bool		has_created;	/* false: a row written outside webhooks */
	bool		has_period;
	TimestampTz period_end;
	int			status_rank;
	int			type_rank;
	const char *event_id;
} OrderKey;

/* <0, 0, >0 as a is lower than, equal to or higher than b */
static int
order_key_cmp(const OrderKey *a, const OrderKey *b)
{
	if (a->terminal != b->terminal)
		return a->terminal ? 1 : -1;
	if (a->has_created != b->has_created)
		return a->has_created ? 1 : -1;
	if (a->created != b->created)
		return a->created < b->created ? -1 : 1;
	if (a->has_period != b->has_period)
		return a->has_period ? 1 : -1;
	if (a->has_period && a->period_end != b->period_end)
		return a->period_end < b->period_end ? -1 : 1;
	if (a->status_rank != b->status_rank)
		return a->status_rank < b->status_rank ? -1 : 1;
	if (a->type_rank != b->type_rank)
		return a->type_rank < b->type_rank ? -1 : 1;
	return strcmp(a->event_id ? a->event_id : "", b->event_id ? b->event_id : "");
}

static int
subscription_status_rank(const char *status)
{
	static const char *const order[] = {
		"incomplete", "trialing", "active", "past_due", "unpaid", "paused"
	};
	int			i;

	if (strcmp(status, "canceled") == 0 || strcmp(status, "incomplete_expired") == 0)
		return 9;
	for (i = 0; i < (int) lengthof(order); i++)
		if (strcmp(status, order[i]) == 0)
			return i + 1;
	return 0;
}

/*
 * Does a subscription in this status give the organization its plan?  The
 * same rule as the SQL function ipai.subscription_grants_plan(), which
 * recompute_org_plan uses; kept in step by the plan tests.
 */
static bool
subscription_status_grants_plan(const char *status)
{
	return strcmp(status, "active") == 0 || strcmp(status, "trialing") == 0 ||
		strcmp(status, "past_due") == 0;
}

static bool
subscription_status_terminal(const char *status)
{
	return strcmp(status, "canceled") == 0 ||
		strcmp(status, "incomplete_expired") == 0;
}

static int
invoice_status_rank(const char *status)
{
	if (strcmp(status, "draft") == 0)
		return 1;
	if (strcmp(status, "open") == 0)
		return 2;
	if (strcmp(status, "uncollectible") == 0)
		return 3;
	if (strcmp(status, "paid") == 0 || strcmp(status, "void") == 0)
		return 4;
	return 0;
}

static bool
invoice_status_terminal(const char *status)
{
	return strcmp(status, "paid") == 0 || strcmp(status, "void") == 0;
}

/* a short note for the inbox: why an older event changed nothing */
static char *
stale_note(const char *object_id, const char *applied_event)
{
	return psprintf("not applied: %s already reflects event %s, which is newer",
					object_id, applied_event ? applied_event : "(unknown)");
}

/* ---- shared steps ---- */

/* lock the organization row; false when it no longer exists */
static bool
lock_org(const pg_uuid_t *org)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {UUIDOID};
	Datum		values[1];

	stripe_spi_plan(&plan,
					"SELECT 1 FROM ipai.organizations o"
					" WHERE o.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
					1, types);
	values[0] = UUIDPGetDatum(org);
	return stripe_spi_exec(plan, values, NULL) == 1;
}

/*
 * Tie customer to org when the organization has no customer yet (a
 * subscription or invoice attributed through its metadata); true when it
 * did.  A link made by checkout.session.completed is never replaced here.
 */
static bool
link_customer_if_none(const pg_uuid_t *org, const char *customer, StripeEvent *ev)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	if (customer == NULL)
		return false;
	stripe_spi_plan(&plan,
					"WITH l AS ("
					" INSERT INTO ipai.billing_customers"
					"  (org_id, stripe_customer_id, last_event_id, last_event_created)"
					" VALUES ($1, $2, $3, $4)"
					" ON CONFLICT (org_id) DO NOTHING RETURNING org_id)"
					" SELECT ipai._audit($1, 'billing_customer.link', 'billing_customer', $2,"
					"  NULL, pg_catalog.jsonb_build_object('stripe_customer_id', $2, 'event_id', $3))"
					" FROM l",
					4, types);
	values[0] = UUIDPGetDatum(org);
	values[1] = CStringGetTextDatum(customer);
	values[2] = CStringGetTextDatum(ev->id);
	values[3] = TimestampTzGetDatum(ev->created);
	return stripe_spi_exec(plan, values, nulls) == 1;
}

/*
 * Make the organization's plan follow its subscriptions: the plan of its
 * best subscription in a plan-granting status (highest base amount, then
 * latest period end), else the default plan.  Audited when it changes.
 */
static void
recompute_org_plan(const pg_uuid_t *org, StripeEvent *ev)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		values[3];

	stripe_spi_plan(&plan,
					"WITH cur AS ("
					"  SELECT o.plan_id FROM ipai.organizations o WHERE o.id OPERATOR(pg_catalog.=) $1),"
					" want AS (SELECT coalesce("
					"  (SELECT s.plan_id FROM ipai.subscriptions s"
					"     JOIN ipai.plans p ON p.id OPERATOR(pg_catalog.=) s.plan_id"
					"    WHERE s.org_id OPERATOR(pg_catalog.=) $1"
					"      AND ipai.subscription_grants_plan(s.status)"
					"    ORDER BY p.base_amount DESC, s.current_period_end DESC NULLS LAST,"
					"             s.stripe_subscription_id LIMIT 1),"
					"  (SELECT p.id FROM ipai.plans p WHERE p.is_default ORDER BY p.id LIMIT 1),"
					"  'free') AS plan_id),"
					" upd AS ("
					"  UPDATE ipai.organizations o SET plan_id = w.plan_id, updated_at = pg_catalog.now()"
					"    FROM want w, cur c"
					"   WHERE o.id OPERATOR(pg_catalog.=) $1 AND o.plan_id OPERATOR(pg_catalog.<>) w.plan_id"
					"  RETURNING c.plan_id AS old_plan, o.plan_id AS new_plan)"
					" SELECT ipai._audit($1, 'organization.plan', 'organization', $1::text,"
					"   pg_catalog.jsonb_build_object('plan_id', u.old_plan),"
					"   pg_catalog.jsonb_build_object('plan_id', u.new_plan,"
					"     'stripe_subscription_id', $2, 'event_id', $3))"
					" FROM upd u",
					3, types);
	values[0] = UUIDPGetDatum(org);
	values[1] = CStringGetTextDatum(ev->subscription_id ? ev->subscription_id : "");
	values[2] = CStringGetTextDatum(ev->id);
	stripe_spi_exec(plan, values, NULL);
}

/* ---- subscriptions ---- */

typedef struct SubItem
{
	char	   *price;
	bool		has_quantity;
	int64		quantity;
	bool		has_start;
	bool		has_end;
	TimestampTz start;
	TimestampTz end;
} SubItem;

/* the subscription's items (items.data[]), at most 100 */
static int
subscription_items(JsonbContainer *obj, SubItem **out)
{
	JsonbContainer *data = stripe_json_array(stripe_json_object(obj, "items"), "data");
	int			n = data ? JsonContainerSize(data) : 0;
	int			count = 0;
	int			i;
	SubItem    *items;

	n = Min(n, 100);
	items = palloc0(sizeof(SubItem) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(data, i);
		JsonbContainer *it;
		SubItem    *item = &items[count];

		if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
			continue;
		it = v->val.binary.data;
		item->price = stripe_json_ref(it, "price");
		if (item->price == NULL)
			item->price = stripe_json_ref(it, "plan");	/* legacy plans */
		item->has_quantity = stripe_json_int64(it, "quantity", &item->quantity);
		item->has_start = stripe_json_time(it, "current_period_start", &item->start);
		item->has_end = stripe_json_time(it, "current_period_end", &item->end);
		count++;
	}
	*out = items;
	return count;
}

/*
 * The plan mapped to the first item whose price has one; *matched is that
 * item's index, or -1.
 */
static char *
plan_for_items(SubItem *items, int n, int *matched)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {TEXTARRAYOID};
	Datum	   *prices;
	int		   *index_of;
	int			np = 0;
	int			i;
	Datum		values[1];
	char	   *plan_id;
	bool		isnull;
	int			pos;

	*matched = -1;
	prices = palloc(sizeof(Datum) * Max(n, 1));
	index_of = palloc(sizeof(int) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (items[i].price == NULL)
			continue;
		prices[np] = CStringGetTextDatum(items[i].price);
		index_of[np] = i;
		np++;
	}
	if (np == 0)
		return NULL;

	stripe_spi_plan(&plan,
					"SELECT p.id, pg_catalog.array_position($1, p.stripe_price_id)"
					"  FROM ipai.plans p"
					" WHERE p.stripe_price_id OPERATOR(pg_catalog.=) ANY ($1)"
					" ORDER BY 2, p.id LIMIT 1",
					1, types);
	values[0] = PointerGetDatum(construct_array(prices, np, TEXTOID, -1, false, TYPALIGN_INT));
	if (stripe_spi_exec(plan, values, NULL) == 0)
		return NULL;
	plan_id = result_text(1);
	pos = DatumGetInt32(result_datum(2, &isnull));
	if (!isnull && pos >= 1 && pos <= np)
		*matched = index_of[pos - 1];
	return plan_id;
}

static void
apply_subscription(StripeEvent *ev, const pg_uuid_t *org, StripeApplyResult *result)
{
	static SPIPlanPtr get_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr update_plan = NULL;
	static const Oid get_types[] = {UUIDOID, TEXTOID};
	static const Oid write_types[] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
		JSONBOID
	};
#define SUBSCRIPTION_SUMMARY \
	"pg_catalog.jsonb_build_object('status', s.status, 'plan_id', s.plan_id," \
	" 'stripe_price_id', s.stripe_price_id, 'quantity', s.quantity," \
	" 'current_period_start', s.current_period_start," \
	" 'current_period_end', s.current_period_end," \
	" 'cancel_at_period_end', s.cancel_at_period_end," \
	" 'canceled_at', s.canceled_at, 'ended_at', s.ended_at," \
	" 'trial_end', s.trial_end, 'event_id', s.last_event_id)"
	JsonbContainer *obj = ev->object;
	SubItem    *items;
	int			n_items;
	int			matched;
	SubItem    *chosen = NULL;
	char	   *plan_id;
	const char *status = ev->status;
	bool		has_start,
				has_end,
				has_quantity,
				cancel_at_period_end = false,
				has_canceled_at,
				has_ended_at,
				has_trial_end;
	TimestampTz start = 0,
				end = 0,
				canceled_at = 0,
				ended_at = 0,
				trial_end = 0;
	int64		quantity = 0;
	OrderKey	incoming;
	Datum		values[17];
	char		nulls[17];
	bool		inserted = false;
	bool		plan_changed = false;
	char	   *old_plan_id;
	int			i;

	/* the snapshot the event carries */
	n_items = subscription_items(obj, &items);
	plan_id = plan_for_items(items, n_items, &matched);
	if (matched >= 0)
		chosen = &items[matched];
	else if (n_items > 0)
		chosen = &items[0];

	/* periods moved from the subscription to its items in API 2025-03-31 */
	has_start = stripe_json_time(obj, "current_period_start", &start);
	has_end = stripe_json_time(obj, "current_period_end", &end);
	if (!has_start && !has_end)
	{
		SubItem    *src = (chosen && (chosen->has_start || chosen->has_end)) ? chosen : NULL;

		for (i = 0; src == NULL && i < n_items; i++)
			if (items[i].has_start || items[i].has_end)
				src = &items[i];
		if (src)
		{
			has_start = src->has_start;
			start = src->start;
			has_end = src->has_end;
			end = src->end;
		}
	}
	has_quantity = chosen && chosen->has_quantity;
	if (has_quantity)
		quantity = chosen->quantity;
	else
		has_quantity = stripe_json_int64(obj, "quantity", &quantity);
	(void) stripe_json_bool(obj, "cancel_at_period_end", &cancel_at_period_end);
	has_canceled_at = stripe_json_time(obj, "canceled_at", &canceled_at);
	has_ended_at = stripe_json_time(obj, "ended_at", &ended_at);
	has_trial_end = stripe_json_time(obj, "trial_end", &trial_end);

	/* a deleted subscription is canceled, whatever the snapshot says */
	if (ev->type_rank == 3 && !subscription_status_terminal(status))
		status = "canceled";

	incoming.terminal = subscription_status_terminal(status);
	incoming.has_created = true;
	incoming.created = ev->created;
	incoming.has_period = has_end;
	incoming.period_end = end;
	incoming.status_rank = subscription_status_rank(status);
	incoming.type_rank = ev->type_rank;
	incoming.event_id = ev->id;

	values[0] = UUIDPGetDatum(org);
	values[1] = CStringGetTextDatum(ev->object_id);
	memset(nulls, ' ', sizeof(nulls));
	STRIPE_TEXT_ARG(values, nulls, 2, ev->customer_id);
	values[3] = CStringGetTextDatum(status);
	STRIPE_TEXT_ARG(values, nulls, 4, plan_id);
	STRIPE_TEXT_ARG(values, nulls, 5, chosen ? chosen->price : NULL);
	values[6] = Int64GetDatum(quantity);
	nulls[6] = has_quantity ? ' ' : 'n';
	time_arg(values, nulls, 7, has_start, start);
	time_arg(values, nulls, 8, has_end, end);
	values[9] = BoolGetDatum(cancel_at_period_end);
	time_arg(values, nulls, 10, has_canceled_at, canceled_at);
	time_arg(values, nulls, 11, has_ended_at, ended_at);
	time_arg(values, nulls, 12, has_trial_end, trial_end);
	values[13] = CStringGetTextDatum(ev->id);
	values[14] = CStringGetTextDatum(ev->type);
	values[15] = TimestampTzGetDatum(ev->created);
	values[16] = (Datum) 0;
	nulls[16] = 'n';

	for (;;)
	{
		OrderKey	stored;
		bool		isnull;
		char	   *stored_status;
		char	   *stored_type;

		stripe_spi_plan(&get_plan,
						"SELECT s.status, s.current_period_end, s.last_event_created,"
						"       s.last_event_type, s.last_event_id, " SUBSCRIPTION_SUMMARY ","
						"       s.plan_id"
						"  FROM ipai.subscriptions s"
						" WHERE s.org_id OPERATOR(pg_catalog.=) $1"
						"   AND s.stripe_subscription_id OPERATOR(pg_catalog.=) $2"
						" FOR UPDATE",
						2, get_types);
		if (stripe_spi_exec(get_plan, values, NULL) == 0)
		{
			stripe_spi_plan(&insert_plan,
							"WITH s AS ("
							" INSERT INTO ipai.subscriptions AS s"
							"  (org_id, stripe_subscription_id, stripe_customer_id, status, plan_id,"
							"   stripe_price_id, quantity, current_period_start, current_period_end,"
							"   cancel_at_period_end, canceled_at, ended_at, trial_end,"
							"   last_event_id, last_event_type, last_event_created)"
							" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
							" ON CONFLICT (org_id, stripe_subscription_id) DO NOTHING"
							" RETURNING s.*)"
							" " AUDIT_INSERT " SELECT $1, ipai.current_user_id(), session_user,"
							"   'subscription.create', 'subscription', $2, $17, " SUBSCRIPTION_SUMMARY " FROM s",
							17, write_types);
			if (stripe_spi_exec(insert_plan, values, nulls) == 1)
			{
				inserted = true;
				break;
			}
			continue;			/* inserted meanwhile: compare with it */
		}

		stored_status = result_text(1);
		stored.terminal = subscription_status_terminal(stored_status);
		stored.period_end = DatumGetTimestampTz(result_datum(2, &isnull));
		stored.has_period = !isnull;
		stored.created = DatumGetTimestampTz(result_datum(3, &isnull));
		stored.has_created = !isnull;
		stored_type = result_text(4);
		stored.type_rank = stripe_event_type_rank(stored_type, NULL);
		stored.event_id = result_text(5);
		stored.status_rank = subscription_status_rank(stored_status);

		if (order_key_cmp(&incoming, &stored) < 0)
		{
			result->outcome = STRIPE_STALE;
			result->note = stale_note(ev->object_id, stored.event_id);
			return;
		}

		/* does the change matter to the organization's plan? */
		old_plan_id = result_text(7);
		plan_changed = subscription_status_grants_plan(stored_status) !=
			subscription_status_grants_plan(status) ||
			(old_plan_id == NULL) != (plan_id == NULL) ||
			(old_plan_id != NULL && strcmp(old_plan_id, plan_id) != 0);

		/* the old values, for the audit row */
		values[16] = result_datum(6, &isnull);
		nulls[16] = isnull ? 'n' : ' ';
		stripe_spi_plan(&update_plan,
						"WITH s AS ("
						" UPDATE ipai.subscriptions s SET stripe_customer_id = $3, status = $4,"
						"   plan_id = $5, stripe_price_id = $6, quantity = $7,"
						"   current_period_start = $8, current_period_end = $9,"
						"   cancel_at_period_end = $10, canceled_at = $11, ended_at = $12,"
						"   trial_end = $13, last_event_id = $14, last_event_type = $15,"
						"   last_event_created = $16, updated_at = pg_catalog.now()"
						" WHERE s.org_id OPERATOR(pg_catalog.=) $1"
						"   AND s.stripe_subscription_id OPERATOR(pg_catalog.=) $2"
						" RETURNING s.*)"
						" " AUDIT_INSERT " SELECT $1, ipai.current_user_id(), session_user,"
						"   'subscription.update', 'subscription', $2, $17, " SUBSCRIPTION_SUMMARY " FROM s",
						17, write_types);
		stripe_spi_exec(update_plan, values, nulls);
		break;
	}

	result->outcome = STRIPE_APPLIED;
	if (inserted)
	{
		/*
		 * A new subscription is a new link.  Attributed by its metadata,
		 * its customer is linked too when the organization has none (by a
		 * customer or checkout link, it is linked already).
		 */
		result->new_link = true;
		if (ev->attributed_by_hint)
			(void) link_customer_if_none(org, ev->customer_id, ev);
	}
	if (inserted || plan_changed)
	{
		/*
		 * Lock the organization, then read its subscriptions afresh: two
		 * subscriptions of one organization changing at once are then
		 * counted one after the other, never each without the other.
		 */
		if (!lock_org(org))
			elog(ERROR, "organization vanished during a subscription change");
		recompute_org_plan(org, ev);
	}
#undef SUBSCRIPTION_SUMMARY
}

/* ---- invoices ---- */

static void
apply_invoice(StripeEvent *ev, const pg_uuid_t *org, StripeApplyResult *result)
{
	static SPIPlanPtr get_plan = NULL;
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr update_plan = NULL;
	static const Oid get_types[] = {UUIDOID, TEXTOID};
	static const Oid write_types[] = {
		UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, INT8OID,
		INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, JSONBOID
	};
#define INVOICE_SUMMARY \
	"pg_catalog.jsonb_build_object('status', i.status, 'currency', i.currency," \
	" 'amount_due', i.amount_due, 'amount_paid', i.amount_paid," \
	" 'amount_remaining', i.amount_remaining," \
	" 'stripe_subscription_id', i.stripe_subscription_id," \
	" 'paid_at', i.paid_at, 'event_id', i.last_event_id)"
	JsonbContainer *obj = ev->object;
	JsonbContainer *lines;
	JsonbContainer *period = NULL;
	int64		attempts;
	TimestampTz t = 0;
	bool		has;
	OrderKey	incoming;
	Datum		values[19];
	char		nulls[19];
	char	   *currency;
	bool		inserted = false;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = UUIDPGetDatum(org);
	values[1] = CStringGetTextDatum(ev->object_id);
	STRIPE_TEXT_ARG(values, nulls, 2, ev->subscription_id);
	STRIPE_TEXT_ARG(values, nulls, 3, ev->customer_id);
	values[4] = CStringGetTextDatum(ev->status);
	currency = stripe_json_string(obj, "currency");
	if (currency != NULL && strlen(currency) > 16)
		currency = NULL;
	STRIPE_TEXT_ARG(values, nulls, 5, currency);
	int64_arg(values, nulls, 6, obj, "amount_due");
	int64_arg(values, nulls, 7, obj, "amount_paid");
	int64_arg(values, nulls, 8, obj, "amount_remaining");

	/* the service period: the first line's, else the invoice's own */
	lines = stripe_json_array(stripe_json_object(obj, "lines"), "data");
	if (lines != NULL && JsonContainerSize(lines) > 0)
	{
		JsonbValue *first = getIthJsonbValueFromContainer(lines, 0);

		if (first != NULL && first->type == jbvBinary)
			period = stripe_json_object(first->val.binary.data, "period");
	}
	has = period != NULL && stripe_json_time(period, "start", &t);
	if (!has)
		has = stripe_json_time(obj, "period_start", &t);
	time_arg(values, nulls, 9, has, t);
	has = period != NULL && stripe_json_time(period, "end", &t);
	if (!has)
		has = stripe_json_time(obj, "period_end", &t);
	time_arg(values, nulls, 10, has, t);
	STRIPE_TEXT_ARG(values, nulls, 11, stripe_json_string(obj, "hosted_invoice_url"));
	STRIPE_TEXT_ARG(values, nulls, 12, stripe_json_string(obj, "invoice_pdf"));
	has = stripe_json_time(stripe_json_object(obj, "status_transitions"), "paid_at", &t);
	time_arg(values, nulls, 13, has, t);
	if (stripe_json_int64(obj, "attempt_count", &attempts) && attempts >= 0 && attempts <= PG_INT32_MAX)
		values[14] = Int32GetDatum((int32) attempts);
	else
	{
		values[14] = (Datum) 0;
		nulls[14] = 'n';
	}
	values[15] = CStringGetTextDatum(ev->id);
	values[16] = CStringGetTextDatum(ev->type);
	values[17] = TimestampTzGetDatum(ev->created);
	values[18] = (Datum) 0;
	nulls[18] = 'n';

	incoming.terminal = invoice_status_terminal(ev->status);
	incoming.has_created = true;
	incoming.created = ev->created;
	incoming.has_period = false;
	incoming.period_end = 0;
	incoming.status_rank = invoice_status_rank(ev->status);
	incoming.type_rank = ev->type_rank;
	incoming.event_id = ev->id;

	for (;;)
	{
		OrderKey	stored;
		bool		isnull;
		char	   *stored_status;

		stripe_spi_plan(&get_plan,
						"SELECT i.status, i.last_event_created, i.last_event_type,"
						"       i.last_event_id, " INVOICE_SUMMARY
						"  FROM ipai.invoices i"
						" WHERE i.org_id OPERATOR(pg_catalog.=) $1"
						"   AND i.stripe_invoice_id OPERATOR(pg_catalog.=) $2"
						" FOR UPDATE",
						2, get_types);
		if (stripe_spi_exec(get_plan, values, NULL) == 0)
		{
			stripe_spi_plan(&insert_plan,
							"WITH i AS ("
							" INSERT INTO ipai.invoices AS i"
							"  (org_id, stripe_invoice_id, stripe_subscription_id, stripe_customer_id,"
							"   status, currency, amount_due, amount_paid, amount_remaining,"
							"   period_start, period_end, hosted_invoice_url, invoice_pdf, paid_at,"
							"   attempt_count, last_event_id, last_event_type, last_event_created)"
							" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
							"         $15, $16, $17, $18)"
							" ON CONFLICT (org_id, stripe_invoice_id) DO NOTHING"
							" RETURNING i.*)"
							" " AUDIT_INSERT " SELECT $1, ipai.current_user_id(), session_user,"
							"   'invoice.create', 'invoice', $2, $19, " INVOICE_SUMMARY " FROM i",
							19, write_types);
			if (stripe_spi_exec(insert_plan, values, nulls) == 1)
			{
				inserted = true;
				break;
			}
			continue;
		}

		stored_status = result_text(1);
		stored.terminal = invoice_status_terminal(stored_status);
		stored.created = DatumGetTimestampTz(result_datum(2, &isnull));
		stored.has_created = !isnull;
		stored.has_period = false;
		stored.period_end = 0;
		stored.status_rank = invoice_status_rank(stored_status);
		stored.type_rank = stripe_event_type_rank(result_text(3), NULL);
		stored.event_id = result_text(4);

		if (order_key_cmp(&incoming, &stored) < 0)
		{
			result->outcome = STRIPE_STALE;
			result->note = stale_note(ev->object_id, stored.event_id);
			return;
		}

		values[18] = result_datum(5, &isnull);
		nulls[18] = isnull ? 'n' : ' ';
		stripe_spi_plan(&update_plan,
						"WITH i AS ("
						" UPDATE ipai.invoices i SET stripe_subscription_id = coalesce($3, i.stripe_subscription_id),"
						"   stripe_customer_id = coalesce($4, i.stripe_customer_id), status = $5,"
						"   currency = $6, amount_due = $7, amount_paid = $8, amount_remaining = $9,"
						"   period_start = $10, period_end = $11, hosted_invoice_url = $12,"
						"   invoice_pdf = $13, paid_at = $14, attempt_count = $15,"
						"   last_event_id = $16, last_event_type = $17, last_event_created = $18,"
						"   updated_at = pg_catalog.now()"
						" WHERE i.org_id OPERATOR(pg_catalog.=) $1"
						"   AND i.stripe_invoice_id OPERATOR(pg_catalog.=) $2"
						" RETURNING i.*)"
						" " AUDIT_INSERT " SELECT $1, ipai.current_user_id(), session_user,"
						"   'invoice.update', 'invoice', $2, $19, " INVOICE_SUMMARY " FROM i",
						19, write_types);
		stripe_spi_exec(update_plan, values, nulls);
		break;
	}

	result->outcome = STRIPE_APPLIED;
	if (inserted && ev->attributed_by_hint &&
		link_customer_if_none(org, ev->customer_id, ev))
		result->new_link = true;
#undef INVOICE_SUMMARY
}

/* ---- checkout.session.completed ---- */

static void
apply_checkout(StripeEvent *ev, const pg_uuid_t *org, StripeApplyResult *result)
{
	static SPIPlanPtr link_plan = NULL;
	static SPIPlanPtr audit_plan = NULL;
	static const Oid link_types[] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	static const Oid audit_types[] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5];
	char	   *email;

	if (!lock_org(org))
	{
		result->outcome = STRIPE_ORG_GONE;
		return;
	}

	email = stripe_json_string(stripe_json_object(ev->object, "customer_details"), "email");
	if (email == NULL)
		email = stripe_json_string(ev->object, "customer_email");
	if (email != NULL && (email[0] == '\0' || strlen(email) > 320))
		email = NULL;

	/* the organization's customer: a later checkout replaces an earlier one */
	if (ev->customer_id != NULL)
	{
		stripe_spi_plan(&link_plan,
						"WITH old AS ("
						"  SELECT c.stripe_customer_id FROM ipai.billing_customers c"
						"   WHERE c.org_id OPERATOR(pg_catalog.=) $1),"
						" l AS ("
						"  INSERT INTO ipai.billing_customers AS c"
						"   (org_id, stripe_customer_id, email, last_event_id, last_event_created,"
						"    updated_at)"
						"  VALUES ($1, $2, $3, $4, $5, pg_catalog.now())"
						"  ON CONFLICT (org_id) DO UPDATE"
						"   SET stripe_customer_id = EXCLUDED.stripe_customer_id,"
						"       email = coalesce(EXCLUDED.email, c.email),"
						"       last_event_id = EXCLUDED.last_event_id,"
						"       last_event_created = EXCLUDED.last_event_created,"
						"       updated_at = EXCLUDED.updated_at"
						"   WHERE c.last_event_created IS NULL"
						"      OR c.last_event_created OPERATOR(pg_catalog.<=) EXCLUDED.last_event_created"
						"  RETURNING c.stripe_customer_id)"
						" SELECT ipai._audit($1, 'billing_customer.link', 'billing_customer', $2,"
						"   CASE WHEN o.stripe_customer_id IS NULL THEN NULL"
						"        ELSE pg_catalog.jsonb_build_object('stripe_customer_id', o.stripe_customer_id) END,"
						"   pg_catalog.jsonb_build_object('stripe_customer_id', $2, 'email', $3, 'event_id', $4))"
						"  FROM l LEFT JOIN old o ON true"
						" WHERE o.stripe_customer_id IS NULL"
						"    OR o.stripe_customer_id OPERATOR(pg_catalog.<>) l.stripe_customer_id",
						5, link_types);
		memset(nulls, ' ', sizeof(nulls));
		values[0] = UUIDPGetDatum(org);
		values[1] = CStringGetTextDatum(ev->customer_id);
		STRIPE_TEXT_ARG(values, nulls, 2, email);
		values[3] = CStringGetTextDatum(ev->id);
		values[4] = TimestampTzGetDatum(ev->created);
		stripe_spi_exec(link_plan, values, nulls);
	}

	stripe_spi_plan(&audit_plan,
					"SELECT ipai._audit($1, 'checkout.complete', 'checkout_session', $2, NULL,"
					"  pg_catalog.jsonb_build_object('stripe_customer_id', $3,"
					"    'stripe_subscription_id', $4, 'event_id', $5))",
					5, audit_types);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = UUIDPGetDatum(org);
	values[1] = CStringGetTextDatum(ev->object_id);
	STRIPE_TEXT_ARG(values, nulls, 2, ev->customer_id);
	STRIPE_TEXT_ARG(values, nulls, 3, ev->subscription_id);
	values[4] = CStringGetTextDatum(ev->id);
	stripe_spi_exec(audit_plan, values, nulls);

	result->outcome = STRIPE_APPLIED;
	/* events of this customer or subscription may be waiting */
	result->new_link = ev->customer_id != NULL || ev->subscription_id != NULL;
}

/*
 * stripe_apply_event
 *		See stripe_apply.h.
 */
void
stripe_apply_event(StripeEvent *ev, const pg_uuid_t *org, StripeApplyResult *result)
{
	memset(result, 0, sizeof(*result));
	switch (ev->kind)
	{
		case STRIPE_KIND_CHECKOUT:
			apply_checkout(ev, org, result);
			break;
		case STRIPE_KIND_SUBSCRIPTION:
			apply_subscription(ev, org, result);
			break;
		case STRIPE_KIND_INVOICE:
			apply_invoice(ev, org, result);
			break;
		case STRIPE_KIND_OTHER:
			result->outcome = STRIPE_IGNORED;
			result->note = pstrdup("event type not handled");
			break;
	}
}
