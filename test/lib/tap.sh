# tap.sh — TAP output for the bash test scripts (source it): n counts the
# tests, fail the failures.
#
#   ok DESCRIPTION
#   nok DESCRIPTION [DIAGNOSTIC]   the diagnostic as "# " lines, shortened
#                                  by TAP_DIAG (a filter, e.g. "tail -20";
#                                  default all of it)
#   is GOT EXPECTED DESCRIPTION
#   tap_done                       the plan; true when nothing failed
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | ${TAP_DIAG:-cat} | sed 's/^/# /'
	return 0
}
is() { if [ "$1" = "$2" ]; then ok "$3"; else nok "$3" "got '$1', expected '$2'"; fi; }
tap_done() { echo "1..$n"; [ "$fail" -eq 0 ]; }
