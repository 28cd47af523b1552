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

#include "commands/extension.h"
#include "nodes/parsenodes.h"

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
