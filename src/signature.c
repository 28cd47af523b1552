/*-------------------------------------------------------------------------
 *
 * signature.c
 *		SQL faces of the webhook signature schemes, and the server-side C
 *		API of signature.h.
 *
 *	ipai.stripe_verify_signature(payload bytea|text, signature_header text,
 *		secret text, tolerance_seconds integer DEFAULT 300,
 *		now timestamptz DEFAULT now()) returns boolean
 *	ipai.stripe_sign(payload text|bytea, secret text,
 *		t timestamptz DEFAULT now()) returns text
 *	ipai.standard_webhook_verify(payload bytea|text, msg_id text,
 *		msg_timestamp text, signature_header text, secret text,
 *		tolerance_seconds integer DEFAULT 300,
 *		now timestamptz DEFAULT now()) returns boolean
 *	ipai.standard_webhook_sign(payload bytea|text, msg_id text,
 *		msg_timestamp text, secret text) returns text
 *
 * The parsing and the checks are in webhook_sig.c (plain C, fuzzed and
 * sanitizer-tested outside the server); this file only moves arguments in
 * and turns statuses into results or errors:
 *	- a delivery that does not verify gives false, never an error;
 *	- a NULL payload, header, secret, id, timestamp or now gives false
 *	  (a missing header must not read as "unknown" in IF NOT ...), so the
 *	  verify functions are not STRICT and never return NULL;
 *	- tolerance_seconds NULL or <= 0, an empty secret, or a Standard
 *	  Webhooks secret that is not base64 raise 22023;
 *	- an infinite now verifies nothing (false).
 * All are IMMUTABLE at the SQL level: the result depends on the arguments
 * only; now() is evaluated by the caller as the default of an argument.
 *
 * Memory: arguments are detoasted in the caller's context; webhook_sig.c
 * mallocs one buffer per check and frees it before returning.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "signature.h"

/* Unix epoch in PostgreSQL's timestamp representation, in seconds */
#define IPAI_UNIX_EPOCH_OFFSET \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/*
 * Raise the error that a non-rejection, non-OK status stands for.
 * Returns only for IPAI_SIG_OK and rejections.
 */
static void
raise_for_status(ipai_sig_status st)
{
	switch (st)
	{
		case IPAI_SIG_BAD_TOLERANCE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tolerance_seconds must be greater than zero")));
			break;
		case IPAI_SIG_BAD_SECRET:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid webhook signing secret"),
					 errdetail("The secret is empty, or its key part is not base64."),
					 errhint("Pass the endpoint's secret as shown by the provider, e.g. \"whsec_...\".")));
			break;
		case IPAI_SIG_NO_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not allocate the message to sign.")));
			break;
		case IPAI_SIG_CRYPTO_ERROR:
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("could not compute HMAC-SHA256")));
			break;
		case IPAI_SIG_BUFFER_TOO_SMALL:
			elog(ERROR, "webhook signature buffer too small");
			break;
		default:
			break;
	}
}

/* tolerance as the verify functions take it: NULL or <= 0 is an error */
static int32
get_tolerance(FunctionCallInfo fcinfo, int argno)
{
	int32		tolerance;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tolerance_seconds must not be null")));
	tolerance = PG_GETARG_INT32(argno);
	if (tolerance <= 0)
		raise_for_status(IPAI_SIG_BAD_TOLERANCE);
	return tolerance;
}

/*
 * ipai_timestamptz_to_unix
 *		Unix seconds of a finite timestamptz, rounded down; 22008 for
 *		infinity.
 */
int64
ipai_timestamptz_to_unix(TimestampTz ts)
{
	int64		secs;

	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range"),
				 errdetail("A webhook timestamp must be finite.")));
	secs = ts / USECS_PER_SEC;
	if (ts % USECS_PER_SEC < 0)
		secs--;
	return secs + IPAI_UNIX_EPOCH_OFFSET;
}

/* Unix seconds (rounded down) and the microseconds past them */
static int64
unix_parts(TimestampTz ts, int32 *micros)
{
	int64		us = ts % USECS_PER_SEC;

	if (us < 0)
		us += USECS_PER_SEC;
	*micros = (int32) us;
	return ipai_timestamptz_to_unix(ts);
}

/*
 * ipai_stripe_signature_check
 *		See signature.h.
 */
