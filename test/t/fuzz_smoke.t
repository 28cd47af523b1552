#!/usr/bin/env bash
# A short run of every libFuzzer target (TAP); `make fuzz` runs the long one.
targets="email signature diff"
# a scratch output directory: a long `make fuzz` may be running beside us
export IPAI_FUZZ_OUT=$(mktemp -d)
trap 'rm -rf "$IPAI_FUZZ_OUT"' EXIT
echo "1..3"
i=0
for t in $targets; do
	i=$((i + 1))
	runs=${IPAI_FUZZ_RUNS:-30000}
	# the diff target does far more work per input
	[ "$t" = diff ] && runs=$((runs / 6))
	if out=$("$IPAI_SRC/test/fuzz/run.sh" "$runs" "$t" 2>&1); then
		echo "ok $i - $out"
	else
		echo "not ok $i - fuzz $t"
		echo "$out" | tail -30 | sed 's/^/# /'
	fi
done
