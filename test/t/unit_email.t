#!/usr/bin/env bash
# The e-mail validator as a standalone binary under ASan and UBSan (TAP).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clang -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror \
	-I"$IPAI_SRC/src" -o "$tmp/email_test" \
	"$IPAI_SRC/test/unit/email_test.c" "$IPAI_SRC/src/email_valid.c"
exec "$tmp/email_test"
