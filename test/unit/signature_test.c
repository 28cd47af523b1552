/*-------------------------------------------------------------------------
 *
 * signature_test.c
 *		Standalone unit test of src/webhook_sig.c and src/hmac.c, built
 *		with -fsanitize=address,undefined by test/t/unit_signature.t.
 *
 *	cc -fsanitize=address,undefined -g -Isrc test/unit/signature_test.c \
 *		src/webhook_sig.c src/hmac.c -lcrypto && ./a.out
 *
 * Prints TAP.  Every header handed to the code under test is copied into a
 * malloc'd buffer of exactly its length (no terminating NUL), so ASan
 * reports any read past the end.
 *
 * The Standard Webhooks vectors come from the reference libraries'
 * tests: standard-webhooks/standard-webhooks, files
 * libraries/javascript/src/webhook.test.ts and
 * libraries/go/webhook_test.go ("sign function works", "partial
 * signature", "multi sig payload", "invalid signature" ...).
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmac.h"
#include "webhook_sig.h"

static int	test_no = 0;
static int	failures = 0;

static void
ok(int cond, const char *fmt,...)
{
	va_list		ap;

	test_no++;
	if (!cond)
		failures++;
	printf("%sok %d - ", cond ? "" : "not ", test_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* status comparison with a readable failure line */
static void
is_status(ipai_sig_status got, ipai_sig_status want, const char *name)
{
	ok(got == want, "%s: %s", name, ipai_sig_status_text(want));
	if (got != want)
		printf("#   got: %s\n", ipai_sig_status_text(got));
}

/* an exact-size heap copy, so reads past the end trip ASan */
static char *
dup_exact(const char *s, size_t len)
{
	char	   *p = malloc(len > 0 ? len : 1);

	if (p == NULL)
		abort();
	memcpy(p, s, len);
	return p;
}

