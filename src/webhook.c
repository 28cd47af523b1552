/*-------------------------------------------------------------------------
 *
 * webhook.c
 *		ipai.stripe_webhook(payload bytea|text, signature_header text)
 *		→ (status text, event_id text, event_type text): the Stripe webhook
 *		inbox.  Verify, dedupe, attribute, apply, release deferred events.
 *
 * One call, one transaction (the caller's):
 *
 *	1. Verify the Stripe-Signature header against every active signing
 *	   secret (ipai.webhook_secrets), with the signature engineer's C API
 *	   (signature.h).  No match: a LOG line naming the event id when the
 *	   payload has a readable one, then SQLSTATE IP002.  Nothing has been
 *	   written at that point.
 *	2. Parse the payload (stripe_event.c): 22023 for anything that is not a
 *	   Stripe event.
 *	3. Take a transaction advisory lock on the event's Stripe customer (see
 *	   lock_event_keys).  Events of one customer are thus serialized, and a
 *	   deferred event cannot slip past the link that would release it:
 *	   whoever comes second sees the other committed.
 *	4. Attribute the event to an organization (read-only).
 *	5. Insert it into the inbox with INSERT ... ON CONFLICT (provider,
 *	   event_id) DO NOTHING.  A concurrent delivery of the same event waits
 *	   here (or at step 3) for the first one's transaction; if that commits,
 *	   the insert does nothing and the answer is "duplicate" (the delivery
 *	   is counted, nothing else changes); if it aborts, this one proceeds.
 *	6. Apply it (stripe_apply.c) or leave it "deferred" / "ignored".
 *	7. Release deferred events: before applying an attributed event, every
 *	   deferred event of its customer or subscription that can now be
 *	   attributed (its link may have been written by someone else); after
 *	   applying it, when it tied a customer or subscription to an
 *	   organization, every deferred event of those.  Oldest first, in the
 *	   same transaction (repeatedly, as those may link more).
 *
 * A link written by anyone else (an operator's INSERT or UPDATE of
 * ipai.billing_customers) releases too: ipai._billing_customer_linked(),
 * a BEFORE and AFTER row trigger on that table.  BEFORE takes the
 * customer's advisory lock of step 3 before the row is written (the same
 * order as a delivery: advisory lock first, then row locks); AFTER applies
 * the customer's deferred events with the release of step 7.  So a
 * deferral and a link racing are serialized like a deferral and a
 * checkout: whoever takes the lock second sees the other committed.  The
 * webhook's own writes of the table do not fire the release (it releases
 * itself, and a nested release could apply an event twice): the trigger
 * does nothing while ipai.stripe_webhook or the trigger itself runs.
 *
 * Exactly-once holds under READ COMMITTED (every caller: the Edge handler,
 * psql, Odoo).  Under REPEATABLE READ a concurrent duplicate raises a
 * serialization failure (40001) instead, which the caller retries; so do
 * a deferral and a link whose transaction snapshot predates the other's
 * commit (check_deferral_race, and the trigger's check after its release),
 * where READ COMMITTED would have seen it.
 *
 * The SQL function is SECURITY DEFINER (the extension owner): it reads the
 * secrets and writes tables that its callers (service_role) may not.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "signature.h"
#include "stripe_apply.h"
#include "stripe_event.h"

/* Stripe's default tolerance for the signature timestamp, in seconds */
#define STRIPE_TOLERANCE_SECONDS 300

/* first key of our advisory locks ("IPAI"), second is a hash of an id */
#define STRIPE_LOCK_CLASS 0x49504149

/*
 * > 0 while this backend runs ipai.stripe_webhook or the release of
 * ipai._billing_customer_linked: the trigger then leaves the release to
 * the code that wrote the link.
 */
static int	release_owner_depth = 0;

/* ---- 1. signature ---- */

/*
 * Log and raise IP002.  reason is a full sentence for errdetail; the log
 * line names the event when its id can be read.  Neither the payload nor
 * the header is echoed (errhidestmt): both are attacker-controlled.
 */
