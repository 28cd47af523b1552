/*-------------------------------------------------------------------------
 *
 * token.c
 *		Secret tokens for invitations: generation and hashing.
 *
 * A token is 32 bytes (256 bits) from pg_strong_random(), the server's
 * cryptographic source (OpenSSL's RAND_bytes or /dev/urandom), written as
 * 43 characters of unpadded base64url so it travels in a URL unescaped.
 * Only its SHA-256 is stored; a token is found again by hashing what the
 * caller presents and looking the hash up (an index lookup: comparing
 * hashes of unguessable tokens leaks nothing useful through timing).
 *
 * Contract: no SPI, no catalog access; nothing secret is left in memory
 * beyond the returned datum (the random bytes are wiped).
 *
 *-------------------------------------------------------------------------
 */
#include "ipai_saas.h"

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "port.h"
#include "utils/builtins.h"

#define IPAI_TOKEN_BYTES	32
/* unpadded base64 of n bytes: ceil(4n/3) */
#define IPAI_TOKEN_CHARS	((IPAI_TOKEN_BYTES * 4 + 2) / 3)

PG_FUNCTION_INFO_V1(ipai_new_token);
PG_FUNCTION_INFO_V1(ipai_token_hash);

static const char base64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Unpadded base64url of src[0..len) into dst, which must hold
 * (4 * len + 2) / 3 bytes; returns the number of characters written.
 */
static size_t
base64url_encode(const uint8 *src, size_t len, char *dst)
{
	size_t		i;
	size_t		n = 0;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = ((uint32) src[i] << 16) | ((uint32) src[i + 1] << 8) | src[i + 2];

		dst[n++] = base64url[(v >> 18) & 0x3f];
		dst[n++] = base64url[(v >> 12) & 0x3f];
		dst[n++] = base64url[(v >> 6) & 0x3f];
		dst[n++] = base64url[v & 0x3f];
	}
	if (len - i == 1)
	{
		uint32		v = (uint32) src[i] << 16;

		dst[n++] = base64url[(v >> 18) & 0x3f];
		dst[n++] = base64url[(v >> 12) & 0x3f];
	}
	else if (len - i == 2)
	{
		uint32		v = ((uint32) src[i] << 16) | ((uint32) src[i + 1] << 8);

		dst[n++] = base64url[(v >> 18) & 0x3f];
		dst[n++] = base64url[(v >> 12) & 0x3f];
		dst[n++] = base64url[(v >> 6) & 0x3f];
	}
	return n;
}

/*
 * ipai._new_token() returns text
 *		A new random token of 256 bits as 43 base64url characters.  VOLATILE.
 *		Raises an internal error if the server has no strong random source.
 */
Datum
ipai_new_token(PG_FUNCTION_ARGS)
{
	uint8		raw[IPAI_TOKEN_BYTES];
	char		out[IPAI_TOKEN_CHARS];
	size_t		n;
	text	   *result;

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random token"),
				 errdetail("The server's strong random source returned an error.")));
	n = base64url_encode(raw, sizeof(raw), out);
	Assert(n == IPAI_TOKEN_CHARS);
	result = cstring_to_text_with_len(out, (int) n);
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(out, sizeof(out));
	PG_RETURN_TEXT_P(result);
}

/*
 * ipai._token_hash(token text) returns bytea
 *		SHA-256 of the token's bytes (32 bytes).  IMMUTABLE STRICT.
 */
Datum
ipai_token_hash(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);
	pg_cryptohash_ctx *ctx;
	bytea	   *result = (bytea *) palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) VARDATA_ANY(token),
							 VARSIZE_ANY_EXHDR(token)) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(result),
							PG_SHA256_DIGEST_LENGTH) < 0)
	{
		pg_cryptohash_free(ctx);
		elog(ERROR, "could not compute SHA-256");
	}
	pg_cryptohash_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	PG_RETURN_BYTEA_P(result);
}
