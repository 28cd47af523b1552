#!/usr/bin/env bash
# run_suites.sh — runs inside test/cluster.sh: prepares databases and runs
# pg_regress, pg_isolation_regress, pgTAP (pg_prove) and TAP scripts
# (prove), appending "suite passed failed" lines to $IPAI_RESULTS/counts.
#
# The server is the one cluster.sh started from $IPAI_PGBIN: pg_regress,
# the isolation tester and psql come from that installation.
#   IPAI_SUITES       regress isolation pgtap spi tap (spi: isolation and
#                     pgTAP again on the metering SPI path)
#   IPAI_LABEL        prefix of the printed suite names (e.g. "pg18 ")
#   IPAI_TAP_SKIP     regex of TAP files not to run here, said so in the
#                     output (run_all.sh: the server-independent ones, which
#                     the system version's run already ran)
set -uo pipefail

SRC=$IPAI_SRC
RES=$IPAI_RESULTS
PGXS_DIR=$("$IPAI_PGBIN/pg_config" --pkglibdir)/pgxs/src/test
SUITES=${IPAI_SUITES:-regress isolation pgtap tap}
ONLY=${IPAI_ONLY:-}
LABEL=${IPAI_LABEL:-}
TAP_SKIP=${IPAI_TAP_SKIP:-}

filter() {
	if [ -n "$ONLY" ]; then grep -E -- "$ONLY" || true; else cat; fi
}

count() {
	echo "$1 $2 $3" >>"$RES/counts"
	printf '%s%-10s %d passed, %d failed\n' "$LABEL" "$1:" "$2" "$3"
}

# a template database with the extension, its schema and pgTAP installed;
# every suite gets a fresh copy
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE ipai_template" &&
psql -X -q -v ON_ERROR_STOP=1 -d ipai_template <<'SQL' >"$RES/template.log" 2>&1
CREATE EXTENSION ipai_saas CASCADE;
SELECT ipai.install_schema();
CREATE EXTENSION pgtap;
SQL
if [ $? -ne 0 ]; then
	echo "could not prepare the template database:"
	cat "$RES/template.log"
	count setup 0 1
	exit 1
fi
newdb() {
	PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 TEMPLATE ipai_template"
}
export -f newdb

# pg_regress prints "All N tests passed." or "M of N tests failed."
regress_counts() {
	local log=$1 n m
	if n=$(grep -oE 'All [0-9]+ tests passed' "$log" | grep -oE '[0-9]+'); then
		echo "$n 0"
	elif line=$(grep -oE '[0-9]+ of [0-9]+ tests failed' "$log"); then
		m=${line%% of *}
		n=$(echo "$line" | sed -E 's/.* of ([0-9]+) tests.*/\1/')
		echo "$((n - m)) $m"
	else
		echo "0 1"
	fi
}

# prove/pg_prove: total tests from "Files=F, Tests=T", failures from the
# summary report; a failing file with no failed subtest counts once
prove_counts() {
	local log=$1
	perl -ne '
		$t = $1 if /^Files=\d+, Tests=(\d+)/;
		if (/Tests:\s*(\d+)\s+Failed:\s*(\d+)\)/) { $f += ($2 > 0 ? $2 : 1); }
		elsif (/^(\S.*?)\s+\(Wstat: \d+.*Tests: \d+ Failed: (\d+)\)/) { $f += ($2 > 0 ? $2 : 1); }
		$bad = 1 if /^Result: FAIL/;
		END { $t //= 0; $f //= 0; $f = 1 if $bad && !$f; printf "%d %d\n", ($t - $f < 0 ? 0 : $t - $f), $f; }
	' "$log"
}

