#!/usr/bin/env bash
# run_all.sh — every test suite of ipai_saas, on every PostgreSQL version
# this machine can run, then the packages.
#
# For each version: builds this tree with coverage instrumentation (-O0
# --coverage, warnings as errors) into a staged copy of that PostgreSQL,
# starts a throwaway cluster with pg_cron and ipai_saas preloaded and runs
# the suites (regress, isolation, pgtap, tap).  15 is the system's
# (Debian 12); 18 is built from source once per machine when its source
# archive is present (test/lib/third_party.sh: ../shared/third_party or
# PG18_SRC), and skipped, saying so, when it is not.  When both ran, the
# pg_upgrade suite upgrades a 15 cluster to 18 (test/pg_upgrade/).  Then
# the package suite (test/package/): the Debian package built, installed
# into the system PostgreSQL, exercised and removed; the PGXN
# distribution.  Prints line coverage of src/*.c and ends with one line
# "N passed, M failed".
#
#   IPAI_PG="15 18"    versions to test (make test PG=18); a version named
#                      here explicitly whose source is missing fails;
#                      "none" for the package suite alone (make test-deb)
#   IPAI_ONLY=regex    run only test files whose name matches (e.g. diff)
#   IPAI_SUITES="regress isolation pgtap spi tap citus pg_upgrade package"
#   IPAI_COVERAGE=0    build without coverage
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/test/lib/common.sh"

SUITES=${IPAI_SUITES:-regress isolation pgtap spi tap citus pg_upgrade package}
VERSIONS=${IPAI_PG:-}
explicit=1
if [ -z "$VERSIONS" ]; then
	VERSIONS="$SYS_PG_MAJOR 18"
	explicit=0
fi
# TAP files that do not talk to the server under test (C unit tests under
# sanitizers, fuzzing, script lint, the HTTP stand-ins' own test, the
# clone test, which runs its own make test): run once, with the system version, or with the first
# version when the system's is not tested
SERVER_INDEPENDENT='^(unit_[a-z_]+|fuzz_smoke|lint_install_script|clone_anywhere|standins)\.t$'

if [ "${IPAI_COVERAGE:-1}" = 1 ]; then
	kind=cov
	copt="-O0 -g --coverage -Werror"
else
	kind=opt
	copt="-O2 -Werror"
fi

results="$IPAI_WORK/results"
rm -rf "$results"
mkdir -p "$results"
chmod 0777 "$results"

