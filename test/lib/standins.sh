# standins.sh — start the local stand-ins for Stripe and Supabase Auth from
# a bash test (source it).  See test/lib/STANDINS.md.
#
#   standin_start stripe [options...]  sets STRIPE_STANDIN_URL (API base,
#                                      e.g. http://127.0.0.1:PORT),
#                                      STRIPE_STANDIN_ADMIN (admin base URL),
#                                      STRIPE_STANDIN_PORT, STRIPE_STANDIN_PID
#   standin_start auth [options...]    sets AUTH_STANDIN_URL (the "Supabase
#                                      URL": the API is at $AUTH_STANDIN_URL/auth/v1),
#                                      AUTH_STANDIN_ADMIN, AUTH_STANDIN_PORT,
#                                      AUTH_STANDIN_PID
#   standin_stop_all                   stops every stand-in started here
#
# Call standin_stop_all from your EXIT trap.  A stand-in also stops by itself
# within half a second when the shell that started it exits.  The admin
# endpoints are served on the main port and on a second admin port (which
# stays up while the main port is "down").

IPAI_SRC=${IPAI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
standin_pids=()
standin_dirs=()

standin_start() {
	local which=$1 dir pid port admin i
	shift
	case $which in
	stripe | auth) ;;
	*) echo "standin_start: stripe or auth, not '$which'" >&2; return 2 ;;
	esac
	dir=$(mktemp -d /tmp/standin-"$which".XXXXXX)
	node "$IPAI_SRC/test/lib/${which}_standin.js" --port-file "$dir/port" \
		--admin-port-file "$dir/admin-port" "$@" >"$dir/log" 2>&1 &
	pid=$!
	standin_pids+=("$pid")
	standin_dirs+=("$dir")
	for i in $(seq 1 200); do
		[ -s "$dir/port" ] && [ -s "$dir/admin-port" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "standin_start $which: the stand-in exited:" >&2
			cat "$dir/log" >&2
			return 1
		fi
		sleep 0.05
	done
	if ! [ -s "$dir/port" ]; then
		echo "standin_start $which: no port after 10 s" >&2
		cat "$dir/log" >&2
		return 1
	fi
	port=$(cat "$dir/port")
	admin=$(cat "$dir/admin-port")
	if [ "$which" = stripe ]; then
		STRIPE_STANDIN_URL="http://127.0.0.1:$port"
		STRIPE_STANDIN_ADMIN="http://127.0.0.1:$admin"
		STRIPE_STANDIN_PORT=$port
		STRIPE_STANDIN_PID=$pid
		STRIPE_STANDIN_LOG="$dir/log"
		export STRIPE_STANDIN_URL STRIPE_STANDIN_ADMIN STRIPE_STANDIN_PORT STRIPE_STANDIN_PID STRIPE_STANDIN_LOG
	else
		AUTH_STANDIN_URL="http://127.0.0.1:$port"
		AUTH_STANDIN_ADMIN="http://127.0.0.1:$admin"
		AUTH_STANDIN_PORT=$port
		AUTH_STANDIN_PID=$pid
		AUTH_STANDIN_LOG="$dir/log"
		export AUTH_STANDIN_URL AUTH_STANDIN_ADMIN AUTH_STANDIN_PORT AUTH_STANDIN_PID AUTH_STANDIN_LOG
	fi
}

standin_stop_all() {
	local p d
	for p in "${standin_pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for d in "${standin_dirs[@]}"; do rm -rf "$d"; done
	standin_pids=()
	standin_dirs=()
}