static void
reject_delivery(const char *payload, size_t len, const char *reason, const char *hint)
{
	char	   *event_id = ipai_stripe_event_id_hint(payload, len);

	ereport(LOG,
			(errmsg("rejected Stripe webhook delivery of event %s%s%s: %s",
					event_id ? "\"" : "",
					event_id ? event_id : "(id not readable)",
					event_id ? "\"" : "",
					reason),
			 errhidestmt(true)));
	ereport(ERROR,
			(errcode(ERRCODE_IPAI_SIGNATURE_INVALID),
			 errmsg("invalid Stripe webhook signature"),
			 errdetail("%s", reason),
			 errhint("%s", hint),
			 errhidestmt(true)));
}

static const char *
status_sentence(ipai_sig_status st)
{
	switch (st)
	{
		case IPAI_SIG_MALFORMED_HEADER:
			return "The Stripe-Signature header is malformed.";
		case IPAI_SIG_NO_SIGNATURE:
			return "The Stripe-Signature header has no v1 signature.";
		case IPAI_SIG_BAD_TIMESTAMP:
			return "The Stripe-Signature timestamp is not a valid integer.";
		case IPAI_SIG_OUTSIDE_TOLERANCE:
			return "The signature matches, but its timestamp is more than 300 seconds away from the server's clock.";
		default:
			return "No v1 signature matches the payload under any active signing secret.";
	}
}

/*
 * Return when header carries a valid signature of payload under one of
 * the active secrets; raise IP002 otherwise.
 */
static void
verify_signature(const char *payload, size_t len, text *header)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {TIMESTAMPTZOID};
	const char *default_hint =
		"Check the endpoint's signing secret (ipai.set_stripe_webhook_secret) and pass the raw request body unchanged.";
	TimestampTz now = GetCurrentTimestamp();
	Datum		values[1];
	uint64		n;
	uint64		i;
	ipai_sig_status worst = IPAI_SIG_MISMATCH;

	if (header == NULL)
		reject_delivery(payload, len, "The request has no Stripe-Signature header.",
						default_hint);

	stripe_spi_plan(&plan,
					"SELECT s.secret FROM ipai.webhook_secrets s"
					" WHERE s.provider OPERATOR(pg_catalog.=) 'stripe'"
					"   AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) $1)"
					" ORDER BY s.id DESC",
					1, types);
	values[0] = TimestampTzGetDatum(now);
	n = stripe_spi_exec(plan, values, NULL);
	if (n == 0)
		reject_delivery(payload, len, "No Stripe webhook signing secret is active.",
						"Set the endpoint's secret with ipai.set_stripe_webhook_secret().");

	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		text	   *secret;
		ipai_sig_status st;

		if (isnull)
			continue;
		secret = DatumGetTextPP(d);
		st = ipai_stripe_signature_check(payload, len,
										 VARDATA_ANY(header), VARSIZE_ANY_EXHDR(header),
										 VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
										 now, STRIPE_TOLERANCE_SECONDS);
		if (st == IPAI_SIG_OK)
			return;
		/* "authentic but too old" says more than "no match" */
		if (st != IPAI_SIG_MISMATCH && worst != IPAI_SIG_OUTSIDE_TOLERANCE)
			worst = st;
	}
	reject_delivery(payload, len, status_sentence(worst), default_hint);
}

/* ---- 3. locks ---- */

/* the advisory lock key of one Stripe id */
static uint32
stripe_lock_key(const char *id)
{
	return hash_bytes((const unsigned char *) id, strlen(id));
}

static void
lock_stripe_key(uint32 key)
{
	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(STRIPE_LOCK_CLASS),
						Int32GetDatum((int32) key));
}

