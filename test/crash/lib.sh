# test/crash/lib.sh — shared by the crash tests (test/t/crash_*.t); source it.
#
# Each crash test runs on a throwaway cluster of its own (test/cluster.sh,
# nested inside the suite's cluster), so a kill -9 and the crash restart it
# causes, or an immediate stop, disturb no other test.  The extension is
# installed in database postgres, which the scheduling worker serves.
#
#   crash_cluster "$0" "$@"   at the top of a test: re-executes the script
#                             inside a new cluster (returns when inside)
#   ok / nok / is             TAP
#   q SQL                     one statement, unaligned, errors to stdout
#   wait_for SQL [seconds]    polls until SQL returns t
#   check SQL NAME [seconds]  wait_for as a test
#   backend_pid APPNAME       pid of the session with that application_name
#   kill9 PID                 kill -9 and wait for the crash restart to end
#   pgctl ARGS                pg_ctl on this cluster, as its owner
#
# Correctness never depends on a fixed sleep: every wait polls a condition
# with a timeout (pg_isready, pg_stat_activity, counts in the server log).

crash_cluster() {
	local script=$1
	shift
	if [ "${1:-}" != inner ]; then
		exec "$IPAI_SRC/test/cluster.sh" run -- "$(cd "$(dirname "$script")" && pwd)/$(basename "$script")" inner
	fi
}

n=0
failures=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); failures=$((failures + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/# /'
	return 0
}
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
q() { psql -X -q -At -d postgres -c "$1" 2>&1; }
# q_as USER_UUID SQL: as that acting user (a superuser session with ipai.user_id)
q_as() { PGOPTIONS="-c ipai.user_id=$1" psql -X -q -At -d postgres -c "$2" 2>&1; }
wait_for() {
	local i limit=$(( ${2:-20} * 10 ))
	for i in $(seq 1 "$limit"); do
		[ "$(psql -X -q -At -d postgres -c "$1" 2>/dev/null)" = t ] && return 0
		sleep 0.1
	done
	return 1
}
check() { if wait_for "$1" "${3:-20}"; then ok "$2"; else nok "$2" "waited for: $1"; fi; }
pgctl() { (cd / && runuser -u postgres -- "$IPAI_PGBIN/pg_ctl" -D "$IPAI_PGROOT/data" "$@"); }
backend_pid() { q "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"; }

# how many times the server said it is ready (start-up and every crash
# restart); read from the server log
ready_count() { grep -c 'database system is ready to accept connections' "$IPAI_SERVER_LOG" || true; }

# wait_ready: until the server accepts connections (pg_isready), at most 60 s
wait_ready() {
	local i
	for i in $(seq 1 300); do
		"$IPAI_PGBIN/pg_isready" -q -t 1 && return 0
		sleep 0.2
	done
	return 1
}

# kill9 PID: SIGKILL to one backend; the postmaster then terminates every
# backend and reinitializes (crash recovery).  Returns once the server says
# it is ready again and accepts connections, 1 after 60 s.
kill9() {
	local pid=$1 before i
	before=$(ready_count)
	kill -9 "$pid" || return 1
	for i in $(seq 1 600); do
		[ "$(ready_count)" -gt "$before" ] && break
		sleep 0.1
	done
	[ "$(ready_count)" -gt "$before" ] || return 1
	wait_ready
}

# wait_blocked APPNAME WAIT: until that session waits (wait_event_type =
# Lock, or wait_event = PgSleep for WAIT = sleep)
wait_blocked() {
	local cond="wait_event_type = 'Lock'"
	[ "$2" = sleep ] && cond="wait_event = 'PgSleep'"
	wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = '$1' AND $cond" 20
}

crash_install() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
SQL
}

crash_done() {
	echo "1..$n"
	[ "$failures" -eq 0 ]
}
