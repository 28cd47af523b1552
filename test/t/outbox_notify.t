#!/usr/bin/env bash
# The outbox wake-up (TAP): a commit that writes outbox rows sends NOTIFY
# ipai_outbox, at most once per backend every 100 ms; an aborted
# transaction's notification is not sent and does not hold back the next.
# One psql session listens to its own notifications.
set -uo pipefail
db=ipai_outbox_notify_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1' EXIT
psql -X -q -d "$db" -c "INSERT INTO ipai.organizations (id, name) VALUES ('0e000000-0000-4000-8000-000000000000', 'Notify')"
ins="INSERT INTO ipai.outbox (org_id, topic, payload) VALUES ('0e000000-0000-4000-8000-000000000000', 'notify.test', '{}');"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/# /'; }
count() { grep -c 'Asynchronous notification "ipai_outbox"' <<<"$1"; }

out=$( { echo "LISTEN ipai_outbox;"; echo "SELECT pg_sleep(0.2);"; echo "$ins"; } | psql -X -q -d "$db" 2>&1)
[ "$(count "$out")" = 1 ] && ok "a commit that writes outbox rows notifies ipai_outbox" || nok "a commit that writes outbox rows notifies ipai_outbox" "$out"

out=$( { echo "LISTEN ipai_outbox;"; for i in $(seq 1 50); do echo "$ins"; done; } | psql -X -q -d "$db" 2>&1)
c=$(count "$out")
secs=$(psql -X -At -d "$db" -c "SELECT extract(epoch FROM max(created_at) - min(created_at)) FROM (SELECT created_at FROM ipai.outbox ORDER BY id DESC LIMIT 50) x")
[ "$c" -ge 1 ] && [ "$c" -lt 50 ] && ok "50 commits in ${secs}s from one backend: $c notifications (at most one per 100 ms)" ||
	nok "50 quick commits are not 50 notifications" "$c notifications in ${secs}s"

out=$( { echo "LISTEN ipai_outbox;"; echo "SELECT pg_sleep(0.2);"; echo "BEGIN;"; echo "$ins"; echo "ROLLBACK;"; echo "$ins"; } | psql -X -q -d "$db" 2>&1)
[ "$(count "$out")" = 1 ] && ok "an aborted transaction sends nothing and does not hold back the next commit" ||
	nok "an aborted transaction sends nothing and does not hold back the next commit" "$out"

out=$( { echo "LISTEN ipai_outbox;"; echo "SELECT pg_sleep(0.2);"; echo "BEGIN;"; echo "$ins"; echo "$ins"; echo "COMMIT;"; } | psql -X -q -d "$db" 2>&1)
[ "$(count "$out")" = 1 ] && ok "one notification per transaction" || nok "one notification per transaction" "$out"
echo "1..$n"
