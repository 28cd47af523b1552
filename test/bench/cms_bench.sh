#!/usr/bin/env bash
# cms_bench.sh — cost of the version snapshot trigger (src/versions.c) on
# UPDATEs of ipai.cms_pages, with and without it, in one run (prints
# figures and ratios; not a test).  Goal: at most 1.5x.
#
#   status  UPDATEs that change the status (draft -> pending -> approved ->
#           published -> draft ...): each one writes a full snapshot.
#             bare      no trigger at all
#             snapshot  only the snapshot triggers (numbering + snapshot)
#             workflow  the workflow and approval triggers, no snapshot
#             full      everything, as installed
#   content UPDATEs of the body only: the trigger fires and decides that no
#           snapshot is due (the AFTER trigger is filtered by its WHEN).
#             bare / snapshot / full as above
# 1000 pages, pgbench -n -M prepared -c 2 -j 2 -T ${BENCH_SECONDS:-5} over
# the Unix socket, acting as a superuser (the workflow then checks the
# transitions but no roles).  The arms run interleaved, ${BENCH_ROUNDS:-3}
# rounds, and each figure is the median of its rounds, so that load from
# elsewhere on the machine hits all arms alike.  Ratio = TPS without / TPS
# with.
#
# With PGHOST etc. set (test/cluster.sh run -- test/bench/cms_bench.sh, with
# IPAI_PGBIN at an optimised stage) it uses that server; without PGHOST it
# builds an optimised stage and runs itself on a throwaway cluster.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export IPAI_SRC=$SRC

if [ -z "${PGHOST:-}" ]; then
	. "$SRC/test/lib/common.sh"
	pgbin=$(ipai_stage opt "-O2")
	exec env IPAI_PGBIN="$pgbin" "$SRC/test/cluster.sh" run -- "$0" "$@"
fi

