/*-------------------------------------------------------------------------
 *
 * stripe_apply.h
 *		The effects of Stripe events on the billing tables, and the SPI
 *		helpers shared by webhook.c and stripe_apply.c.
 *
 * Include "ipai_saas.h" first.  Every function here runs inside an open
 * SPI connection (the caller's SPI_connect) and as the extension owner
 * (ipai.stripe_webhook is SECURITY DEFINER).
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_STRIPE_APPLY_H
#define IPAI_STRIPE_APPLY_H

#include "executor/spi.h"

#include "stripe_event.h"

/* what applying one event did */
typedef enum StripeOutcome
{
	STRIPE_APPLIED,				/* state changed (or confirmed) */
	STRIPE_STALE,				/* older than the state already applied */
	STRIPE_IGNORED,				/* nothing to do for us (see note) */
	STRIPE_ORG_GONE				/* the organization vanished: defer */
} StripeOutcome;

typedef struct StripeApplyResult
{
	StripeOutcome outcome;
	char	   *note;			/* why stale or ignored, for the inbox */
	bool		new_link;		/* a customer or subscription is newly tied
								 * to the organization: deferred events may
								 * now be attributable */
} StripeApplyResult;

/*
 * Apply ev to organization org under the ordering rule (docs/billing.md):
 * lock the organization row, upsert the customer link, subscription or
 * invoice, audit every change, and make the organization's plan follow its
 * subscriptions.  Raises only for internal errors: the event has been
 * validated by stripe_event_parse.
 */
extern void stripe_apply_event(StripeEvent *ev, const pg_uuid_t *org,
							   StripeApplyResult *result);

/* ---- SPI helpers ---- */

/*
 * The plan in *slot, prepared and kept (SPI_keepplan) on first use; plans
 * live for the backend's life.
 */
extern SPIPlanPtr stripe_spi_plan(SPIPlanPtr *slot, const char *sql,
								  int nargs, const Oid *argtypes);

/* execute plan (read-write); returns SPI_processed; elog on failure */
extern uint64 stripe_spi_exec(SPIPlanPtr plan, Datum *values,
							  const char *nulls);

/* a text Datum, or a null flag when s is NULL */
#define STRIPE_TEXT_ARG(values, nulls, i, s) \
	do { \
		if ((s) != NULL) \
		{ \
			(values)[i] = CStringGetTextDatum(s); \
			(nulls)[i] = ' '; \
		} \
		else \
		{ \
			(values)[i] = (Datum) 0; \
			(nulls)[i] = 'n'; \
		} \
	} while (0)

#endif							/* IPAI_STRIPE_APPLY_H */
