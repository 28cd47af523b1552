#!/usr/bin/env bash
# The C functions exercised once under valgrind memcheck (TAP, one test);
# see test/valgrind/run.sh and the suppression list test/valgrind/*.supp.
echo "1..1"
if out=$("$IPAI_SRC/test/valgrind/run.sh" "$IPAI_PGBIN" 2>&1); then
	echo "ok 1 - $out"
else
	echo "not ok 1 - valgrind memcheck"
	echo "$out" | sed 's/^/# /'
fi
