/*-------------------------------------------------------------------------
 *
 * citus_identity.c
 *		Carries the acting user's settings to the Citus workers.
 *
 * Row-level security runs on the workers, and so do the functions Citus
 * delegates there (check_entitlement and the other organization-scoped
 * ones): both read the acting user from request.jwt.claims or
 * ipai.user_id.  Citus sends a worker only what was set with SET LOCAL
 * while citus.propagate_set_commands = 'local'; set_config(), a session
 * SET and PostgREST's way of passing the claims stay on the coordinator.
 * And with 'local', a SET LOCAL ROLE reaches the workers too, where it
 * turns the writes of our SECURITY DEFINER functions into the caller's.
 *
 * So where Citus is installed, before each statement of a transaction
 * block this hook compares the two settings with what it last sent in
 * the transaction and, when they differ, runs SET LOCAL of the current
 * value through ProcessUtility with citus.propagate_set_commands = 'local'
 * for that one command: Citus sends it to the workers already in the
 * transaction and to every one that joins later.  Nothing else is
 * propagated (citus.propagate_set_commands may stay 'none', so a SET
 * LOCAL ROLE stays on the coordinator and Citus connects as the current
 * user).  The value travels as a quoted literal (quote_literal_cstr), the
 * only form Citus forwards; the setting names are fixed here.
 *
 * Outside a transaction block Citus opens no distributed transaction to
 * carry a setting in.  Our functions read the acting user on the
 * coordinator, except when Citus delegates a call to a worker, which it
 * does only outside a block: so when a user is set, a planner hook keeps
 * such a call on the coordinator, by giving the statement the qual "WHERE
 * pg_backend_pid() IS NOT NULL" (always true, and stable, so planning
 * keeps it), which Citus's delegation does not take.
 * RLS on the workers needs the block.  The same qual keeps Citus from
 * delegating a call in a subquery, where Citus 13.2.2 crashes (see
 * guard_subqueries).
 *
 * What was sent is remembered with the subtransaction level it was sent
 * at: Citus forgets the SET LOCALs of a subtransaction when it ends, and
 * so does this file.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "catalog/pg_type.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#define IDENTITY_SETTINGS 2
static const char *const identity_setting[IDENTITY_SETTINGS] = {
	"request.jwt.claims", "ipai.user_id"
};

static ExecutorStart_hook_type prev_executor_start = NULL;
static planner_hook_type prev_planner = NULL;

/* what was sent in this transaction, and at which subtransaction level */
static char *sent_value[IDENTITY_SETTINGS];
static int	sent_level[IDENTITY_SETTINGS];
static bool propagating = false;

static void
forget_sent(int from_level)
{
	for (int i = 0; i < IDENTITY_SETTINGS; i++)
	{
		if (sent_value[i] != NULL && sent_level[i] >= from_level)
		{
			pfree(sent_value[i]);
			sent_value[i] = NULL;
		}
	}
}

static void
identity_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		forget_sent(0);
}

static void
identity_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_COMMIT_SUB || event == SUBXACT_EVENT_ABORT_SUB)
		forget_sent(GetCurrentTransactionNestLevel());
}

