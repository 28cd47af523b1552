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
extern bool ipai_usage_fast_path;

/* usage_direct.c, usage_deltas.c: the metering fast path's hooks and
 * callbacks, installed by _PG_init */
extern void usage_direct_init(void);
extern void usage_deltas_init(void);

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

/* outbox_notify.c: wake the outbox senders (throttled NOTIFY, at commit) */
extern void ipai_outbox_wake(void);

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
 * The executor pieces the metering fast path (usage_direct.c) uses to write
 * rows the way logical replication applies them.
 *
 * PostgreSQL 16 made table_tuple_update report which indexes need new
 * entries (TU_UpdateIndexes: none, all, summarizing only) where 15 had a
 * bool, and gave ExecInsertIndexTuples an onlySummarizing argument.
 * PostgreSQL 17 made getIdentitySequence take the Relation.  PostgreSQL 18
 * gave ExecCheckIndexConstraints the TID of a tuple to ignore (none here)
 * and index_beginscan an instrumentation argument (none here).
 * Macros only: the files that use them include the executor headers.
 */
#if PG_VERSION_NUM >= 160000
#define ipai_update_indexes TU_UpdateIndexes
#define IPAI_INDEXES_ALL TU_All
#define ipai_update_needs_index_entries(u) ((u) != TU_None)
#define ipai_insert_index_tuples(rri, slot, estate, update, nodup, conflict, arbiters, u) \
	ExecInsertIndexTuples((rri), (slot), (estate), (update), (nodup), (conflict), \
						  (arbiters), (u) == TU_Summarizing)
#else
#define ipai_update_indexes bool
#define IPAI_INDEXES_ALL true
#define ipai_update_needs_index_entries(u) (u)
#define ipai_insert_index_tuples(rri, slot, estate, update, nodup, conflict, arbiters, u) \
	ExecInsertIndexTuples((rri), (slot), (estate), (update), (nodup), (conflict), (arbiters))
#endif

#if PG_VERSION_NUM >= 170000
#define ipai_identity_sequence(rel, attnum) getIdentitySequence((rel), (attnum), true)
#else
#define ipai_identity_sequence(rel, attnum) \
	getIdentitySequence(RelationGetRelid(rel), (attnum), true)
#endif

#if PG_VERSION_NUM >= 180000
#define ipai_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define ipai_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

#if PG_VERSION_NUM >= 180000
#define ipai_check_index_constraints(rri, slot, estate, conflict_tid, arbiters) \
	ExecCheckIndexConstraints((rri), (slot), (estate), (conflict_tid), NULL, (arbiters))
#else
#define ipai_check_index_constraints(rri, slot, estate, conflict_tid, arbiters) \
	ExecCheckIndexConstraints((rri), (slot), (estate), (conflict_tid), (arbiters))
#endif

/*
 * PostgreSQL 17 gave LockHeldByMe an "or a stronger mode" argument.
 */
#if PG_VERSION_NUM >= 170000
#define ipai_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode), false)
#else
#define ipai_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode))
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