ipai_sig_status
ipai_stripe_signature_check(const char *payload, size_t payload_len,
							const char *header, size_t header_len,
							const char *secret, size_t secret_len,
							TimestampTz now, int32 tolerance_seconds)
{
	ipai_sig_status st;
	int32		now_us;
	int64		now_unix = unix_parts(now, &now_us);

	st = ipai_wh_stripe_verify_us(payload, payload_len, header, header_len,
								  secret, secret_len, now_unix, now_us,
								  tolerance_seconds, ipai_hmac_sha256);
	raise_for_status(st);
	return st;
}

/*
 * ipai_stripe_signature_ok
 *		See signature.h.
 */
bool
ipai_stripe_signature_ok(const char *payload, size_t payload_len,
						 const char *header, size_t header_len,
						 const char *secret, size_t secret_len,
						 TimestampTz now, int32 tolerance_seconds)
{
	return ipai_stripe_signature_check(payload, payload_len,
									   header, header_len,
									   secret, secret_len,
									   now, tolerance_seconds)
		== IPAI_SIG_OK;
}

/*
 * ipai_standard_webhook_check
 *		See signature.h.
 */
ipai_sig_status
ipai_standard_webhook_check(const char *payload, size_t payload_len,
							const char *msg_id, size_t id_len,
							const char *msg_timestamp, size_t ts_len,
							const char *header, size_t header_len,
							const char *secret, size_t secret_len,
							TimestampTz now, int32 tolerance_seconds)
{
	ipai_sig_status st;
	int32		now_us;
	int64		now_unix = unix_parts(now, &now_us);

	st = ipai_wh_standard_verify_us(payload, payload_len, msg_id, id_len,
									msg_timestamp, ts_len, header, header_len,
									secret, secret_len, now_unix, now_us,
									tolerance_seconds, ipai_hmac_sha256);
	raise_for_status(st);
	return st;
}

/*
 * ipai_stripe_event_id_hint
 *		See signature.h.
 */
char *
ipai_stripe_event_id_hint(const char *payload, size_t payload_len)
{
	char		buf[IPAI_EVENT_ID_BUFLEN];

	if (ipai_wh_event_id_hint(payload, payload_len, buf, sizeof(buf)) == 0)
		return NULL;
	return pstrdup(buf);
}

PG_FUNCTION_INFO_V1(ipai_stripe_verify_signature);

/*
 * ipai.stripe_verify_signature(payload bytea|text, signature_header text,
 *		secret text, tolerance_seconds integer, now timestamptz) → boolean
 *
 * One C function serves the bytea and the text declaration: both are
 * varlenas, and the bytes as stored are what was signed.
 */
Datum
ipai_stripe_verify_signature(PG_FUNCTION_ARGS)
{
	int32		tolerance = get_tolerance(fcinfo, 3);
	struct varlena *payload;
	text	   *header;
	text	   *secret;
	TimestampTz now;
	ipai_sig_status st;

	/* an empty secret is an error even when other arguments are NULL */
	if (!PG_ARGISNULL(2) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(2)) == 0)
		raise_for_status(IPAI_SIG_BAD_SECRET);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) ||
		PG_ARGISNULL(4))
		PG_RETURN_BOOL(false);

	payload = PG_GETARG_VARLENA_PP(0);
	header = PG_GETARG_TEXT_PP(1);
	secret = PG_GETARG_TEXT_PP(2);
	now = PG_GETARG_TIMESTAMPTZ(4);
	if (TIMESTAMP_NOT_FINITE(now))
		PG_RETURN_BOOL(false);

	st = ipai_stripe_signature_check(VARDATA_ANY(payload),
									 VARSIZE_ANY_EXHDR(payload),
									 VARDATA_ANY(header),
									 VARSIZE_ANY_EXHDR(header),
									 VARDATA_ANY(secret),
									 VARSIZE_ANY_EXHDR(secret),
									 now,
									 tolerance);
	PG_RETURN_BOOL(st == IPAI_SIG_OK);
}

PG_FUNCTION_INFO_V1(ipai_stripe_sign);

/*
 * ipai.stripe_sign(payload text|bytea, secret text, t timestamptz) → text
 *		STRICT.  A Stripe-Signature header "t=<Unix seconds>,v1=<hex>" for
 *		tests and local simulation.  t is rounded down to whole seconds and
 *		must lie in 1970 or later (22008); the secret must not be empty
 *		(22023).
 */
