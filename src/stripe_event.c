/*-------------------------------------------------------------------------
 *
 * stripe_event.c
 *		Parse a Stripe webhook payload into a StripeEvent: validate the
 *		bytes as JSON, read the envelope and the ids that attribute the
 *		event to an organization.
 *
 * The payload has already been verified (webhook.c) when stripe_event_parse
 * runs, but it is still treated as arbitrary bytes: anything that is not a
 * UTF-8 JSON object with a string id, a string type and an integral created
 * is a 22023 error, raised before anything is written.  The JSON is lexed
 * with escapes resolved (the same lexer jsonb_in uses), so a payload that
 * passes the check always converts to jsonb.
 *
 * Memory: everything is palloc'd in the caller's context; the StripeEvent
 * points into its Jsonb.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "stripe_event.h"

/* Unix epoch in PostgreSQL's timestamp representation, in seconds */
#define STRIPE_UNIX_EPOCH_OFFSET \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* ---- conversion ---- */

/*
 * json (NUL-terminated, no NUL inside) as jsonb.  jsonb_in's complaints
 * about the text (syntax, \u0000, broken surrogates, a string too long) are
 * re-raised as 22023 with their detail: a webhook payload that is not JSON
 * is a bad argument, not a bad literal.  Any other error (out of memory, a
 * cancel) passes through unchanged.  Safe because the caught error is
 * always re-thrown at once, so the transaction aborts as usual.
 */
static Jsonb *
payload_to_jsonb(char *json)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *result = NULL;

	PG_TRY();
	{
		result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_INVALID_TEXT_REPRESENTATION &&
			edata->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER &&
			edata->sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook payload is not valid JSON"),
				 edata->detail ? errdetail("%s", edata->detail) :
				 errdetail("%s", edata->message),
				 errhint("A Stripe webhook payload is an event object with \"id\", \"type\", \"created\" and \"data.object\".")));
	}
	PG_END_TRY();
	return result;
}

/* ---- reading jsonb ---- */

JsonbValue *
stripe_json_get(JsonbContainer *obj, const char *key)
{
	if (obj == NULL || !JsonContainerIsObject(obj))
		return NULL;
	return getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
}