/*
 * Transaction advisory lock(s) that serialize the events of one Stripe
 * customer: the customer's id when the event has one (every subscription
 * and invoice has), else its subscription's, else its object's.  A
 * checkout session, which creates the link, locks both its customer and
 * its subscription (in hash order), so that it also serializes with an
 * event that carries only one of them.  Holding at most these keys, and
 * taking them before any row lock, two deliveries never wait on each
 * other in opposite orders.  Re-taking a lock this transaction holds is
 * free.
 */
static void
lock_event_keys(StripeEvent *ev)
{
	const char *ids[2] = {NULL, NULL};
	uint32		keys[2];
	int			n = 0;
	int			i;

	if (ev->kind == STRIPE_KIND_CHECKOUT)
	{
		ids[0] = ev->customer_id;
		ids[1] = ev->subscription_id;
	}
	else
		ids[0] = ev->customer_id ? ev->customer_id :
			ev->subscription_id ? ev->subscription_id : ev->object_id;

	for (i = 0; i < 2; i++)
		if (ids[i] != NULL)
			keys[n++] = stripe_lock_key(ids[i]);
	if (n == 2 && keys[1] < keys[0])
	{
		uint32		k = keys[0];

		keys[0] = keys[1];
		keys[1] = k;
	}
	for (i = 0; i < n; i++)
	{
		if (i > 0 && keys[i] == keys[i - 1])
			continue;
		lock_stripe_key(keys[i]);
	}
}

/* ---- 4. attribution ---- */

/* run a one-column uuid lookup with one text/uuid argument; NULL: none */
static bool
lookup_org(SPIPlanPtr *slot, const char *sql, Oid argtype, Datum arg, pg_uuid_t *org)
{
	Datum		values[1];
	bool		isnull;
	Datum		d;

	stripe_spi_plan(slot, sql, 1, &argtype);
	values[0] = arg;
	if (stripe_spi_exec(*slot, values, NULL) == 0)
		return false;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;
	memcpy(org, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	return true;
}

/*
 * The organization an event belongs to, in this order: the organization
 * of the subscription or invoice row it is about; the organization the
 * event names (metadata.org_id, client_reference_id) if it exists; the
 * organization of its Stripe customer; the organization of the completed
 * checkout that created its subscription.  A checkout session is
 * attributed only by what it names.  One small statement per step, the
 * common case (a known subscription) first.
 */
static bool
attribute_event(StripeEvent *ev, pg_uuid_t *org)
{
	static SPIPlanPtr by_invoice = NULL;
	static SPIPlanPtr by_subscription = NULL;
	static SPIPlanPtr by_hint = NULL;
	static SPIPlanPtr by_customer = NULL;
	static SPIPlanPtr by_checkout = NULL;
	int			i;

	ev->attributed_by_hint = false;
	if (ev->kind != STRIPE_KIND_CHECKOUT)
	{
		if (ev->subscription_id != NULL &&
			lookup_org(&by_subscription,
					   "SELECT s.org_id FROM ipai.subscriptions s"
					   " WHERE s.stripe_subscription_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
					   TEXTOID, CStringGetTextDatum(ev->subscription_id), org))
			return true;
		if (ev->invoice_id != NULL &&
			lookup_org(&by_invoice,
					   "SELECT i.org_id FROM ipai.invoices i"
					   " WHERE i.stripe_invoice_id OPERATOR(pg_catalog.=) $1 LIMIT 1",
					   TEXTOID, CStringGetTextDatum(ev->invoice_id), org))
			return true;
	}
	for (i = 0; i < ev->n_org_hints; i++)
	{
		if (lookup_org(&by_hint,
					   "SELECT o.id FROM ipai.organizations o"
					   " WHERE o.id OPERATOR(pg_catalog.=) $1",
					   UUIDOID, UUIDPGetDatum(&ev->org_hints[i]), org))
		{
			ev->attributed_by_hint = true;
			return true;
		}
	}
	if (ev->kind == STRIPE_KIND_CHECKOUT)
		return false;
	if (ev->customer_id != NULL &&
		lookup_org(&by_customer,
				   "SELECT c.org_id FROM ipai.billing_customers c"
				   " WHERE c.stripe_customer_id OPERATOR(pg_catalog.=) $1"
				   " ORDER BY c.updated_at DESC, c.org_id LIMIT 1",
				   TEXTOID, CStringGetTextDatum(ev->customer_id), org))
		return true;
	if (ev->subscription_id != NULL &&
		lookup_org(&by_checkout,
				   "SELECT e.org_id FROM ipai.webhook_events e"
				   " WHERE e.event_type OPERATOR(pg_catalog.=) 'checkout.session.completed'"
				   "   AND e.stripe_subscription_id OPERATOR(pg_catalog.=) $1"
				   "   AND e.status OPERATOR(pg_catalog.=) 'processed'"
				   "   AND e.org_id IS NOT NULL LIMIT 1",
				   TEXTOID, CStringGetTextDatum(ev->subscription_id), org))
		return true;
	return false;
}

/*
 * Under REPEATABLE READ or SERIALIZABLE the transaction's snapshot can
 * predate a transaction the advisory lock waited for: what it committed
 * (a link, a deferral) is invisible here although it came first.  True
 * when sql (one text argument) finds a row in a snapshot taken now.
 */
static bool
exists_now(SPIPlanPtr *slot, const char *sql, const char *id)
{
	static const Oid types[] = {TEXTOID};
	Datum		values[1];
	int			rc;

	stripe_spi_plan(slot, sql, 1, types);
	values[0] = CStringGetTextDatum(id);
	rc = SPI_execute_snapshot(*slot, values, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(rc));
	return SPI_processed > 0;
}

static void
link_race_failure(const char *customer)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not serialize access due to a concurrent link of Stripe customer \"%s\"",
					customer),
			 errdetail("A transaction that committed after this transaction's snapshot linked the customer or deferred one of its events."),
			 errhint("Retry the transaction, or run it under READ COMMITTED.")));
}

