/*-------------------------------------------------------------------------
 *
 * timezone.c
 *		ipai._timezone_is_valid(text): is a name one of the server's time
 *		zone names (pg_timezone_names)?
 *
 * pg_timezone_names walks the whole tz database and computes every zone's
 * offset, some 50 ms, which made every organization insert that slow.  The
 * names are read once per backend into a hash table in TopMemoryContext;
 * later lookups are a hash probe.  The tz database does not change while
 * the server runs (a tzdata upgrade takes effect at the next backend).
 *
 * Names match exactly (the case of pg_timezone_names): abbreviations such
 * as "EST" and POSIX specs such as "UTC+3", which SET TIME ZONE would also
 * take, are not zone names and are refused.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(ipai_timezone_is_valid);

typedef struct TzNameEntry
{
	char		name[TZ_STRLEN_MAX + 1];
} TzNameEntry;

static HTAB *tz_names = NULL;

/* fills tz_names from pg_timezone_names; on error the table stays unset */
static void
load_tz_names(void)
{
	HASHCTL		ctl;
	HTAB	   *names;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT name FROM pg_catalog.pg_timezone_names", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_timezone_names");

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = TZ_STRLEN_MAX + 1;
	ctl.entrysize = sizeof(TzNameEntry);
	ctl.hcxt = TopMemoryContext;
	names = hash_create("ipai time zone names", 1024, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (name != NULL && strlen(name) <= TZ_STRLEN_MAX)
			(void) hash_search(names, name, HASH_ENTER, NULL);
	}
	SPI_finish();
	tz_names = names;
}

/*
 * ipai._timezone_is_valid(name text) returns boolean
 *		STABLE STRICT.  True when name is in pg_timezone_names.
 */
Datum
ipai_timezone_is_valid(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strlen(name) > TZ_STRLEN_MAX || name[0] == '\0')
		PG_RETURN_BOOL(false);
	if (tz_names == NULL)
		load_tz_names();
	PG_RETURN_BOOL(hash_search(tz_names, name, HASH_FIND, NULL) != NULL);
}
