#!/usr/bin/env bash
# A shard moved between workers while callers consume through the
# coordinator (TAP): every organization's shards (colocated) move together
# with citus_move_shard_placement, and not one unit is lost or counted
# twice: what the callers were granted, the counter and the usage events
# agree, and the limit still holds afterwards.
set -uo pipefail
. "$IPAI_SRC/test/citus/lib.sh"
db=ipai_citus_move
TAP_DIAG="tail -20"
. "$IPAI_SRC/test/lib/tap.sh"
q() { psql -X -q -At -d "$db" -v ON_ERROR_STOP=1 "$@" 2>&1; }
tmp=$(mktemp -d)
trap 'citus_drop_db "$db"; rm -rf "$tmp"' EXIT

citus_ipai_db "$db" >/dev/null || { echo "Bail out! could not make the Citus database"; exit 1; }
org=e1000000-0000-4000-8000-00000000000a
q -c "INSERT INTO ipai.organizations (id, name, plan_id) VALUES ('$org', 'Mover', 'free')" >/dev/null
max=$(q -c "SELECT max_quantity FROM ipai.plan_entitlements WHERE plan_id = 'free' AND feature = 'ai_runs'")

shard=$(q -c "SELECT get_shard_id_for_distribution_column('ipai.organizations', '$org')")
from=$(q -c "SELECT nodeport FROM citus_shards WHERE shardid = $shard")
to=$(for p in $CITUS_WORKER_PORTS; do [ "$p" != "$from" ] && echo "$p"; done | head -1)

# three callers, more attempts than the limit allows, while the shard moves
for w in 1 2 3; do
	(for i in $(seq 1 60); do
		q -c "SELECT ipai.consume_entitlement('$org', 'ai_runs', 1)" >/dev/null 2>&1 && echo ok
	done) >"$tmp/c.$w" &
done
sleep 0.5
moved=$(q -c "SELECT citus_move_shard_placement($shard, '127.0.0.1', $from, '127.0.0.1', $to, shard_transfer_mode => 'block_writes')" 2>&1)
wait
[ -z "$moved" ] && ok "citus_move_shard_placement moved the organization's shards under load" \
	|| nok "citus_move_shard_placement moved the organization's shards under load" "$moved"
is "$(q -c "SELECT nodeport FROM citus_shards WHERE shardid = $shard")" \
	"$to" "the shard is on the other worker now"
is "$(q -c "SELECT count(*) FROM citus_shards c JOIN pg_dist_shard s ON s.shardid = c.shardid
             WHERE c.citus_table_type = 'distributed'
               AND s.shardminvalue = (SELECT shardminvalue FROM pg_dist_shard WHERE shardid = $shard)
               AND c.nodeport <> $to")" "0" "its colocated shards moved with it"

granted=$(cat "$tmp"/c.* | grep -c ok)
is "$granted" "$max" "exactly the limit was granted ($max of 180 attempts)"
is "$(q -c "SELECT current FROM ipai.check_entitlement('$org', 'ai_runs')")|$(q -c "SELECT coalesce(sum(quantity), 0) FROM ipai.usage_events WHERE org_id = '$org' AND feature = 'ai_runs'")" \
	"$granted|$granted" "the counter and the usage events say the same"
is "$(q -c "SELECT count(*) FROM ipai._usage_counters_to_repair()")" "0" "no counter to repair"
err=$(q -c "SELECT ipai.consume_entitlement('$org', 'ai_runs', 1)" 2>&1)
case "$err" in *"usage limit reached"*) ok "the limit still holds on the new worker";; *) nok "the limit still holds on the new worker" "$err";; esac

tap_done
