#!/bin/sh
# unit_signature.t: the webhook signature parsers and HMAC glue
# (src/webhook_sig.c, src/hmac.c) built standalone with AddressSanitizer and
# UndefinedBehaviorSanitizer, running test/unit/signature_test.c (TAP).
# Needs clang (or CC) and libcrypto's headers; no database.
set -u
root=${IPAI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cc=${CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "1..0 # SKIP $cc not found"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipai-unit-sig.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! "$cc" -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -g -O1 -Wall -Wextra -Werror \
	-I"$root/src" "$root/test/unit/signature_test.c" \
	"$root/src/webhook_sig.c" "$root/src/hmac.c" -lcrypto \
	-o "$tmp/signature_test" 2>"$tmp/cc.log"; then
	echo "1..1"
	echo "not ok 1 - compile test/unit/signature_test.c"
	sed 's/^/# /' "$tmp/cc.log"
	exit 1
fi

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	"$tmp/signature_test"