/* s with bytes outside printable ASCII as \\xNN, for test names */
static const char *
printable(const char *s)
{
	static char buf[512];
	size_t		o = 0;

	for (; *s && o + 5 < sizeof(buf); s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c >= 0x20 && c < 0x7f)
			buf[o++] = (char) c;
		else
			o += (size_t) snprintf(buf + o, sizeof(buf) - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

/* xorshift64*: deterministic garbage */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static bool
failing_hmac(const void *key, size_t keylen, const void *msg, size_t msglen,
			 unsigned char out[IPAI_HMAC_SHA256_LEN])
{
	(void) key;
	(void) keylen;
	(void) msg;
	(void) msglen;
	(void) out;
	return false;
}

static double
seconds_since(struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double) (t1.tv_sec - t0->tv_sec) +
		(double) (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---------------------------------------------------------------- */

static const char *STRIPE_SECRET = "whsec_test_secret";
static const char *STRIPE_PAYLOAD = "{\"id\":\"evt_test_webhook\",\"object\":\"event\"}";
static const int64_t STRIPE_T = 1700000000;

/* computed independently: printf '%s' '1700000000.<payload>' |
 * openssl dgst -sha256 -hmac whsec_test_secret */
static const char *STRIPE_V1 =
"d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";

static ipai_sig_status
stripe_check(const char *header, int64_t now, int32_t tol)
{
	size_t		len = strlen(header);
	char	   *h = dup_exact(header, len);
	char	   *p = dup_exact(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD));
	char	   *s = dup_exact(STRIPE_SECRET, strlen(STRIPE_SECRET));
	ipai_sig_status st;

	st = ipai_wh_stripe_verify(p, strlen(STRIPE_PAYLOAD), h, len,
							   s, strlen(STRIPE_SECRET), now, tol, NULL);
	free(h);
	free(p);
	free(s);
	return st;
}

static void
test_building_blocks(void)
{
	unsigned char buf[64];
	char		enc[128];
	size_t		n;
	int64_t		v;
	static const struct
	{
		const char *raw;
		const char *b64;
	}			rfc4648[] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}
	};
	size_t		i;

	/* HMAC: RFC 4231 test case 2 */
	{
		unsigned char mac[32];
		char		hex[65];

		ok(ipai_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac),
		   "HMAC-SHA256 computes");
		ipai_hex_encode(mac, 32, hex);
		hex[64] = '\0';
		ok(strcmp(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == 0,
		   "HMAC-SHA256 RFC 4231 case 2");
		ok(ipai_hmac_sha256(NULL, 0, NULL, 0, mac), "HMAC with empty key and message");
	}

	ok(ipai_secure_equal("abc", "abc", 3) && !ipai_secure_equal("abc", "abd", 3),
	   "secure_equal");

	/* hex */
	ok(ipai_hex_decode("00ff7Fa0", 8, buf, 4) && buf[0] == 0 && buf[1] == 0xff &&
	   buf[2] == 0x7f && buf[3] == 0xa0, "hex decode, mixed case");
	ok(!ipai_hex_decode("0g", 2, buf, 1), "hex rejects non-hex");
	ok(!ipai_hex_decode("abc", 3, buf, 1), "hex rejects odd length");
	ok(!ipai_hex_decode("ab", 2, buf, 2), "hex rejects short input");
	ok(!ipai_hex_decode("a\0", 2, buf, 1), "hex rejects NUL");

	/* base64 */
	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++)
	{
		size_t		rl = strlen(rfc4648[i].raw);
		size_t		bl = strlen(rfc4648[i].b64);
		size_t		el;

		ok(ipai_base64_decode(rfc4648[i].b64, bl, buf, sizeof(buf), &n) &&
		   n == rl && memcmp(buf, rfc4648[i].raw, rl) == 0,
		   "base64 decode RFC 4648 \"%s\"", rfc4648[i].b64);
		el = ipai_base64_encode((const unsigned char *) rfc4648[i].raw, rl, enc);
		ok(el == bl && memcmp(enc, rfc4648[i].b64, bl) == 0,
		   "base64 encode RFC 4648 \"%s\"", rfc4648[i].raw);
	}
	ok(ipai_base64_decode("Zg", 2, buf, sizeof(buf), &n) && n == 1 && buf[0] == 'f',
	   "base64 accepts missing padding");
	ok(!ipai_base64_decode("Zh==", 4, buf, sizeof(buf), &n), "base64 rejects non-canonical bits");
	ok(!ipai_base64_decode("Zg=", 3, buf, sizeof(buf), &n), "base64 rejects short padding");
	ok(!ipai_base64_decode("Z", 1, buf, sizeof(buf), &n), "base64 rejects 1 mod 4");
	ok(!ipai_base64_decode("Zm 9v", 5, buf, sizeof(buf), &n), "base64 rejects spaces");
	ok(!ipai_base64_decode("Zm-_", 4, buf, sizeof(buf), &n), "base64 rejects URL alphabet");
	ok(!ipai_base64_decode("Z=g=", 4, buf, sizeof(buf), &n), "base64 rejects inner padding");
	ok(!ipai_base64_decode("====", 4, buf, sizeof(buf), &n), "base64 rejects only padding");
	ok(!ipai_base64_decode("Zm9vYmFy", 8, buf, 5, &n), "base64 respects capacity");

	/* canonical decimals */
	ok(ipai_parse_unix_seconds("0", 1, &v) && v == 0, "t=0 parses");
	ok(ipai_parse_unix_seconds("1700000000", 10, &v) && v == 1700000000, "t parses");
	ok(ipai_parse_unix_seconds("9223372036854775807", 19, &v) && v == INT64_MAX,
	   "INT64_MAX parses");
	ok(!ipai_parse_unix_seconds("9223372036854775808", 19, &v), "INT64_MAX+1 rejected");
	ok(!ipai_parse_unix_seconds("99999999999999999999", 20, &v), "20 digits rejected");
	ok(!ipai_parse_unix_seconds("01", 2, &v), "leading zero rejected");
	ok(!ipai_parse_unix_seconds("-1", 2, &v), "sign rejected");
	ok(!ipai_parse_unix_seconds("+1", 2, &v), "plus rejected");
	ok(!ipai_parse_unix_seconds(" 1", 2, &v), "space rejected");
	ok(!ipai_parse_unix_seconds("1a", 2, &v), "trailing garbage rejected");
	ok(!ipai_parse_unix_seconds("", 0, &v), "empty rejected");
	ok(!ipai_parse_unix_seconds("1\0", 2, &v), "NUL rejected");

	/* tolerance, overflow-free */
	ok(ipai_within_tolerance(100, 400, 300) && !ipai_within_tolerance(100, 401, 300),
	   "tolerance: past edge");
	ok(ipai_within_tolerance(400, 100, 300) && !ipai_within_tolerance(401, 100, 300),
	   "tolerance: future edge");
	ok(!ipai_within_tolerance(INT64_MAX, INT64_MIN, INT32_MAX) &&
	   !ipai_within_tolerance(0, INT64_MIN, INT32_MAX) &&
	   ipai_within_tolerance(INT64_MAX, INT64_MAX, 1),
	   "tolerance: extremes");
	/* with microseconds: now = 399.5 and 400.000001 around t = 100 */
	ok(ipai_within_tolerance_us(100, 399, 500000, 300) &&
	   ipai_within_tolerance_us(100, 400, 0, 300) &&
	   !ipai_within_tolerance_us(100, 400, 1, 300),
	   "tolerance: past edge to the microsecond");
	/* now = 100, 99.999999, 100.5 and 100.5 against t = 400 and 401 */
	ok(ipai_within_tolerance_us(400, 100, 0, 300) &&
	   !ipai_within_tolerance_us(400, 99, 999999, 300) &&
	   ipai_within_tolerance_us(400, 100, 500000, 300) &&
	   !ipai_within_tolerance_us(401, 100, 500000, 300),
	   "tolerance: future edge to the microsecond");
	ok(!ipai_within_tolerance_us(INT64_MIN, INT64_MAX, 999999, INT32_MAX),
	   "tolerance: extremes with microseconds");
}

