/*-------------------------------------------------------------------------
 *
 * diff_core.h
 *		Word diff of two UTF-8 texts: tokenizer, Myers O(ND) with a work
 *		budget, and the resulting list of chunks.
 *
 * Plain C with no server headers, so the unit-test and fuzz binaries link
 * diff_core.c as is.  Memory comes from the caller's allocator and the
 * caller's interrupt hook is called from every long loop; see IpaiDiffEnv.
 *
 * The chunk list is what a renderer needs: each chunk says which side its
 * text comes from and where it sits in both texts, so a side-by-side HTML
 * view (old left, new right) can be written from it without re-diffing.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_DIFF_CORE_H
#define IPAI_DIFF_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What the core needs from its host.
 *
 * alloc returns memory aligned for any type, or NULL when out of memory (the
 * server's allocator raises an error instead and never returns NULL);
 * release frees it.  Sizes are never zero.  interrupt, when set, is called
 * every few milliseconds of work and may longjmp out (the server's
 * CHECK_FOR_INTERRUPTS): the core keeps no state outside memory from alloc,
 * so nothing leaks when the host frees that memory wholesale.
 *
 * budget bounds the search: roughly the number of token comparisons and
 * diagonal steps the Myers search may spend (0 means
 * IPAI_DIFF_DEFAULT_BUDGET).  Beyond it the result is still a valid diff
 * that reconstructs both texts, but no longer a minimal one.
 */
typedef struct IpaiDiffEnv
{
	void	   *(*alloc) (void *arg, size_t size);
	void		(*release) (void *arg, void *ptr);
	void		(*interrupt) (void *arg);
	void	   *arg;
	uint64_t	budget;
} IpaiDiffEnv;

/* Spent whole by two unrelated 1 MB texts: about 0.4 s on an idle 2-core VM. */
#define IPAI_DIFF_DEFAULT_BUDGET	((uint64_t) 60 * 1000 * 1000)

/* Chunk operations, as the SQL function prints them. */
#define IPAI_DIFF_EQUAL		'='
#define IPAI_DIFF_DELETE	'-'
#define IPAI_DIFF_INSERT	'+'

/*
 * One chunk of the diff.  Its text is len bytes at old + old_off for '='
 * and '-', at new + new_off for '+'.  old_off and new_off are both always
 * set: where the chunk starts (or, for the side that lacks it, where it
 * would be) in each text, so old_off of a '+' chunk is the position in old
 * where the insertion happens.  Chunks start and end on token boundaries,
 * hence never inside a UTF-8 character, and len is never 0.
 */
typedef struct IpaiDiffChunk
{
	char		op;
	size_t		old_off;
	size_t		new_off;
	size_t		len;
} IpaiDiffChunk;

/*
 * The result: chunks in order; joining the '=' and '-' chunks gives old,
 * joining the '=' and '+' chunks gives new, and no two neighbours have the
 * same op.  Within a changed stretch the '-' chunk comes before the '+'
 * chunk.  exact is true when the search stayed within its budget, and the
 * edit is then minimal in tokens (deleted_tokens + inserted_tokens).
 */
typedef struct IpaiDiffResult
{
	IpaiDiffChunk *chunks;
	size_t		nchunks;
	size_t		old_tokens;
	size_t		new_tokens;
	size_t		deleted_tokens;
	size_t		inserted_tokens;
	bool		exact;
	uint64_t	work;			/* work units spent by the search */
} IpaiDiffResult;

/* Return codes */
#define IPAI_DIFF_OK		0
#define IPAI_DIFF_ENOMEM	(-1)	/* alloc returned NULL */
#define IPAI_DIFF_EINTERNAL	(-2)	/* a bug: the alignment was inconsistent */

/*
 * Diff old (old_len bytes) against new (new_len bytes).  Either pointer may
 * be NULL when its length is 0.  Bytes that are not valid UTF-8 become
 * one-byte tokens; nothing outside the given lengths is ever read.  On
 * success *result holds memory from env->alloc, to be freed with
 * ipai_diff_free_result; on failure *result is empty.
 */
extern int	ipai_diff_compute(const char *old_text, size_t old_len,
							  const char *new_text, size_t new_len,
							  const IpaiDiffEnv *env, IpaiDiffResult *result);

extern void ipai_diff_free_result(const IpaiDiffEnv *env,
								  IpaiDiffResult *result);

/*
 * Split text into tokens as the diff sees them.  On success *bounds holds
 * *ntokens + 1 offsets (token i is bytes bounds[i] .. bounds[i + 1]), to be
 * freed with env->release.  For tests and for renderers that want to know
 * the token boundaries.
 */
extern int	ipai_diff_tokenize(const char *text, size_t len,
							   const IpaiDiffEnv *env,
							   size_t **bounds, size_t *ntokens);

#endif							/* IPAI_DIFF_CORE_H */
