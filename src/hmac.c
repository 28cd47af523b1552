/*-------------------------------------------------------------------------
 *
 * hmac.c
 *		HMAC-SHA256 and constant-time comparison on OpenSSL's libcrypto.
 *
 * This is the only file of the extension that includes OpenSSL headers;
 * everything else goes through hmac.h.  It includes no server headers
 * either, so it links into the standalone test and fuzz binaries.
 *
 * Contract: no allocation that outlives a call, no global state of ours,
 * safe to call from any backend at any time.  Keys and messages are raw
 * bytes with explicit lengths (NUL bytes are ordinary bytes).
 *
 *-------------------------------------------------------------------------
 */
#include "hmac.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/*
 * ipai_hmac_sha256
 *		One-shot HMAC-SHA256 of msg under key into out.
 *
 * Returns false, never aborts, when OpenSSL cannot compute the MAC or the
 * key is longer than OpenSSL's int length; callers treat that as a failed
 * check or raise their own error.  The digest is produced in a stack buffer
 * and copied out only on success, so out never holds a partial MAC.
 */
bool
ipai_hmac_sha256(const void *key, size_t keylen,
				 const void *msg, size_t msglen,
				 unsigned char out[IPAI_HMAC_SHA256_LEN])
{
	static const unsigned char empty[1] = {0};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (out == NULL || keylen > (size_t) INT_MAX)
		return false;

	/* OpenSSL wants real pointers even for empty inputs */
	if (key == NULL || keylen == 0)
		key = empty;
	if (msg == NULL || msglen == 0)
		msg = empty;

	if (HMAC(EVP_sha256(), key, (int) keylen,
			 (const unsigned char *) msg, msglen, md, &mdlen) == NULL ||
		mdlen != IPAI_HMAC_SHA256_LEN)
	{
		OPENSSL_cleanse(md, sizeof(md));
		return false;
	}

	memcpy(out, md, IPAI_HMAC_SHA256_LEN);
	OPENSSL_cleanse(md, sizeof(md));
	return true;
}

/*
 * ipai_secure_equal
 *		True when the len bytes at a and b are equal.
 *
 * The time taken depends on len only, never on where the bytes differ, so
 * comparing an attacker's guess with an expected MAC leaks nothing.
 */
bool
ipai_secure_equal(const void *a, const void *b, size_t len)
{
	if (len == 0)
		return true;
	return CRYPTO_memcmp(a, b, len) == 0;
}
