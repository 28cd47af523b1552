#!/usr/bin/env bash
# pg_upgrade from PostgreSQL 15 to 18 with ipai_saas (TAP), run by
# test/run_all.sh after both versions' suites, with the staged builds of
# both: IPAI_OLD_PGBIN (15, the system's) and IPAI_NEW_PGBIN (18).
#
# Which 15: the system's first.  Its minor release may be newer than the
# 18 at hand and write catalog data that 18 cannot restore: Debian 12's
# 15.20 stores attribute versions as a "pg_attver" column option (see its
# catalog/pg_attribute.h), which 18.6 (an earlier release) rejects, so
# pg_upgrade from 15.20 to 18.6 fails for any database with a table.  The
# test then asserts exactly that failure and runs the whole path from the
# newest older 15 of the Debian archive (IPAI_UPGRADE_FROM, default the
# newest postgresql-15 older than the system's, fetched with apt-get
# download and unpacked, never installed: test/lib/third_party.sh), with
# ipai_saas built against its headers.
#
# A 15 cluster (pg_cron and ipai_saas preloaded) gets the extension, its
# schema and the demo's story (webhooks applied, usage consumed, pages
# published by the worker), rows in every table (the RLS fixtures of every
# area) and pg_cron's jobs.  It is stopped and upgraded with 18's pg_upgrade (a
# --check first) into a new 18 cluster initialised as pg_upgrade needs
# (same locale, and data checksums only if the old cluster had them: 18's
# initdb enables them by default).  On 18: ALTER EXTENSION ipai_saas UPDATE
# and ipai.install_schema(); then every table's row count and checksum must
# equal those taken on 15, the catalog of schema ipai must equal a fresh
# install on 18, the cron jobs must be there, and the extension must still
# work: a signed webhook applied (and its redelivery a duplicate), a
# consume counted, a page published by hand and another by the 18 worker,
# health() without critical rows.
set -uo pipefail
TAP_DIAG="head -60"
. "$(dirname "$0")/../lib/tap.sh"

