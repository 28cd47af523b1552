#!/usr/bin/env bash
# run_suites.sh — runs inside test/cluster.sh: prepares databases and runs
# pg_regress, pg_isolation_regress, pgTAP (pg_prove) and TAP scripts
# (prove), appending "suite passed failed" lines to $IPAI_RESULTS/counts.
#
# The server is the one cluster.sh started from $IPAI_PGBIN: pg_regress,
# the isolation tester and psql come from that installation.
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
		tests=$(ls "$SRC/test/isolation/specs" 2>/dev/null | sed -n 's/\.spec$//p' | sort | filter)
		[ -n "$tests" ] || continue
		newdb ipai_isolation
		mkdir -p "$RES/isolation"
		"$PGXS_DIR/isolation/pg_isolation_regress" --use-existing --dbname=ipai_isolation \
			--inputdir="$SRC/test/isolation" --outputdir="$RES/isolation" \
			--bindir="$IPAI_PGBIN" $tests >"$RES/isolation.log" 2>&1
		rc=$?
		read -r p f < <(regress_counts "$RES/isolation.log")
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
		[ "$f" -gt 0 ] && { tail -20 "$RES/isolation.log"; head -200 "$RES/isolation/regression.diffs" 2>/dev/null; }
		count isolation "$p" "$f"
		;;
	pgtap)
		tests=$(ls "$SRC/test/pgtap" 2>/dev/null | grep '\.sql$' | sort | filter)
		[ -n "$tests" ] || continue
		newdb ipai_pgtap
		(cd "$SRC/test/pgtap" && pg_prove --dbname ipai_pgtap $tests) >"$RES/pgtap.log" 2>&1
		rc=$?
		read -r p f < <(prove_counts "$RES/pgtap.log")
		[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
		[ "$f" -gt 0 ] && cat "$RES/pgtap.log"
		count pgtap "$p" "$f"
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
