#!/usr/bin/env bash
# Hostile search paths (TAP): runs the workload test/hostile/workload*.sql
# once in a clean database and once in a database with attacker functions
# and operators in public (test/hostile/attack.sql), temp tables named like
# ours, and search_path = pg_temp, public, pg_catalog.  The results must be
# identical (after masking generated ids and times) and the attacker's
# functions must never be called.
set -uo pipefail
clean=ipai_hostile_clean_$$
evil=ipai_hostile_evil_$$
tmp=$(mktemp -d)
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $clean" -c "DROP DATABASE IF EXISTS $evil" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "$2" | head -60 | sed 's/^/# /'; }

psql -X -q -d postgres -c "CREATE DATABASE $clean TEMPLATE ipai_template" -c "CREATE DATABASE $evil TEMPLATE ipai_template" >/dev/null
if err=$(psql -X -q -v ON_ERROR_STOP=1 -d "$evil" -f "$IPAI_SRC/test/hostile/attack.sql" 2>&1 >/dev/null); then
	ok "the attacker's objects are installed ($(grep -cE '^CREATE (FUNCTION|OPERATOR)' "$IPAI_SRC/test/hostile/attack.sql") functions and operators)"
else
	nok "the attacker's objects are installed" "$err"
fi

# temp tables shadowing ours, created in the workload's own session
shadow=$(psql -X -A -t -d "$clean" -c "SELECT string_agg(format('CREATE TEMP TABLE %I (LIKE ipai.%I);', relname, relname), ' ')
	FROM pg_class WHERE relnamespace = 'ipai'::regnamespace AND relkind = 'r'")

run() {
	local db=$1 prelude=$2 out=$3
	{
		echo "$prelude"
		cat "$IPAI_SRC"/test/hostile/workload*.sql
	} | psql -X -A -t -q -v ON_ERROR_STOP=0 -d "$db" 2>&1 |
		sed -E 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g;
				s/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+(\+00(:00)?|Z)?/<time>/g' >"$out"
}
run "$clean" "" "$tmp/clean.out"
run "$evil" "$shadow SET search_path = pg_temp, public, pg_catalog;" "$tmp/evil.out"

if diff -u "$tmp/clean.out" "$tmp/evil.out" >"$tmp/diff"; then
	ok "every public function gives the same results under a hostile search_path ($(wc -l <"$tmp/clean.out") result lines)"
else
	nok "every public function gives the same results under a hostile search_path" "$(cat "$tmp/diff")"
fi
calls=$(psql -X -A -t -d "$evil" -c "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.attack_calls")
if [ "$calls" = 0 ]; then ok "the attacker's functions and operators were never called"; else nok "the attacker's functions and operators were never called" "they were called $calls times"; fi
if grep -q "ERROR" "$tmp/clean.out"; then
	nok "the workload itself runs without errors" "$(grep ERROR "$tmp/clean.out")"
else
	ok "the workload itself runs without errors"
fi
echo "1..$n"
