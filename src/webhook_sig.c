/*-------------------------------------------------------------------------
 *
 * webhook_sig.c
 *		Parse and check webhook signatures: Stripe and Standard Webhooks.
 *
 * Plain C, no server headers (see webhook_sig.h); the HMAC comes in as a
 * function pointer (normally ipai_hmac_sha256 from hmac.c), the comparison
 * of MACs is ipai_secure_equal (CRYPTO_memcmp).
 *
 * The rule for both schemes: a header is a list of candidate signatures;
 * an entry that cannot be a signature (wrong length, wrong alphabet,
 * unknown scheme) is skipped and never matches, and the header verifies
 * when any well-formed candidate equals the expected MAC.  So a junk entry
 * next to a good one does not hide the good one, which is what the
 * reference implementations do (Stripe's Node SDK, stripe 23.1.0, keeps
 * every v1 value and compares each; the Standard Webhooks libraries loop
 * over the entries).  Where those references are looser than is safe, we
 * stay stricter (see "t" below); the signed message is always exactly the
 * text whose timestamp we check.
 *
 * Stripe-Signature, as parsed here (the Node SDK's split, item by item):
 *	- the header is split at every ","; an item's key is what precedes its
 *	  first "=", its value what lies between that "=" and the next "=" (or
 *	  the item's end), as the SDK's item.split('=')[1]; nothing is trimmed
 *	  (" t=1" has key " t");
 *	- empty items (",,", a trailing comma), items without "=" and items of
 *	  other keys ("v0", future schemes, the empty key) are ignored, as by
 *	  the SDK;
 *	- "t": the last "t" item counts, as in the SDK; its
 *	  value must be a canonical decimal: 1 to 19 digits, no sign, space or
 *	  leading zero, at most INT64_MAX.  No "t", or a last "t" that is not
 *	  such a number (a bare "t" included), rejects the header.  Stricter
 *	  than the SDK, which reads t with parseInt ("0123", "12abc", "NaN")
 *	  and signs the number it read: Stripe only sends canonical digits, and
 *	  a timestamp that is not a number must never pass;
 *	- "v1": every item is a candidate; a candidate is usable when its
 *	  value is exactly 64 lower-case hex digits (what Stripe sends and what
 *	  the SDK's string comparison can match: an upper-case, odd-length,
 *	  short, long or non-hex value never matches, and is skipped).  An
 *	  EMPTY v1 value ("v1=", "v1", "v1==x") rejects the whole header: the
 *	  SDK's secureCompare throws on it, whatever the other entries, and an
 *	  empty signature is the known forgery attempt;
 *	- at least one "v1" item is needed, and at least one usable one.
 * The signed message is t's digits as they appear, ".", then the payload's
 * raw bytes; the key is the whole secret string ("whsec_..." included).
 * The header is accepted when any usable v1 equals the lower-case hex of
 * the HMAC-SHA256 (every one is compared, in constant time, no early exit)
 * and |now - t| <= tolerance (the SDK checks only the past; the SPEC says
 * both ways).
 *
 * Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature):
 *	- the secret is base64 after an optional "whsec_" prefix (and, as
 *	  Supabase shows it, an optional "v1," before that); the decoded bytes
 *	  are the key; an empty or non-base64 secret is the caller's error;
 *	- the message id must be non-empty; the timestamp is a canonical
 *	  decimal as above;
 *	- the header is a list of entries separated by spaces (runs of spaces
 *	  are empty entries, ignored); an entry's version is what precedes its
 *	  first ",", its signature what lies between that "," and the next ","
 *	  (or the entry's end), as the JavaScript and Go libraries split it;
 *	- entries of other versions ("v1a", "v2"), entries without "," and v1
 *	  entries whose signature is not exactly the canonical padded base64
 *	  of 32 bytes (44 characters: "v1," empty, truncated, unpadded,
 *	  non-base64, a trailing tab) are skipped and never match;
 *	- at least one v1 entry is needed, and at least one usable one;
 *	- signed message: id "." timestamp "." payload; any usable v1 may
 *	  match (all compared in constant time); |now - timestamp| <= tolerance.
 *
 * Order of checks, for both: caller errors (tolerance, secret) first, then
 * the header's form, then the signature, then the time: an authentic but
 * stale delivery is reported as such (IPAI_SIG_OUTSIDE_TOLERANCE), which
 * tells an operator "replay or clock skew" rather than "wrong secret".
 * Statuses (for logs; all mean "not verified"): no "t", a bad "t", an empty
 * Stripe v1, or v1 entries none of which is usable ->
 * IPAI_SIG_MALFORMED_HEADER; no v1 entry at all -> IPAI_SIG_NO_SIGNATURE;
 * usable v1 entries, none matching -> IPAI_SIG_MISMATCH.
 *
 *-------------------------------------------------------------------------
 */