/*
 * An event about to be deferred under a transaction snapshot: if a link
 * that would attribute it committed after the snapshot (the lock waited
 * for it), deferring would lose the race; fail with 40001 instead.
 */
static void
check_deferral_race(StripeEvent *ev)
{
	static SPIPlanPtr customer_plan = NULL;
	static SPIPlanPtr subscription_plan = NULL;

	if (!IsolationUsesXactSnapshot())
		return;
	if (ev->customer_id != NULL &&
		exists_now(&customer_plan,
				   "SELECT 1 FROM ipai.billing_customers c"
				   " WHERE c.stripe_customer_id OPERATOR(pg_catalog.=) $1",
				   ev->customer_id))
		link_race_failure(ev->customer_id);
	if (ev->subscription_id != NULL &&
		exists_now(&subscription_plan,
				   "SELECT 1 FROM ipai.subscriptions s"
				   " WHERE s.stripe_subscription_id OPERATOR(pg_catalog.=) $1",
				   ev->subscription_id))
		link_race_failure(ev->customer_id ? ev->customer_id : ev->subscription_id);
}

/* why an event waits: the ids that no organization claims yet */
static char *
deferred_note(StripeEvent *ev)
{
	return psprintf("no organization yet for customer %s, subscription %s",
					ev->customer_id ? ev->customer_id : "(none)",
					ev->subscription_id ? ev->subscription_id : "(none)");
}

/* ---- 5. the inbox ---- */

