#!/usr/bin/env bash
# End to end (TAP): the Edge handlers that act for a user, started with no
# way to verify tokens (no SUPABASE_URL, no SUPABASE_JWT_SECRET).  With
# IPAI_EDGE_TRUSTED=1 (a local run, a test harness) a caller without token
# is trusted and acts with the connection's privileges, which the handler
# announces loudly at start; a bearer token that cannot be verified is
# refused (401), never ignored.  Without IPAI_EDGE_TRUSTED every request is
# refused (500: the function cannot verify anyone), and the log says why.
set -euo pipefail
unset SUPABASE_JWT_SECRET SUPABASE_URL
export IPAI_EDGE_TRUSTED=1
. "$IPAI_SRC/test/lib/edge.sh"

db=ipai_e2e_trusted_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
cleanup() {
	local rc=$?
	set +e
	edge_stop
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
	exit "$rc"
}
trap cleanup EXIT
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('7a000000-0000-4000-8000-00000000000a', 'Trusted Co', 'free');
SELECT ipai.record_usage('7a000000-0000-4000-8000-00000000000a', 'ai_runs', 99);
UPDATE ipai.plans SET stripe_price_id = 'price_trusted_pro' WHERE id = 'pro';
SQL
EDGE_DB=$db edge_start entitlement-check
check_url=$EDGE_URL/entitlement-check
trusted_log=$EDGE_LOG
EDGE_DB=$db STRIPE_SECRET_KEY=sk_test_unused STRIPE_API_BASE=http://127.0.0.1:9 edge_start billing-checkout
checkout_url=$EDGE_URL/billing-checkout

n=0
expect() { # description, want status, curl args...
	local what=$1 want=$2 got body
	shift 2
	body=$(curl -s -o /dev/stdout -w '\n%{http_code}' "$@")
	got=${body##*$'\n'}
	body=${body%$'\n'*}
	n=$((n + 1))
	if [ "$got" = "$want" ]; then echo "ok $n - $what ($got)"; else echo "not ok $n - $what: got $got, want $want"; echo "# $body"; fi
	LAST_BODY=$body
}
org='"org_id":"7a000000-0000-4000-8000-00000000000a"'
expect "a check without a token is answered" 200 -X POST -H 'content-type: application/json' \
	-d "{$org,\"feature\":\"ai_runs\",\"quantity\":1,\"consume\":false}" "$check_url"
n=$((n + 1)); case "$LAST_BODY" in *'"max":100'*'"current":99'*) echo "ok $n - with the check's columns";; *) echo "not ok $n - with the check's columns"; echo "# $LAST_BODY";; esac
expect "a consume that fits" 200 -X POST -d "{$org,\"feature\":\"ai_runs\",\"quantity\":1,\"consume\":true}" "$check_url"
expect "a consume beyond the limit is 403 (IP001)" 403 -X POST -d "{$org,\"feature\":\"ai_runs\",\"quantity\":1,\"consume\":true}" "$check_url"
n=$((n + 1)); case "$LAST_BODY" in *"Current usage is 100 of 100"*IP001*) echo "ok $n - the 403 carries IP001 and the detail";; *) echo "not ok $n - the 403 carries IP001 and the detail"; echo "# $LAST_BODY";; esac
expect "an unknown feature is 400 (22023)" 400 -X POST -d "{$org,\"feature\":\"nope\",\"quantity\":1}" "$check_url"
expect "a token that cannot be verified is refused" 401 -X POST -H 'authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' \
	-d "{$org,\"feature\":\"ai_runs\"}" "$check_url"
expect "checkout refuses an unverifiable token too" 401 -X POST -H 'authorization: Bearer abc.def.ghi' \
	-d "{$org,\"plan_id\":\"pro\",\"success_url\":\"https://x.example/ok\",\"cancel_url\":\"https://x.example/no\"}" "$checkout_url"
expect "checkout without a token goes on to Stripe (unreachable here: 502)" 502 -X POST \
	-d "{$org,\"plan_id\":\"pro\",\"success_url\":\"https://x.example/ok\",\"cancel_url\":\"https://x.example/no\"}" "$checkout_url"
n=$((n + 1)); if grep -q 'IPAI_EDGE_TRUSTED is on' "$trusted_log"; then echo "ok $n - trusted mode is announced at start"; else echo "not ok $n - trusted mode is announced at start"; sed 's/^/# /' "$trusted_log"; fi

# the same handler without the switch: nobody can be verified, nobody passes
unset IPAI_EDGE_TRUSTED
EDGE_DB=$db edge_start entitlement-check
expect "not configured and not trusted: refused" 500 -X POST \
	-d "{$org,\"feature\":\"ai_runs\"}" "$EDGE_URL/entitlement-check"
n=$((n + 1)); case "$LAST_BODY" in *"cannot verify callers"*SUPABASE_URL*) echo "ok $n - saying what to set";; *) echo "not ok $n - saying what to set"; echo "# $LAST_BODY";; esac
n=$((n + 1)); if grep -q 'no way to verify callers' "$EDGE_LOG"; then echo "ok $n - and the log says so at start"; else echo "not ok $n - and the log says so at start"; sed 's/^/# /' "$EDGE_LOG"; fi
n=$((n + 1)); if psql -X -At -d "$db" -c "SELECT ipai.check_entitlement('7a000000-0000-4000-8000-00000000000a', 'ai_runs')" | grep -q ',100,'; then echo "ok $n - nothing was consumed by the refused requests"; else echo "not ok $n - nothing was consumed by the refused requests"; fi
echo "1..$n"