/* SET LOCAL name TO 'value', through ProcessUtility, propagated by Citus */
static void
send_setting(const char *name, const char *value)
{
	VariableSetStmt *set = makeNode(VariableSetStmt);
	A_Const    *arg = makeNode(A_Const);
	PlannedStmt *pstmt = makeNode(PlannedStmt);
	StringInfoData sql;
	int			nest;

	arg->val.sval.type = T_String;
	arg->val.sval.sval = pstrdup(value);
	arg->location = -1;
	set->kind = VAR_SET_VALUE;
	set->name = pstrdup(name);
	set->args = list_make1(arg);
	set->is_local = true;

	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = false;
	pstmt->utilityStmt = (Node *) set;
	pstmt->stmt_location = -1;
	pstmt->stmt_len = 0;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SET LOCAL %s TO %s", name, quote_literal_cstr(value));

	/* 'local' for this command only (restored below, or by the abort) */
	nest = NewGUCNestLevel();
	(void) set_config_option("citus.propagate_set_commands", "local",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	ProcessUtility(pstmt, sql.data, false, PROCESS_UTILITY_QUERY, NULL, NULL,
				   None_Receiver, NULL);
	AtEOXact_GUC(true, nest);
	pfree(sql.data);
}

static void
carry_identity(void)
{
	for (int i = 0; i < IDENTITY_SETTINGS; i++)
	{
		const char *now = GetConfigOption(identity_setting[i], true, false);

		if (now == NULL)
			now = "";
		if (sent_value[i] != NULL && strcmp(sent_value[i], now) == 0)
			continue;
		/* nothing set and nothing sent: nothing to override on the workers */
		if (sent_value[i] == NULL && now[0] == '\0')
			continue;
		send_setting(identity_setting[i], now);
		if (sent_value[i] != NULL)
			pfree(sent_value[i]);
		sent_value[i] = MemoryContextStrdup(TopMemoryContext, now);
		sent_level[i] = GetCurrentTransactionNestLevel();
	}
}

static bool
citus_identity_wanted(void)
{
	return !propagating && IsTransactionBlock() && !IsInParallelMode() &&
		ipai_citus_installed_cached();
}

static void
identity_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (citus_identity_wanted())
	{
		propagating = true;
		PG_TRY();
		{
			carry_identity();
		}
		PG_FINALLY();
		{
			propagating = false;
		}
		PG_END_TRY();
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/* a user is set (the claims or ipai.user_id) */
static bool
identity_set(void)
{
	for (int i = 0; i < IDENTITY_SETTINGS; i++)
	{
		const char *now = GetConfigOption(identity_setting[i], true, false);

		if (now != NULL && now[0] != '\0')
			return true;
	}
	return false;
}

/* "pg_backend_pid() IS NOT NULL": always true, and stable, so planning keeps it */
static Node *
always_true_qual(void)
{
	NullTest   *qual = makeNode(NullTest);

	qual->arg = (Expr *) makeFuncExpr(F_PG_BACKEND_PID, INT4OID, NIL,
									  InvalidOid, InvalidOid,
									  COERCE_EXPLICIT_CALL);
	qual->nulltesttype = IS_NOT_NULL;
	qual->argisrow = false;
	qual->location = -1;
	return (Node *) qual;
}

/*
 * Is q the shape of query Citus tries to delegate: a SELECT without a qual
 * from nothing or from one function?
 */
static bool
delegation_shape(Query *q)
{
	Node	   *from;

	if (q == NULL || q->commandType != CMD_SELECT || q->jointree == NULL ||
		q->jointree->quals != NULL)
		return false;
	if (q->jointree->fromlist == NIL)
		return true;
	if (list_length(q->jointree->fromlist) != 1)
		return false;
	from = linitial(q->jointree->fromlist);
	if (!IsA(from, RangeTblRef))
		return false;
	switch (rt_fetch(((RangeTblRef *) from)->rtindex, q->rtable)->rtekind)
	{
		case RTE_FUNCTION:
		case RTE_RESULT:
			return true;
		default:
			return false;
	}
}

/*
 * Citus 13.2.2's coordinator crashes (SIGSEGV in TryToDelegateFunctionCall)
 * on a delegated function called in a subquery or a CTE that the planner
 * pulls up: SELECT * FROM (SELECT ipai.check_entitlement(...)) s.  Such
 * subqueries get the always-true qual, which goes up with them and which
 * Citus's delegation does not take: the call runs on the coordinator, as
 * it would in a transaction block.  (A subquery with a qual of its own, a
 * MATERIALIZED CTE and a scalar subquery were never affected.)
 */
static bool
guard_subqueries(Node *node, void *context)
{
	ListCell   *lc;

	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind == RTE_SUBQUERY && delegation_shape(rte->subquery))
				rte->subquery->jointree->quals = always_true_qual();
		}
		foreach(lc, q->cteList)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (cte->ctematerialized != CTEMaterializeAlways &&
				IsA(cte->ctequery, Query) && delegation_shape((Query *) cte->ctequery))
				((Query *) cte->ctequery)->jointree->quals = always_true_qual();
		}
		return query_tree_walker(q, guard_subqueries, context, 0);
	}
	return expression_tree_walker(node, guard_subqueries, context);
}

static PlannedStmt *
identity_planner(Query *parse, const char *query_string, int cursor_options,
				 ParamListInfo bound_params)
{
	if (ipai_citus_installed_cached())
	{
		/* a call Citus would delegate, outside a block, with a user set */
		if (!IsTransactionBlock() && delegation_shape(parse) && identity_set())
			parse->jointree->quals = always_true_qual();
		(void) guard_subqueries((Node *) parse, NULL);
	}

	if (prev_planner)
		return prev_planner(parse, query_string, cursor_options, bound_params);
	return standard_planner(parse, query_string, cursor_options, bound_params);
}

/*
 * ipai_citus_identity_init
 *		Installs the hook and the transaction callbacks (from _PG_init).
 */
void
ipai_citus_identity_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = identity_executor_start;
	prev_planner = planner_hook;
	planner_hook = identity_planner;
	RegisterXactCallback(identity_xact_callback, NULL);
	RegisterSubXactCallback(identity_subxact_callback, NULL);
}
