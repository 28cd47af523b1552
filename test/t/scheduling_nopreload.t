#!/usr/bin/env bash
# Without shared_preload_libraries (TAP), on a cluster of its own that
# preloads pg_cron only: no worker, the preload-only function says so
# clearly, and scheduling still works through ipai.run_due_publications().
set -uo pipefail

if [ "${1:-}" != inner ]; then
	export IPAI_PRELOAD=pg_cron
	exec "$IPAI_SRC/test/cluster.sh" run -- "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" inner
fi

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'; }
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
like() { if [[ "$1" =~ $2 ]]; then ok "$3"; else nok "$3" "got '$1'"; fi; }
q() { psql -X -q -At -d postgres -c "$1" 2>&1; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('7b000000-0000-4000-8000-000000000000', 'No preload', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('7b000000-0000-4000-8000-000000000000', '7b000000-0000-4000-8000-0000000000ad', 'admin'),
	('7b000000-0000-4000-8000-000000000000', '7b000000-0000-4000-8000-0000000000ed', 'editor');
SET ipai.user_id = '7b000000-0000-4000-8000-0000000000ed';
SELECT ipai.cms_request_approval(ipai.cms_create_page('7b000000-0000-4000-8000-000000000000', 'Page', '<p>p</p>'));
SET ipai.user_id = '7b000000-0000-4000-8000-0000000000ad';
SELECT ipai.cms_approve(id) FROM ipai.cms_pages;
SQL

is "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ipai scheduler'")" 0 "no worker runs"
is "$(q "SELECT preloaded || ',' || state || ',' || serves_this_database FROM ipai.scheduler_status()")" \
	"false,not loaded,false" "scheduler_status() says the library is not preloaded"
out=$(psql -X -q -At -v VERBOSITY=verbose -d postgres -c "SELECT ipai.scheduler_wakeup()" 2>&1)
like "$out" "ERROR:  55000: the scheduled-publishing worker is not available" \
	"the preload-only scheduler_wakeup() raises 55000"
like "$out" "DETAIL:  ipai_saas is not loaded through shared_preload_libraries" "saying why"
like "$out" "HINT:  Add ipai_saas to shared_preload_libraries in postgresql.conf and restart the server" \
	"and what to do"
s=$(q "SET ipai.user_id = '7b000000-0000-4000-8000-0000000000ad'; SELECT ipai.cms_schedule_publish(id, clock_timestamp()) FROM ipai.cms_pages" | tail -1)
like "$s" "^[0-9]+$" "scheduling works (the wake-up trigger does nothing)"
sleep 1
is "$(q "SELECT status FROM ipai.cms_schedule WHERE id = $s")" pending "nobody executes it by itself"
is "$(q "SELECT status_live FROM ipai.cms_live_pages")" published "yet readers see the page live"
is "$(q "SELECT ipai.run_due_publications()")" 1 "ipai.run_due_publications() executes it"
is "$(q "SELECT status || ',' || executed_via FROM ipai.cms_schedule WHERE id = $s")" "done,psql" "done"
echo "1..$n"
