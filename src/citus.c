/*-------------------------------------------------------------------------
 *
 * citus.c
 *		What the C code does differently when Citus serves this database.
 *
 * Citus plans a statement on distributed tables with its parameters'
 * values (to route it to the shard of one organization); it cannot make a
 * generic plan of most of ours ("could not create distributed plan").  The
 * statements our C functions prepare once per backend therefore ask for
 * generic plans only where Citus is not installed in the database; with
 * Citus they are re-planned with their values each time, as PL/pgSQL's
 * statements are.
 *
 * Contract: callable inside any transaction, allocates nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/*
 * ipai_spi_plan_options
 *		The cursor options for SPI_prepare_cursor of a kept statement:
 *		single_node (the caller's choice) where Citus is not installed,
 *		CURSOR_OPT_CUSTOM_PLAN where it is.
 */
int
ipai_spi_plan_options(int single_node)
{
	return ipai_citus_installed() ? CURSOR_OPT_CUSTOM_PLAN : single_node;
}

/*
 * ipai_citus_installed
 *		Whether Citus is installed in the current database.
 */
bool
ipai_citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

/*
 * ipai_citus_installed_cached
 *		ipai_citus_installed(), asked once per backend: for the hot paths
 *		(a backend that was running when Citus was installed keeps the old
 *		answer until it reconnects).
 */
bool
ipai_citus_installed_cached(void)
{
	static int	known = -1;

	if (known < 0)
		known = ipai_citus_installed() ? 1 : 0;
	return known == 1;
}

/*
 * ipai_citus_is_coordinator_cached
 *		Whether this node is the Citus coordinator (its group, in
 *		pg_catalog.pg_dist_local_group, is 0), asked once per backend.  False
 *		without Citus.
 */
bool
ipai_citus_is_coordinator_cached(void)
{
	static int	known = -1;

	if (known < 0)
	{
		Oid			relid;

		known = 0;
		if (!ipai_citus_installed_cached())
			return false;
		relid = get_relname_relid("pg_dist_local_group", PG_CATALOG_NAMESPACE);
		if (OidIsValid(relid))
		{
			Relation	rel = table_open(relid, AccessShareLock);
			SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
			HeapTuple	tup = systable_getnext(scan);

			if (HeapTupleIsValid(tup))
			{
				bool		isnull;
				Datum		d = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

				known = (!isnull && DatumGetInt32(d) == 0) ? 1 : 0;
			}
			systable_endscan(scan);
			table_close(rel, AccessShareLock);
		}
	}
	return known == 1;
}
