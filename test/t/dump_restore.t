#!/usr/bin/env bash
# Backup and restore (TAP): a database with a row in every ipai table (the
# RLS fixtures of every area), a column and an index of the user's own on
# ipai.organizations, then pg_dump -Fc and pg_restore into a new database.
# Every table must come back with the same rows, the user's additions must
# survive, seeded rows must not be duplicated, install_schema() must find
# the schema current, and the extension must still refuse a plain DROP.
set -uo pipefail
src=ipai_dump_src_$$
dst=ipai_dump_dst_$$
dump=$(mktemp /tmp/ipai-dump.XXXXXX)
chmod 0644 "$dump"
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" >/dev/null 2>&1
	rm -f "$dump"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1" "got: $2
want: $3"; fi; }

psql -X -q -d postgres -c "CREATE DATABASE $src TEMPLATE ipai_template" >/dev/null
for f in "$IPAI_SRC"/test/fixtures/rls/*.sql; do
	psql -X -q -v ON_ERROR_STOP=1 -d "$src" -f "$f" >/dev/null || { nok "fixture $f loads"; echo "1..$n"; exit 1; }
done
# and through the public API: a webhook secret, a delivered event, usage,
# an approved page waiting to be published
psql -X -q -v ON_ERROR_STOP=1 -d "$src" -f "$IPAI_SRC/test/fixtures/stripe/billing_events.sql" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$src" >/dev/null <<'SQL'
SELECT ipai.set_stripe_webhook_secret(stripe_fixture.secret());
UPDATE ipai.plans SET stripe_price_id = 'price_dump_pro' WHERE id = 'pro';
SELECT stripe_fixture.deliver(stripe_fixture.subscription_event('evt_dump_1', 'customer.subscription.created',
	1767225600, 'sub_dump', 'cus_fixtureA', 'active', 'price_dump_pro', 1767225600, 1769904000,
	'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'));
SELECT ipai.consume_entitlement('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'ai_runs', 2, 'dump-key-1');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'aaaaaaaa-0000-4000-8000-000000000002', 'editor');
SET ipai.user_id = 'aaaaaaaa-0000-4000-8000-000000000002';
SELECT ipai.cms_create_page('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'Restored page', '<p>kept</p>', 'restored-page');
SELECT ipai.cms_request_approval((SELECT id FROM ipai.cms_pages WHERE slug = 'restored-page'));
SET ipai.user_id = 'aaaaaaaa-0000-4000-8000-000000000001';
SELECT ipai.cms_approve((SELECT id FROM ipai.cms_pages WHERE slug = 'restored-page'));
RESET ipai.user_id;
SQL
psql -X -q -v ON_ERROR_STOP=1 -d "$src" >/dev/null <<'SQL'
ALTER TABLE ipai.organizations ADD COLUMN crm_ref text;
CREATE INDEX organizations_crm_ref ON ipai.organizations (crm_ref);
UPDATE ipai.organizations SET crm_ref = 'CRM-' || name;
SQL

# one line per table: name, row count, checksum of the rows
fingerprint() {
	psql -X -A -t -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT format('%s %s %s', c.relname,
         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ipai.%I', c.relname), false, true, '')))[1]::text,
         (xpath('/row/h/text()', query_to_xml(format(
             'SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS h FROM ipai.%I t',
             '|', '', c.relname), false, true, '')))[1]::text) AS line
    FROM pg_class c
   WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind = 'r') s;
SQL
}
before=$(fingerprint "$src")

if pg_dump -Fc -d "$src" -f "$dump" 2>"$dump.err"; then ok "pg_dump -Fc"; else nok "pg_dump -Fc" "$(cat "$dump.err")"; fi
psql -X -q -d postgres -c "CREATE DATABASE $dst TEMPLATE template0" >/dev/null
if pg_restore --exit-on-error -d "$dst" "$dump" 2>"$dump.err"; then ok "pg_restore into a new database"; else nok "pg_restore into a new database" "$(cat "$dump.err")"; fi
rm -f "$dump.err"

after=$(fingerprint "$dst")
check "every ipai table has the same rows after the restore" "$after" "$before"
check "the user's column survived" \
	"$(psql -X -A -t -d "$dst" -c "SELECT string_agg(crm_ref, ',' ORDER BY crm_ref) FROM ipai.organizations")" "CRM-Org A,CRM-Org B"
check "the user's index survived" \
	"$(psql -X -A -t -d "$dst" -c "SELECT count(*) FROM pg_indexes WHERE indexname = 'organizations_crm_ref'")" "1"
check "install_schema() finds the restored schema current" \
	"$(psql -X -A -t -d "$dst" -c "SELECT ipai.install_schema()")" "ipai schema is up to date at version $(psql -X -A -t -d "$dst" -c "SELECT ipai._schema_target_version()")"
check "seeded plans are not duplicated" \
	"$(psql -X -A -t -d "$dst" -c "SELECT count(*) FROM ipai.plans")" \
	"$(psql -X -A -t -d "$src" -c "SELECT count(*) FROM ipai.plans")"
check "row-level security is still enabled on every table" \
	"$(psql -X -A -t -d "$dst" -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'ipai'::regnamespace AND relkind = 'r' AND NOT relrowsecurity")" "0"
check "policies came back" \
	"$(psql -X -A -t -d "$dst" -c "SELECT count(*) FROM pg_policies WHERE schemaname = 'ipai'")" \
	"$(psql -X -A -t -d "$src" -c "SELECT count(*) FROM pg_policies WHERE schemaname = 'ipai'")"
check "triggers came back" \
	"$(psql -X -A -t -d "$dst" -c "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'ipai'::regnamespace AND NOT t.tgisinternal")" \
	"$(psql -X -A -t -d "$src" -c "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'ipai'::regnamespace AND NOT t.tgisinternal")"
if psql -X -q -d "$dst" -c "DROP EXTENSION ipai_saas" >/dev/null 2>&1; then
	nok "DROP EXTENSION without CASCADE is still refused after the restore"
else
	ok "DROP EXTENSION without CASCADE is still refused after the restore"
fi
# it still works: a tenant sees its organization through RLS
check "RLS works after the restore" \
	"$(psql -X -q -A -t -d "$dst" -c "SET ROLE authenticated; SET ipai.user_id = 'aaaaaaaa-0000-4000-8000-000000000001'; SELECT string_agg(name, ',') FROM ipai.organizations")" "Org A"

# everything still works on the restored database
check "a redelivered event is a duplicate after the restore" \
	"$(psql -X -A -t -q -d "$dst" -c "SELECT (stripe_fixture.deliver(stripe_fixture.subscription_event('evt_dump_1', 'customer.subscription.created',
		1767225600, 'sub_dump', 'cus_fixtureA', 'active', 'price_dump_pro', 1767225600, 1769904000,
		'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'))).status")" "duplicate"
check "a new webhook is verified with the restored secret and applied" \
	"$(psql -X -A -t -q -d "$dst" -c "SELECT (stripe_fixture.deliver(stripe_fixture.subscription_event('evt_dump_2', 'customer.subscription.deleted',
		1767229200, 'sub_dump', 'cus_fixtureA', 'canceled', 'price_dump_pro', 1767225600, 1769904000,
		'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'))).status"),$(psql -X -A -t -q -d "$dst" -c "SELECT plan_id FROM ipai.organizations WHERE id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'")" \
	"processed,free"
check "consume counts on the restored counters, and the idempotency key survived" \
	"$(psql -X -A -t -q -d "$dst" -c "SELECT current FROM ipai.consume_entitlement('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'ai_runs', 1, 'dump-key-2')"),$(psql -X -A -t -q -d "$dst" -c "SELECT ipai.record_usage('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 'ai_runs', 2, 'dump-key-1')"),$(psql -X -A -t -q -d "$dst" -c "SELECT ipai.refresh_org_usage()")" \
	"4,f,0"
check "the approved page is published on the restored database, with its snapshot" \
	"$(psql -X -A -t -q -d "$dst" -c "SET ipai.user_id = 'aaaaaaaa-0000-4000-8000-000000000001'; SELECT ipai.cms_publish((SELECT id FROM ipai.cms_pages WHERE slug = 'restored-page'))")/$(psql -X -A -t -q -d "$dst" -c "SELECT v.status || ':' || count(*) OVER () FROM ipai.cms_page_versions v JOIN ipai.cms_pages p ON p.id = v.page_id WHERE p.slug = 'restored-page' ORDER BY v.version DESC LIMIT 1")" \
	"4/published:4"
echo "1..$n"