#include "webhook_sig.h"

#include <stdlib.h>
#include <string.h>

#define STRIPE_V1_HEX_LEN	(2 * IPAI_HMAC_SHA256_LEN)
#define STDWH_V1_B64_LEN	44	/* padded base64 of 32 bytes */
#define MAX_INT64_DIGITS	19

/*
 * ipai_sig_status_text
 *		Short description of a status, for log messages and errors.
 */
const char *
ipai_sig_status_text(ipai_sig_status status)
{
	switch (status)
	{
		case IPAI_SIG_OK:
			return "signature verified";
		case IPAI_SIG_MALFORMED_HEADER:
			return "signature header is malformed";
		case IPAI_SIG_NO_SIGNATURE:
			return "signature header has no v1 signature";
		case IPAI_SIG_BAD_TIMESTAMP:
			return "timestamp is not a valid integer";
		case IPAI_SIG_MISSING_ID:
			return "message id is empty";
		case IPAI_SIG_MISMATCH:
			return "no signature matches the payload";
		case IPAI_SIG_OUTSIDE_TOLERANCE:
			return "timestamp is outside the tolerance";
		case IPAI_SIG_BAD_SECRET:
			return "signing secret is empty or invalid";
		case IPAI_SIG_BAD_TOLERANCE:
			return "tolerance must be greater than zero";
		case IPAI_SIG_NO_MEMORY:
			return "out of memory";
		case IPAI_SIG_CRYPTO_ERROR:
			return "could not compute HMAC-SHA256";
		case IPAI_SIG_BUFFER_TOO_SMALL:
			return "output buffer too small";
	}
	return "unknown signature status";
}

/*
 * ipai_sig_status_is_rejection
 *		True when the status means only "this delivery is not verified".
 */
bool
ipai_sig_status_is_rejection(ipai_sig_status status)
{
	switch (status)
	{
		case IPAI_SIG_MALFORMED_HEADER:
		case IPAI_SIG_NO_SIGNATURE:
		case IPAI_SIG_BAD_TIMESTAMP:
		case IPAI_SIG_MISSING_ID:
		case IPAI_SIG_MISMATCH:
		case IPAI_SIG_OUTSIDE_TOLERANCE:
			return true;
		default:
			return false;
	}
}

/* ---------------------------------------------------------------------
 * Building blocks
 * ---------------------------------------------------------------------
 */

/*
 * ipai_parse_unix_seconds
 *		Parse a canonical non-negative decimal of at most INT64_MAX.
 *
 * Canonical means 1 to 19 ASCII digits with no sign, space or leading zero
 * ("0" itself is allowed), so that the digits signed by the sender and the
 * number we compare are the same thing.  Looks at no more than 19 bytes.
 */
bool
ipai_parse_unix_seconds(const char *s, size_t len, int64_t *result)
{
	uint64_t	v = 0;
	size_t		i;

	if (s == NULL || len == 0 || len > MAX_INT64_DIGITS)
		return false;
	if (len > 1 && s[0] == '0')
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < '0' || c > '9')
			return false;
		/* 19 digits fit in uint64_t (max 9999999999999999999 < 2^64) */
		v = v * 10 + (uint64_t) (c - '0');
	}
	if (v > (uint64_t) INT64_MAX)
		return false;
	*result = (int64_t) v;
	return true;
}

/*
 * ipai_within_tolerance
 *		|now - t| <= tolerance, without overflow for any int64 inputs.
 */
bool
ipai_within_tolerance(int64_t t, int64_t now, int32_t tolerance)
{
	return ipai_within_tolerance_us(t, now, 0, tolerance);
}

/*
 * ipai_within_tolerance_us
 *		|(now + now_us / 10^6) - t| <= tolerance exactly, for a moment with a
 *		fraction of a second (0 <= now_us < 10^6): past t, the fraction makes
 *		a whole second of difference count as more than it.
 */
bool
ipai_within_tolerance_us(int64_t t, int64_t now, int32_t now_us, int32_t tolerance)
{
	uint64_t	diff;

	if (tolerance < 0)
		return false;
	/* the true difference of two int64 always fits in uint64 */
	if (now >= t)
	{
		diff = (uint64_t) now - (uint64_t) t;
		if (now_us > 0)
			return diff < (uint64_t) tolerance;
	}
	else
		diff = (uint64_t) t - (uint64_t) now;
	return diff <= (uint64_t) tolerance;
}

static int
hex_value(unsigned char c)
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
 * ipai_hex_decode
 *		Decode exactly 2 * dstlen hex digits (either case) into dst.
 *
 * False on any other length or any non-hex byte; dst may then hold part
 * of the result.
 */