PGBIN=${IPAI_PGBIN:-$(pg_config --bindir 2>/dev/null)}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
db=cms_bench_$$
work=$(mktemp -d /tmp/cms_bench.XXXXXX)
chmod 0755 "$work"
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('c9000000-0000-4000-8000-000000000000', 'Bench', 'pro');
INSERT INTO ipai.cms_pages (org_id, id, slug, title, body)
SELECT 'c9000000-0000-4000-8000-000000000000',
	   ('c9000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
	   'page-' || g, 'Page ' || g,
	   '<h1>Page ' || g || '</h1>' || repeat('<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>', 20)
  FROM generate_series(1, 1000) g;
VACUUM ANALYZE;
SQL

cat >"$work/status.sql" <<'SQL'
\set n random(1, 1000)
UPDATE ipai.cms_pages
   SET status = CASE status WHEN 'draft' THEN 'pending' WHEN 'pending' THEN 'approved'
				WHEN 'approved' THEN 'published' ELSE 'draft' END::ipai.page_status
 WHERE org_id = 'c9000000-0000-4000-8000-000000000000'
   AND id = ('c9000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid;
SQL
cat >"$work/content.sql" <<'SQL'
\set n random(1, 1000)
\set r random(1, 1000000)
UPDATE ipai.cms_pages SET body = '<h1>Edited ' || :r || '</h1>'
 WHERE org_id = 'c9000000-0000-4000-8000-000000000000'
   AND id = ('c9000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid;
SQL

# triggers: snapshot = numbering and snapshot, workflow = guard and approvals
snapshot="cms_pages_20_version cms_pages_snapshot_insert cms_pages_snapshot_update"
workflow="cms_pages_10_workflow cms_pages_approvals"
set_triggers() {	# enable the named trigger groups, disable the others
	local sql="" t
	# "drafts": every page back to draft first (content edits of published
	# pages are refused by the workflow)
	case " $* " in *" drafts "*)
		sql+="ALTER TABLE ipai.cms_pages DISABLE TRIGGER USER;"
		sql+="UPDATE ipai.cms_pages SET status = 'draft';" ;;
	esac
	for t in $snapshot; do
		case " $* " in *" snapshot "*) sql+="ALTER TABLE ipai.cms_pages ENABLE TRIGGER $t;" ;;
			*) sql+="ALTER TABLE ipai.cms_pages DISABLE TRIGGER $t;" ;; esac
	done
	for t in $workflow; do
		case " $* " in *" workflow "*) sql+="ALTER TABLE ipai.cms_pages ENABLE TRIGGER $t;" ;;
			*) sql+="ALTER TABLE ipai.cms_pages DISABLE TRIGGER $t;" ;; esac
	done
	# runs without the workflow leave pending approvals behind that the
	# status changed under; the workflow would refuse a second one
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "$sql" -c "TRUNCATE ipai.cms_approvals" \
		-c "VACUUM ANALYZE ipai.cms_pages" >/dev/null
}
run() {	# script -> TPS; any failed transaction stops the benchmark
	local out
	if ! out=$("$PGBIN/pgbench" -n -M prepared -c 2 -j 2 -T "$SECONDS_PER_RUN" -f "$work/$1.sql" "$db" 2>&1); then
		echo "cms_bench: pgbench failed on $1:" >&2
		echo "$out" | tail -5 >&2
		exit 1
	fi
	echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "cms_bench: UPDATE of ipai.cms_pages, pgbench -c 2 -j 2 -T $SECONDS_PER_RUN, median of $ROUNDS interleaved rounds, TPS"
declare -A tps
for round in $(seq 1 "$ROUNDS"); do
	set_triggers;                   tps[s_bare]+=" $(run status)"
	set_triggers snapshot;          tps[s_snap]+=" $(run status)"
	set_triggers workflow;          tps[s_wf]+=" $(run status)"
	set_triggers snapshot workflow; tps[s_full]+=" $(run status)"
	set_triggers;                   tps[c_bare]+=" $(run content)"
	set_triggers snapshot;          tps[c_snap]+=" $(run content)"
	set_triggers drafts snapshot workflow; tps[c_full]+=" $(run content)"
	echo "  round $round done" >&2
done
set_triggers snapshot workflow
for k in s_bare s_snap s_wf s_full c_bare c_snap c_full; do
	declare "$k=$(echo "${tps[$k]}" | median)"
done
versions=$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM ipai.cms_page_versions")
gaps=$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM (SELECT page_id, version, lag(version) OVER (PARTITION BY page_id ORDER BY version) AS prev FROM ipai.cms_page_versions) s WHERE prev IS NOT NULL AND version <> prev + 1")

printf '%-52s %9.0f   (%s)\n' "status change, no trigger" "$s_bare" "${tps[s_bare]# }"
printf '%-52s %9.0f   (%s)\n' "status change, snapshot trigger" "$s_snap" "${tps[s_snap]# }"
printf '%-52s %9.0f   (%s)\n' "status change, workflow triggers only" "$s_wf" "${tps[s_wf]# }"
printf '%-52s %9.0f   (%s)\n' "status change, workflow + snapshot (as installed)" "$s_full" "${tps[s_full]# }"
printf '%-52s %9.0f   (%s)\n' "content edit, no trigger" "$c_bare" "${tps[c_bare]# }"
printf '%-52s %9.0f   (%s)\n' "content edit, snapshot trigger (no snapshot due)" "$c_snap" "${tps[c_snap]# }"
printf '%-52s %9.0f   (%s)\n' "content edit, workflow + snapshot (as installed)" "$c_full" "${tps[c_full]# }"
echo "snapshots written: $versions, numbering gaps: $gaps"
echo "ratio, snapshot trigger on a status-changing UPDATE:       $(ratio "$s_bare" "$s_snap") (goal <= 1.5x)"
echo "ratio, snapshot trigger within the whole workflow:         $(ratio "$s_wf" "$s_full")"
echo "ratio, snapshot trigger on a content edit (no snapshot):   $(ratio "$c_bare" "$c_snap")"