/* insert ev; its inbox id, or 0 when the event id is already there */
static int64
inbox_insert(StripeEvent *ev, const pg_uuid_t *org, const char *status, const char *note)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {
		TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, TEXTOID, UUIDOID, TEXTOID,
		TEXTOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID
	};
	Datum		values[12];
	char		nulls[12];
	bool		isnull;

	stripe_spi_plan(&plan,
					"INSERT INTO ipai.webhook_events"
					" (provider, event_id, event_type, event_created, livemode, api_version,"
					"  org_id, stripe_object_id, stripe_customer_id, stripe_subscription_id,"
					"  payload, status, error, attempts, processed_at)"
					" VALUES ('stripe', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
					"  CASE WHEN $11 OPERATOR(pg_catalog.=) 'ignored' THEN 0 ELSE 1 END,"
					"  CASE WHEN $11 OPERATOR(pg_catalog.=) 'deferred' THEN NULL ELSE pg_catalog.now() END)"
					" ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
					12, types);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(ev->id);
	values[1] = CStringGetTextDatum(ev->type);
	values[2] = TimestampTzGetDatum(ev->created);
	values[3] = BoolGetDatum(ev->livemode);
	nulls[3] = ev->has_livemode ? ' ' : 'n';
	STRIPE_TEXT_ARG(values, nulls, 4, ev->api_version);
	values[5] = org ? UUIDPGetDatum(org) : (Datum) 0;
	nulls[5] = org ? ' ' : 'n';
	STRIPE_TEXT_ARG(values, nulls, 6, ev->object_id);
	STRIPE_TEXT_ARG(values, nulls, 7, ev->customer_id);
	STRIPE_TEXT_ARG(values, nulls, 8, ev->subscription_id);
	values[9] = JsonbPGetDatum(ev->payload);
	values[10] = CStringGetTextDatum(status);
	STRIPE_TEXT_ARG(values, nulls, 11, note);
	if (stripe_spi_exec(plan, values, nulls) == 0)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* a re-delivery: count it, change nothing else */
static void
inbox_count_delivery(StripeEvent *ev)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {TEXTOID};
	Datum		values[1];

	stripe_spi_plan(&plan,
					"UPDATE ipai.webhook_events e"
					"   SET deliveries = e.deliveries OPERATOR(pg_catalog.+) 1,"
					"       last_delivery_at = pg_catalog.now()"
					" WHERE e.provider OPERATOR(pg_catalog.=) 'stripe'"
					"   AND e.event_id OPERATOR(pg_catalog.=) $1",
					1, types);
	values[0] = CStringGetTextDatum(ev->id);
	stripe_spi_exec(plan, values, NULL);
}

/* record what became of inbox row id (attempts grows by attempted) */
static void
inbox_update(int64 id, const char *status, const pg_uuid_t *org,
			 const char *note, int attempted)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {INT8OID, TEXTOID, UUIDOID, TEXTOID, INT4OID};
	Datum		values[5];
	char		nulls[5];

	stripe_spi_plan(&plan,
					"UPDATE ipai.webhook_events e"
					"   SET status = $2, error = $4,"
					"       org_id = CASE WHEN $2 OPERATOR(pg_catalog.=) 'deferred' THEN NULL"
					"                ELSE coalesce($3, e.org_id) END,"
					"       attempts = e.attempts OPERATOR(pg_catalog.+) $5,"
					"       processed_at = CASE WHEN $2 OPERATOR(pg_catalog.=) 'deferred'"
					"                      THEN NULL ELSE pg_catalog.now() END"
					" WHERE e.id OPERATOR(pg_catalog.=) $1",
					5, types);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(status);
	values[2] = org ? UUIDPGetDatum(org) : (Datum) 0;
	nulls[2] = org ? ' ' : 'n';
	STRIPE_TEXT_ARG(values, nulls, 3, note);
	values[4] = Int32GetDatum(attempted);
	stripe_spi_exec(plan, values, nulls);
}

/* ---- 6. and 7. apply, release ---- */

/* keys whose deferred events are to be released */
typedef struct ReleaseKeys
{
	List	   *customers;		/* of char * */
	List	   *subscriptions;
} ReleaseKeys;

static List *
add_key(List *keys, const char *id)
{
	ListCell   *lc;

	if (id == NULL)
		return keys;
	foreach(lc, keys)
		if (strcmp((char *) lfirst(lc), id) == 0)
			return keys;
	return lappend(keys, pstrdup(id));
}