static void
test_stripe(void)
{
	char		hdr[4096];
	char		signed_hdr[IPAI_STRIPE_HEADER_BUFLEN];
	char		bad[65];
	ipai_stripe_header h;
	ipai_sig_status st;
	int64_t		now = STRIPE_T + 10;

	/* known answer from openssl(1) */
	st = ipai_wh_stripe_sign(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD),
							 STRIPE_SECRET, strlen(STRIPE_SECRET), STRIPE_T,
							 signed_hdr, sizeof(signed_hdr), NULL);
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s", STRIPE_V1);
	ok(st == IPAI_SIG_OK && strcmp(signed_hdr, hdr) == 0,
	   "stripe sign matches openssl: %s", signed_hdr);

	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe valid header");
	ok(ipai_wh_stripe_parse_header(hdr, strlen(hdr), &h) == IPAI_SIG_OK &&
	   h.timestamp == STRIPE_T && h.n_v1 == 1 && h.t_len == 10,
	   "stripe parse fills timestamp and count");

	snprintf(hdr, sizeof(hdr), "v1=%s,t=1700000000", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe v1 before t");

	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v0=%s", STRIPE_V1, "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39");
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe v0 ignored");

	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v9=zz,scheme=%s,x=", STRIPE_V1, "anything=at,all");
	/* "all" has no '=': ignored, as by Stripe's SDK */
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe item without = is ignored");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v9=zz,x=", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe unknown schemes ignored");

	/* rotation: first v1 from another secret, second matches */
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%064d,v1=%s", 0, STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe second v1 matches");
	ok(ipai_wh_stripe_parse_header(hdr, strlen(hdr), &h) == IPAI_SIG_OK && h.n_v1 == 2,
	   "stripe counts two v1");

	/* upper-case hex never matches (the SDK compares lower-case strings) */
	{
		char		upper[65];
		size_t		i;

		for (i = 0; i < 64; i++)
			upper[i] = (char) ((STRIPE_V1[i] >= 'a' && STRIPE_V1[i] <= 'f') ?
							   STRIPE_V1[i] - 32 : STRIPE_V1[i]);
		upper[64] = '\0';
		snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s", upper);
		is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe upper-case hex is not usable");
		snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v1=%s", upper, STRIPE_V1);
		is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe upper-case hex skipped, lower-case matches");
	}

	/* one flipped nibble */
	memcpy(bad, STRIPE_V1, 65);
	bad[63] = bad[63] == '0' ? '1' : '0';
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s", bad);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MISMATCH, "stripe flipped nibble");
	snprintf(hdr, sizeof(hdr), "t=1700000001,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MISMATCH, "stripe other t");

	/* malformed headers */
	{
		static const char *const malformed[] = {
			"", ",", ",,", "t", "t=", "=1", "v1=",
			"t=abc,v1=00", "t=-1700000000,v1=x", "t=+1700000000,v1=x",
			"t= 1700000000,v1=x", "t=01700000000,v1=x",
			"t=99999999999999999999,v1=x", "t=1700000000,,v1=",
			"t=1700000000,v1", "t=1700000000,v1==ab", "v1=x,t",
			"t=1700000000,t", "t=1700000000,t=,v1=x", "t=1700000000,t=x,v1=x",
		};
		size_t		i;

		for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		{
			st = stripe_check(malformed[i], now, 300);
			ok(st == IPAI_SIG_MALFORMED_HEADER, "stripe malformed \"%s\"", malformed[i]);
		}
	}
	/* duplicate t: the last one counts, as in Stripe's SDKs */
	snprintf(hdr, sizeof(hdr), "t=1700000000,t=1700000000,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe duplicate equal t");
	snprintf(hdr, sizeof(hdr), "t=1600000000,v1=%s,t=1700000000", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe last t counts (signed one last)");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,t=1700000001", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MISMATCH, "stripe last t counts (signed one first)");
	snprintf(hdr, sizeof(hdr), "t=junk,t=1700000000,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe earlier bad t ignored");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,t=01700000000", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe last t not canonical");
	snprintf(hdr, sizeof(hdr), "t=1700000000=99,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe t value ends at the second =");
	ok(ipai_wh_stripe_parse_header(hdr, strlen(hdr), &h) == IPAI_SIG_OK && h.t_len == 10,
	   "stripe parse: t text without what follows the second =");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s=junk", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe v1 value ends at the second =");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe trailing comma ignored");
	snprintf(hdr, sizeof(hdr), ",,t=1700000000,,v1=%s,,=x,=,", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe empty items and empty keys ignored");
	snprintf(hdr, sizeof(hdr), " t=1700000000,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe leading space (no t)");
	snprintf(hdr, sizeof(hdr), "t=1700000000, v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_NO_SIGNATURE, "stripe space before v1 (no v1)");
	is_status(stripe_check("t=1700000000,v0=abc", now, 300), IPAI_SIG_NO_SIGNATURE, "stripe no v1");
	is_status(stripe_check("t=1700000000", now, 300), IPAI_SIG_NO_SIGNATURE, "stripe t only");
	/* a v1 that cannot be a signature never matches, and is skipped */
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%.63s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe odd-length v1 alone");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%.62s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe short v1 alone");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s00", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe long v1 alone");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%.63sg", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe non-hex v1 alone");
	ok(ipai_wh_stripe_parse_header(hdr, strlen(hdr), &h) == IPAI_SIG_MALFORMED_HEADER,
	   "stripe parse: no usable v1 is malformed");
	{
		static const char *const junk[] = {
			"abc", "a", "0", "zz", "!!!", "\xff", " ", "%.63s", "%.62s", "%s00",
			"%.63sg", "%.63sG", "g%.63s", "%s%s",
		};
		size_t		i;

		for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		{
			char		v[200];
			char		tmp[200];

			snprintf(tmp, sizeof(tmp), junk[i], STRIPE_V1, STRIPE_V1);
			memcpy(v, tmp, sizeof(v));
			snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v1=%s", v, STRIPE_V1);
			st = stripe_check(hdr, now, 300);
			snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v1=%s", STRIPE_V1, v);
			ok(st == IPAI_SIG_OK && stripe_check(hdr, now, 300) == IPAI_SIG_OK,
			   "stripe junk v1 \"%s\" before or after the good one is skipped", printable(v));
		}
	}
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=abc,v1=%s,v1=%064d,v1=zz", STRIPE_V1, 0);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_OK, "stripe good v1 among junk and wrong ones");
	ok(ipai_wh_stripe_parse_header(hdr, strlen(hdr), &h) == IPAI_SIG_OK && h.n_v1 == 2,
	   "stripe parse counts only the usable v1");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=abc,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, STRIPE_T + 301, 300), IPAI_SIG_OUTSIDE_TOLERANCE,
			  "stripe junk v1 plus good one: still checked against the clock");
	/* an empty v1 rejects the header (the SDK throws on it) */
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v1=", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe good v1 plus empty v1=");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe empty v1= before the good one");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe bare v1 item before the good one");
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s,v1==%s", STRIPE_V1, STRIPE_V1);
	is_status(stripe_check(hdr, now, 300), IPAI_SIG_MALFORMED_HEADER, "stripe v1== (empty value) plus good one");
	{
		/* NUL inside the header */
		char		nulhdr[128];
		size_t		len;
		char	   *hp;

		len = (size_t) snprintf(nulhdr, sizeof(nulhdr), "t=1700000000,v1=%s", STRIPE_V1);
		nulhdr[5] = '\0';
		hp = dup_exact(nulhdr, len);
		st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hp, len,
								   STRIPE_SECRET, strlen(STRIPE_SECRET), now, 300, NULL);
		free(hp);
		is_status(st, IPAI_SIG_MALFORMED_HEADER, "stripe NUL inside t");
	}

	/* tolerance */
	snprintf(hdr, sizeof(hdr), "t=1700000000,v1=%s", STRIPE_V1);
	is_status(stripe_check(hdr, STRIPE_T + 300, 300), IPAI_SIG_OK, "stripe exactly at tolerance (past)");
	is_status(stripe_check(hdr, STRIPE_T - 300, 300), IPAI_SIG_OK, "stripe exactly at tolerance (future)");
	is_status(stripe_check(hdr, STRIPE_T + 301, 300), IPAI_SIG_OUTSIDE_TOLERANCE, "stripe too old");
	is_status(stripe_check(hdr, STRIPE_T - 301, 300), IPAI_SIG_OUTSIDE_TOLERANCE, "stripe too new");
	is_status(stripe_check(hdr, INT64_MIN, INT32_MAX), IPAI_SIG_OUTSIDE_TOLERANCE, "stripe now = INT64_MIN");
	is_status(stripe_check(hdr, now, 0), IPAI_SIG_BAD_TOLERANCE, "stripe tolerance 0");
	is_status(stripe_check(hdr, now, -5), IPAI_SIG_BAD_TOLERANCE, "stripe negative tolerance");
	is_status(stripe_check("garbage", now, 0), IPAI_SIG_BAD_TOLERANCE, "stripe tolerance checked before header");

	/* secrets */
	st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hdr, strlen(hdr),
							   "whsec_other", 11, now, 300, NULL);
	is_status(st, IPAI_SIG_MISMATCH, "stripe wrong secret");
	st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hdr, strlen(hdr),
							   "test_secret", 11, now, 300, NULL);
	is_status(st, IPAI_SIG_MISMATCH, "stripe secret without whsec_ prefix is another key");
	st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hdr, strlen(hdr),
							   "", 0, now, 300, NULL);
	is_status(st, IPAI_SIG_BAD_SECRET, "stripe empty secret");
	st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hdr, strlen(hdr),
							   STRIPE_SECRET, strlen(STRIPE_SECRET), now, 300, failing_hmac);
	is_status(st, IPAI_SIG_CRYPTO_ERROR, "stripe HMAC failure reported");

	/* payload bytes: NUL, tampering */
	{
		static const unsigned char bin[] = {'{', 0, 0xff, 0, '}'};
		char		h2[IPAI_STRIPE_HEADER_BUFLEN];
		char	   *p = dup_exact((const char *) bin, sizeof(bin));

		ok(ipai_wh_stripe_sign(p, sizeof(bin), STRIPE_SECRET, strlen(STRIPE_SECRET),
							   STRIPE_T, h2, sizeof(h2), NULL) == IPAI_SIG_OK &&
		   ipai_wh_stripe_verify(p, sizeof(bin), h2, strlen(h2), STRIPE_SECRET,
								 strlen(STRIPE_SECRET), now, 300, NULL) == IPAI_SIG_OK,
		   "stripe payload with NUL bytes round-trips");
		ok(ipai_wh_stripe_verify(p, 1, h2, strlen(h2), STRIPE_SECRET,
								 strlen(STRIPE_SECRET), now, 300, NULL) == IPAI_SIG_MISMATCH,
		   "stripe payload truncated at NUL does not verify");
		free(p);
		ok(ipai_wh_stripe_sign("", 0, STRIPE_SECRET, strlen(STRIPE_SECRET), 0, h2, sizeof(h2), NULL) == IPAI_SIG_OK &&
		   strncmp(h2, "t=0,v1=", 7) == 0 &&
		   ipai_wh_stripe_verify("", 0, h2, strlen(h2), STRIPE_SECRET, strlen(STRIPE_SECRET), 1, 300, NULL) == IPAI_SIG_OK,
		   "stripe empty payload, t=0");
		ok(ipai_wh_stripe_sign("x", 1, STRIPE_SECRET, strlen(STRIPE_SECRET), INT64_MAX, h2, sizeof(h2), NULL) == IPAI_SIG_OK &&
		   strlen(h2) == 2 + 19 + 4 + 64,
		   "stripe sign at INT64_MAX fits the buffer");
		is_status(ipai_wh_stripe_sign("x", 1, STRIPE_SECRET, strlen(STRIPE_SECRET), -1, h2, sizeof(h2), NULL),
				  IPAI_SIG_BAD_TIMESTAMP, "stripe sign negative t");
		is_status(ipai_wh_stripe_sign("x", 1, STRIPE_SECRET, strlen(STRIPE_SECRET), 1, h2, 10, NULL),
				  IPAI_SIG_BUFFER_TOO_SMALL, "stripe sign small buffer");
		is_status(ipai_wh_stripe_sign("x", 1, "", 0, 1, h2, sizeof(h2), NULL),
				  IPAI_SIG_BAD_SECRET, "stripe sign empty secret");
	}
}