has_suite() { case " $SUITES " in *" $1 "*) return 0 ;; esac; return 1; }
elapsed() { local s=$(($(date +%s) - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
# one line per phase, collected for the summary
timings=()
t_all=$(date +%s)
fail_setup() { echo "$1 0 1" >>"$results/counts"; echo "$1: $2"; }

cluster_suites=""
for s in regress isolation pgtap spi tap; do has_suite "$s" && cluster_suites+="$s "; done

# staged bin directory of each version that ran, for the pg_upgrade suite
declare -A staged=()
first_version=1

for v in $VERSIONS; do
	[ "$v" = none ] && continue
	if [ "$v" = "$SYS_PG_MAJOR" ]; then
		pgconfig=$SYS_PG_CONFIG
		vkind=$kind res=$results label=""
	else
		vkind=$kind-$v res=$results/pg$v label="pg$v "
		t0=$(date +%s)
		pgconfig=$(ipai_pg_build "$v" 2>"$results/pg$v-build.err")
		rc=$?
		if [ "$rc" -eq 2 ] && [ "$explicit" = 0 ]; then
			echo "PostgreSQL $v: SKIPPED, not tested: $(cat "$results/pg$v-build.err")"
			continue
		elif [ "$rc" -eq 2 ]; then
			fail_setup "pg$v-source" "PostgreSQL $v was asked for (IPAI_PG=$VERSIONS) but cannot be tested: $(cat "$results/pg$v-build.err")"
			continue
		elif [ "$rc" -ne 0 ]; then
			cat "$results/pg$v-build.err"
			fail_setup "pg$v-build" "PostgreSQL $v could not be built"
			continue
		fi
		grep -v '^building' "$results/pg$v-build.err" | head -5
		timings+=("PostgreSQL $v server build: $(elapsed "$t0")$(grep -q '^building' "$results/pg$v-build.err" || echo ' (cached)')")
	fi
	[ -n "$cluster_suites" ] || { staged[$v]=""; continue; }
	mkdir -p "$res"
	chmod 0777 "$res"

	# stale coverage counts would add up across runs
	find "$IPAI_WORK/build/$vkind/src" -name '*.gcda' -delete 2>/dev/null || true
	t0=$(date +%s)
	if ! pgbin=$(ipai_stage "$vkind" "$copt" "$pgconfig"); then
		fail_setup "${label}build" "the build against PostgreSQL $v failed"
		continue
	fi
	staged[$v]=$pgbin
	echo "${label:-pg$v }$("$pgbin/postgres" --version)"

	skip=""
	[ "$first_version" = 1 ] || skip=$SERVER_INDEPENDENT
	first_version=0
	IPAI_RESULTS="$res" IPAI_PGBIN="$pgbin" IPAI_SUITES="$cluster_suites" \
		IPAI_LABEL="$label" IPAI_TAP_SKIP="$skip" \
		"$SRC/test/cluster.sh" run -- "$SRC/test/lib/run_suites.sh"
	suite_rc=$?
	if [ "$suite_rc" -ne 0 ] && ! grep -q ' [1-9][0-9]*$' "$res/counts" 2>/dev/null; then
		fail_setup "${label}runner" "the suite runner itself failed (status $suite_rc)"
	fi
	timings+=("PostgreSQL $v extension build and suites: $(elapsed "$t0")")

	if [ "$vkind" = cov ] || [ "$vkind" = "cov-$v" ]; then
		if command -v lcov >/dev/null 2>&1 &&
			lcov --quiet --capture --directory "$IPAI_WORK/build/$vkind/src" \
				--base-directory "$SRC" --output-file "$res/cov.info" >/dev/null 2>&1; then
			lcov --quiet --extract "$res/cov.info" "$SRC/src/*" \
				--output-file "$res/cov-src.info" >/dev/null 2>&1
			lines=$(lcov --summary "$res/cov-src.info" 2>&1 | grep -E '^ *lines' | sed 's/^ *//')
			if [ -z "$label" ]; then
				echo "coverage of src/*.c: ${lines:-unknown}"
				lcov --list "$res/cov-src.info" 2>/dev/null | grep -E '\.c *\|' |
					sed 's/^/  /' | sed "s|$SRC/||"
			else
				echo "${label}coverage of src/*.c: ${lines:-unknown}"
			fi
		else
			echo "${label}coverage of src/*.c: no data"
		fi
	fi
done

# TAP scripts outside any cluster: test/<dir>/*.t, counted as one suite
run_prove() {
	local suite=$1 dir=$2 tests p f log="$results/$1.log"
	tests=$(ls "$SRC/test/$dir" 2>/dev/null | grep '\.t$' | sort)
	[ -n "${IPAI_ONLY:-}" ] && tests=$(printf '%s\n' $tests | grep -E -- "$IPAI_ONLY")
	[ -n "$tests" ] || return 0
	(cd "$SRC/test/$dir" && prove --timer $tests) >"$log" 2>&1
	read -r p f < <(perl -ne '
		$t = $1 if /^Files=\d+, Tests=(\d+)/;
		if (/Tests:\s*(\d+)\s+Failed:\s*(\d+)\)/) { $f += ($2 > 0 ? $2 : 1); }
		elsif (/^(\S.*?)\s+\(Wstat: \d+.*Tests: \d+ Failed: (\d+)\)/) { $f += ($2 > 0 ? $2 : 1); }
		$bad = 1 if /^Result: FAIL/;
		END { $t //= 0; $f //= 0; $f = 1 if $bad && !$f; printf "%d %d\n", ($t - $f < 0 ? 0 : $t - $f), $f; }
	' "$log")
	grep -E '^\[|^[a-z_0-9]+\.t ' "$log" | grep -v '^\[[0-9:]*\]$'
	grep -E '^# (SKIP|skip)' "$log"
	[ "$f" -gt 0 ] && cat "$log"
	echo "$suite $p $f" >>"$results/counts"
	printf '%-10s %d passed, %d failed\n' "$suite:" "$p" "$f"
}

# Citus: a coordinator and two workers (test/citus/), built from
# ../shared/third_party (CITUS_SRC) once per machine, skipped, saying so,
# without its source
if has_suite citus; then
	t0=$(date +%s)
	. "$SRC/test/lib/citus.sh"
	citus_pgbin=$(ipai_citus_stage opt "-O2 -Werror" 2>"$results/citus-build.err")
	rc=$?
	if [ "$rc" -eq 2 ]; then
		echo "citus: SKIPPED, not tested: $(cat "$results/citus-build.err")"
	elif [ "$rc" -ne 0 ]; then
		cat "$results/citus-build.err"
		fail_setup citus-build "Citus or the extension could not be built for the Citus cluster"
	else
		# run_prove runs inside the cluster's environment (PGHOST, ports)
		export -f run_prove
		export results SRC
		IPAI_PGBIN=$citus_pgbin "$SRC/test/citus/cluster.sh" run -- run_prove citus citus/t ||
			grep -q '^citus ' "$results/counts" || fail_setup citus-runner "the Citus cluster could not run its suites"
		timings+=("Citus cluster (build, three nodes, suites): $(elapsed "$t0")")
	fi
fi

if has_suite pg_upgrade; then
	old=$SYS_PG_MAJOR new=18
	if [ -n "${staged[$old]:-}" ] && [ -n "${staged[$new]:-}" ]; then
		t0=$(date +%s)
		IPAI_OLD_PGBIN=${staged[$old]} IPAI_NEW_PGBIN=${staged[$new]} run_prove pg_upgrade pg_upgrade
		timings+=("pg_upgrade $old to $new: $(elapsed "$t0")")
	elif [ -n "$cluster_suites" ]; then
		echo "pg_upgrade: SKIPPED, not tested: needs the staged builds of both $old and $new (tested here: ${!staged[*]})"
	fi
fi

if has_suite package; then
	t0=$(date +%s)
	run_prove package package
	timings+=("package suite (Debian package, PGXN): $(elapsed "$t0")")
fi

passed=0
failed=0
while read -r suite p f; do
	passed=$((passed + p))
	failed=$((failed + f))
done < <(cat "$results/counts" "$results"/pg*/counts 2>/dev/null)
for t in "${timings[@]}"; do echo "time: $t"; done
echo "time: make test: $(elapsed "$t_all")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
