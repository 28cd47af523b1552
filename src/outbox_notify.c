/*-------------------------------------------------------------------------
 *
 * outbox_notify.c
 *		The trigger that wakes outbox senders: NOTIFY ipai_outbox when a
 *		transaction writes outbox rows, at most once per backend every
 *		100 ms.
 *
 * Senders in loop mode (supabase/functions/outbox-sender) LISTEN on
 * ipai_outbox and otherwise poll.  A NOTIFY costs every committing
 * transaction a turn on the server-wide notification queue, which at
 * thousands of metered consumes a second is most of their cost; one
 * notification per backend per 100 ms wakes a sender just as well: after
 * a drain that found rows a sender looks again within 200 ms, so rows
 * written inside the window are not left waiting for the poll.
 *
 * Contract: AFTER INSERT ... FOR EACH STATEMENT on ipai.outbox; writers that
 * bypass the executor call ipai_outbox_wake() once per statement instead.  The
 * notification is queued in the transaction (sent at commit, dropped on
 * abort); an aborted transaction forgets the backend's last notification,
 * so the next commit notifies again.  No memory is allocated past the
 * call.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/timestamp.h"

/* the shortest interval between two notifications of one backend */
#define OUTBOX_NOTIFY_INTERVAL_US	(100 * 1000)

/* when this backend last queued a notification; 0: never or aborted */
static TimestampTz last_notify = 0;
static bool callback_registered = false;

/* an aborted transaction's notification was never sent */
static void
outbox_notify_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		last_notify = 0;
}

/*
 * ipai_outbox_wake
 *		NOTIFY ipai_outbox, '' unless this backend did so less than 100 ms
 *		ago: the trigger's body, also called by writers that insert outbox
 *		rows without the executor (the metering fast path, usage_direct.c).
 */
void
ipai_outbox_wake(void)
{
	TimestampTz now;

	if (!callback_registered)
	{
		RegisterXactCallback(outbox_notify_xact_callback, NULL);
		callback_registered = true;
	}

	now = GetCurrentTimestamp();
	if (last_notify == 0 || now - last_notify >= OUTBOX_NOTIFY_INTERVAL_US ||
		now < last_notify)
	{
		Async_Notify("ipai_outbox", "");
		last_notify = now;
	}
}

PG_FUNCTION_INFO_V1(ipai_outbox_notify);

/*
 * ipai_outbox_notify
 *		Trigger: ipai_outbox_wake().
 */
Datum
ipai_outbox_notify(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "ipai_outbox_notify: not called by trigger manager");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
		elog(ERROR, "ipai_outbox_notify: must be fired AFTER, FOR EACH STATEMENT");
	ipai_outbox_wake();
	return PointerGetDatum(NULL);
}