static Datum
text_array(List *keys)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(keys), 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, keys)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Apply ev for org and translate the outcome into an inbox status; *note
 * is the inbox's "error" text.  Adds newly linked ids to keys.
 */
static const char *
apply_and_classify(StripeEvent *ev, const pg_uuid_t *org, char **note, ReleaseKeys *keys)
{
	StripeApplyResult result;

	stripe_apply_event(ev, org, &result);
	*note = result.note;
	switch (result.outcome)
	{
		case STRIPE_ORG_GONE:
			*note = deferred_note(ev);
			return "deferred";
		case STRIPE_IGNORED:
			return "ignored";
		case STRIPE_STALE:
			return "processed";
		case STRIPE_APPLIED:
			break;
	}
	if (result.new_link)
	{
		keys->customers = add_key(keys->customers, ev->customer_id);
		keys->subscriptions = add_key(keys->subscriptions, ev->subscription_id);
	}
	return "processed";
}

/*
 * Apply, oldest first, every deferred event of the customers and
 * subscriptions in keys that can now be attributed; repeat while that
 * links more ids.  Each deferred row is tried at most once per call; one
 * that still cannot be attributed is left unchanged.  The candidates are
 * read through the partial indexes on deferred rows and locked FOR UPDATE
 * (a concurrent release of the same row waits, then skips it: it is no
 * longer deferred), each after the advisory lock of its own event.
 */
