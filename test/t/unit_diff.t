#!/usr/bin/env bash
# The word diff core (src/diff_core.c) as a standalone binary under ASan and
# UBSan (TAP): tokenizer cases, edge cases, thousands of random edit pairs
# checked for exact reconstruction and minimality against dynamic
# programming, the budget fallback on unrelated documents, out-of-memory at
# every allocation.  DIFF_TEST_SEED repeats a run; the seed is printed.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clang -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror \
	-I"$IPAI_SRC/src" -o "$tmp/diff_test" \
	"$IPAI_SRC/test/unit/diff_test.c" "$IPAI_SRC/src/diff_core.c"
exec "$tmp/diff_test"