static JsonbContainer *
json_container(JsonbContainer *obj, const char *key, bool want_object)
{
	JsonbValue *v = stripe_json_get(obj, key);

	if (v == NULL || v->type != jbvBinary)
		return NULL;
	if (want_object ? !JsonContainerIsObject(v->val.binary.data)
		: !JsonContainerIsArray(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

JsonbContainer *
stripe_json_object(JsonbContainer *obj, const char *key)
{
	return json_container(obj, key, true);
}

JsonbContainer *
stripe_json_array(JsonbContainer *obj, const char *key)
{
	return json_container(obj, key, false);
}

char *
stripe_json_string(JsonbContainer *obj, const char *key)
{
	JsonbValue *v = stripe_json_get(obj, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

char *
stripe_json_ref(JsonbContainer *obj, const char *key)
{
	char	   *s = stripe_json_string(obj, key);
	JsonbContainer *expanded;

	if (s != NULL)
		return s[0] != '\0' ? s : NULL;
	expanded = stripe_json_object(obj, key);
	if (expanded == NULL)
		return NULL;
	s = stripe_json_string(expanded, "id");
	return (s != NULL && s[0] != '\0') ? s : NULL;
}

bool
stripe_json_int64(JsonbContainer *obj, const char *key, int64 *out)
{
	JsonbValue *v = stripe_json_get(obj, key);
	char	   *digits;
	const char *p;

	if (v == NULL || v->type != jbvNumeric)
		return false;
	digits = DatumGetCString(DirectFunctionCall1(numeric_out,
												 NumericGetDatum(v->val.numeric)));
	/* integral only: an optional sign and at most 18 digits */
	p = digits[0] == '-' ? digits + 1 : digits;
	if (*p == '\0' || strlen(p) > 18 || strspn(p, "0123456789") != strlen(p))
		return false;
	*out = strtoi64(digits, NULL, 10);
	return true;
}

bool
stripe_json_bool(JsonbContainer *obj, const char *key, bool *out)
{
	JsonbValue *v = stripe_json_get(obj, key);

	if (v == NULL || v->type != jbvBool)
		return false;
	*out = v->val.boolean;
	return true;
}

bool
stripe_unix_to_timestamptz(int64 secs, TimestampTz *out)
{
	/* years 1970 .. 9999 cover every Stripe timestamp */
	if (secs < 0 || secs > INT64CONST(253402300799))
		return false;
	*out = (secs - STRIPE_UNIX_EPOCH_OFFSET) * USECS_PER_SEC;
	return true;
}

bool
stripe_json_time(JsonbContainer *obj, const char *key, TimestampTz *out)
{
	int64		secs;

	return stripe_json_int64(obj, key, &secs) &&
		stripe_unix_to_timestamptz(secs, out);
}

/* ---- the envelope ---- */

static void
bad_event(const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("A Stripe webhook payload is an event object with \"id\", \"type\", \"created\" and \"data.object\".")));
}

/*
 * A string field of the envelope or object: present, 1..255 bytes.
 * event_id names the event in the message once it is known.
 */
static char *
required_id(JsonbContainer *obj, const char *key, const char *what,
			const char *event_id)
{
	char	   *s = stripe_json_string(obj, key);

	if (s == NULL || s[0] == '\0' || strlen(s) > STRIPE_MAX_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 event_id ?
				 errmsg("webhook event \"%s\" has no valid \"%s\"", event_id, what) :
				 errmsg("webhook event has no valid \"%s\"", what),
				 errdetail("\"%s\" must be a non-empty string of at most %d bytes.",
						   what, STRIPE_MAX_ID_LEN),
				 errhint("A Stripe webhook payload is an event object with \"id\", \"type\", \"created\" and \"data.object\".")));
	return s;
}

/* optional id-like string: NULL when absent, empty or absurdly long */
static char *
optional_id(char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > STRIPE_MAX_ID_LEN)
		return NULL;
	return s;
}

static void
add_org_hint(StripeEvent *ev, const char *text)
{
	pg_uuid_t	u;

	if (ev->n_org_hints < STRIPE_MAX_ORG_HINTS && ipai_parse_uuid(text, &u))
		ev->org_hints[ev->n_org_hints++] = u;
}

/* metadata.org_id of a Stripe object, if any */
static char *
metadata_org(JsonbContainer *obj)
{
	return stripe_json_string(stripe_json_object(obj, "metadata"), "org_id");
}

/* the handled event types, with their same-second rank (later is higher) */
static const struct
{
	const char *type;
	StripeEventKind kind;
	int			rank;
}			handled_types[] =
{
	{"checkout.session.completed", STRIPE_KIND_CHECKOUT, 1},
	{"customer.subscription.created", STRIPE_KIND_SUBSCRIPTION, 1},
	{"customer.subscription.updated", STRIPE_KIND_SUBSCRIPTION, 2},
	{"customer.subscription.paused", STRIPE_KIND_SUBSCRIPTION, 2},
	{"customer.subscription.resumed", STRIPE_KIND_SUBSCRIPTION, 2},
	{"customer.subscription.deleted", STRIPE_KIND_SUBSCRIPTION, 3},
	{"invoice.payment_failed", STRIPE_KIND_INVOICE, 1},
	{"invoice.payment_succeeded", STRIPE_KIND_INVOICE, 2},
	{"invoice.paid", STRIPE_KIND_INVOICE, 3},
};

/*
 * stripe_event_type_rank
 *		See stripe_event.h.
 */
int
stripe_event_type_rank(const char *type, StripeEventKind *kind)
{
	int			i;

	if (type != NULL)
	{
		for (i = 0; i < (int) lengthof(handled_types); i++)
		{
			if (strcmp(type, handled_types[i].type) == 0)
			{
				if (kind)
					*kind = handled_types[i].kind;
				return handled_types[i].rank;
			}
		}
	}
	if (kind)
		*kind = STRIPE_KIND_OTHER;
	return 0;
}

/*
 * Read the envelope and the attribution ids out of ev->payload.
 */
static void
read_envelope(StripeEvent *ev)
{
	JsonbContainer *root = &ev->payload->root;
	JsonbContainer *data;
	JsonbContainer *obj;
	int64		created;
	char	   *s;

	if (!JsonContainerIsObject(root) || JsonContainerIsScalar(root))
		bad_event("webhook payload is not a JSON object", NULL);

	ev->id = required_id(root, "id", "id", NULL);
	ev->type = required_id(root, "type", "type", ev->id);
	if (!stripe_json_int64(root, "created", &created) ||
		!stripe_unix_to_timestamptz(created, &ev->created))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook event \"%s\" has no valid \"created\"", ev->id),
				 errdetail("\"created\" must be an integer number of Unix seconds."),
				 errhint("A Stripe webhook payload is an event object with \"id\", \"type\", \"created\" and \"data.object\".")));
	ev->has_livemode = stripe_json_bool(root, "livemode", &ev->livemode);
	ev->api_version = optional_id(stripe_json_string(root, "api_version"));

	ev->type_rank = stripe_event_type_rank(ev->type, &ev->kind);

	data = stripe_json_object(root, "data");
	obj = stripe_json_object(data, "object");
	ev->object = obj;
	if (obj == NULL)
	{
		if (ev->kind != STRIPE_KIND_OTHER)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook event \"%s\" has no \"data.object\"", ev->id),
					 errdetail("An event of type \"%s\" must carry the object it is about.",
							   ev->type)));
		return;
	}
	if (ev->kind == STRIPE_KIND_OTHER)
	{
		ev->object_id = optional_id(stripe_json_string(obj, "id"));
		return;
	}
	ev->object_id = required_id(obj, "id", "data.object.id", ev->id);
	if (ev->kind == STRIPE_KIND_SUBSCRIPTION || ev->kind == STRIPE_KIND_INVOICE)
		ev->status = required_id(obj, "status", "data.object.status", ev->id);
	ev->customer_id = optional_id(stripe_json_ref(obj, "customer"));

	switch (ev->kind)
	{
		case STRIPE_KIND_CHECKOUT:
			ev->subscription_id = optional_id(stripe_json_ref(obj, "subscription"));
			if ((s = metadata_org(obj)) != NULL)
				add_org_hint(ev, s);
			if ((s = stripe_json_string(obj, "client_reference_id")) != NULL)
				add_org_hint(ev, s);
			break;
		case STRIPE_KIND_SUBSCRIPTION:
			ev->subscription_id = ev->object_id;
			if ((s = metadata_org(obj)) != NULL)
				add_org_hint(ev, s);
			break;
		case STRIPE_KIND_INVOICE:
			{
				JsonbContainer *parent = stripe_json_object(obj, "parent");
				JsonbContainer *details = stripe_json_object(parent, "subscription_details");

				ev->invoice_id = ev->object_id;
				/* API 2025-03-31 moved it under parent.subscription_details */
				ev->subscription_id = optional_id(stripe_json_ref(obj, "subscription"));
				if (ev->subscription_id == NULL)
					ev->subscription_id = optional_id(stripe_json_ref(details, "subscription"));
				if (details == NULL)
					details = stripe_json_object(obj, "subscription_details");
				if ((s = metadata_org(details)) != NULL)
					add_org_hint(ev, s);
				if ((s = metadata_org(obj)) != NULL)
					add_org_hint(ev, s);
			}
			break;
		case STRIPE_KIND_OTHER:
			break;
	}
}

/*
 * stripe_event_parse
 *		See stripe_event.h.
 */
void
stripe_event_parse(const char *payload, size_t len, StripeEvent *ev)
{
	char	   *copy;

	memset(ev, 0, sizeof(*ev));
	if (len == 0)
		bad_event("webhook payload is empty", NULL);
	if (len > MaxAllocSize - 1)
		bad_event("webhook payload is too large", NULL);
	if (memchr(payload, '\0', len) != NULL)
		bad_event("webhook payload is not valid JSON",
				  "The payload contains a NUL byte.");
	if (!pg_verifymbstr(payload, (int) len, true))
		bad_event("webhook payload is not valid JSON",
				  "The payload is not valid text in the database encoding.");

	copy = pnstrdup(payload, len);
	ev->payload = payload_to_jsonb(copy);
	read_envelope(ev);
}

/*
 * stripe_event_from_jsonb
 *		See stripe_event.h.
 */
void
stripe_event_from_jsonb(Jsonb *payload, StripeEvent *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->payload = payload;
	read_envelope(ev);
}
