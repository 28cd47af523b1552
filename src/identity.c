/*-------------------------------------------------------------------------
 *
 * identity.c
 *		ipai.current_user_id(): who is acting.
 *
 * The acting user comes from the request.jwt.claims setting's "sub"
 * (PostgREST / Supabase), else from the ipai.user_id setting (Odoo, psql,
 * tests), else NULL.  The function is called once per statement by RLS
 * policies and on every entitlement check, so the parsed result is cached
 * per backend and re-parsed only when the setting's text changes.
 *
 * Contract: no SPI, no catalog access, no memory left behind in the
 * caller's context beyond the returned datum.  Malformed settings raise
 * 22023 (invalid_parameter_value) instead of acting as nobody: a
 * misconfigured gateway must fail closed and loudly.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "common/jsonapi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/guc.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(ipai_current_user_id);

/* the claims text we parsed last, and what it gave */
static char *cached_claims = NULL;
static bool cached_has_sub = false;
static pg_uuid_t cached_sub;

/* parse state for finding the top-level "sub" of the claims object */
typedef struct ClaimsParseState
{
	int			depth;			/* nesting of objects and arrays */
	bool		in_sub;			/* the next scalar is the top-level "sub" */
	bool		found;			/* "sub" seen (string or null) */
	bool		is_null;		/* "sub" was JSON null */
	bool		not_string;		/* "sub" was a number, boolean, object... */
	char	   *sub;			/* the string value */
	bool		top_is_object;
} ClaimsParseState;

static IPAI_JSON_CB_TYPE
claims_struct_start(void *state)
{
	ClaimsParseState *s = (ClaimsParseState *) state;

	if (s->in_sub)
	{
		s->not_string = true;
		s->in_sub = false;
	}
	s->depth++;
	IPAI_JSON_CB_RETURN;
}

static IPAI_JSON_CB_TYPE
claims_object_start(void *state)
{
	ClaimsParseState *s = (ClaimsParseState *) state;

	if (s->depth == 0)
		s->top_is_object = true;
	return claims_struct_start(state);
}

static IPAI_JSON_CB_TYPE
claims_struct_end(void *state)
{
	ClaimsParseState *s = (ClaimsParseState *) state;

	s->depth--;
	IPAI_JSON_CB_RETURN;
}

static IPAI_JSON_CB_TYPE
claims_field_start(void *state, char *fname, bool isnull)
{
	ClaimsParseState *s = (ClaimsParseState *) state;

	if (s->depth == 1 && strcmp(fname, "sub") == 0)
	{
		/* a repeated key: the last one wins, as in jsonb */
		s->found = true;
		s->is_null = false;
		s->not_string = false;
		s->sub = NULL;
		s->in_sub = true;
	}
	IPAI_JSON_CB_RETURN;
}

static IPAI_JSON_CB_TYPE
claims_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ClaimsParseState *s = (ClaimsParseState *) state;

	if (!s->in_sub)
		IPAI_JSON_CB_RETURN;
	s->in_sub = false;
	if (tokentype == JSON_TOKEN_STRING)
		s->sub = token;
	else if (tokentype == JSON_TOKEN_NULL)
		s->is_null = true;
	else
		s->not_string = true;
	IPAI_JSON_CB_RETURN;
}

/* hex value of c, or -1 */
static int
hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * ipai_parse_uuid
 *		Parse the canonical 8-4-4-4-12 hex form (either case) into *out;
 *		false for anything else (NULL included).
 *
 * Stricter than uuid_in on purpose: an identity is compared byte for byte
 * with stored ids, and an odd spelling is more likely a bug than a user.
 */
bool
ipai_parse_uuid(const char *str, pg_uuid_t *out)
{
	int			i;
	int			byte = 0;

	if (str == NULL || strlen(str) != 36)
		return false;
	for (i = 0; i < 36;)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (str[i] != '-')
				return false;
			i++;
			continue;
		}
		hi = hex_digit_value(str[i]);
		lo = hex_digit_value(str[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out->data[byte++] = (unsigned char) ((hi << 4) | lo);
		i += 2;
	}
	return byte == UUID_LEN;
}


/*
 * parse_claims
 *		Find the identity in a request.jwt.claims text.
 *
 * Returns true and fills *out when "sub" is a uuid string; returns false
 * when the claims carry no "sub" (or a JSON null one), as an anonymous
 * PostgREST request does.  Raises 22023 for text that is not a JSON
 * object, a "sub" that is not a string, or a string that is not a uuid.
 */
