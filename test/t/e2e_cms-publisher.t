#!/usr/bin/env bash
# The cms-publisher Edge handler over real HTTP (TAP): Deno serves
# supabase/functions/cms-publisher/index.ts against a copy of the test
# database; POST executes the due schedules and answers {executed: n}.
set -uo pipefail
db=ipai_e2e_pub_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
. "$IPAI_SRC/test/lib/edge.sh"
trap 'edge_stop; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('7e2e0000-0000-4000-8000-000000000000', 'Edge', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('7e2e0000-0000-4000-8000-000000000000', '7e2e0000-0000-4000-8000-0000000000ad', 'admin'),
	('7e2e0000-0000-4000-8000-000000000000', '7e2e0000-0000-4000-8000-0000000000ed', 'editor');
SET ipai.user_id = '7e2e0000-0000-4000-8000-0000000000ed';
SELECT count(ipai.cms_request_approval(ipai.cms_create_page('7e2e0000-0000-4000-8000-000000000000',
		'Page ' || g, '<p>' || g || '</p>'))) FROM generate_series(1, 45) g;
SET ipai.user_id = '7e2e0000-0000-4000-8000-0000000000ad';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages;
-- 5 due now, 40 in an hour
SELECT count(ipai.cms_schedule_publish(id, clock_timestamp() + CASE WHEN title IN ('Page 1', 'Page 2', 'Page 3', 'Page 4', 'Page 5')
		THEN interval '0' ELSE interval '1 hour' END)) FROM ipai.cms_pages;
SQL

if EDGE_DB=$db edge_start cms-publisher; then ok "the handler serves"; else nok "the handler serves"; echo "1..$n"; exit 1; fi

post() { curl -s -o /tmp/e2e_pub_$$.json -w '%{http_code}' -X POST "$EDGE_URL/cms-publisher"; }
is "$(post)" 200 "POST /cms-publisher answers 200"
is "$(cat /tmp/e2e_pub_$$.json)" '{"executed":5}' "with the number of due schedules it executed"
is "$(q "SELECT count(*) FROM ipai.cms_pages WHERE status = 'published'")" 5 "the 5 pages are published"
is "$(q "SELECT string_agg(DISTINCT executed_via, ',') FROM ipai.cms_schedule WHERE status = 'done'")" ipai-edge \
	"executed through the Edge handler's connection"
is "$(post)" 200 "a second POST answers 200"
is "$(cat /tmp/e2e_pub_$$.json)" '{"executed":0}' "and executes nothing more"

# concurrent callers: the 40 others come due, 4 POSTs at once share them
q "UPDATE ipai.cms_schedule SET run_at = now() - interval '1 second' WHERE status = 'pending'" >/dev/null
pids=()
for i in 1 2 3 4; do
	curl -s -X POST "$EDGE_URL/cms-publisher" >/tmp/e2e_pub_$$.$i &
	pids+=($!)
done
wait "${pids[@]}"
total=0
for i in 1 2 3 4; do
	k=$(sed -n 's/^{"executed":\([0-9]*\)}$/\1/p' /tmp/e2e_pub_$$.$i)
	total=$((total + ${k:-1000}))
done
rm -f /tmp/e2e_pub_$$.*
is "$total" 40 "4 concurrent POSTs executed the 40 due schedules between them"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE status = 'done' AND attempts = 1")" 45 "each schedule once"
is "$(q "SELECT count(*) FROM ipai.cms_page_versions WHERE status = 'published'")" 45 "one published snapshot per page"

is "$(curl -s -o /dev/null -w '%{http_code}' "$EDGE_URL/cms-publisher")" 405 "GET is 405"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$EDGE_URL/other")" 404 "another path is 404"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$EDGE_URL/functions/v1/cms-publisher")" 200 \
	"the Supabase route /functions/v1/cms-publisher works too"
echo "1..$n"