/* ---------------------------------------------------------------- */

static const char *SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char *SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const char *SW_TS = "1614265330";
static const char *SW_PAYLOAD = "{\"test\": 2432232314}";
static const char *SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
static const char *SW_OTHER = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

static ipai_sig_status
sw_check_full(const char *payload, const char *id, const char *ts,
			  const char *header, const char *secret, int64_t now, int32_t tol)
{
	char	   *p = dup_exact(payload, strlen(payload));
	char	   *i = dup_exact(id, strlen(id));
	char	   *t = dup_exact(ts, strlen(ts));
	char	   *h = dup_exact(header, strlen(header));
	char	   *s = dup_exact(secret, strlen(secret));
	ipai_sig_status st;

	st = ipai_wh_standard_verify(p, strlen(payload), i, strlen(id), t, strlen(ts),
								 h, strlen(header), s, strlen(secret), now, tol, NULL);
	free(p);
	free(i);
	free(t);
	free(h);
	free(s);
	return st;
}

static ipai_sig_status
sw_check(const char *header, int64_t now)
{
	return sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, header, SW_SECRET, now, 300);
}

static void
test_standard_webhooks(void)
{
	char		sig[IPAI_STDWH_SIGNATURE_BUFLEN];
	char		hdr[1024];
	int64_t		now = 1614265330 + 5;
	ipai_sig_status st;

	ok(ipai_wh_standard_sign(SW_PAYLOAD, strlen(SW_PAYLOAD), SW_ID, strlen(SW_ID),
							 SW_TS, strlen(SW_TS), SW_SECRET, strlen(SW_SECRET),
							 sig, sizeof(sig), NULL) == IPAI_SIG_OK &&
	   strcmp(sig, SW_SIG) == 0,
	   "standard webhooks: library sign vector (%s)", sig);

	is_status(sw_check(SW_SIG, now), IPAI_SIG_OK, "sw valid signature");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG,
							"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now, 300),
			  IPAI_SIG_OK, "sw secret without prefix");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG,
							"v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now, 300),
			  IPAI_SIG_OK, "sw secret as Supabase shows it (v1,whsec_)");

	snprintf(hdr, sizeof(hdr), "%s v2,%s %s %s", SW_OTHER, SW_OTHER + 3, SW_SIG, SW_OTHER);
	is_status(sw_check(hdr, now), IPAI_SIG_OK, "sw multi sig payload (library vector)");
	snprintf(hdr, sizeof(hdr), "  v1a,xyz  %s   ", SW_SIG);
	is_status(sw_check(hdr, now), IPAI_SIG_OK, "sw extra spaces and v1a ignored");

	is_status(sw_check(SW_OTHER, now), IPAI_SIG_MISMATCH, "sw invalid signature (library vector)");
	is_status(sw_check("v1,dawfeoifkpqwoekfpqoekf", now), IPAI_SIG_MALFORMED_HEADER,
			  "sw invalid short signature (library vector)");
	snprintf(hdr, sizeof(hdr), "%.8s", SW_SIG);
	is_status(sw_check(hdr, now), IPAI_SIG_MALFORMED_HEADER, "sw partial signature v1,g0hM9");
	is_status(sw_check("v1,", now), IPAI_SIG_MALFORMED_HEADER, "sw empty signature v1,");
	is_status(sw_check("v1, v1,, v1,,,", now), IPAI_SIG_MALFORMED_HEADER, "sw only empty signatures");
	snprintf(hdr, sizeof(hdr), "v1, %s", SW_SIG);
	is_status(sw_check(hdr, now), IPAI_SIG_OK, "sw v1, then the real one: v1, skipped");
	snprintf(hdr, sizeof(hdr), "%.46s", SW_SIG);
	is_status(sw_check(hdr, now), IPAI_SIG_MALFORMED_HEADER, "sw signature without padding");
	snprintf(hdr, sizeof(hdr), "%.46s %s", SW_SIG, SW_SIG);
	is_status(sw_check(hdr, now), IPAI_SIG_OK, "sw unpadded then padded: padded matches");
	snprintf(hdr, sizeof(hdr), "%s,junk", SW_SIG);
	is_status(sw_check(hdr, now), IPAI_SIG_OK, "sw signature ends at the next comma (as the libraries split)");
	snprintf(hdr, sizeof(hdr), "v1 v1,x,%s %s", SW_SIG + 3, SW_OTHER);
	is_status(sw_check(hdr, now), IPAI_SIG_MISMATCH, "sw the third comma field is not a signature");
	snprintf(hdr, sizeof(hdr), "v1,x,%s", SW_SIG + 3);
	is_status(sw_check(hdr, now), IPAI_SIG_MALFORMED_HEADER, "sw only a v1 with the signature in the third field");
	{
		static const char *const junk[] = {
			"v1,!!!", "v1,", "v1,abc", "v1,====", "v1,%.40s", "v1,%s=",
			"v1,%sA", "v1", "v1,\xff", "v1,%.43s", "v1,%.43s\t", "v1,,%s",
		};
		size_t		i;

		for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		{
			char		e[200];

			snprintf(e, sizeof(e), junk[i], SW_SIG + 3);
			snprintf(hdr, sizeof(hdr), "%s %s", e, SW_SIG);
			ok(sw_check(hdr, now) == IPAI_SIG_OK, "sw junk entry \"%s\" before the good one is skipped", printable(e));
			snprintf(hdr, sizeof(hdr), "%s %s", SW_SIG, e);
			ok(sw_check(hdr, now) == IPAI_SIG_OK, "sw junk entry \"%s\" after the good one is skipped", printable(e));
			snprintf(hdr, sizeof(hdr), "%s", e);
			st = sw_check(hdr, now);
			ok(st == IPAI_SIG_MALFORMED_HEADER || (st == IPAI_SIG_NO_SIGNATURE && strchr(e, ',') == NULL),
			   "sw junk entry \"%s\" alone never matches (%s)", printable(e), ipai_sig_status_text(st));
		}
	}
	snprintf(hdr, sizeof(hdr), "v1,!!! %s", SW_SIG);
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, hdr, SW_SECRET, 1614265330 + 301, 300),
			  IPAI_SIG_OUTSIDE_TOLERANCE, "sw junk entry plus good one: still checked against the clock");
	is_status(sw_check("", now), IPAI_SIG_NO_SIGNATURE, "sw missing signature");
	is_status(sw_check("v1a,abc v2,def", now), IPAI_SIG_NO_SIGNATURE, "sw only other versions");
	is_status(sw_check("   ", now), IPAI_SIG_NO_SIGNATURE, "sw only spaces");
	snprintf(hdr, sizeof(hdr), "v1,%s", SW_OTHER + 3);
	hdr[strlen(hdr) - 2] = 'd';	/* 'c' with a low bit set */
	is_status(sw_check(hdr, now), IPAI_SIG_MALFORMED_HEADER, "sw non-canonical base64");
	snprintf(hdr, sizeof(hdr), "%s\t", SW_SIG);
	is_status(sw_check(hdr, now), IPAI_SIG_MALFORMED_HEADER, "sw tab is not a separator");

	is_status(sw_check_full(SW_PAYLOAD, "", SW_TS, SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_MISSING_ID, "sw missing id");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, "", SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_BAD_TIMESTAMP, "sw missing timestamp");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, "hello", SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_BAD_TIMESTAMP, "sw invalid timestamp hello (library vector)");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, "1614265330abc", SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_BAD_TIMESTAMP, "sw timestamp with trailing garbage");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, "01614265330", SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_BAD_TIMESTAMP, "sw timestamp with leading zero");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG, SW_SECRET, 1614265330 + 301, 300),
			  IPAI_SIG_OUTSIDE_TOLERANCE, "sw old timestamp fails");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG, SW_SECRET, 1614265330 - 301, 300),
			  IPAI_SIG_OUTSIDE_TOLERANCE, "sw new timestamp fails");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG, SW_SECRET, 1614265330 - 300, 300),
			  IPAI_SIG_OK, "sw timestamp at the edge passes");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, "1614265331", SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_MISMATCH, "sw other timestamp");
	is_status(sw_check_full("{\"test\": 2432232315}", SW_ID, SW_TS, SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_MISMATCH, "sw tampered payload");
	is_status(sw_check_full(SW_PAYLOAD, "msg_other", SW_TS, SW_SIG, SW_SECRET, now, 300),
			  IPAI_SIG_MISMATCH, "sw other id");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG, "whsec_", now, 300),
			  IPAI_SIG_BAD_SECRET, "sw secret with empty key");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG, "", now, 300),
			  IPAI_SIG_BAD_SECRET, "sw empty secret");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG, "whsec_not base64!", now, 300),
			  IPAI_SIG_BAD_SECRET, "sw secret not base64");
	is_status(sw_check_full(SW_PAYLOAD, SW_ID, SW_TS, SW_SIG, SW_SECRET, now, 0),
			  IPAI_SIG_BAD_TOLERANCE, "sw tolerance 0");
	is_status(ipai_wh_standard_verify(SW_PAYLOAD, strlen(SW_PAYLOAD), SW_ID, strlen(SW_ID),
									  SW_TS, strlen(SW_TS), SW_SIG, strlen(SW_SIG),
									  SW_SECRET, strlen(SW_SECRET), now, 300, failing_hmac),
			  IPAI_SIG_CRYPTO_ERROR, "sw HMAC failure reported");
	is_status(ipai_wh_standard_sign(SW_PAYLOAD, strlen(SW_PAYLOAD), SW_ID, strlen(SW_ID),
									"x", 1, SW_SECRET, strlen(SW_SECRET), sig, sizeof(sig), NULL),
			  IPAI_SIG_BAD_TIMESTAMP, "sw sign bad timestamp");
}

