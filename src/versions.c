/*-------------------------------------------------------------------------
 *
 * versions.c
 *		The version snapshot trigger of CMS pages.
 *
 * ipai._cms_pages_version() is attached to ipai.cms_pages twice:
 *
 *	BEFORE INSERT OR UPDATE, each row (trigger cms_pages_20_version): sets the
 *	page's version column.  A new page gets version 1; an UPDATE that changes
 *	the status gets the old version + 1; any other UPDATE keeps the old
 *	version, whatever the writer put there, so the column always names the
 *	latest snapshot.
 *
 *	AFTER INSERT, and AFTER UPDATE WHEN (OLD.version IS DISTINCT FROM
 *	NEW.version), each row (cms_pages_snapshot_insert/_update): writes the
 *	full snapshot (title, body, metadata, status, who, when) of the new row
 *	into ipai.cms_page_versions under that version number.  An UPDATE that
 *	changes nothing but content or updated_at is filtered out by the WHEN
 *	clause and costs no queued event at all.
 *
 * Why the numbers have no gaps: the BEFORE trigger reads the version from
 * OLD, and PostgreSQL hands a BEFORE ROW UPDATE trigger the row version it
 * has locked -- after a concurrent update committed, the newest one (READ
 * COMMITTED re-checks it), and under REPEATABLE READ or SERIALIZABLE the
 * update fails with a serialization error instead.  Two status changes of a
 * page are therefore serialized by its row lock and number themselves
 * n + 1, n + 2; a rolled-back change takes its snapshot with it.  The
 * primary key (org_id, page_id, version) would refuse a duplicate.
 *
 * The snapshot is written in an AFTER trigger because only then does the
 * page row exist for the foreign key of a new page, and because it must
 * record the row as every BEFORE trigger left it.  Snapshots are written as
 * the owner of ipai.cms_pages (the role that ran install_schema), so that
 * tenants, who may change a page's status but not write history, need no
 * privilege on ipai.cms_page_versions; the switch is a restricted-security
 * one, like the one maintenance commands use.
 *
 * Memory and SPI: the INSERT is prepared once per backend and kept
 * (SPI_keepplan), re-prepared only if the column types change (the
 * extension was dropped and created again in this session).  Nothing is
 * allocated outside the trigger's memory context except that plan.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(ipai_cms_pages_version);

/* columns of ipai.cms_pages the snapshot copies, in the INSERT's order */
#define SNAP_NCOLS 9
static const char *const snap_page_cols[2][SNAP_NCOLS] = {
	/* AFTER INSERT: the author and time of creation */
	{"org_id", "id", "version", "status", "title", "body", "metadata",
	"created_by", "created_at"},
	/* AFTER UPDATE: the author and time of this change */
	{"org_id", "id", "version", "status", "title", "body", "metadata",
	"updated_by", "updated_at"},
};

static const char *const snap_insert_sql =
"INSERT INTO ipai.cms_page_versions "
"(org_id, page_id, version, status, title, body, metadata, created_by, created_at) "
"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/* the kept INSERT plan and the argument types it was prepared with */
static SPIPlanPtr snap_plan = NULL;
static Oid	snap_plan_types[SNAP_NCOLS];

/*
 * page_attnum
 *		Attribute number of column name in the page table; a can't-happen
 *		error if it is missing (someone dropped a column the workflow needs).
 */
static int
page_attnum(TupleDesc tupdesc, const char *name)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0)
		elog(ERROR, "ipai.cms_pages has no column \"%s\"", name);
	return attnum;
}

/*
 * set_version
 *		BEFORE ROW: return the new row with its version column set as
 *		described in the file header; the trigger tuple itself is never
 *		modified.  Raises 22003 if a page ever exhausts the integer range.
 */