static bool
parse_claims(const char *claims, pg_uuid_t *out)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	ClaimsParseState state;
	JsonParseErrorType rc;
	char	   *copy = pstrdup(claims);

	memset(&state, 0, sizeof(state));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &state;
	sem.object_start = claims_object_start;
	sem.object_end = claims_struct_end;
	sem.array_start = claims_struct_start;
	sem.array_end = claims_struct_end;
	sem.object_field_start = claims_field_start;
	sem.scalar = claims_scalar;

	lex = ipai_make_json_lex(copy, strlen(copy));
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS || !state.top_is_object)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("setting \"request.jwt.claims\" is not a JSON object"),
				 errhint("The API gateway must pass the verified JWT claims as a JSON object.")));

	if (!state.found || state.is_null)
		return false;
	if (state.not_string || state.sub == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("claim \"sub\" in setting \"request.jwt.claims\" is not a string")));
	if (!ipai_parse_uuid(state.sub, out))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("claim \"sub\" in setting \"request.jwt.claims\" is not a uuid"),
				 errdetail("The claim is \"%s\".", state.sub)));
	return true;
}

/*
 * ipai_current_user_uuid
 *		Fill *result with the acting user; false when there is none.
 *
 * The JWT claims win over ipai.user_id.  A claims text is parsed once and
 * the outcome kept until the text changes, so repeated calls cost a
 * string comparison.  Raises 22023 on malformed settings.
 */
bool
ipai_current_user_uuid(pg_uuid_t *result)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);

	if (claims != NULL && claims[0] != '\0')
	{
		if (cached_claims == NULL || strcmp(cached_claims, claims) != 0)
		{
			pg_uuid_t	sub;
			bool		has_sub = parse_claims(claims, &sub);

			/* remember only what parsed cleanly */
			if (cached_claims != NULL)
				pfree(cached_claims);
			cached_claims = MemoryContextStrdup(TopMemoryContext, claims);
			cached_has_sub = has_sub;
			if (has_sub)
				cached_sub = sub;
		}
		if (cached_has_sub)
		{
			*result = cached_sub;
			return true;
		}
	}

	if (ipai_user_id_setting != NULL && ipai_user_id_setting[0] != '\0')
	{
		if (!ipai_parse_uuid(ipai_user_id_setting, result))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("setting \"ipai.user_id\" is not a uuid"),
					 errdetail("The setting is \"%s\".", ipai_user_id_setting)));
		return true;
	}
	return false;
}

/*
 * ipai.current_user_id() returns uuid
 *		The acting user, or NULL.  STABLE: settings cannot change mid-statement.
 */
Datum
ipai_current_user_id(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *result = palloc(sizeof(pg_uuid_t));

	if (!ipai_current_user_uuid(result))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(result);
}

PG_FUNCTION_INFO_V1(ipai_caller_is_privileged);

/*
 * ipai.caller_is_privileged() returns boolean
 *		Is the calling role trusted to act for any organization?
 *
 * Looks at the outer user id, the role set by SET ROLE or login, which a
 * SECURITY DEFINER function does not change: a definer function can thus
 * ask who called it.  True for superusers, roles with BYPASSRLS (Supabase's
 * service_role) and members of service_role.
 */
Datum
ipai_caller_is_privileged(PG_FUNCTION_ARGS)
{
	Oid			outer = GetOuterUserId();
	Oid			service_role;

	if (superuser_arg(outer) || has_bypassrls_privilege(outer))
		PG_RETURN_BOOL(true);
	service_role = get_role_oid("service_role", true);
	PG_RETURN_BOOL(OidIsValid(service_role) &&
				   is_member_of_role(outer, service_role));
}

PG_FUNCTION_INFO_V1(ipai_current_role_is_privileged);

/*
 * ipai._current_role_is_privileged() returns boolean
 *		Is the current role (the definer, inside SECURITY DEFINER code) a
 *		superuser or a role with BYPASSRLS?
 */
Datum
ipai_current_role_is_privileged(PG_FUNCTION_ARGS)
{
	Oid			role = GetUserId();

	PG_RETURN_BOOL(superuser_arg(role) || has_bypassrls_privilege(role));
}