static void
release_deferred(ReleaseKeys *keys)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[] = {TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	List	   *tried = NIL;

	stripe_spi_plan(&plan,
					"SELECT e.id, e.payload FROM ipai.webhook_events e"
					" WHERE e.status OPERATOR(pg_catalog.=) 'deferred'"
					"   AND (e.stripe_customer_id OPERATOR(pg_catalog.=) ANY ($1)"
					"        OR e.stripe_subscription_id OPERATOR(pg_catalog.=) ANY ($2))"
					"   AND NOT (e.id OPERATOR(pg_catalog.=) ANY ($3))"
					" ORDER BY e.event_created, e.id"
					" FOR UPDATE",
					3, types);

	while (keys->customers != NIL || keys->subscriptions != NIL)
	{
		Datum		values[3];
		Datum	   *tried_datums;
		ListCell   *lc;
		uint64		n;
		uint64		i;
		int64	   *ids;
		Jsonb	  **payloads;
		int			k = 0;
		int			linked_before;

		tried_datums = palloc(sizeof(Datum) * Max(list_length(tried), 1));
		foreach(lc, tried)
			tried_datums[k++] = Int64GetDatum(*(int64 *) lfirst(lc));
		values[0] = text_array(keys->customers);
		values[1] = text_array(keys->subscriptions);
		values[2] = PointerGetDatum(construct_array(tried_datums, k, INT8OID, 8,
													FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		n = stripe_spi_exec(plan, values, NULL);
		if (n == 0)
			break;

		/* copy the rows out: applying runs more SPI statements */
		ids = palloc(sizeof(int64) * n);
		payloads = palloc(sizeof(Jsonb *) * n);
		for (i = 0; i < n; i++)
		{
			bool		isnull;
			HeapTuple	tup = SPI_tuptable->vals[i];

			ids[i] = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
			payloads[i] = DatumGetJsonbPCopy(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		}

		linked_before = list_length(keys->customers) + list_length(keys->subscriptions);
		for (i = 0; i < n; i++)
		{
			StripeEvent dev;
			pg_uuid_t	org;
			int64	   *idp = palloc(sizeof(int64));
			const char *status;
			char	   *note;

			*idp = ids[i];
			tried = lappend(tried, idp);
			stripe_event_from_jsonb(payloads[i], &dev);
			lock_event_keys(&dev);
			/* still nobody's: leave the row as it is */
			if (!attribute_event(&dev, &org))
				continue;
			status = apply_and_classify(&dev, &org, &note, keys);
			inbox_update(ids[i], status,
						 strcmp(status, "deferred") == 0 ? NULL : &org, note, 1);
		}
		/* nothing new linked: the next round would find nothing new */
		if (list_length(keys->customers) + list_length(keys->subscriptions) == linked_before)
			break;
	}
}

/*
 * Steps 3 to 7 for a verified, parsed event; returns the status.
 */
static const char *
deliver_event(StripeEvent *ev)
{
	pg_uuid_t	org;
	bool		attributed = false;
	const char *status;
	char	   *note = NULL;
	ReleaseKeys keys = {NIL, NIL};
	int64		inbox_id;

	if (ev->kind == STRIPE_KIND_OTHER)
	{
		if (inbox_insert(ev, NULL, "ignored", "event type not handled") == 0)
		{
			inbox_count_delivery(ev);
			return "duplicate";
		}
		return "ignored";
	}

	lock_event_keys(ev);
	attributed = attribute_event(ev, &org);
	if (attributed)
		status = "processed";
	else if (ev->kind == STRIPE_KIND_CHECKOUT)
	{
		/* a session we did not create (no known organization named) */
		status = "ignored";
		note = pstrdup("no existing organization in metadata.org_id or client_reference_id");
	}
	else
	{
		check_deferral_race(ev);
		status = "deferred";
		note = deferred_note(ev);
	}

	inbox_id = inbox_insert(ev, attributed ? &org : NULL, status, note);
	if (inbox_id == 0)
	{
		inbox_count_delivery(ev);
		return "duplicate";
	}
	if (!attributed)
		return status;

	/*
	 * Deferred events of this customer or subscription that an existing
	 * link now attributes (a link written outside the webhook, e.g. by an
	 * operator with the trigger disabled, or one they were deferred past):
	 * apply them first, so that an older one is applied before this event.
	 * Usually an index probe that finds nothing.
	 */
	if (ev->kind != STRIPE_KIND_CHECKOUT)
	{
		ReleaseKeys before = {NIL, NIL};

		before.customers = add_key(NIL, ev->customer_id);
		before.subscriptions = add_key(NIL, ev->subscription_id);
		release_deferred(&before);
	}

	status = apply_and_classify(ev, &org, &note, &keys);
	if (note != NULL || strcmp(status, "processed") != 0)
		inbox_update(inbox_id, status,
					 strcmp(status, "deferred") == 0 ? NULL : &org, note, 0);
	release_deferred(&keys);
	return status;
}

PG_FUNCTION_INFO_V1(ipai_stripe_webhook);

/*
 * ipai.stripe_webhook(payload bytea|text, signature_header text)
 *		→ (status text, event_id text, event_type text)
 *
 * One C function serves both declarations: the bytes as received are what
 * Stripe signed.  A NULL payload is 22023; a NULL header is an invalid
 * signature (IP002).
 */
Datum
ipai_stripe_webhook(PG_FUNCTION_ARGS)
{
	struct varlena *payload;
	text	   *header;
	TupleDesc	tupdesc;
	MemoryContext caller_cxt = CurrentMemoryContext;
	StripeEvent ev;
	const char *status;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	char	   *body;
	size_t		len;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook payload must not be null")));
	payload = PG_GETARG_VARLENA_PP(0);
	header = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	body = VARDATA_ANY(payload);
	len = VARSIZE_ANY_EXHDR(payload);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	verify_signature(body, len, header);
	stripe_event_parse(body, len, &ev);
	release_owner_depth++;
	PG_TRY();
	{
		status = deliver_event(&ev);
	}
	PG_FINALLY();
	{
		release_owner_depth--;
	}
	PG_END_TRY();

	/* the result outlives the SPI memory */
	{
		MemoryContext spi_cxt = MemoryContextSwitchTo(caller_cxt);

		values[0] = CStringGetTextDatum(status);
		values[1] = CStringGetTextDatum(ev.id);
		values[2] = CStringGetTextDatum(ev.type);
		MemoryContextSwitchTo(spi_cxt);
	}

	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(ipai_billing_customer_linked);

/*
 * ipai._billing_customer_linked(): row trigger of ipai.billing_customers,
 * BEFORE and AFTER INSERT OR UPDATE OF stripe_customer_id.
 *
 * A link written by anyone but the webhook (an operator's INSERT, an
 * UPDATE setting another customer) releases the deferred events of that
 * customer: BEFORE takes the customer's advisory lock, before the row is
 * written and so before any row lock of this table (the order of a
 * delivery, which takes it before touching any row: no deadlock between
 * the two); AFTER applies the customer's deferred events, oldest first,
 * in the same transaction, as ipai.stripe_webhook does after a checkout
 * (and what those link in turn).  A delivery of that customer deferred
 * concurrently either committed before the lock was granted (READ
 * COMMITTED: the release sees it) or waits for this transaction and then
 * finds the link.
 *
 * While ipai.stripe_webhook (or this trigger's release) runs in this
 * backend the trigger does nothing: the webhook releases what it links
 * itself, and releasing from inside its apply could apply an event twice.
 * SECURITY DEFINER (the extension owner): it writes billing rows.
 */
Datum
ipai_billing_customer_linked(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	int			attnum;
	bool		isnull;
	Datum		d;
	char	   *customer;
	ReleaseKeys keys = {NIL, NIL};
	static SPIPlanPtr deferred_plan = NULL;
	static SPIPlanPtr pending_plan = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("trigger functions can only be called as triggers")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ipai._billing_customer_linked() must be a row trigger on insert or update")));

	tupdesc = trigdata->tg_relation->rd_att;
	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	if (release_owner_depth > 0)
		return PointerGetDatum(newtuple);

	attnum = SPI_fnumber(tupdesc, "stripe_customer_id");
	if (attnum <= 0)
		elog(ERROR, "ipai._billing_customer_linked: table has no column stripe_customer_id");
	d = heap_getattr(newtuple, attnum, tupdesc, &isnull);
	if (isnull)
		return PointerGetDatum(newtuple);
	customer = TextDatumGetCString(d);

	/* an UPDATE that keeps the customer links nothing new */
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		bool		oldnull;
		Datum		od = heap_getattr(trigdata->tg_trigtuple, attnum, tupdesc, &oldnull);

		if (!oldnull && strcmp(TextDatumGetCString(od), customer) == 0)
			return PointerGetDatum(newtuple);
	}

	/* BEFORE: the lock only; AFTER: re-taking it is free */
	lock_stripe_key(stripe_lock_key(customer));
	if (TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		return PointerGetDatum(newtuple);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	release_owner_depth++;
	PG_TRY();
	{
		/*
		 * Only when the customer has deferred events (looked at without a
		 * lock): the release locks rows of the webhook inbox, which on
		 * Citus is a reference table, and the shards of one statement that
		 * link several customers would wait on each other's locks.
		 */
		keys.customers = add_key(NIL, customer);
		if (exists_now(&pending_plan,
					   "SELECT 1 FROM ipai.webhook_events e"
					   " WHERE e.status OPERATOR(pg_catalog.=) 'deferred'"
					   "   AND e.stripe_customer_id OPERATOR(pg_catalog.=) $1",
					   customer))
			release_deferred(&keys);

		/*
		 * Under a transaction snapshot, a deferral committed after it (the
		 * lock waited for it) was invisible to the release: 40001.
		 */
		if (IsolationUsesXactSnapshot() &&
			exists_now(&deferred_plan,
					   "SELECT 1 FROM ipai.webhook_events e"
					   " WHERE e.status OPERATOR(pg_catalog.=) 'deferred'"
					   "   AND e.stripe_customer_id OPERATOR(pg_catalog.=) $1",
					   customer))
			link_race_failure(customer);
	}
	PG_FINALLY();
	{
		release_owner_depth--;
	}
	PG_END_TRY();
	SPI_finish();
	return PointerGetDatum(NULL);
}
