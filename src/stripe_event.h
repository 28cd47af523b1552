/*-------------------------------------------------------------------------
 *
 * stripe_event.h
 *		A Stripe event as ipai.stripe_webhook() sees it: the envelope
 *		(id, type, created), the Stripe object it is about, and the ids that
 *		tie it to an organization.
 *
 * Include "ipai_saas.h" first.  Built by stripe_event.c from the raw
 * payload (validated JSON) or from an inbox row's jsonb; used by webhook.c
 * (inbox, attribution, deferral) and stripe_apply.c (the effects).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_STRIPE_EVENT_H
#define IPAI_STRIPE_EVENT_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* which effect an event type has */
typedef enum StripeEventKind
{
	STRIPE_KIND_OTHER = 0,		/* stored, answered "ignored" */
	STRIPE_KIND_CHECKOUT,		/* checkout.session.completed */
	STRIPE_KIND_SUBSCRIPTION,	/* customer.subscription.created|updated|deleted */
	STRIPE_KIND_INVOICE			/* invoice.payment_succeeded|paid|payment_failed */
} StripeEventKind;

/* longest event id, type or object id we accept (Stripe's are ~30 bytes) */
#define STRIPE_MAX_ID_LEN 255

/*
 * Organizations an event names itself (metadata.org_id, then
 * client_reference_id for a checkout session), best first.
 */
#define STRIPE_MAX_ORG_HINTS 2

typedef struct StripeEvent
{
	/* the envelope */
	char	   *id;
	char	   *type;
	TimestampTz created;
	bool		has_livemode;
	bool		livemode;
	char	   *api_version;	/* NULL when absent */
	Jsonb	   *payload;		/* the whole event */

	/* what it is about */
	StripeEventKind kind;
	int			type_rank;		/* same-second tie-break between types */
	JsonbContainer *object;		/* data.object; NULL for ignored kinds */
	char	   *object_id;		/* data.object.id */
	char	   *customer_id;	/* Stripe customer, or NULL */
	char	   *subscription_id;	/* Stripe subscription, or NULL */
	char	   *invoice_id;		/* for invoice events */
	char	   *status;			/* data.object.status (subscription, invoice) */
	int			n_org_hints;
	pg_uuid_t	org_hints[STRIPE_MAX_ORG_HINTS];

	/* how webhook.c attributed it (set by attribute_event) */
	bool		attributed_by_hint;	/* metadata.org_id / client_reference_id */
} StripeEvent;

/*
 * Validate a raw payload (any bytes) and parse it into *ev.  Raises 22023
 * with a clear message for bytes that are not UTF-8 JSON, JSON that is not
 * an object, and events without a usable id, type or created, or (for the
 * handled types) without a data.object carrying an id.
 */
extern void stripe_event_parse(const char *payload, size_t len, StripeEvent *ev);

/* the same over an event already stored as jsonb (the inbox) */
extern void stripe_event_from_jsonb(Jsonb *payload, StripeEvent *ev);

/*
 * The kind of a type and its rank among events of the same second
 * (created 1 < updated 2 < deleted 3; payment_failed 1 < payment_succeeded
 * 2 < paid 3); 0 and STRIPE_KIND_OTHER for types not handled.
 */
extern int	stripe_event_type_rank(const char *type, StripeEventKind *kind);

/* ---- reading fields of a Stripe object (jsonb) ---- */

/* the value of key in an object container, or NULL when absent */
extern JsonbValue *stripe_json_get(JsonbContainer *obj, const char *key);

/* key's value when it is an object (or array), else NULL */
extern JsonbContainer *stripe_json_object(JsonbContainer *obj, const char *key);
extern JsonbContainer *stripe_json_array(JsonbContainer *obj, const char *key);

/* key's value when it is a string, else NULL (palloc'd, NUL-terminated) */
extern char *stripe_json_string(JsonbContainer *obj, const char *key);

/*
 * An id field that Stripe sends either as a string or, when expanded, as
 * an object with an "id" (customer, subscription): the id, else NULL.
 */
extern char *stripe_json_ref(JsonbContainer *obj, const char *key);

/* key's value when it is an integral number that fits int64 */
extern bool stripe_json_int64(JsonbContainer *obj, const char *key, int64 *out);

/* key's value when it is a boolean */
extern bool stripe_json_bool(JsonbContainer *obj, const char *key, bool *out);

/* key's value as a timestamp when it is Unix seconds */
extern bool stripe_json_time(JsonbContainer *obj, const char *key, TimestampTz *out);

/* Unix seconds as a timestamptz; false when out of range */
extern bool stripe_unix_to_timestamptz(int64 secs, TimestampTz *out);

/* canonical 8-4-4-4-12 hex uuid text (either case) into *out */

#endif							/* IPAI_STRIPE_EVENT_H */