/* ---------------------------------------------------------------- */

static void
id_hint_is(const char *json, const char *want, const char *name)
{
	char		out[IPAI_EVENT_ID_BUFLEN];
	char	   *p = dup_exact(json, strlen(json));
	size_t		n = ipai_wh_event_id_hint(p, strlen(json), out, sizeof(out));

	free(p);
	ok(strcmp(out, want) == 0 && n == strlen(want), "event id hint: %s", name);
	if (strcmp(out, want) != 0)
		printf("#   got: \"%s\"\n", out);
}

static void
test_event_id_hint(void)
{
	char		longid[400];
	char		small[5];

	id_hint_is("{\n  \"id\": \"evt_1QmZ8nLgUG5tbmjcT4hUk8Pd\",\n  \"object\": \"event\"}",
			   "evt_1QmZ8nLgUG5tbmjcT4hUk8Pd", "pretty Stripe event");
	id_hint_is("{\"object\":\"event\",\"data\":{\"object\":{\"id\":\"in_nested\"}},\"id\":\"evt_last\"}",
			   "evt_last", "nested ids skipped, top-level id last");
	id_hint_is("{\"type\":\"id\",\"list\":[{\"id\":\"x\"}],\"id\" : \"evt_2\"}",
			   "evt_2", "\"id\" as a value and inside arrays skipped");
	id_hint_is("{\"note\":\"he said \\\"id\\\": \\\"evt_fake\\\"\",\"id\":\"evt_3\"}",
			   "evt_3", "escaped quotes inside strings");
	id_hint_is("{\"id\":\"evt_<script>\"}", "", "odd characters give no hint");
	id_hint_is("{\"id\":12345}", "", "non-string id");
	id_hint_is("{\"id\":\"\"}", "", "empty id");
	id_hint_is("[{\"id\":\"evt_4\"}]", "", "top level not an object");
	id_hint_is("{\"data\":{\"id\":\"in_5\"}}", "", "only nested ids");
	id_hint_is("{\"id\":\"evt_6", "", "truncated value");
	id_hint_is("{\"id\"", "", "truncated after key");
	id_hint_is("{\"a\":\"\\", "", "backslash at the end");
	id_hint_is("", "", "empty payload");
	id_hint_is("not json", "", "not JSON");
	id_hint_is("}{\"id\":\"evt_7\"}", "", "unbalanced");
	memset(longid, 'a', sizeof(longid));
	memcpy(longid, "{\"id\":\"", 7);
	memcpy(longid + sizeof(longid) - 3, "\"}", 3);
	id_hint_is(longid, "", "id longer than the buffer");
	ok(ipai_wh_event_id_hint("{\"id\":\"evt_12345\"}", 19, small, sizeof(small)) == 0 &&
	   small[0] == '\0', "event id hint: small buffer gives no hint");
}

