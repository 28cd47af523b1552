#!/usr/bin/env bash
# signature_bench.sh — what a Stripe signature check costs, next to a bare
# HMAC-SHA256 of the same bytes.  A benchmark, not a test: prints figures,
# asserts nothing (it exits non-zero only when it cannot run).
#
#   test/cluster.sh run -- test/bench/signature_bench.sh   (server from env)
#   test/bench/signature_bench.sh                          (stages an -O2 build
#                                                           and a cluster itself)
#
# pgbench, prepared mode, 2 clients, IPAI_BENCH_SECONDS (default 10) each,
# over the Unix socket, on test/fixtures/stripe/invoice.paid.json (~3 KB):
#   select1  SELECT 1
#   verify   ipai.stripe_verify_signature(payload, header, secret, 300, now)
#            with a valid header (the full path: parse, HMAC, compare, time)
#   hmac     pgcrypto hmac(payload, key, 'sha256')
# Each statement takes :r through \set and runs under a generic plan, so
# nothing is folded or re-planned per call (the functions are IMMUTABLE);
# the payload is a bytea literal of the plan.  The machine is shared and
# noisy: IPAI_BENCH_ROUNDS (default 2) interleaved rounds, best TPS kept.
set -euo pipefail

SRC=${IPAI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SECONDS_EACH=${IPAI_BENCH_SECONDS:-10}
ROUNDS=${IPAI_BENCH_ROUNDS:-2}

if [ -z "${PGHOST:-}" ]; then
	# not inside a cluster: build, stage and start one, then come back
	. "$SRC/test/lib/common.sh"
	pgbin=$(ipai_stage opt "-O2")
	IPAI_PGBIN=$pgbin exec "$SRC/test/cluster.sh" run -- "$0" "$@"
fi

PGBIN=${IPAI_PGBIN:-$(pg_config --bindir 2>/dev/null)}
PGBENCH=$PGBIN/pgbench
[ -x "$PGBENCH" ] || PGBENCH=$(command -v pgbench)
PSQL="psql -X -q -v ON_ERROR_STOP=1"
DB=ipai_bench_sig
FIXTURE=$SRC/test/fixtures/stripe/invoice.paid.json
SECRET=whsec_bench0Secret1For2Signature3Bench
T=1735689614

work=$(mktemp -d "${TMPDIR:-/tmp}/ipai-sigbench.XXXXXX")
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT

$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
if ! $PSQL -d "$DB" -c "CREATE EXTENSION ipai_saas CASCADE" -c "CREATE EXTENSION pgcrypto" 2>"$work/ext.log"; then
	echo "signature_bench: cannot create ipai_saas and pgcrypto in the benchmark database:" >&2
	cat "$work/ext.log" >&2
	echo "(run it without PGHOST to let it stage a build, or set IPAI_PGBIN to a staged server)" >&2
	exit 1
fi

# the payload as a hex bytea literal: no quotes or colons for pgbench to see
hex=$(od -An -v -tx1 "$FIXTURE" | tr -d ' \n')
bytes=$(stat -c %s "$FIXTURE")
header=$($PSQL -At -d "$DB" -c "SELECT ipai.stripe_sign('\\x$hex'::bytea, '$SECRET', to_timestamp($T))")

cat >"$work/select1.sql" <<EOF
\set r random(1, 1000000)
SELECT 1;
EOF
cat >"$work/verify.sql" <<EOF
\set r random($((T - 299)), $((T + 299)))
SELECT ipai.stripe_verify_signature('\\x$hex'::bytea, '$header', '$SECRET', 300, to_timestamp(:r));
EOF
cat >"$work/hmac.sql" <<EOF
\set r random(1, 1000000)
SELECT hmac('\\x$hex'::bytea, convert_to('$SECRET' || :r, 'UTF8'), 'sha256');
EOF

# the statements do what they claim before they are timed
check=$($PSQL -At -d "$DB" -c "SELECT ipai.stripe_verify_signature('\\x$hex'::bytea, '$header', '$SECRET', 300, to_timestamp($T + 5))")
if [ "$check" != t ]; then
	echo "signature_bench: the benchmark header does not verify ($check)" >&2
	exit 1
fi

run() {
	local name=$1 out
	out=$(PGOPTIONS="-c plan_cache_mode=force_generic_plan" \
		"$PGBENCH" -n -M prepared -c 2 -j 2 -T "$SECONDS_EACH" -f "$work/$name.sql" "$DB" 2>&1) || {
		echo "$out" >&2
		exit 1
	}
	echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p'
}

best() {
	awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'
}

echo "signature_bench: payload $(basename "$FIXTURE") ($bytes bytes), pgbench -M prepared -c 2 -j 2 -T $SECONDS_EACH, generic plans, Unix socket, best of $ROUNDS"
tps_select1=0
tps_verify=0
tps_hmac=0
for round in $(seq "$ROUNDS"); do
	s=$(run select1)
	v=$(run verify)
	h=$(run hmac)
	printf '  round %d: SELECT 1 %.0f, verify %.0f, hmac %.0f TPS\n' "$round" "$s" "$v" "$h"
	tps_select1=$(best "$tps_select1" "$s")
	tps_verify=$(best "$tps_verify" "$v")
	tps_hmac=$(best "$tps_hmac" "$h")
done

awk -v s="$tps_select1" -v v="$tps_verify" -v h="$tps_hmac" 'BEGIN {
	printf "  %-44s %10.0f TPS\n", "SELECT 1", s;
	printf "  %-44s %10.0f TPS  (%.2f x SELECT 1)\n", "ipai.stripe_verify_signature (valid header)", v, v / s;
	printf "  %-44s %10.0f TPS  (%.2f x SELECT 1)\n", "pgcrypto hmac(payload, key, sha256)", h, h / s;
	printf "  verify / bare HMAC throughput: %.2f (goal: verify within 2x of the HMAC, i.e. >= 0.50)\n", v / h;
	# 2 clients: each transaction takes 2/TPS seconds of a client
	cs = 2e6 / s; cv = 2e6 / v - cs; ch = 2e6 / h - cs;
	printf "  per call over SELECT 1: verify %.1f us, hmac %.1f us (ratio %.2f)\n", cv, ch, (ch > 0 ? cv / ch : 0);
}'
