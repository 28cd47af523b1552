/*-------------------------------------------------------------------------
 *
 * hmac.h
 *		HMAC-SHA256 and constant-time comparison, the extension's only
 *		door to OpenSSL.
 *
 * Plain C with no server headers: the standalone sanitizer, unit-test and
 * fuzz binaries link hmac.c with -lcrypto as is.  Nothing here allocates,
 * so nothing can leak when the server raises an error around a call.
 *
 *-------------------------------------------------------------------------
 */
#ifndef IPAI_HMAC_H
#define IPAI_HMAC_H

#include <stdbool.h>
#include <stddef.h>

/* length in bytes of an HMAC-SHA256 digest */
#define IPAI_HMAC_SHA256_LEN 32

/*
 * Signature of an HMAC-SHA256 implementation: writes the 32-byte MAC of
 * msg under key into out and returns true, or returns false when the
 * library could not compute it (out is then undefined).  key and msg may be
 * NULL when their length is 0.  webhook_sig.c takes one of these so tests
 * can substitute a failing one.
 */
typedef bool (*ipai_hmac_sha256_fn) (const void *key, size_t keylen,
									 const void *msg, size_t msglen,
									 unsigned char out[IPAI_HMAC_SHA256_LEN]);

extern bool ipai_hmac_sha256(const void *key, size_t keylen,
							 const void *msg, size_t msglen,
							 unsigned char out[IPAI_HMAC_SHA256_LEN]);

extern bool ipai_secure_equal(const void *a, const void *b, size_t len);

#endif							/* IPAI_HMAC_H */