/* ---------------------------------------------------------------- */

/* bytes that matter to the parsers, plus anything */
static char
garbage_byte(void)
{
	static const char structural[] = "t=v1,0123456789abcdefABCDEF =,v0 +/";
	uint64_t	r = rng();

	if (r % 4 == 0)
		return (char) (r >> 8);
	return structural[(r >> 8) % (sizeof(structural) - 1)];
}

static void
test_garbage(void)
{
	char		buf[512];
	char		valid[IPAI_STRIPE_HEADER_BUFLEN];
	int			i;
	int			stripe_ok = 0;
	int			sw_ok = 0;
	int			bad_status = 0;
	int			n_random = 20000;

	for (i = 0; i < n_random; i++)
	{
		size_t		len = (size_t) (rng() % sizeof(buf));
		size_t		j;
		char	   *h;
		ipai_sig_status st;

		for (j = 0; j < len; j++)
			buf[j] = garbage_byte();
		/* half of them start like a real header */
		if (len > 13 && i % 2 == 0)
			memcpy(buf, "t=1700000000,", 13);
		h = dup_exact(buf, len);
		st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), h, len,
								   STRIPE_SECRET, strlen(STRIPE_SECRET),
								   STRIPE_T, 300, NULL);
		if (st == IPAI_SIG_OK)
			stripe_ok++;
		if (st != IPAI_SIG_OK && !ipai_sig_status_is_rejection(st))
			bad_status++;
		st = ipai_wh_standard_verify(SW_PAYLOAD, strlen(SW_PAYLOAD), SW_ID, strlen(SW_ID),
									 SW_TS, strlen(SW_TS), h, len,
									 SW_SECRET, strlen(SW_SECRET), 1614265330, 300, NULL);
		if (st == IPAI_SIG_OK)
			sw_ok++;
		if (st != IPAI_SIG_OK && !ipai_sig_status_is_rejection(st))
			bad_status++;
		{
			char		idbuf[IPAI_EVENT_ID_BUFLEN];

			(void) ipai_wh_event_id_hint(h, len, idbuf, sizeof(idbuf));
		}
		/* the same bytes as timestamp and id */
		st = ipai_wh_standard_verify(SW_PAYLOAD, strlen(SW_PAYLOAD), h, len, h, len,
									 SW_SIG, strlen(SW_SIG),
									 SW_SECRET, strlen(SW_SECRET), 1614265330, 300, NULL);
		if (st == IPAI_SIG_OK)
			sw_ok++;
		free(h);
	}
	ok(stripe_ok == 0 && sw_ok == 0 && bad_status == 0,
	   "%d random garbage headers: none verifies, all rejected cleanly", n_random);

	/* mutations of a valid header: never a crash, only valid statuses */
	ipai_wh_stripe_sign(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), STRIPE_SECRET,
						strlen(STRIPE_SECRET), STRIPE_T, valid, sizeof(valid), NULL);
	bad_status = 0;
	for (i = 0; i < 20000; i++)
	{
		size_t		len = strlen(valid);
		int			k;
		int			nmut = 1 + (int) (rng() % 3);
		char	   *h;
		ipai_sig_status st;

		memcpy(buf, valid, len);
		for (k = 0; k < nmut; k++)
		{
			size_t		at = len ? (size_t) (rng() % len) : 0;

			switch (rng() % 3)
			{
				case 0:			/* replace */
					if (len)
						buf[at] = garbage_byte();
					break;
				case 1:			/* delete */
					if (len)
					{
						memmove(buf + at, buf + at + 1, len - at - 1);
						len--;
					}
					break;
				default:		/* insert */
					if (len + 1 < sizeof(buf))
					{
						memmove(buf + at + 1, buf + at, len - at);
						buf[at] = garbage_byte();
						len++;
					}
					break;
			}
		}
		h = dup_exact(buf, len);
		st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), h, len,
								   STRIPE_SECRET, strlen(STRIPE_SECRET),
								   STRIPE_T, 300, NULL);
		if (st != IPAI_SIG_OK && !ipai_sig_status_is_rejection(st))
			bad_status++;
		free(h);
	}
	ok(bad_status == 0, "20000 mutated Stripe headers: only verify/reject statuses");
}

