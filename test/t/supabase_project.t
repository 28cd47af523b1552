#!/usr/bin/env bash
# supabase/ as a Supabase CLI project (TAP), checked without the CLI's
# Docker stack: config.toml names every function (verify_jwt off only for
# stripe-webhook) with files that exist; the migrations apply in order with
# psql to a fresh database shaped like Supabase's (its roles are created by
# install_schema, an empty supabase_realtime publication exists, pg_cron is
# preloaded), then seed.sql; both again change nothing.  Realtime: the
# tables install_schema() publishes reach a logical replication slot read
# with pgoutput, and a usage counter's change does not.
#
# Runs on a cluster of its own (wal_level = logical for the slot, pg_cron's
# database = postgres, as on Supabase).
set -uo pipefail
if [ "${1:-}" != inner ]; then
	export IPAI_CONF="wal_level = logical
ipai.scheduler_enabled = off"
	exec "$IPAI_SRC/test/cluster.sh" run -- "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" inner
fi

n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | tail -30 | sed 's/^/# /'
	return 0
}
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
q() { psql -X -q -At -d postgres -c "$1" 2>&1; }
project="$IPAI_SRC/supabase"

# config.toml, read as TOML
out=$(python3 - "$project" <<'PY' 2>&1
import os, sys, tomllib
root = sys.argv[1]
cfg = tomllib.load(open(os.path.join(root, "config.toml"), "rb"))
fns = sorted(d for d in os.listdir(os.path.join(root, "functions"))
             if not d.startswith("_") and os.path.isdir(os.path.join(root, "functions", d)))
conf = cfg.get("functions", {})
problems = []
if sorted(conf) != fns:
    problems.append(f"functions in config.toml {sorted(conf)} != directories {fns}")
for name, c in conf.items():
    want = name != "stripe-webhook"
    if c.get("verify_jwt") is not want:
        problems.append(f"{name}: verify_jwt should be {want}")
    for key in ("import_map", "entrypoint"):
        if not os.path.isfile(os.path.join(root, c.get(key, "-"))):
            problems.append(f"{name}: {key} {c.get(key)} does not exist")
if cfg.get("db", {}).get("major_version") != 15:
    problems.append("db.major_version should be 15")
print("\n".join(problems) if problems else f"{len(conf)} functions")
sys.exit(1 if problems else 0)
PY
)
if [ $? -eq 0 ]; then
	ok "config.toml: every function, verify_jwt off only for stripe-webhook, its import map and entrypoint exist ($out)"
else
	nok "config.toml" "$out"
fi
bad=$(ls "$project/migrations" | grep -vE '^[0-9]{14}_[a-z0-9_]+\.sql$')
[ -z "$bad" ] && ok "migrations are named <timestamp>_<name>.sql" || nok "migrations are named <timestamp>_<name>.sql" "$bad"

# a database shaped like Supabase's: the realtime publication exists, empty
q "CREATE PUBLICATION supabase_realtime" >/dev/null
apply() {
	local f out
	for f in $(ls "$project"/migrations/*.sql | sort) "$project/seed.sql"; do
		if ! out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$f" 2>&1); then
			echo "$(basename "$f"): $out"
			return 1
		fi
	done
}
if out=$(apply); then ok "the migrations apply in order, then seed.sql"; else nok "the migrations apply in order, then seed.sql" "$out"; fi
is "$(q "SELECT extversion = default_version FROM pg_extension JOIN pg_available_extensions ON name = extname WHERE extname = 'ipai_saas'")" t \
	"the extension is installed at its current version"
is "$(q "SELECT status FROM ipai.health() WHERE name = 'schema'")" ok "its tables are current (health: schema ok)"
is "$(q "SELECT string_agg(jobname, ',' ORDER BY jobname) FROM cron.job")" \
	"ipai-recover-stuck-runs,ipai-refresh-org-usage,ipai-run-due-publications" "the pg_cron jobs are registered"
is "$(q "SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'supabase_realtime'")" \
	"ipai.cms_approvals,ipai.cms_pages,ipai.cms_schedule,ipai.subscriptions" "supabase_realtime publishes the dashboard tables"
is "$(q "SELECT status FROM ipai.health() WHERE name = 'realtime'")" ok "health reports them published"
is "$(q "SELECT o.name || ',' || (SELECT count(*) FROM ipai.org_members m WHERE m.org_id = o.id) || ',' || (SELECT current FROM ipai.check_entitlement(o.id, 'ai_runs')) || ',' || (SELECT count(*) FROM ipai.cms_pages p WHERE p.org_id = o.id) FROM ipai.organizations o")" \
	"Demo Co,2,42,1" "seed.sql: the demo organization with two members, 42 AI runs and a page"
if out=$(apply); then
	is "$(q "SELECT (SELECT count(*) FROM ipai.organizations) || ',' || (SELECT count(*) FROM cron.job) || ',' || (SELECT count(*) FROM pg_publication_tables WHERE pubname = 'supabase_realtime') || ',' || (SELECT current FROM ipai.check_entitlement('d3e00000-0000-4000-8000-00000000000a', 'ai_runs'))")" \
		"1,3,4,42" "applied again: nothing doubled"
else
	nok "applied again: nothing doubled" "$out"
fi

# Realtime: what a logical slot on supabase_realtime receives
q "SELECT pg_create_logical_replication_slot('ipai_rt_test', 'pgoutput')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null 2>&1 <<'SQL'
SET ipai.user_id = 'd3e00000-0000-4000-8000-0000000000e1';
SELECT ipai.cms_request_approval(id, 'ready') FROM ipai.cms_pages WHERE org_id = 'd3e00000-0000-4000-8000-00000000000a';
SELECT ipai.record_usage('d3e00000-0000-4000-8000-00000000000a', 'ai_runs', 1);
SQL
seen=$(q "SELECT string_agg(DISTINCT split_part(r, '\\000', 1) || '.' || split_part(r, '\\000', 2), ',')
            FROM (SELECT encode(substring(data FROM 6 FOR 128), 'escape') AS r
                    FROM pg_logical_slot_get_binary_changes('ipai_rt_test', NULL, NULL,
                         'proto_version', '1', 'publication_names', 'supabase_realtime')
                   WHERE get_byte(data, 0) = ascii('R')) m")
is "$seen" "ipai.cms_approvals,ipai.cms_pages" \
	"pgoutput on supabase_realtime carries the approval and the page, not the usage counter"
q "SELECT pg_drop_replication_slot('ipai_rt_test')" >/dev/null
echo "1..$n"
[ "$fail" -eq 0 ]
