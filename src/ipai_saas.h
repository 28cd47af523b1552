/*-------------------------------------------------------------------------
 *
 * ipai_saas.h
 *		Declarations shared by the C files of the ipai_saas extension.
 *
 * Everything that differs between PostgreSQL major versions lives here as a
 * small macro, so the .c files read the same on 15 to 18.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_SAAS_H
#define IPAI_SAAS_H

#include "postgres.h"

/*
 * The varlena macros (VARDATA_ANY, VARSIZE_ANY_EXHDR, SET_VARSIZE) moved to
 * varatt.h in PostgreSQL 16; postgres.h stopped including it in 18.
 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

#include "utils/uuid.h"

/* SQLSTATEs of the public contract (SPEC section 9). */
#define ERRCODE_IPAI_ENTITLEMENT_EXCEEDED	MAKE_SQLSTATE('I','P','0','0','1')
#define ERRCODE_IPAI_SIGNATURE_INVALID		MAKE_SQLSTATE('I','P','0','0','2')
#define ERRCODE_IPAI_TRANSITION_NOT_ALLOWED	MAKE_SQLSTATE('I','P','0','0','4')
#define ERRCODE_IPAI_SEAT_LIMIT_REACHED		MAKE_SQLSTATE('I','P','0','0','5')

/* GUCs (defined in ipai_saas.c) */
extern char *ipai_user_id_setting;
extern char *ipai_scheduler_database;
extern bool ipai_scheduler_enabled;

/* citus.c: SPI_prepare_cursor options of kept statements; Citus here? */
extern int	ipai_spi_plan_options(int single_node);
extern bool ipai_citus_installed(void);
extern bool ipai_citus_installed_cached(void);
extern bool ipai_citus_is_coordinator_cached(void);

/* citus_identity.c: the acting user's settings carried to the workers */
extern void ipai_citus_identity_init(void);

/* citus_relay.c: the workers' approval notifications sent at commit */
extern void ipai_citus_relay_init(void);

/* identity.c */
extern bool ipai_current_user_uuid(pg_uuid_t *result);
extern bool ipai_parse_uuid(const char *str, pg_uuid_t *out);

/* diff.c: word diff for C callers; chunks as in diff_core.h */
struct IpaiDiffResult;
extern void ipai_word_diff(const char *old_data, size_t old_len,
						   const char *new_data, size_t new_len,
						   struct IpaiDiffResult *result);

/*
 * Version compatibility.
 *
 * PostgreSQL 16 made the JSON semantic-action callbacks return an error code;
 * 15 declares them void.  IPAI_JSON_CB_TYPE / IPAI_JSON_CB_RETURN hide that.
 * PostgreSQL 17 made makeJsonLexContextCstringLen take a caller-provided
 * context first.
 */
#if PG_VERSION_NUM >= 160000
#define IPAI_JSON_CB_TYPE JsonParseErrorType
#define IPAI_JSON_CB_RETURN return JSON_SUCCESS
#else
#define IPAI_JSON_CB_TYPE void
#define IPAI_JSON_CB_RETURN return
#endif

#if PG_VERSION_NUM >= 170000
#define ipai_make_json_lex(json, len) \
	makeJsonLexContextCstringLen(NULL, (json), (len), GetDatabaseEncoding(), true)
#else
#define ipai_make_json_lex(json, len) \
	makeJsonLexContextCstringLen((json), (len), GetDatabaseEncoding(), true)
#endif

/*
 * PostgreSQL 18 replaced pg_attribute_noreturn(), written after the
 * declarator, by pg_noreturn, written before the declaration (C11
 * _Noreturn).  Both spellings go in front of the declaration here, where
 * GCC, Clang and MSVC accept either.
 */
#if PG_VERSION_NUM >= 180000
#define ipai_noreturn pg_noreturn
#else
#define ipai_noreturn pg_attribute_noreturn()
#endif

/*
 * PostgreSQL 18 lets a module name itself and its version in its magic
 * block (pg_get_loaded_modules() shows them); IPAI_EXTVERSION comes from
 * the Makefile's EXTVERSION.
 */
#if PG_VERSION_NUM >= 180000
#ifndef IPAI_EXTVERSION
#error "IPAI_EXTVERSION is not defined: build with the Makefile (PGXS)"
#endif
#define IPAI_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "ipai_saas", .version = IPAI_EXTVERSION)
#else
#define IPAI_MODULE_MAGIC PG_MODULE_MAGIC
#endif

#endif							/* IPAI_SAAS_H */