SYSOLD=${IPAI_OLD_PGBIN:?the staged 15 bin directory}
NEW=${IPAI_NEW_PGBIN:?the staged 18 bin directory}
SRC=${IPAI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export IPAI_SRC=$SRC
OLD=$SYSOLD

top=$(mktemp -d /tmp/ipai-upg.XXXXXX)
chmod 0755 "$top"
work=""
running=""
# as postgres, from the work directory (pg_upgrade writes its scripts and
# logs there; the postgres user may not enter the caller's directory)
as_pg() { (cd "$work" && runuser -u postgres -- "$@"); }
stop() { [ -n "$running" ] && as_pg "$1/pg_ctl" -D "$running" -m fast -w -t 60 stop >/dev/null 2>&1; running=""; }
cleanup() {
	[ -n "$running" ] && as_pg "$NEW/pg_ctl" -D "$running" -m immediate -w stop >/dev/null 2>&1
	[ -n "$running" ] && as_pg "$OLD/pg_ctl" -D "$running" -m immediate -w stop >/dev/null 2>&1
	[ -n "${IPAI_KEEP:-}" ] || rm -rf "$top"
}
trap cleanup EXIT

free_port() {
	local p
	while :; do
		# below the ephemeral range (32768-60999), where outgoing connections
		# may take the port before pg_upgrade's servers bind it
		p=$((20000 + RANDOM % 12768))
		! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo "$p"; return; }
	done
}
q() { "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -d "$@"; }
. "$SRC/test/lib/catalog.sh"

conf() {
	cat >>"$1/postgresql.auto.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
shared_preload_libraries = 'pg_cron,ipai_saas'
cron.database_name = 'postgres'
fsync = off
max_connections = 60
CONF
}
start() {
	as_pg "$1/pg_ctl" -D "$2" -l "$2.log" -w -t 60 start >/dev/null 2>&1 || { tail -20 "$2.log"; return 1; }
	running=$2
}

# upgrade_from OLD_BIN [known]: the whole path from that 15; with "known",
# a failure of pg_upgrade on 15.20's attribute versions is asserted as
# such and returns 2
upgrade_from() {
	OLD=$1
	work=$(mktemp -d "$top/run.XXXXXX")
	chown postgres:postgres "$work"
	chmod 0755 "$work"
	PORT=$(free_port)
	export PGHOST=$work PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres

	# --- PostgreSQL 15: the extension, data in every table, the demo ---------
	PSQL=$OLD/psql
	as_pg "$OLD/initdb" -D "$work/old" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$work/initdb-old.log" 2>&1 ||
		{ nok "initdb 15" "$(cat "$work/initdb-old.log")"; return 1; }
	conf "$work/old"
	if start "$OLD" "$work/old" >"$work/start.out"; then old_version=$(q postgres -c 'SHOW server_version'); ok "a 15 cluster: $old_version"; else nok "a 15 cluster starts" "$(cat "$work/start.out")"; return 1; fi
	# the demo creates the extension and its schema, then tells its story
	demo_ok=1
	for part in "$SRC"/test/demo/*.sql; do
		q postgres -f "$part" >"$work/demo.out" 2>&1 || { demo_ok=0; break; }
	done
	if [ "$demo_ok" = 1 ]; then ok "15: the extension, its schema and the demo's story (webhooks, usage, pages, the worker)"; else nok "15: the demo's story" "$(tail -20 "$work/demo.out")"; fi
	if out=$(q postgres -c "CREATE EXTENSION pg_cron" -c "SELECT ipai.schedule_jobs()" 2>&1) && fill postgres; then
		ok "15: pg_cron's jobs and the fixtures of every area"
	else
		nok "15: pg_cron's jobs and the fixtures of every area" "$out"
	fi
	empty=$(q postgres -c "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_class c
		WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind = 'r' AND c.relnatts > 0
		  AND (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ipai.%I', c.relname), false, true, '')))[1]::text::int = 0")
	is "$empty" "" "15: every table of schema ipai has rows (but the column-less _usage_cache_signal)"
	cols=$(columns postgres)
	before=$(fingerprint postgres "$cols")
	tables=$(printf '%s\n' "$before" | grep -c .)
	jobs_before=$(q postgres -c "SELECT string_agg(jobname || ' ' || schedule || ' ' || command, E'\n' ORDER BY jobname) FROM cron.job")
	checksums=$(as_pg "$OLD/pg_controldata" "$work/old" | sed -n 's/^Data page checksum version: *//p')
	stop "$OLD"

	# --- pg_upgrade ----------------------------------------------------------
	PSQL=$NEW/psql
	initdb_opts=(--no-data-checksums)
	[ "$checksums" != 0 ] && initdb_opts=(--data-checksums)
	as_pg "$NEW/initdb" -D "$work/new" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
		"${initdb_opts[@]}" >"$work/initdb-new.log" 2>&1 ||
		{ nok "initdb 18" "$(cat "$work/initdb-new.log")"; return 1; }
	conf "$work/new"
	upgrade=(-b "$OLD" -B "$NEW" -d "$work/old" -D "$work/new" -U postgres -p "$PORT" -P "$(free_port)" -s "$work")
	new_version=$("$NEW/postgres" --version | sed 's/.* //')
	if out=$(as_pg "$NEW/pg_upgrade" --check "${upgrade[@]}" 2>&1); then
		ok "pg_upgrade --check: $(printf '%s\n' "$out" | grep -c '^Checking') checks, $(printf '%s\n' "$out" | grep -E 'Clusters are compatible' | sed 's/^\*//; s/\*$//')"
	else
		nok "pg_upgrade --check" "$out"
	fi
	t0=$(date +%s)
	if out=$(as_pg "$NEW/pg_upgrade" "${upgrade[@]}" 2>&1); then
		ok "pg_upgrade $old_version -> $new_version ($(($(date +%s) - t0)) s, data checksums: $checksums)"
	else
		log=$(printf '%s\n' "$out" | sed -n 's/.*Consult the last few lines of "\([^"]*\)".*/\1/p' | head -1)
		if [ "${2:-}" = known ] && grep -q 'unrecognized parameter "pg_attver"' "$log" 2>/dev/null; then
			ok "pg_upgrade from $old_version to $new_version fails on $old_version's attribute versions, as known: $(grep -m1 'ERROR:' "$log" | sed 's/.*ERROR: *//')"
			stop "$OLD"
			return 2
		fi
		nok "pg_upgrade $old_version -> $new_version" "$(printf '%s\n' "$out" | tail -15)
	${log:+$log:
	$(tail -15 "$log" 2>/dev/null)}"
		return 1
	fi

	# --- PostgreSQL 18 -------------------------------------------------------
	if start "$NEW" "$work/new" >"$work/start.out"; then ok "the upgraded cluster runs $(q postgres -c 'SHOW server_version')"; else nok "the upgraded cluster starts" "$(cat "$work/start.out")"; return 1; fi
	if out=$(q postgres -c "ALTER EXTENSION ipai_saas UPDATE" -c "SELECT ipai.install_schema()" 2>&1); then
		ok "ALTER EXTENSION ipai_saas UPDATE, install_schema(): $(printf '%s' "$out" | tail -1)"
	else
		nok "ALTER EXTENSION ipai_saas UPDATE, install_schema()" "$out"
	fi
	is "$(q postgres -c "SELECT module_name || ' ' || version FROM pg_get_loaded_modules() WHERE file_name LIKE 'ipai_saas%'")" \
		"ipai_saas $(q postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'ipai_saas'")" \
		"18 names the loaded library and its version (pg_get_loaded_modules)"
	is "$(q postgres -c "SELECT extversion FROM pg_extension WHERE extname = 'ipai_saas'")" \
		"$(q postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'ipai_saas'")" \
		"the extension is at the version 18's installation ships"
	if d=$(diff <(printf '%s\n' "$before") <(fingerprint postgres "$cols")); then
		ok "row counts and checksums of all $tables tables equal those on 15"
	else
		nok "row counts and checksums equal those on 15" "$d"
	fi
	is "$(q postgres -c "SELECT string_agg(jobname || ' ' || schedule || ' ' || command, E'\n' ORDER BY jobname) FROM cron.job")" \
		"$jobs_before" "pg_cron's jobs are there"
	q postgres -c "CREATE DATABASE ipai_fresh" >/dev/null
	q ipai_fresh -c "SET client_min_messages = warning" -c "CREATE EXTENSION ipai_saas CASCADE" -c "SELECT ipai.install_schema()" >/dev/null
	# ACLs as pg_upgrade carries them: an owner-only ACL equal to the
	# default is dumped as nothing (NULL, the same privileges), and ALL
	# granted on 15 lacks MAINTAIN ("m"), a privilege of 17 and later that
	# ALL includes on a fresh 18 (GRANT ALL ON ipai.plans TO service_role)
	acl_as_on_15() { sed -E '/^relation /{s/acl=\{postgres=arwdDxtm?\/postgres\}/acl=default/; s/m\//\//g}' | sort; }
	fresh_catalog=$(catalog ipai_fresh)
	upgraded_catalog=$(catalog postgres)
	if d=$(diff <(printf '%s\n' "$fresh_catalog" | acl_as_on_15) <(printf '%s\n' "$upgraded_catalog" | acl_as_on_15)); then
		ok "the catalog of schema ipai equals a fresh install on 18 ($(printf '%s\n' "$fresh_catalog" | wc -l) lines; ACLs without 17's MAINTAIN)"
	else
		nok "the catalog of schema ipai equals a fresh install on 18" "$d"
	fi
	maintain=$(diff <(printf '%s\n' "$fresh_catalog") <(printf '%s\n' "$upgraded_catalog") | sed -n 's/^< relation \([^ ]*\) .*/\1/p' | tr '\n' ' ')
	echo "# ACLs that differ only so: ${maintain:-none}"

	# a signed webhook: Globex subscribes to pro (the demo's secret and price)
	acme=$(q postgres -c "SELECT id FROM ipai.organizations WHERE name = 'Acme'")
	globex=$(q postgres -c "SELECT id FROM ipai.organizations WHERE name = 'Globex'")
	payload=$(q postgres -c "SELECT jsonb_build_object('id', 'evt_upgrade_1', 'object', 'event',
		'type', 'customer.subscription.created', 'created', extract(epoch FROM now())::bigint, 'livemode', false,
		'data', jsonb_build_object('object', jsonb_build_object('id', 'sub_upgrade_1', 'object', 'subscription',
			'status', 'active', 'customer', 'cus_upgrade_1', 'cancel_at_period_end', false,
			'metadata', jsonb_build_object('org_id', '$globex', 'plan_id', 'pro'),
			'items', jsonb_build_object('object', 'list', 'data', jsonb_build_array(jsonb_build_object(
				'id', 'si_upgrade_1', 'object', 'subscription_item', 'quantity', 1,
				'price', jsonb_build_object('id', (SELECT stripe_price_id FROM ipai.plans WHERE id = 'pro'), 'object', 'price'),
				'current_period_start', extract(epoch FROM date_trunc('day', now()))::bigint,
				'current_period_end', extract(epoch FROM date_trunc('day', now()) + interval '1 month')::bigint))))))::text")
	secret=whsec_demo_5Xq2Lm9ZaRtVb7pQ2xLm9ZaRtVb7pQ2x
	deliver() {
		q postgres -v payload="$payload" -v secret="$secret" <<'SQL'
SELECT status FROM ipai.stripe_webhook(convert_to(:'payload', 'UTF8'), ipai.stripe_sign(:'payload', :'secret'));
SQL
	}
	is "$(deliver 2>&1)" processed "18: a signed webhook is processed"
	is "$(deliver 2>&1)" duplicate "18: its redelivery is a duplicate"
	is "$(q postgres -c "SELECT plan_id FROM ipai.organizations WHERE id = '$globex'")" pro "18: the subscription moved Globex to pro"

	# a consume, counted at once
	# (Acme used up its free ai_runs in the demo; Globex is on pro now)
	used=$(q postgres -c "SELECT current FROM ipai.check_entitlement('$globex', 'ai_runs')")
	if out=$(q postgres -c "SELECT allowed FROM ipai.consume_entitlement('$globex', 'ai_runs', 3, 'after-upgrade')" 2>&1) && [ "$out" = t ]; then
		is "$(q postgres -c "SELECT current FROM ipai.check_entitlement('$globex', 'ai_runs')")" "$((used + 3))" \
			"18: a consume of 3 ai_runs is counted ($used -> $((used + 3)))"
	else
		nok "18: a consume of 3 ai_runs" "$out"
	fi

	# a page published through the workflow, and one by the 18 worker
	editor=ca201000-0000-4000-8000-000000000001
	owner=a11ce000-0000-4000-8000-000000000001
	publish=$(q postgres <<SQL 2>&1
SET client_min_messages = warning;
SET ROLE authenticated;
SET ipai.user_id = '$editor';
SELECT ipai.cms_create_page('$acme', 'After the upgrade', '<p>Published on 18</p>') AS page \gset
SELECT ipai.cms_request_approval(:'page', 'please') IS NOT NULL;
SET ipai.user_id = '$owner';
SELECT ipai.cms_approve(:'page', 'ok') IS NOT NULL;
SELECT ipai.cms_publish(:'page') IS NOT NULL;
SELECT status FROM ipai.cms_pages WHERE id = :'page';
SQL
	)
	is "$(printf '%s' "$publish" | tail -1)" published "18: a page requested, approved and published"
	sched=$(q postgres <<SQL 2>&1
SET client_min_messages = warning;
SET ROLE authenticated;
SET ipai.user_id = '$editor';
SELECT ipai.cms_create_page('$acme', 'Scheduled after the upgrade', '<p>by the worker</p>') AS page \gset
SELECT ipai.cms_request_approval(:'page', 'please') IS NOT NULL;
SET ipai.user_id = '$owner';
SELECT ipai.cms_approve(:'page', 'ok') IS NOT NULL;
SELECT ipai.cms_schedule_publish(:'page', now() + interval '1 second') IS NOT NULL;
SELECT :'page';
SQL
	)
	page=$(printf '%s' "$sched" | tail -1)
	status=""
	for i in $(seq 1 100); do
		status=$(q postgres -c "SELECT status FROM ipai.cms_pages WHERE id = '$page'" 2>&1)
		[ "$status" = published ] && break
		sleep 0.1
	done
	is "$status" published "18: a scheduled publish executed by the worker"
	is "$(q postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ipai scheduler'")" 1 "18: the scheduler worker runs"
	crit=$(q postgres -c "SELECT string_agg(name || ': ' || detail, E'\n') FROM ipai.health() WHERE status = 'critical'" 2>&1)
	is "$crit" "" "18: ipai.health() reports nothing critical"

	stop "$NEW"
	return 0
}

upgrade_from "$SYSOLD" known
rc=$?
if [ "$rc" -eq 2 ]; then
	. "$SRC/test/lib/common.sh"
	from=${IPAI_UPGRADE_FROM:-$(apt-cache madison postgresql-15 | awk '{print $3}' |
		while read -r v; do dpkg --compare-versions "$v" lt "$(dpkg-query -W -f='${Version}' postgresql-15)" && echo "$v"; done |
		sort -V | tail -1)}
	if [ -z "$from" ]; then
		nok "an older PostgreSQL 15 in the Debian archive to upgrade from" "apt-cache madison postgresql-15: $(apt-cache madison postgresql-15)"
	elif pgconfig=$(ipai_pg_debian 15 "$from" 2>"$top/fetch.err") &&
		oldbin=$(ipai_stage "upgrade-15-$from" "-O2 -Werror" "$pgconfig" 2>"$top/stage.err"); then
		ok "ipai_saas built against PostgreSQL $from (Debian archive, unpacked)"
		upgrade_from "$oldbin"
	else
		nok "ipai_saas built against PostgreSQL $from from the Debian archive" "$(cat "$top/fetch.err" "$top/stage.err" 2>/dev/null | tail -20)"
	fi
fi
tap_done
