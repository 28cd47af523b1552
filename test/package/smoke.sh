#!/usr/bin/env bash
# smoke.sh — inside test/cluster.sh, on a cluster of an installation that
# got ipai_saas from a package (the Debian package, PGXN): the demo's story,
# whose first part runs `CREATE EXTENSION ipai_saas CASCADE; SELECT
# ipai.install_schema();` (then webhooks, usage, the CMS workflow, a publish
# by the scheduler worker, team admin), and checks that it left its
# traces.  Prints one summary line; exits 1 with the failing output
# otherwise.
set -uo pipefail
SRC=${IPAI_SRC:?}
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
fail() { echo "$1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -30; exit 1; }

grep -q '^CREATE EXTENSION ipai_saas CASCADE;$' "$SRC/test/demo/10_tenancy.sql" &&
	grep -q '^SELECT ipai.install_schema();$' "$SRC/test/demo/10_tenancy.sql" ||
	fail "test/demo/10_tenancy.sql no longer creates the extension and its schema"
for part in "$SRC"/test/demo/*.sql; do
	out=$(q -f "$part" 2>&1) || fail "the demo's $(basename "$part") failed:" "$out"
done
got=$(q -c "SELECT concat_ws(' ',
	(SELECT extversion FROM pg_extension WHERE extname = 'ipai_saas'),
	(SELECT count(*) FROM ipai.webhook_events WHERE status = 'processed'),
	(SELECT count(*) FROM ipai.usage_events),
	(SELECT count(*) FROM ipai.cms_pages WHERE status = 'published'),
	(SELECT count(*) FROM ipai.cms_schedule WHERE status = 'done'),
	(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ipai scheduler'))" 2>&1) ||
	fail "reading what the demo did failed:" "$got"
read -r version webhooks usage published scheduled worker <<<"$got"
[ "$webhooks" -gt 0 ] && [ "$usage" -gt 0 ] && [ "$published" -gt 0 ] && [ "$scheduled" -gt 0 ] && [ "$worker" = 1 ] ||
	fail "the demo left no trace: webhooks processed $webhooks, usage events $usage, pages published $published, schedules done $scheduled, workers $worker"
echo "version $version on $(q -c 'SHOW server_version'): $webhooks webhooks processed, $usage usage events, $published pages published, $scheduled by the worker"
