#!/usr/bin/env bash
# run.sh — the libFuzzer targets of ipai_saas (clang, ASan + UBSan):
#   email      src/email_valid.c            (the e-mail validator)
#   signature  src/webhook_sig.c + hmac.c   (Stripe-Signature and Standard
#                                            Webhooks header parsers)
#   diff       src/diff_core.c              (the diff tokenizer and Myers)
#
#   test/fuzz/run.sh [EXECUTIONS] [TARGET...]
#
# Runs each target for EXECUTIONS inputs (default 10,000,000, as `make fuzz`
# does), starting from the committed seeds in test/fuzz/corpus/<target>/
# (new inputs go to a scratch corpus, not into the repository).  Prints the
# executions per target; exits non-zero on the first crash, leaving the
# crashing input in $IPAI_WORK/fuzz/ (see test/lib/common.sh).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$SRC/test/lib/common.sh"
RUNS=${1:-10000000}
shift || true
TARGETS=${*:-email signature diff}
OUT=${IPAI_FUZZ_OUT:-$IPAI_WORK/fuzz}
mkdir -p "$OUT"
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$SRC/src"

for t in $TARGETS; do
	case "$t" in
	email) srcs="$SRC/src/email_valid.c"; libs="" ;;
	signature) srcs="$SRC/src/webhook_sig.c $SRC/src/hmac.c"; libs="-lcrypto" ;;
	diff) srcs="$SRC/src/diff_core.c"; libs="" ;;
	*) echo "unknown fuzz target $t" >&2; exit 2 ;;
	esac
	# shellcheck disable=SC2086
	clang $CFLAGS -o "$OUT/${t}_fuzz" "$SRC/test/fuzz/${t}_fuzz.c" $srcs $libs
	scratch=$(mktemp -d)
	dict=""
	[ -f "$SRC/test/fuzz/$t.dict" ] && dict="-dict=$SRC/test/fuzz/$t.dict"
	start=$(date +%s)
	# shellcheck disable=SC2086
	if ! (cd "$OUT" && "./${t}_fuzz" -runs="$RUNS" -max_len=4096 $dict \
		-artifact_prefix="$OUT/${t}-" "$scratch" "$SRC/test/fuzz/corpus/$t") >"$OUT/$t.log" 2>&1; then
		tail -40 "$OUT/$t.log"
		rm -rf "$scratch"
		echo "fuzz $t: CRASH (input saved under $OUT)"
		exit 1
	fi
	rm -rf "$scratch"
	done_runs=$(grep -oE 'Done [0-9]+ runs' "$OUT/$t.log" | grep -oE '[0-9]+' || echo "?")
	echo "fuzz $t: $done_runs executions in $(($(date +%s) - start)) s, no crash"
done