/* ---------------------------------------------------------------- */

static void
test_big_headers(void)
{
	const size_t big = 1024 * 1024;
	char	   *h = malloc(big);
	char		valid[IPAI_STRIPE_HEADER_BUFLEN];
	size_t		len;
	size_t		vlen;
	struct timespec t0;
	double		secs;
	ipai_sig_status st;

	if (h == NULL)
		abort();
	ipai_wh_stripe_sign(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), STRIPE_SECRET,
						strlen(STRIPE_SECRET), STRIPE_T, valid, sizeof(valid), NULL);
	vlen = strlen(valid);

	/* 1 MB of wrong v1 signatures, the right one last */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memcpy(h, "t=1700000000", 12);
	len = 12;
	while (len + 68 + 68 < big)
	{
		memcpy(h + len, ",v1=", 4);
		memset(h + len + 4, 'a', 64);
		len += 68;
	}
	memcpy(h + len, ",", 1);
	memcpy(h + len + 1, valid + 13, vlen - 13);	/* "v1=..." of the valid one */
	len += 1 + vlen - 13;
	{
		char	   *hh = dup_exact(h, len);

		st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hh, len,
								   STRIPE_SECRET, strlen(STRIPE_SECRET), STRIPE_T, 300, NULL);
		free(hh);
	}
	secs = seconds_since(&t0);
	is_status(st, IPAI_SIG_OK, "1 MB header of ~15000 v1, last one matches");
	ok(secs < 2.0, "1 MB v1 header checked in %.3f s (linear)", secs);

	/* 1 MB of unknown schemes with t and v1 at the end */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	len = 0;
	while (len + 10 + vlen + 1 < big)
	{
		memcpy(h + len, "v0=abcdef,", 10);
		len += 10;
	}
	memcpy(h + len, valid, vlen);
	len += vlen;
	{
		char	   *hh = dup_exact(h, len);

		st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hh, len,
								   STRIPE_SECRET, strlen(STRIPE_SECRET), STRIPE_T, 300, NULL);
		free(hh);
	}
	secs = seconds_since(&t0);
	is_status(st, IPAI_SIG_OK, "1 MB header of v0 items, then t and v1");
	ok(secs < 2.0, "1 MB v0 header checked in %.3f s (linear)", secs);

	/* 1 MB without any separator, of commas, of equals, of digits, of spaces */
	{
		static const char fill[] = {'a', ',', '=', '9', ' ', '\0'};
		size_t		k;

		for (k = 0; k < sizeof(fill); k++)
		{
			char	   *hh;

			memset(h, fill[k], big);
			if (fill[k] == '9')
				memcpy(h, "t=", 2);
			hh = dup_exact(h, big);
			clock_gettime(CLOCK_MONOTONIC, &t0);
			st = ipai_wh_stripe_verify(STRIPE_PAYLOAD, strlen(STRIPE_PAYLOAD), hh, big,
									   STRIPE_SECRET, strlen(STRIPE_SECRET), STRIPE_T, 300, NULL);
			ok(ipai_sig_status_is_rejection(st) && seconds_since(&t0) < 2.0,
			   "1 MB of 0x%02x: Stripe rejects (%s)", (unsigned char) fill[k],
			   ipai_sig_status_text(st));
			clock_gettime(CLOCK_MONOTONIC, &t0);
			st = ipai_wh_standard_verify(SW_PAYLOAD, strlen(SW_PAYLOAD), SW_ID, strlen(SW_ID),
										 SW_TS, strlen(SW_TS), hh, big,
										 SW_SECRET, strlen(SW_SECRET), 1614265330, 300, NULL);
			ok(ipai_sig_status_is_rejection(st) && seconds_since(&t0) < 2.0,
			   "1 MB of 0x%02x: Standard Webhooks rejects (%s)", (unsigned char) fill[k],
			   ipai_sig_status_text(st));
			free(hh);
		}
	}

	/* Standard Webhooks: 1 MB of entries, the valid one last */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	len = 0;
	while (len + 48 + 48 < big)
	{
		memcpy(h + len, SW_OTHER, 47);
		h[len + 47] = ' ';
		len += 48;
	}
	memcpy(h + len, SW_SIG, 47);
	len += 47;
	{
		char	   *hh = dup_exact(h, len);

		st = ipai_wh_standard_verify(SW_PAYLOAD, strlen(SW_PAYLOAD), SW_ID, strlen(SW_ID),
									 SW_TS, strlen(SW_TS), hh, len,
									 SW_SECRET, strlen(SW_SECRET), 1614265330, 300, NULL);
		free(hh);
	}
	secs = seconds_since(&t0);
	is_status(st, IPAI_SIG_OK, "1 MB Standard Webhooks header, last entry matches");
	ok(secs < 2.0, "1 MB Standard Webhooks header checked in %.3f s (linear)", secs);
	free(h);
}

int
main(void)
{
	test_building_blocks();
	test_stripe();
	test_standard_webhooks();
	test_event_id_hint();
	test_garbage();
	test_big_headers();
	printf("1..%d\n", test_no);
	if (failures)
		printf("# %d of %d failed\n", failures, test_no);
	return failures ? 1 : 0;
}
