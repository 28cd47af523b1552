# edge.sh — start an Edge handler with Deno for an end-to-end test (source it).
#
#   edge_start NAME        serves supabase/functions/NAME/index.ts on a free
#                          port against the test database; sets EDGE_URL
#   (stopped automatically on exit)
#
# The handler is started exactly as the README documents it, from the
# repository root: `deno run --allow-net --allow-env
# supabase/functions/NAME/index.ts`, its packages resolved through
# supabase/functions/deno.json (Deno's own cache, never node_modules).
# Needs PGPORT/PGDATABASE from test/cluster.sh; Deno is the one of
# test/node_modules.

edge_pids=()
edge_stop() {
	local p
	for p in "${edge_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	edge_pids=()
}
trap edge_stop EXIT

# edge_free_port: a port nothing listens on, below the kernel's ephemeral
# range (32768-60999): there, an outgoing connection of the tests (two
# versions' suites, or two clones' runs side by side) may hold the port
# between the check and the bind (Deno then exits with AddrInUse)
edge_free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 12768))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || break
	done
	echo "$p"
}

edge_start() {
	local name=$1 port log i
	port=$(edge_free_port)
	log=$(mktemp /tmp/edge-"$name".XXXXXX)
	(
		cd "$IPAI_SRC" &&
		SUPABASE_DB_URL="postgres://postgres@127.0.0.1:$PGPORT/${EDGE_DB:-$PGDATABASE}" PORT=$port \
			DENO_NO_UPDATE_CHECK=1 exec "$IPAI_SRC/test/node_modules/.bin/deno" run \
			--allow-net --allow-env "supabase/functions/$name/index.ts"
	) >"$log" 2>&1 &
	edge_pids+=($!)
	EDGE_URL="http://127.0.0.1:$port"
	EDGE_LOG=$log
	for i in $(seq 1 600); do
		if grep -q listening "$log" 2>/dev/null; then return 0; fi
		if ! kill -0 "${edge_pids[-1]}" 2>/dev/null; then cat "$log" >&2; return 1; fi
		# readiness is polled, not assumed
		sleep 0.1
	done
	cat "$log" >&2
	return 1
}
