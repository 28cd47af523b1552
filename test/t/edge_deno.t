#!/usr/bin/env bash
# The Edge layer as Deno and Supabase see it (TAP):
#   - deno check (against the committed deno.lock, --frozen), deno lint and
#     deno fmt --check over supabase/functions;
#   - deno test: the unit tests of the pure parts (supabase/functions/_tests:
#     request validation, SQLSTATE -> HTTP status, the caller's identity
#     with locally served JWKS);
#   - supabase/functions ALONE copied into an empty directory, with an empty
#     Deno cache and no node_modules anywhere: every handler started there
#     exactly as the README says (`deno run --allow-net --allow-env
#     supabase/functions/<name>/index.ts`, packages downloaded by Deno from
#     the npm registry as pinned), each answering a real request against
#     the test database.
set -uo pipefail

n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | tail -30 | sed 's/^/# /'
	return 0
}

deno="$IPAI_SRC/test/node_modules/.bin/deno"
export DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
fns="$IPAI_SRC/supabase/functions"
handlers=$(cd "$fns" && ls -d */ | tr -d / | grep -v '^_')

# deno check reads the configuration of the current directory
if out=$(cd "$fns" && "$deno" check --frozen ./*/index.ts _shared/*.ts _tests/*.ts 2>&1); then
	ok "deno check --frozen: every handler, shared module and test type-checks against deno.lock"
else
	nok "deno check --frozen" "$out"
fi
if out=$(cd "$fns" && "$deno" lint 2>&1); then
	ok "deno lint: $(printf '%s' "$out" | tail -1)"
else
	nok "deno lint" "$out"
fi
if out=$(cd "$fns" && "$deno" fmt --check 2>&1); then
	ok "deno fmt --check: $(printf '%s' "$out" | tail -1)"
else
	nok "deno fmt --check" "$out"
fi
if out=$(cd "$fns" && "$deno" test --frozen --allow-net --allow-env _tests/ 2>&1); then
	ok "deno test: $(printf '%s' "$out" | grep -E '^ok \|' | tail -1)"
else
	nok "deno test" "$out"
fi

# supabase/functions alone, in an empty directory, with an empty cache
db=ipai_edge_copy_$$
top=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$top"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
mkdir -p "$top/project/supabase"
cp -r "$fns" "$top/project/supabase/functions"
export DENO_DIR="$top/deno-cache"

for name in $handlers; do
	port=$((20000 + RANDOM % 40000))
	log="$top/$name.log"
	(
		cd "$top/project" &&
		unset SUPABASE_JWT_SECRET SUPABASE_URL &&
		IPAI_EDGE_TRUSTED=1 \
			SUPABASE_DB_URL="postgres://postgres@127.0.0.1:$PGPORT/$db" PORT=$port \
			STRIPE_SECRET_KEY=sk_test_unused STRIPE_API_BASE=http://127.0.0.1:9 \
			exec "$deno" run --allow-net --allow-env "supabase/functions/$name/index.ts"
	) >"$log" 2>&1 &
	pids+=($!)
	up=0
	for i in $(seq 1 900); do
		grep -q listening "$log" && { up=1; break; }
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$up" != 1 ]; then
		nok "$name starts from a copy of supabase/functions alone" "$(cat "$log")"
		continue
	fi
	url="http://127.0.0.1:$port/$name"
	case "$name" in
	stripe-webhook)
		args=(-H 'stripe-signature: t=1,v1=00' -d '{"id":"evt_1"}'); want='400 .*IP002' ;;
	entitlement-check)
		org=$(psql -X -At -d "$db" -c "SELECT ipai.create_organization('Copy Co', gen_random_uuid())")
		args=(-d "{\"org_id\":\"$org\",\"feature\":\"ai_runs\"}"); want='200 .*"max":100' ;;
	cms-publisher)
		args=(-d ''); want='200 .*"executed":0' ;;
	outbox-sender)
		args=(-d ''); want='200 \{"sent":0,"retried":0,"dead":0,"remaining":0\}' ;;
	billing-checkout)
		org=${org:-$(psql -X -At -d "$db" -c "SELECT ipai.create_organization('Copy Co', gen_random_uuid())")}
		args=(-d "{\"org_id\":\"$org\",\"plan_id\":\"pro\",\"success_url\":\"https://x.example/ok\",\"cancel_url\":\"https://x.example/no\"}")
		want='400 .*22023' ;; # pro has no Stripe price in this database
	*)
		args=(-d '{}'); want='^[1-5][0-9][0-9] ' ;;
	esac
	got=$(curl -s -X POST "${args[@]}" -w ' %{http_code}' "$url")
	got="${got##* } ${got% *}"
	if printf '%s' "$got" | grep -qE "$want"; then
		ok "$name starts from a copy of supabase/functions alone and answers (${got:0:60})"
	else
		nok "$name starts from a copy of supabase/functions alone and answers" "got: $got
want: $want
$(cat "$log")"
	fi
done

if [ -z "$(find "$top" -name node_modules -print -quit)" ]; then
	ok "no node_modules anywhere: Deno resolved every package from its own cache"
else
	nok "no node_modules anywhere" "$(find "$top" -name node_modules)"
fi
if [ -n "$(find "$DENO_DIR" -path '*registry.npmjs.org*' -name package.json -print -quit 2>/dev/null)" ]; then
	ok "the pinned packages were downloaded into the empty Deno cache"
else
	nok "the pinned packages were downloaded into the empty Deno cache" "$(ls -R "$DENO_DIR" 2>&1 | head)"
fi
if cmp -s "$fns/deno.lock" "$top/project/supabase/functions/deno.lock"; then
	ok "deno.lock unchanged by the runs (the pins are complete)"
else
	nok "deno.lock unchanged by the runs" "$(diff "$fns/deno.lock" "$top/project/supabase/functions/deno.lock")"
fi
echo "1..$n"
[ "$fail" -eq 0 ]
