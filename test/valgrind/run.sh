#!/usr/bin/env bash
# run.sh — the C functions of ipai_saas exercised once under valgrind
# (memcheck) in a single-user backend.
#
#   test/valgrind/run.sh [BINDIR]
#
# BINDIR is a PostgreSQL bin directory with ipai_saas installed (default:
# the staged build of `make test` ($IPAI_WORK/stage/cov, see
# test/lib/common.sh), else the system's).  Runs
# test/valgrind/exercise_*.sql (in name order) statement by statement (each ends with ";" and
# an empty line), with the suppressions of test/valgrind/*.supp (known
# reports from inside PostgreSQL itself, each explained there).  Exits 0 and
# prints "valgrind: no errors" when memcheck reported nothing else.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$SRC/test/lib/common.sh"
SYS_BIN=$("$SYS_PG_CONFIG" --bindir)
BIN=${1:-${IPAI_PGBIN:-$IPAI_WORK/stage/cov$SYS_BIN}}
[ -x "$BIN/postgres" ] || BIN=$SYS_BIN

work=$(mktemp -d /tmp/ipai-vg.XXXXXX)
trap '[ -n "${IPAI_VG_KEEP:-}" ] || rm -rf "$work"' EXIT
chown postgres:postgres "$work" 2>/dev/null || true
# initdb and the backend run as postgres, who may not enter the caller's
# directory
cd "$work"
runuser -u postgres -- "$BIN/initdb" -D "$work/data" -U postgres --auth=trust \
	--encoding=UTF8 --locale=C.UTF-8 >/dev/null
cat "$SRC"/test/valgrind/exercise_*.sql >"$work/in.sql"
cat "$SRC"/test/valgrind/*.supp >"$work/all.supp"
chmod 0755 "$work"

set +e
runuser -u postgres -- valgrind --quiet --error-exitcode=99 --leak-check=no \
	--track-origins=yes --num-callers=30 --suppressions="$work/all.supp" \
	--log-file="$work/valgrind.log" \
	"$BIN/postgres" --single -j -D "$work/data" -F -c shared_preload_libraries= \
	-c max_stack_depth=4MB postgres <"$work/in.sql" >"$work/out.txt" 2>&1
rc=$?
set -e
if grep -q "ERROR:" "$work/out.txt"; then
	echo "valgrind: the exercise script failed:"
	grep -B2 -A2 "ERROR:" "$work/out.txt" | head -40
	exit 1
fi
if [ "$rc" -ne 0 ] || [ -s "$work/valgrind.log" ]; then
	echo "valgrind: errors reported (exit $rc):"
	head -200 "$work/valgrind.log"
	exit 1
fi
echo "valgrind: no errors ($(grep -c ';$' "$work/in.sql") statements)"
