/*-------------------------------------------------------------------------
 *
 * ipai_saas.c
 *		Module entry point: PG_MODULE_MAGIC, _PG_init and the GUCs.
 *
 * Nothing else lives here.  Every feature has its own file; features that
 * need start-up work (the scheduler's background worker) expose an init
 * function that _PG_init calls.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "scheduler.h"

IPAI_MODULE_MAGIC;

void		_PG_init(void);

/* the acting user for callers that do not carry a JWT (Odoo, psql, tests) */
char	   *ipai_user_id_setting = NULL;

/* scheduled publishing */
char	   *ipai_scheduler_database = NULL;
bool		ipai_scheduler_enabled = true;

/* metering: read and write the usage tables without SPI when they qualify */
bool		ipai_usage_fast_path = true;

/*
 * _PG_init
 *		Define the ipai.* settings and reserve the prefix.
 *
 * Runs in every backend that loads the library, either at server start
 * (shared_preload_libraries) or on first use of a C function.
 */
void
_PG_init(void)
{
	DefineCustomStringVariable("ipai.user_id",
							   "Acting user id when no request.jwt.claims is set.",
							   "Used by Odoo, psql sessions and tests; a uuid or empty.",
							   &ipai_user_id_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("ipai.scheduler_database",
							   "Database served by the scheduled-publishing worker.",
							   NULL,
							   &ipai_scheduler_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("ipai.scheduler_enabled",
							 "Runs the scheduled-publishing background worker.",
							 NULL,
							 &ipai_scheduler_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("ipai.usage_fast_path",
							 "Lets the metering functions read and write their tables without SPI.",
							 "When off, or when a table is not a plain local heap table (a Citus "
							 "table, a view), they run their SQL statements through SPI.",
							 &ipai_usage_fast_path,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* the worker's own settings, its registration and shared memory */
	ipai_scheduler_init();

	/* with Citus: request.jwt.claims and ipai.user_id reach the workers */
	ipai_citus_identity_init();

	/* with Citus: the approval notifications written there are sent here */
	ipai_citus_relay_init();

	/* the metering fast path: its calls counted, counter deltas written */
	usage_direct_init();
	usage_deltas_init();

	MarkGUCPrefixReserved("ipai");
}