Datum
ipai_stripe_sign(PG_FUNCTION_ARGS)
{
	struct varlena *payload = PG_GETARG_VARLENA_PP(0);
	text	   *secret = PG_GETARG_TEXT_PP(1);
	TimestampTz t = PG_GETARG_TIMESTAMPTZ(2);
	char		buf[IPAI_STRIPE_HEADER_BUFLEN];
	int64		unix_t = ipai_timestamptz_to_unix(t);
	ipai_sig_status st;

	if (unix_t < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range"),
				 errdetail("A Stripe signature timestamp cannot be before 1970.")));

	st = ipai_wh_stripe_sign(VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload),
						  VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
						  unix_t, buf, sizeof(buf), ipai_hmac_sha256);
	raise_for_status(st);
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}

PG_FUNCTION_INFO_V1(ipai_standard_webhook_verify);

/*
 * ipai.standard_webhook_verify(payload bytea|text, msg_id text,
 *		msg_timestamp text, signature_header text, secret text,
 *		tolerance_seconds integer, now timestamptz) → boolean
 */
Datum
ipai_standard_webhook_verify(PG_FUNCTION_ARGS)
{
	int32		tolerance = get_tolerance(fcinfo, 5);
	struct varlena *payload;
	text	   *msg_id;
	text	   *msg_ts;
	text	   *header;
	text	   *secret;
	TimestampTz now;
	ipai_sig_status st;
	int			i;

	if (!PG_ARGISNULL(4) && VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(4)) == 0)
		raise_for_status(IPAI_SIG_BAD_SECRET);
	for (i = 0; i <= 6; i++)
	{
		if (i != 5 && PG_ARGISNULL(i))
			PG_RETURN_BOOL(false);
	}

	payload = PG_GETARG_VARLENA_PP(0);
	msg_id = PG_GETARG_TEXT_PP(1);
	msg_ts = PG_GETARG_TEXT_PP(2);
	header = PG_GETARG_TEXT_PP(3);
	secret = PG_GETARG_TEXT_PP(4);
	now = PG_GETARG_TIMESTAMPTZ(6);
	if (TIMESTAMP_NOT_FINITE(now))
		PG_RETURN_BOOL(false);

	st = ipai_standard_webhook_check(VARDATA_ANY(payload),
									 VARSIZE_ANY_EXHDR(payload),
									 VARDATA_ANY(msg_id),
									 VARSIZE_ANY_EXHDR(msg_id),
									 VARDATA_ANY(msg_ts),
									 VARSIZE_ANY_EXHDR(msg_ts),
									 VARDATA_ANY(header),
									 VARSIZE_ANY_EXHDR(header),
									 VARDATA_ANY(secret),
									 VARSIZE_ANY_EXHDR(secret),
									 now,
									 tolerance);
	PG_RETURN_BOOL(st == IPAI_SIG_OK);
}

PG_FUNCTION_INFO_V1(ipai_standard_webhook_sign);

/*
 * ipai.standard_webhook_sign(payload bytea|text, msg_id text,
 *		msg_timestamp text, secret text) → text
 *		STRICT.  The "v1,<base64>" webhook-signature entry; an empty msg_id,
 *		a msg_timestamp that is not a canonical integer, or a bad secret
 *		raise 22023.
 */
Datum
ipai_standard_webhook_sign(PG_FUNCTION_ARGS)
{
	struct varlena *payload = PG_GETARG_VARLENA_PP(0);
	text	   *msg_id = PG_GETARG_TEXT_PP(1);
	text	   *msg_ts = PG_GETARG_TEXT_PP(2);
	text	   *secret = PG_GETARG_TEXT_PP(3);
	char		buf[IPAI_STDWH_SIGNATURE_BUFLEN];
	ipai_sig_status st;

	st = ipai_wh_standard_sign(VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload),
						 VARDATA_ANY(msg_id), VARSIZE_ANY_EXHDR(msg_id),
						 VARDATA_ANY(msg_ts), VARSIZE_ANY_EXHDR(msg_ts),
						 VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
						 buf, sizeof(buf), ipai_hmac_sha256);
	if (st == IPAI_SIG_MISSING_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook message id must not be empty")));
	if (st == IPAI_SIG_BAD_TIMESTAMP)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid webhook timestamp \"%s\"",
						text_to_cstring(msg_ts)),
				 errdetail("The timestamp must be Unix seconds in decimal, without sign or leading zeros.")));
	raise_for_status(st);
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}