bool
ipai_hex_decode(const char *src, size_t len, unsigned char *dst, size_t dstlen)
{
	size_t		i;

	if (src == NULL || dst == NULL || dstlen > SIZE_MAX / 2 ||
		len != 2 * dstlen)
		return false;
	for (i = 0; i < dstlen; i++)
	{
		int			hi = hex_value((unsigned char) src[2 * i]);
		int			lo = hex_value((unsigned char) src[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		dst[i] = (unsigned char) ((hi << 4) | lo);
	}
	return true;
}

/*
 * ipai_hex_encode
 *		Lower-case hex of len bytes into dst (2 * len chars, no NUL).
 */
void
ipai_hex_encode(const unsigned char *src, size_t len, char *dst)
{
	static const char digits[] = "0123456789abcdef";
	size_t		i;

	for (i = 0; i < len; i++)
	{
		dst[2 * i] = digits[src[i] >> 4];
		dst[2 * i + 1] = digits[src[i] & 0x0f];
	}
}

static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * ipai_base64_decode
 *		Decode canonical standard base64 (RFC 4648 section 4).
 *
 * Padding is optional, but when present the input is a multiple of 4 long
 * with at most two trailing "="; no whitespace, no URL-safe alphabet, and
 * the unused low bits of the last character must be zero, so every byte
 * string has exactly one accepted padded and one unpadded encoding.
 * Writes at most dstcap bytes; false when the input is invalid or would
 * not fit.
 */
bool
ipai_base64_decode(const char *src, size_t len,
				   unsigned char *dst, size_t dstcap, size_t *outlen)
{
	size_t		pad = 0;
	size_t		n;
	size_t		need;
	size_t		i;
	size_t		o = 0;

	if (src == NULL || outlen == NULL)
		return false;
	if (len > 0 && src[len - 1] == '=')
	{
		pad = 1;
		if (len > 1 && src[len - 2] == '=')
			pad = 2;
		if (len % 4 != 0)
			return false;
	}
	n = len - pad;
	if (n % 4 == 1)
		return false;
	need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (need > dstcap || (need > 0 && dst == NULL))
		return false;

	for (i = 0; i + 4 <= n; i += 4)
	{
		int			a = b64_value((unsigned char) src[i]);
		int			b = b64_value((unsigned char) src[i + 1]);
		int			c = b64_value((unsigned char) src[i + 2]);
		int			d = b64_value((unsigned char) src[i + 3]);

		if ((a | b | c | d) < 0)
			return false;
		dst[o++] = (unsigned char) ((a << 2) | (b >> 4));
		dst[o++] = (unsigned char) (((b & 0x0f) << 4) | (c >> 2));
		dst[o++] = (unsigned char) (((c & 0x03) << 6) | d);
	}
	if (n - i == 2)
	{
		int			a = b64_value((unsigned char) src[i]);
		int			b = b64_value((unsigned char) src[i + 1]);

		if ((a | b) < 0 || (b & 0x0f) != 0)
			return false;
		dst[o++] = (unsigned char) ((a << 2) | (b >> 4));
	}
	else if (n - i == 3)
	{
		int			a = b64_value((unsigned char) src[i]);
		int			b = b64_value((unsigned char) src[i + 1]);
		int			c = b64_value((unsigned char) src[i + 2]);

		if ((a | b | c) < 0 || (c & 0x03) != 0)
			return false;
		dst[o++] = (unsigned char) ((a << 2) | (b >> 4));
		dst[o++] = (unsigned char) (((b & 0x0f) << 4) | (c >> 2));
	}
	*outlen = o;
	return true;
}

/*
 * ipai_base64_encode
 *		Padded standard base64 of len bytes into dst; returns the number of
 *		characters written (4 * ceil(len / 3)), no NUL.
 */
size_t
ipai_base64_encode(const unsigned char *src, size_t len, char *dst)
{
	size_t		i;
	size_t		o = 0;

	for (i = 0; i + 3 <= len; i += 3)
	{
		uint32_t	v = ((uint32_t) src[i] << 16) |
			((uint32_t) src[i + 1] << 8) | src[i + 2];

		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = b64_alphabet[(v >> 6) & 63];
		dst[o++] = b64_alphabet[v & 63];
	}
	if (len - i == 1)
	{
		uint32_t	v = (uint32_t) src[i] << 16;

		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = '=';
		dst[o++] = '=';
	}
	else if (len - i == 2)
	{
		uint32_t	v = ((uint32_t) src[i] << 16) |
			((uint32_t) src[i + 1] << 8);

		dst[o++] = b64_alphabet[(v >> 18) & 63];
		dst[o++] = b64_alphabet[(v >> 12) & 63];
		dst[o++] = b64_alphabet[(v >> 6) & 63];
		dst[o++] = '=';
	}
	return o;
}

/*
 * Render a non-negative int64 in decimal into buf (at least 20 bytes);
 * returns the number of digits, no NUL.
 */
static size_t
format_unix_seconds(int64_t v, char *buf)
{
	char		tmp[MAX_INT64_DIGITS + 1];
	size_t		n = 0;
	size_t		i;
	uint64_t	u = (uint64_t) v;

	do
	{
		tmp[n++] = (char) ('0' + (u % 10));
		u /= 10;
	} while (u > 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/*
 * HMAC of the concatenation of up to five byte ranges.  One-shot HMAC
 * needs the message in one piece, so it is assembled in a malloc'd buffer
 * that is freed before returning.
 */
typedef struct byte_range
{
	const void *p;
	size_t		len;
} byte_range;

static ipai_sig_status
hmac_concat(ipai_hmac_sha256_fn hmac, const void *key, size_t keylen,
			const byte_range *parts, int nparts,
			unsigned char mac[IPAI_HMAC_SHA256_LEN])
{
	size_t		total = 0;
	size_t		off = 0;
	unsigned char *buf;
	bool		ok;
	int			i;

	for (i = 0; i < nparts; i++)
	{
		if (parts[i].len > SIZE_MAX - 1 - total)
			return IPAI_SIG_NO_MEMORY;
		total += parts[i].len;
	}
	buf = malloc(total > 0 ? total : 1);
	if (buf == NULL)
		return IPAI_SIG_NO_MEMORY;
	for (i = 0; i < nparts; i++)
	{
		if (parts[i].len > 0)
			memcpy(buf + off, parts[i].p, parts[i].len);
		off += parts[i].len;
	}
	ok = hmac(key, keylen, buf, total, mac);
	free(buf);
	return ok ? IPAI_SIG_OK : IPAI_SIG_CRYPTO_ERROR;
}

/* ---------------------------------------------------------------------
 * Stripe
 * ---------------------------------------------------------------------
 */

/* one comma-separated item of a Stripe-Signature header */
typedef struct stripe_item
{
	const char *key;			/* up to the first '=' (the whole item without) */
	size_t		key_len;
	const char *val;			/* after the first '=', up to the next '=' */
	size_t		val_len;
	bool		has_eq;			/* the item has a '=' */
} stripe_item;

/*
 * Split the next comma-separated item off header[*pos, len).  Returns false
 * once the header is used up; every item is returned, empty ones included
 * (the caller ignores what it does not know).  Each call reads only its own
 * item and the comma after it, so a scan of the whole header is linear.
 * header must not be NULL.
 */
static bool
stripe_next_item(const char *header, size_t len, size_t *pos, bool *done,
				 stripe_item *item)
{
	const char *start;
	const char *comma;
	const char *eq;
	size_t		item_len;

	if (*done)
		return false;
	start = header + *pos;
	comma = (*pos < len) ? memchr(start, ',', len - *pos) : NULL;
	if (comma == NULL)
	{
		item_len = len - *pos;
		*done = true;
	}
	else
	{
		item_len = (size_t) (comma - start);
		*pos += item_len + 1;	/* a trailing comma yields an empty item */
	}

	item->key = start;
	eq = item_len > 0 ? memchr(start, '=', item_len) : NULL;
	if (eq == NULL)
	{
		item->key_len = item_len;
		item->val = start + item_len;
		item->val_len = 0;
		item->has_eq = false;
	}
	else
	{
		size_t		rest;
		const char *eq2;

		item->key_len = (size_t) (eq - start);
		item->val = eq + 1;
		rest = item_len - item->key_len - 1;
		eq2 = rest > 0 ? memchr(item->val, '=', rest) : NULL;
		item->val_len = eq2 ? (size_t) (eq2 - item->val) : rest;
		item->has_eq = true;
	}
	return true;
}

static bool
key_is(const stripe_item *item, const char *name)
{
	size_t		n = strlen(name);

	return item->key_len == n && memcmp(item->key, name, n) == 0;
}

/* can this v1 value be a signature: exactly 64 lower-case hex digits? */
static bool
stripe_v1_usable(const char *val, size_t len)
{
	size_t		i;

	if (len != STRIPE_V1_HEX_LEN)
		return false;
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) val[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

/*
 * ipai_wh_stripe_parse_header
 *		Check a Stripe-Signature header's form and find its timestamp.
 *
 * Returns IPAI_SIG_OK (out filled; out->t_text points into header, out->n_v1
 * counts the usable v1 values, >= 1), IPAI_SIG_MALFORMED_HEADER (no "t", a
 * bad last "t", an empty v1, or v1 items of which none is usable: nothing
 * could match) or IPAI_SIG_NO_SIGNATURE (no v1 item).  One linear pass;
 * see the file header for the rules.
 */
ipai_sig_status
ipai_wh_stripe_parse_header(const char *header, size_t header_len,
						 ipai_stripe_header *out)
{
	size_t		pos = 0;
	bool		done = false;
	bool		have_t = false;
	bool		empty_v1 = false;
	size_t		n_v1_items = 0;
	stripe_item t_item;
	stripe_item item;

	memset(out, 0, sizeof(*out));
	memset(&t_item, 0, sizeof(t_item));
	if (header == NULL || header_len == 0)
		return IPAI_SIG_MALFORMED_HEADER;

	while (stripe_next_item(header, header_len, &pos, &done, &item))
	{
		if (key_is(&item, "t"))
		{
			/* the last one counts, as in Stripe's SDKs */
			have_t = true;
			t_item = item;
		}
		else if (key_is(&item, "v1"))
		{
			n_v1_items++;
			if (item.val_len == 0)
				empty_v1 = true;
			else if (stripe_v1_usable(item.val, item.val_len))
				out->n_v1++;
		}
		/* anything else (v0, unknown keys, empty items) is ignored */
	}
	if (!have_t || !t_item.has_eq ||
		!ipai_parse_unix_seconds(t_item.val, t_item.val_len, &out->timestamp))
	{
		out->timestamp = 0;
		return IPAI_SIG_MALFORMED_HEADER;
	}
	out->t_text = t_item.val;
	out->t_len = t_item.val_len;
	if (empty_v1)
		return IPAI_SIG_MALFORMED_HEADER;
	if (n_v1_items == 0)
		return IPAI_SIG_NO_SIGNATURE;
	if (out->n_v1 == 0)
		return IPAI_SIG_MALFORMED_HEADER;
	return IPAI_SIG_OK;
}

/*
 * ipai_wh_stripe_verify
 *		Verify a Stripe webhook delivery.
 *
 * payload is the request body exactly as received; secret the endpoint's
 * signing secret ("whsec_...") used whole as the HMAC key; now and the
 * header's t are Unix seconds.  Returns IPAI_SIG_OK when a usable v1
 * signature matches and |now - t| <= tolerance; a rejection status
 * otherwise; or IPAI_SIG_BAD_TOLERANCE / IPAI_SIG_BAD_SECRET (empty) /
 * IPAI_SIG_NO_MEMORY / IPAI_SIG_CRYPTO_ERROR, whatever the header.
 */
ipai_sig_status
ipai_wh_stripe_verify(const void *payload, size_t payload_len,
				   const char *header, size_t header_len,
				   const char *secret, size_t secret_len,
				   int64_t now, int32_t tolerance,
				   ipai_hmac_sha256_fn hmac)
{
	return ipai_wh_stripe_verify_us(payload, payload_len, header, header_len,
									secret, secret_len, now, 0, tolerance, hmac);
}

/* the same at now + now_us microseconds (0 <= now_us < 10^6) */
ipai_sig_status
ipai_wh_stripe_verify_us(const void *payload, size_t payload_len,
						 const char *header, size_t header_len,
						 const char *secret, size_t secret_len,
						 int64_t now, int32_t now_us, int32_t tolerance,
						 ipai_hmac_sha256_fn hmac)
{
	ipai_stripe_header h;
	ipai_sig_status st;
	unsigned char mac[IPAI_HMAC_SHA256_LEN];
	char		expected[STRIPE_V1_HEX_LEN];
	byte_range	parts[3];
	size_t		pos = 0;
	bool		done = false;
	bool		matched = false;
	stripe_item item;

	if (tolerance <= 0)
		return IPAI_SIG_BAD_TOLERANCE;
	if (secret == NULL || secret_len == 0)
		return IPAI_SIG_BAD_SECRET;
	if (hmac == NULL)
		hmac = ipai_hmac_sha256;

	st = ipai_wh_stripe_parse_header(header, header_len, &h);
	if (st != IPAI_SIG_OK)
		return st;

	parts[0].p = h.t_text;
	parts[0].len = h.t_len;
	parts[1].p = ".";
	parts[1].len = 1;
	parts[2].p = payload;
	parts[2].len = payload_len;
	st = hmac_concat(hmac, secret, secret_len, parts, 3, mac);
	if (st != IPAI_SIG_OK)
		return st;
	ipai_hex_encode(mac, sizeof(mac), expected);

	/* second pass: compare every usable v1, no early exit */
	while (stripe_next_item(header, header_len, &pos, &done, &item))
	{
		if (key_is(&item, "v1") && stripe_v1_usable(item.val, item.val_len) &&
			ipai_secure_equal(item.val, expected, sizeof(expected)))
			matched = true;
	}
	if (!matched)
		return IPAI_SIG_MISMATCH;
	if (!ipai_within_tolerance_us(h.timestamp, now, now_us, tolerance))
		return IPAI_SIG_OUTSIDE_TOLERANCE;
	return IPAI_SIG_OK;
}

/*
 * ipai_wh_stripe_sign
 *		Write "t=<t>,v1=<hex HMAC>" for payload and secret into out.
 *
 * t must be >= 0 (IPAI_SIG_BAD_TIMESTAMP), the secret non-empty, out at
 * least IPAI_STRIPE_HEADER_BUFLEN bytes; the result is NUL-terminated.
 */
ipai_sig_status
ipai_wh_stripe_sign(const void *payload, size_t payload_len,
				 const char *secret, size_t secret_len,
				 int64_t t, char *out, size_t outsize,
				 ipai_hmac_sha256_fn hmac)
{
	char		digits[MAX_INT64_DIGITS + 1];
	size_t		ndigits;
	unsigned char mac[IPAI_HMAC_SHA256_LEN];
	byte_range	parts[3];
	ipai_sig_status st;
	size_t		o = 0;

	if (t < 0)
		return IPAI_SIG_BAD_TIMESTAMP;
	if (secret == NULL || secret_len == 0)
		return IPAI_SIG_BAD_SECRET;
	if (out == NULL || outsize < IPAI_STRIPE_HEADER_BUFLEN)
		return IPAI_SIG_BUFFER_TOO_SMALL;
	if (hmac == NULL)
		hmac = ipai_hmac_sha256;

	ndigits = format_unix_seconds(t, digits);
	parts[0].p = digits;
	parts[0].len = ndigits;
	parts[1].p = ".";
	parts[1].len = 1;
	parts[2].p = payload;
	parts[2].len = payload_len;
	st = hmac_concat(hmac, secret, secret_len, parts, 3, mac);
	if (st != IPAI_SIG_OK)
		return st;

	out[o++] = 't';
	out[o++] = '=';
	memcpy(out + o, digits, ndigits);
	o += ndigits;
	memcpy(out + o, ",v1=", 4);
	o += 4;
	ipai_hex_encode(mac, sizeof(mac), out + o);
	o += STRIPE_V1_HEX_LEN;
	out[o] = '\0';
	return IPAI_SIG_OK;
}

/* ---------------------------------------------------------------------
 * Standard Webhooks
 * ---------------------------------------------------------------------
 */

static bool
has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t		n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

/*
 * Decode a Standard Webhooks secret into a malloc'd key.  Accepts
 * "whsec_<base64>", bare "<base64>", and Supabase's "v1,whsec_<base64>".
 */
static ipai_sig_status
stdwh_decode_secret(const char *secret, size_t secret_len,
					unsigned char **key, size_t *keylen)
{
	size_t		cap;

	*key = NULL;
	*keylen = 0;
	if (secret == NULL)
		return IPAI_SIG_BAD_SECRET;
	if (has_prefix(secret, secret_len, "v1,whsec_"))
	{
		secret += 3;
		secret_len -= 3;
	}
	if (has_prefix(secret, secret_len, "whsec_"))
	{
		secret += 6;
		secret_len -= 6;
	}
	if (secret_len == 0)
		return IPAI_SIG_BAD_SECRET;

	cap = secret_len / 4 * 3 + 3;
	*key = malloc(cap);
	if (*key == NULL)
		return IPAI_SIG_NO_MEMORY;
	if (!ipai_base64_decode(secret, secret_len, *key, cap, keylen) ||
		*keylen == 0)
	{
		free(*key);
		*key = NULL;
		return IPAI_SIG_BAD_SECRET;
	}
	return IPAI_SIG_OK;
}

/*
 * Split the next space-separated entry off header[*pos, len), skipping
 * runs of spaces.  Returns false at the end.
 */
static bool
stdwh_next_entry(const char *header, size_t len, size_t *pos,
				 const char **entry, size_t *entry_len)
{
	const char *sp;

	while (*pos < len && header[*pos] == ' ')
		(*pos)++;
	if (*pos >= len)
		return false;
	*entry = header + *pos;
	sp = memchr(*entry, ' ', len - *pos);
	*entry_len = sp ? (size_t) (sp - *entry) : len - *pos;
	*pos += *entry_len;
	return true;
}

/*
 * Classify an entry "version,signature[,...]": 0 when it is not a v1
 * entry (no comma, another version); 1 when it is a v1 entry whose
 * signature (up to the next comma, as the reference libraries split it)
 * is the canonical padded base64 of 32 bytes, decoded into sig; -1 for a
 * v1 entry that cannot be a signature (skipped, never matches).
 */
static int
stdwh_entry_v1(const char *entry, size_t entry_len,
			   unsigned char sig[IPAI_HMAC_SHA256_LEN])
{
	const char *val;
	const char *comma;
	size_t		val_len;
	size_t		n;

	if (entry_len < 3 || memcmp(entry, "v1,", 3) != 0)
		return 0;
	val = entry + 3;
	val_len = entry_len - 3;
	comma = val_len > 0 ? memchr(val, ',', val_len) : NULL;
	if (comma != NULL)
		val_len = (size_t) (comma - val);
	if (val_len != STDWH_V1_B64_LEN ||
		!ipai_base64_decode(val, val_len, sig, IPAI_HMAC_SHA256_LEN, &n) ||
		n != IPAI_HMAC_SHA256_LEN)
		return -1;
	return 1;
}

/*
 * ipai_wh_standard_verify
 *		Verify a Standard Webhooks delivery (webhook-id, webhook-timestamp,
 *		webhook-signature headers and the raw body).
 *
 * Returns IPAI_SIG_OK when a usable v1 signature matches and the timestamp
 * is within tolerance either way; a rejection status otherwise; or
 * IPAI_SIG_BAD_TOLERANCE / IPAI_SIG_BAD_SECRET / IPAI_SIG_NO_MEMORY /
 * IPAI_SIG_CRYPTO_ERROR, whatever the headers.
 */
ipai_sig_status
ipai_wh_standard_verify(const void *payload, size_t payload_len,
				  const char *msg_id, size_t id_len,
				  const char *msg_timestamp, size_t ts_len,
				  const char *header, size_t header_len,
				  const char *secret, size_t secret_len,
				  int64_t now, int32_t tolerance,
				  ipai_hmac_sha256_fn hmac)
{
	return ipai_wh_standard_verify_us(payload, payload_len, msg_id, id_len,
									  msg_timestamp, ts_len, header, header_len,
									  secret, secret_len, now, 0, tolerance, hmac);
}

/* the same at now + now_us microseconds (0 <= now_us < 10^6) */
ipai_sig_status
ipai_wh_standard_verify_us(const void *payload, size_t payload_len,
						   const char *msg_id, size_t id_len,
						   const char *msg_timestamp, size_t ts_len,
						   const char *header, size_t header_len,
						   const char *secret, size_t secret_len,
						   int64_t now, int32_t now_us, int32_t tolerance,
						   ipai_hmac_sha256_fn hmac)
{
	unsigned char *key;
	size_t		keylen;
	unsigned char expected[IPAI_HMAC_SHA256_LEN];
	unsigned char sig[IPAI_HMAC_SHA256_LEN];
	byte_range	parts[5];
	ipai_sig_status st;
	int64_t		ts;
	size_t		pos;
	const char *entry;
	size_t		entry_len;
	size_t		n_v1_entries = 0;
	size_t		n_usable = 0;
	bool		matched = false;

	if (tolerance <= 0)
		return IPAI_SIG_BAD_TOLERANCE;
	if (hmac == NULL)
		hmac = ipai_hmac_sha256;
	st = stdwh_decode_secret(secret, secret_len, &key, &keylen);
	if (st != IPAI_SIG_OK)
		return st;

	if (msg_id == NULL || id_len == 0)
		st = IPAI_SIG_MISSING_ID;
	else if (!ipai_parse_unix_seconds(msg_timestamp, ts_len, &ts))
		st = IPAI_SIG_BAD_TIMESTAMP;
	else if (header == NULL)
		st = IPAI_SIG_NO_SIGNATURE;
	if (st != IPAI_SIG_OK)
	{
		free(key);
		return st;
	}

	/* first pass: is there a v1 entry, and a usable one? */
	pos = 0;
	while (stdwh_next_entry(header, header_len, &pos, &entry, &entry_len))
	{
		int			r = stdwh_entry_v1(entry, entry_len, sig);

		if (r != 0)
			n_v1_entries++;
		if (r > 0)
			n_usable++;
	}
	if (n_v1_entries == 0 || n_usable == 0)
	{
		free(key);
		return n_v1_entries == 0 ? IPAI_SIG_NO_SIGNATURE :
			IPAI_SIG_MALFORMED_HEADER;
	}

	parts[0].p = msg_id;
	parts[0].len = id_len;
	parts[1].p = ".";
	parts[1].len = 1;
	parts[2].p = msg_timestamp;
	parts[2].len = ts_len;
	parts[3].p = ".";
	parts[3].len = 1;
	parts[4].p = payload;
	parts[4].len = payload_len;
	st = hmac_concat(hmac, key, keylen, parts, 5, expected);
	free(key);
	if (st != IPAI_SIG_OK)
		return st;

	/* second pass: compare every usable v1, no early exit */
	pos = 0;
	while (stdwh_next_entry(header, header_len, &pos, &entry, &entry_len))
	{
		if (stdwh_entry_v1(entry, entry_len, sig) == 1 &&
			ipai_secure_equal(sig, expected, sizeof(sig)))
			matched = true;
	}
	if (!matched)
		return IPAI_SIG_MISMATCH;
	if (!ipai_within_tolerance_us(ts, now, now_us, tolerance))
		return IPAI_SIG_OUTSIDE_TOLERANCE;
	return IPAI_SIG_OK;
}

/*
 * ipai_wh_standard_sign
 *		Write "v1,<base64 HMAC>" for the message into out (at least
 *		IPAI_STDWH_SIGNATURE_BUFLEN bytes, NUL-terminated).
 *
 * The same secret forms as ipai_wh_standard_verify; msg_id non-empty and
 * msg_timestamp canonical, else IPAI_SIG_MISSING_ID / IPAI_SIG_BAD_TIMESTAMP.
 */
ipai_sig_status
ipai_wh_standard_sign(const void *payload, size_t payload_len,
				const char *msg_id, size_t id_len,
				const char *msg_timestamp, size_t ts_len,
				const char *secret, size_t secret_len,
				char *out, size_t outsize,
				ipai_hmac_sha256_fn hmac)
{
	unsigned char *key;
	size_t		keylen;
	unsigned char mac[IPAI_HMAC_SHA256_LEN];
	byte_range	parts[5];
	ipai_sig_status st;
	int64_t		ts;
	size_t		o;

	if (out == NULL || outsize < IPAI_STDWH_SIGNATURE_BUFLEN)
		return IPAI_SIG_BUFFER_TOO_SMALL;
	if (hmac == NULL)
		hmac = ipai_hmac_sha256;
	st = stdwh_decode_secret(secret, secret_len, &key, &keylen);
	if (st != IPAI_SIG_OK)
		return st;
	if (msg_id == NULL || id_len == 0)
		st = IPAI_SIG_MISSING_ID;
	else if (!ipai_parse_unix_seconds(msg_timestamp, ts_len, &ts))
		st = IPAI_SIG_BAD_TIMESTAMP;
	if (st != IPAI_SIG_OK)
	{
		free(key);
		return st;
	}

	parts[0].p = msg_id;
	parts[0].len = id_len;
	parts[1].p = ".";
	parts[1].len = 1;
	parts[2].p = msg_timestamp;
	parts[2].len = ts_len;
	parts[3].p = ".";
	parts[3].len = 1;
	parts[4].p = payload;
	parts[4].len = payload_len;
	st = hmac_concat(hmac, key, keylen, parts, 5, mac);
	free(key);
	if (st != IPAI_SIG_OK)
		return st;

	memcpy(out, "v1,", 3);
	o = 3 + ipai_base64_encode(mac, sizeof(mac), out + 3);
	out[o] = '\0';
	return IPAI_SIG_OK;
}

/* ---------------------------------------------------------------------
 * Event id hint
 * ---------------------------------------------------------------------
 */

static bool
id_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* index of the first byte at or after i that is not JSON whitespace */
static size_t
skip_json_space(const char *s, size_t len, size_t i)
{
	while (i < len &&
		   (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/*
 * ipai_wh_event_id_hint
 *		Copy the top-level "id" of a JSON object payload into out, for log
 *		messages about deliveries that did not verify.
 *
 * The payload is untrusted and possibly not JSON at all: this is one
 * linear scan that tracks strings and nesting, never fails, and copies the
 * value only when it is a plain string of 1 to outsize - 1 characters from
 * [A-Za-z0-9_-] (Stripe's "evt_..."), so nothing odd reaches a log line.
 * Returns the length copied, 0 when there is no such id (out is then "").
 * Not verified: a forger chooses it.
 */
size_t
ipai_wh_event_id_hint(const char *payload, size_t payload_len,
					  char *out, size_t outsize)
{
	size_t		i;
	int			depth = 0;

	if (out == NULL || outsize == 0)
		return 0;
	out[0] = '\0';
	if (payload == NULL)
		return 0;
	i = skip_json_space(payload, payload_len, 0);
	if (i >= payload_len || payload[i] != '{')
		return 0;

	while (i < payload_len)
	{
		char		c = payload[i];

		if (c == '"')
		{
			size_t		start = ++i;
			size_t		end;
			bool		escaped = false;

			/* find the closing quote */
			while (i < payload_len && payload[i] != '"')
			{
				if (payload[i] == '\\')
				{
					escaped = true;
					i++;
				}
				i++;
			}
			if (i >= payload_len)
				return 0;
			end = i++;
			if (depth != 1 || escaped || end - start != 2 ||
				memcmp(payload + start, "id", 2) != 0)
				continue;
			/* "id" as a key of the top-level object? */
			i = skip_json_space(payload, payload_len, i);
			if (i >= payload_len || payload[i] != ':')
				continue;
			i = skip_json_space(payload, payload_len, i + 1);
			if (i >= payload_len || payload[i] != '"')
				return 0;
			start = ++i;
			while (i < payload_len && i - start < outsize - 1 &&
				   id_char_ok((unsigned char) payload[i]))
				i++;
			if (i >= payload_len || payload[i] != '"' || i == start)
				return 0;
			memcpy(out, payload + start, i - start);
			out[i - start] = '\0';
			return i - start;
		}
		if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
		{
			if (--depth <= 0)
				return 0;
		}
		i++;
	}
	return 0;
}
