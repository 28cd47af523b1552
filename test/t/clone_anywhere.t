#!/usr/bin/env bash
# The README's commands from a clone in a private directory (TAP).
#
# Copies this working tree (what git tracks plus new files it does not
# ignore, so uncommitted work is what gets tested) into a fresh `mktemp -d`
# directory, mode 700 like root's home, where the postgres user running the
# servers cannot enter, and there runs, in a clean environment as a new
# user would: `make demo` to the end, then `make test` restricted to a few
# files that hand paths to processes running as postgres (the coverage
# build whose backends write .gcda files, a crash test's own cluster and
# pg_ctl, valgrind's single-user backend).  Afterwards `make clean-work`
# removes what the commands wrote outside the clone.
set -uo pipefail

n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
	n=$((n + 1)); fail=$((fail + 1))
	echo "not ok $n - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | tail -40 | sed 's/^/# /'
	return 0
}

echo "1..7"
top=$(mktemp -d)
clone="$top/ipai_saas"
cleanup() {
	[ -d "$clone" ] && env -i PATH="$PATH" HOME="$HOME" make -s -C "$clone" clean-work >/dev/null 2>&1
	rm -rf "$top"
}
trap cleanup EXIT

mkdir "$clone"
if git -C "$IPAI_SRC" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$IPAI_SRC" ls-files -z -co --exclude-standard |
		tar -C "$IPAI_SRC" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$clone" -xf -
else
	tar -C "$IPAI_SRC" --exclude=./test/node_modules -cf - . | tar -C "$clone" -xf -
fi
mode=$(stat -c %a "$top")
if [ "$mode" = 700 ] && ! runuser -u postgres -- test -x "$top"; then
	ok "the clone sits in a directory the postgres user cannot enter (mode $mode)"
else
	nok "the clone sits in a directory the postgres user cannot enter" "mode $mode"
fi

# a new user's shell: nothing of the running suite (IPAI_*, PG*) leaks in
fresh() { (cd "$clone" && env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 "$@"); }

if out=$(fresh make demo 2>&1); then
	ok "make demo runs to the end"
else
	nok "make demo runs to the end" "$out"
fi
if printf '%s' "$out" | grep -q 'The demo ran on a throwaway cluster, now stopped and removed'; then
	ok "the demo tells its story and removes its cluster"
else
	nok "the demo tells its story and removes its cluster" "$out"
fi

only='^(10_tenancy\.sql|crash_consume\.t|valgrind\.t)$'
if out=$(fresh IPAI_ONLY="$only" IPAI_SUITES="pgtap tap" make test 2>&1); then
	ok "make test passes there ($(printf '%s' "$out" | tail -1))"
else
	nok "make test passes there" "$out"
fi
if printf '%s' "$out" | grep -qE '^coverage of src/\*\.c: lines.*[1-9][0-9.]*%'; then
	ok "backends running as postgres wrote coverage data ($(printf '%s' "$out" | grep -oE '^coverage of.*'))"
else
	nok "backends running as postgres wrote coverage data" "$out"
fi

work=$(fresh bash -c '. test/lib/common.sh && echo "$IPAI_WORK"')
case "$work" in
"$clone"/*) nok "builds and servers are staged outside the clone" "$work" ;;
*) ok "builds and servers are staged outside the clone ($work)" ;;
esac
fresh make -s clean-work >/dev/null 2>&1
if [ ! -e "$work" ]; then
	ok "make clean-work removes them"
else
	nok "make clean-work removes them" "$(ls -la "$work")"
fi
[ "$fail" -eq 0 ]
