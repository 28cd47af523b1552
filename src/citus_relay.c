/*-------------------------------------------------------------------------
 *
 * citus_relay.c
 *		On Citus, the approval notifications written on the workers are
 *		sent by the coordinator when the transaction commits.
 *
 * The trigger that announces an approval state change (channel
 * cms_approvals) fires where the row lives: on a worker.  A notification
 * sent there reaches no listener on the coordinator, and a worker cannot
 * PREPARE (two-phase commit) a transaction that has notified.  So there
 * the trigger writes the notification to ipai._notify_relay, in the same
 * transaction, and the coordinator sends and deletes those rows just
 * before it commits (ipai._relay_notifications(), SQL), which keeps
 * NOTIFY's promise: sent at commit, never for a rolled-back change.
 *
 * Only a transaction that may have written some pays for it: the planner
 * hook flags the transaction when it plans an INSERT, UPDATE or DELETE on
 * ipai.cms_pages or ipai.cms_approvals (the changes that move approvals;
 * with Citus every such statement is planned when it runs), and the
 * pre-commit callback runs the relay only when flagged.  The callback is
 * registered after Citus's, so it runs before Citus prepares the workers.
 * Where Citus is not installed nothing here does anything but one test.
 *
 *-------------------------------------------------------------------------
 */
#include "usage.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "optimizer/planner.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

static planner_hook_type prev_planner = NULL;

/* this transaction planned a change of pages or approvals */
static bool relay_due = false;

/* does this statement (or one of its modifying CTEs) write the CMS tables? */
static bool
writes_cms(Query *query)
{
	ListCell   *lc;

	if (query->commandType == CMD_INSERT || query->commandType == CMD_UPDATE ||
		query->commandType == CMD_DELETE)
	{
		RangeTblEntry *rte = rt_fetch(query->resultRelation, query->rtable);
		Oid			nsp = get_namespace_oid("ipai", true);

		if (OidIsValid(nsp) && rte->rtekind == RTE_RELATION &&
			get_rel_namespace(rte->relid) == nsp)
		{
			char	   *name = get_rel_name(rte->relid);

			if (name != NULL &&
				(strcmp(name, "cms_pages") == 0 || strcmp(name, "cms_approvals") == 0))
				return true;
		}
	}
	if (query->hasModifyingCTE)
	{
		foreach(lc, query->cteList)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (IsA(cte->ctequery, Query) && writes_cms((Query *) cte->ctequery))
				return true;
		}
	}
	return false;
}

static PlannedStmt *
relay_planner(Query *parse, const char *query_string, int cursor_options,
			  ParamListInfo bound_params)
{
	if (!relay_due && parse->commandType != CMD_UTILITY &&
		(parse->commandType != CMD_SELECT || parse->hasModifyingCTE) &&
		ipai_citus_installed_cached() && writes_cms(parse))
		relay_due = true;

	if (prev_planner)
		return prev_planner(parse, query_string, cursor_options, bound_params);
	return standard_planner(parse, query_string, cursor_options, bound_params);
}

/*
 * ipai._relay_notifications(), as the extension owner, who owns it (the
 * committing role may not execute it; it is internal).
 */
static void
run_relay(void)
{
	Oid			save_userid;
	int			save_sec;

	if (!OidIsValid(LookupFuncName(list_make2(makeString("ipai"),
											  makeString("_relay_notifications")),
								   0, NULL, true)))
		return;
	usage_become_owner(&save_userid, &save_sec);
	/* no portal is running any more: bring a snapshot */
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT ipai._relay_notifications()", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not relay the notifications written on the workers");
	SPI_finish();
	PopActiveSnapshot();
	usage_restore_user(save_userid, save_sec);
}

static void
relay_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (relay_due)
			{
				relay_due = false;
				run_relay();
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			relay_due = false;
			break;
		default:
			break;
	}
}

/*
 * ipai_citus_relay_init
 *		Installs the planner hook and the transaction callback (from
 *		_PG_init).
 */
void
ipai_citus_relay_init(void)
{
	prev_planner = planner_hook;
	planner_hook = relay_planner;
	RegisterXactCallback(relay_xact_callback, NULL);
}
