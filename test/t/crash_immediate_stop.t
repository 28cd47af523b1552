#!/usr/bin/env bash
# An immediate server stop (pg_ctl stop -m immediate: no checkpoint, every
# process killed, WAL replay at the next start) in the middle of publishing
# a batch (TAP), on a cluster of its own with the scheduling worker and a
# helper (test/crash/lib.sh).
#
# 600 approved pages are scheduled for the same instant; a test trigger
# makes each scheduled publication take 5 ms so the batch lasts a few
# seconds.  While the worker and its helper are part-way through, the
# server is stopped immediately, then started again.  After recovery:
# every schedule executed exactly once (status done, one published version
# snapshot and one audit row per page), nothing skipped, nothing left
# running or due, the claims of the dead executors recovered (attempt 2 at
# most), and the lateness of what ran after the restart includes the
# downtime.
set -uo pipefail
. "$IPAI_SRC/test/crash/lib.sh"
crash_cluster "$0" "$@"

crash_install
ORG=c7000000-0000-4000-8000-0000000000d0
ADMIN=c7000000-0000-4000-8000-0000000000ad
EDITOR=c7000000-0000-4000-8000-0000000000ed
N=600
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('$ORG', 'Crash Stop', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES ('$ORG', '$ADMIN', 'admin'), ('$ORG', '$EDITOR', 'editor');
SET ipai.user_id = '$EDITOR';
SELECT count(ipai.cms_request_approval(ipai.cms_create_page('$ORG', 'Batch ' || g, '<p>' || g || '</p>')))
  FROM generate_series(1, $N) g;
SET ipai.user_id = '$ADMIN';
SELECT count(ipai.cms_approve(id)) FROM ipai.cms_pages;
CREATE FUNCTION public.crash_slow() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.status = 'published' AND OLD.status = 'approved' THEN
		PERFORM pg_sleep(0.005);
	END IF;
	RETURN NEW;
END
\$\$;
CREATE TRIGGER crash_slow BEFORE UPDATE ON ipai.cms_pages FOR EACH ROW EXECUTE FUNCTION public.crash_slow();
SELECT date_trunc('second', clock_timestamp()) + interval '2 seconds' AS t0 \gset
SELECT count(ipai.cms_schedule_publish(id, :'t0')) FROM ipai.cms_pages;
SQL
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE status = 'pending'")" "$N" "$N publications scheduled for the same instant"

check "SELECT count(*) BETWEEN 64 AND $((N - 150)) FROM ipai.cms_schedule WHERE status = 'done'" \
	"the worker is part-way through the batch" 30
done_before=$(q "SELECT count(*) FROM ipai.cms_schedule WHERE status = 'done'")
running=$(q "SELECT count(*) FROM ipai.cms_schedule WHERE status = 'running'")
if pgctl -m immediate -w stop >/dev/null 2>&1; then
	ok "pg_ctl stop -m immediate with $done_before done and $running visibly running"
	# the moment the server was gone, by the same clock (this machine's)
	stop_at=$(date -u '+%Y-%m-%d %H:%M:%S.%6N+00')
else
	stop_at=$(date -u '+%Y-%m-%d %H:%M:%S.%6N+00')
	nok "pg_ctl stop -m immediate"
fi
"$IPAI_PGBIN/pg_isready" -q -t 1 && nok "the server is down" || ok "the server is down"
if pgctl -l "$IPAI_SERVER_LOG" -w -t 60 start >/dev/null && wait_ready; then ok "restarted (crash recovery)"; else nok "restarted (crash recovery)"; fi
if grep -q 'database system was interrupted\|was not properly shut down' "$IPAI_SERVER_LOG"; then
	ok "the server log shows crash recovery"
else
	nok "the server log shows crash recovery"
fi
restart_at=$(q "SELECT pg_postmaster_start_time()")

check "SELECT count(*) = $N FROM ipai.cms_schedule WHERE status = 'done'" "after recovery all $N publications are done" 60
is "$(q "SELECT count(*) FILTER (WHERE status IN ('pending', 'running', 'failed')) || ',' || count(*) FILTER (WHERE executed_at IS NULL OR lateness IS NULL OR lateness <> executed_at - run_at) FROM ipai.cms_schedule")" \
	"0,0" "nothing left pending, running or failed; every row has its lateness"
is "$(q "SELECT count(*) FROM ipai.cms_pages p WHERE p.status = 'published'
           AND (SELECT count(*) FROM ipai.cms_page_versions v WHERE v.page_id = p.id AND v.status = 'published') = 1
           AND (SELECT count(*) FROM ipai.audit_log a WHERE a.object_id = p.id::text AND a.action = 'cms.page.status' AND a.new_values->>'status' = 'published') = 1")" \
	"$N" "every page published exactly once: one published snapshot and one audit row each"
is "$(q "SELECT count(*) FROM ipai.cms_page_versions GROUP BY page_id HAVING max(version) <> count(*) OR min(version) <> 1")" "" \
	"version numbers stay gapless from 1 per page"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE executed_at > '$stop_at' AND executed_at < '$restart_at'")" 0 \
	"nothing was executed while the server was down"
is "$(q "SELECT count(*) >= $done_before FROM ipai.cms_schedule WHERE executed_at <= '$stop_at'")" t \
	"what was done before the stop stayed done ($done_before or more)"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE executed_at >= '$restart_at' AND lateness >= timestamptz '$restart_at' - run_at")" \
	"$(q "SELECT count(*) FROM ipai.cms_schedule WHERE executed_at >= '$restart_at'")" \
	"what ran after the restart has the downtime in its lateness"
is "$(q "SELECT count(*) > 0 FROM ipai.cms_schedule WHERE executed_at >= '$restart_at'")" t "and some did run after the restart"
is "$(q "SELECT max(attempts) <= 2 FROM ipai.cms_schedule")" t "no schedule was claimed more than twice"
is "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE attempts = 2")" "$(q "SELECT count(*) FROM ipai.cms_schedule WHERE attempts = 2 AND error IS NULL")" \
	"claims of the dead executors were recovered and retried cleanly"
echo "# $done_before done and $running running at the stop; $(q "SELECT count(*) FROM ipai.cms_schedule WHERE attempts = 2") recovered on a second attempt; max lateness $(q "SELECT max(lateness) FROM ipai.cms_schedule")"
crash_done
