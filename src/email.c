/*-------------------------------------------------------------------------
 *
 * email.c
 *		ipai.email_is_valid(text): SQL face of email_valid.c.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "email_valid.h"

PG_FUNCTION_INFO_V1(ipai_email_is_valid);

/*
 * ipai.email_is_valid(email text) returns boolean
 *		IMMUTABLE STRICT; see email_valid.c for what is accepted.
 */
Datum
ipai_email_is_valid(PG_FUNCTION_ARGS)
{
	text	   *email = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(ipai_email_plausible(VARDATA_ANY(email),
										VARSIZE_ANY_EXHDR(email)));
}
