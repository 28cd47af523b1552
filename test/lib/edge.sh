# edge.sh — start an Edge handler with Deno for an end-to-end test (source it).
#
#   edge_start NAME        serves supabase/functions/NAME/index.ts on a free
#                          port against the test database; sets EDGE_URL
#   (stopped automatically on exit)
#
# Needs PGPORT/PGDATABASE from test/cluster.sh and node_modules (deno, postgres).

edge_pids=()
edge_stop() {
	local p
	for p in "${edge_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	edge_pids=()
}
trap edge_stop EXIT

edge_start() {
	local name=$1 port log i
	port=$((20000 + RANDOM % 40000))
	log=$(mktemp /tmp/edge-"$name".XXXXXX)
	(
		cd "$IPAI_SRC" &&
		SUPABASE_DB_URL="postgres://postgres@127.0.0.1:$PGPORT/${EDGE_DB:-$PGDATABASE}" PORT=$port \
			exec "$IPAI_SRC/node_modules/.bin/deno" run --quiet --allow-net --allow-env \
			--allow-read="$IPAI_SRC" "supabase/functions/$name/index.ts"
	) >"$log" 2>&1 &
	edge_pids+=($!)
	EDGE_URL="http://127.0.0.1:$port"
	EDGE_LOG=$log
	for i in $(seq 1 300); do
		if grep -q listening "$log" 2>/dev/null; then return 0; fi
		if ! kill -0 "${edge_pids[-1]}" 2>/dev/null; then cat "$log" >&2; return 1; fi
		# readiness is polled, not assumed
		sleep 0.1
	done
	cat "$log" >&2
	return 1
}