static HeapTuple
set_version(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			version_att = page_attnum(tupdesc, "version");
	HeapTuple	newtuple;
	int32		target;
	bool		isnull;
	Datum		current;

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtuple = trigdata->tg_trigtuple;
		target = 1;
	}
	else
	{
		int			status_att = page_attnum(tupdesc, "status");
		HeapTuple	oldtuple = trigdata->tg_trigtuple;
		Datum		old_status,
					new_status;
		bool		old_null,
					new_null;
		int32		old_version;

		newtuple = trigdata->tg_newtuple;
		old_version = DatumGetInt32(SPI_getbinval(oldtuple, tupdesc, version_att, &isnull));
		if (isnull)
			old_version = 0;
		old_status = SPI_getbinval(oldtuple, tupdesc, status_att, &old_null);
		new_status = SPI_getbinval(newtuple, tupdesc, status_att, &new_null);

		/* the status is an enum: its datum is the label's OID, by value */
		if (old_null != new_null ||
			(!old_null && DatumGetObjectId(old_status) != DatumGetObjectId(new_status)))
		{
			if (old_version == PG_INT32_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("page has too many versions")));
			target = old_version + 1;
		}
		else
			target = old_version;
	}

	current = SPI_getbinval(newtuple, tupdesc, version_att, &isnull);
	if (!isnull && DatumGetInt32(current) == target)
		return newtuple;

	{
		Datum		value = Int32GetDatum(target);
		bool		value_null = false;

		return heap_modify_tuple_by_cols(newtuple, tupdesc, 1, &version_att,
										 &value, &value_null);
	}
}

/*
 * write_snapshot
 *		AFTER ROW: insert the snapshot of the new row, as the owner of the
 *		page table.  The caller's user id and security context come back on
 *		return and, on error, with the (sub)transaction abort.
 */
static void
write_snapshot(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	bool		is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	HeapTuple	row = is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;
	const char *const *cols = snap_page_cols[is_insert ? 0 : 1];
	Datum		values[SNAP_NCOLS];
	char		nulls[SNAP_NCOLS];
	Oid			types[SNAP_NCOLS];
	Oid			save_userid;
	int			save_sec_context;
	int			i;
	int			rc;

	for (i = 0; i < SNAP_NCOLS; i++)
	{
		int			attnum = page_attnum(tupdesc, cols[i]);
		bool		isnull;

		values[i] = SPI_getbinval(row, tupdesc, attnum, &isnull);
		nulls[i] = isnull ? 'n' : ' ';
		types[i] = TupleDescAttr(tupdesc, attnum - 1)->atttypid;
	}

	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(rel->rd_rel->relowner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	/* prepared once per backend; again only if the column types changed */
	if (snap_plan != NULL && memcmp(snap_plan_types, types, sizeof(types)) != 0)
	{
		SPI_freeplan(snap_plan);
		snap_plan = NULL;
	}
	if (snap_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(snap_insert_sql, SNAP_NCOLS, types,
												  ipai_spi_plan_options(0));

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		snap_plan = plan;
		memcpy(snap_plan_types, types, sizeof(types));
	}

	rc = SPI_execute_plan(snap_plan, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT || SPI_processed != 1)
		elog(ERROR, "could not write page snapshot: %s", SPI_result_code_string(rc));

	SetUserIdAndSecContext(save_userid, save_sec_context);

	if ((rc = SPI_finish()) != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
}

/*
 * ipai._cms_pages_version() returns trigger
 *		BEFORE ROW INSERT/UPDATE: number the version; AFTER ROW INSERT/UPDATE:
 *		write the snapshot.  Anything else is a misuse of the function.
 */
Datum
ipai_cms_pages_version(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ipai._cms_pages_version() must be called as a trigger")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ipai._cms_pages_version() must fire for each row on INSERT or UPDATE")));

	if (TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		return PointerGetDatum(set_version(trigdata));

	if (TRIGGER_FIRED_AFTER(trigdata->tg_event))
		write_snapshot(trigdata);
	return PointerGetDatum(NULL);
}
