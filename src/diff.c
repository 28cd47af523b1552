/*-------------------------------------------------------------------------
 *
 * diff.c
 *		ipai.diff_words(old text, new text): SQL face of diff_core.c.
 *
 * The diff itself (tokens, Myers search, budget) lives in diff_core.c,
 * which knows nothing of the server; this file gives it palloc memory in a
 * private context and CHECK_FOR_INTERRUPTS as its interrupt hook
 * (ipai_word_diff, for any C caller), and turns its chunks into rows of a
 * materialized set.
 *
 * Memory: all working memory is in a child of the caller's context that is
 * deleted before returning; on an error or a cancel (CHECK_FOR_INTERRUPTS
 * may throw from deep inside the search) it goes with the parent.  No
 * locks, no catalog access: IMMUTABLE and PARALLEL SAFE.
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "diff_core.h"

/* diff_core's allocator: huge allocations, since a text may be up to 1 GB */
static void *
diff_palloc(void *arg, size_t size)
{
	return MemoryContextAllocHuge((MemoryContext) arg, size);
}

static void
diff_pfree(void *arg, void *ptr)
{
	pfree(ptr);
}

static void
diff_interrupt(void *arg)
{
	CHECK_FOR_INTERRUPTS();
}

/*
 * Word diff of two texts for C callers in the server (ipai.diff_words, and
 * renderers such as an HTML diff): *result gets the chunk list, allocated in
 * CurrentMemoryContext; working memory goes in a child context that is
 * deleted before returning.  Chunk offsets point into old_data / new_data,
 * which the caller keeps.  Honours query cancel; raises only on internal
 * errors (out of memory raises as palloc does).
 */
void
ipai_word_diff(const char *old_data, size_t old_len,
			   const char *new_data, size_t new_len,
			   IpaiDiffResult *result)
{
	MemoryContext workcxt;
	IpaiDiffEnv env;
	IpaiDiffResult work;
	int			rc;

	workcxt = AllocSetContextCreate(CurrentMemoryContext,
									"ipai word diff",
									ALLOCSET_DEFAULT_SIZES);
	env.alloc = diff_palloc;
	env.release = diff_pfree;
	env.interrupt = diff_interrupt;
	env.arg = workcxt;
	env.budget = 0;				/* IPAI_DIFF_DEFAULT_BUDGET */

	rc = ipai_diff_compute(old_data, old_len, new_data, new_len, &env, &work);
	if (rc != IPAI_DIFF_OK)
		elog(ERROR, "could not compute the word diff (internal code %d)", rc);

	/* keep only the chunk list, in the caller's context */
	*result = work;
	result->chunks = MemoryContextAllocHuge(CurrentMemoryContext,
											Max(work.nchunks, 1) *
											sizeof(IpaiDiffChunk));
	memcpy(result->chunks, work.chunks, work.nchunks * sizeof(IpaiDiffChunk));
	MemoryContextDelete(workcxt);
}

PG_FUNCTION_INFO_V1(ipai_diff_words);

/*
 * ipai.diff_words(old text, new text) returns table(op text, chunk text)
 *		IMMUTABLE STRICT.  Rows in order; op '=' (in both), '-' (only in old)
 *		or '+' (only in new).  See diff_core.c for the tokens and the budget
 *		beyond which the edit, still exact to rebuild, stops being minimal.
 */
Datum
ipai_diff_words(PG_FUNCTION_ARGS)
{
	text	   *old_text = PG_GETARG_TEXT_PP(0);
	text	   *new_text = PG_GETARG_TEXT_PP(1);
	const char *old_data = VARDATA_ANY(old_text);
	const char *new_data = VARDATA_ANY(new_text);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext workcxt;
	MemoryContext oldcxt;
	IpaiDiffResult result;
	Datum		op_equal,
				op_delete,
				op_insert;
	size_t		i;

	InitMaterializedSRF(fcinfo, 0);

	ipai_word_diff(old_data, VARSIZE_ANY_EXHDR(old_text),
				   new_data, VARSIZE_ANY_EXHDR(new_text), &result);

	/* each row's text is built in a scratch context; the tuplestore copies */
	workcxt = AllocSetContextCreate(CurrentMemoryContext,
									"ipai.diff_words rows",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(workcxt);
	op_equal = PointerGetDatum(cstring_to_text("="));
	op_delete = PointerGetDatum(cstring_to_text("-"));
	op_insert = PointerGetDatum(cstring_to_text("+"));
	for (i = 0; i < result.nchunks; i++)
	{
		const IpaiDiffChunk *chunk = &result.chunks[i];
		Datum		values[2];
		bool		nulls[2] = {false, false};
		const char *src;
		text	   *chunk_text;

		if (chunk->op == IPAI_DIFF_INSERT)
		{
			values[0] = op_insert;
			src = new_data + chunk->new_off;
		}
		else
		{
			values[0] = chunk->op == IPAI_DIFF_EQUAL ? op_equal : op_delete;
			src = old_data + chunk->old_off;
		}
		chunk_text = cstring_to_text_with_len(src, (int) chunk->len);
		values[1] = PointerGetDatum(chunk_text);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
		pfree(chunk_text);

		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(workcxt);
	pfree(result.chunks);

	return (Datum) 0;
}