# the isolation specs; $1: suffix of the suite's name and directories
run_isolation() {
	local name=isolation$1 tests p f rc
	tests=$(ls "$SRC/test/isolation/specs" 2>/dev/null | sed -n 's/\.spec$//p' | sort | filter)
	[ -n "$tests" ] || return 0
	newdb ipai_isolation
	mkdir -p "$RES/$name"
	"$PGXS_DIR/isolation/pg_isolation_regress" --use-existing --dbname=ipai_isolation \
		--inputdir="$SRC/test/isolation" --outputdir="$RES/$name" \
		--bindir="$IPAI_PGBIN" $tests >"$RES/$name.log" 2>&1
	rc=$?
	read -r p f < <(regress_counts "$RES/$name.log")
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	[ "$f" -gt 0 ] && { tail -20 "$RES/$name.log"; head -200 "$RES/$name/regression.diffs" 2>/dev/null; }
	count "$name" "$p" "$f"
}

# the pgTAP files; $1: suffix of the suite's name, $2: regex of files not run
run_pgtap() {
	local name=pgtap$1 tests p f rc
	tests=$(ls "$SRC/test/pgtap" 2>/dev/null | grep '\.sql$' | sort | filter)
	[ -n "${2:-}" ] && tests=$(printf '%s\n' $tests | grep -vE -- "$2")
	[ -n "$tests" ] || return 0
	newdb ipai_pgtap
	(cd "$SRC/test/pgtap" && pg_prove --dbname ipai_pgtap $tests) >"$RES/$name.log" 2>&1
	rc=$?
	read -r p f < <(prove_counts "$RES/$name.log")
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	[ "$f" -gt 0 ] && cat "$RES/$name.log"
	count "$name" "$p" "$f"
}

for suite in $SUITES; do
	case "$suite" in
	regress)
		tests=$(ls "$SRC/sql" 2>/dev/null | sed -n 's/\.sql$//p' | sort | filter)
		[ -n "$tests" ] || continue
		newdb ipai_regress
		mkdir -p "$RES/regress"
		"$PGXS_DIR/regress/pg_regress" --use-existing --dbname=ipai_regress \
			--inputdir="$SRC" --outputdir="$RES/regress" \
			--bindir="$IPAI_PGBIN" $tests >"$RES/regress.log" 2>&1
		rc=$?
		grep -E '^(test| *[a-z0-9_]+ +\.\.\.|ok|not ok)' "$RES/regress.log" | grep -vE '^test .*\.\.\. ok' | head -50
		read -r p f < <(regress_counts "$RES/regress.log")
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
		[ "$f" -gt 0 ] && { tail -20 "$RES/regress.log"; head -200 "$RES/regress/regression.diffs" 2>/dev/null; }
		count regress "$p" "$f"
		;;
	isolation)
		run_isolation ""
		;;
	pgtap)
		run_pgtap ""
		;;
	spi)
		# the metering functions' reference path, SPI statements
		# (ipai.usage_fast_path = off in every session): the isolation
		# specs and the pgTAP files again, but the fast path's own file,
		# which tests both paths
		PGOPTIONS="-c ipai.usage_fast_path=off" run_isolation "-spi"
		PGOPTIONS="-c ipai.usage_fast_path=off" run_pgtap "-spi" '^50_metering_fastpath\.sql$'
		;;
	tap)
		tests=$(ls "$SRC/test/t" 2>/dev/null | grep '\.t$' | sort | filter)
		if [ -n "$TAP_SKIP" ]; then
			skipped=$(printf '%s\n' $tests | grep -E -- "$TAP_SKIP" | tr '\n' ' ')
			[ -n "$skipped" ] && echo "${LABEL}tap: not run here (server-independent, run once on the system version): $skipped"
			tests=$(printf '%s\n' $tests | grep -vE -- "$TAP_SKIP")
		fi
		[ -n "$tests" ] || continue
		newdb ipai_tap
		(cd "$SRC/test/t" && PGDATABASE=ipai_tap prove --timer $tests) >"$RES/tap.log" 2>&1
		rc=$?
		read -r p f < <(prove_counts "$RES/tap.log")
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
		grep -E '^\[|^[a-z_]+\.t ' "$RES/tap.log" | head -80
		[ "$f" -gt 0 ] && cat "$RES/tap.log"
		count tap "$p" "$f"
		;;
	*)
		echo "unknown suite $suite"
		count "$suite" 0 1
		;;
	esac
done
exit 0
