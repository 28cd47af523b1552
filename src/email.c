/*-------------------------------------------------------------------------
 *
 * email.c
 *		ipai.email_is_valid(text): SQL face of email_valid.c.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "email_valid.h"

PG_FUNCTION_INFO_V1(ipai_email_is_valid);

/*
 * ipai.email_is_valid(email text) returns boolean
 *		IMMUTABLE STRICT; see email_valid.c for what is accepted.  The
 *		validator reads UTF-8: in a database of another encoding the
 *		address is converted first (an unconvertible character raises the
 *		server's conversion error).
 */
Datum
ipai_email_is_valid(PG_FUNCTION_ARGS)
{
	text	   *email = PG_GETARG_TEXT_PP(0);
	const char *s = VARDATA_ANY(email);
	int			len = VARSIZE_ANY_EXHDR(email);
	bool		ok;

	if (GetDatabaseEncoding() != PG_UTF8 && len <= 254)
	{
		char	   *u = pg_server_to_any(s, len, PG_UTF8);

		if (u != s)
		{
			ok = ipai_email_plausible(u, strlen(u));
			pfree(u);
			PG_RETURN_BOOL(ok);
		}
	}
	ok = ipai_email_plausible(s, len);
	PG_RETURN_BOOL(ok);
}
