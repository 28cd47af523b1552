#!/usr/bin/env bash
# Extension-script hygiene (TAP): the \echo guard first, no CREATE OR
# REPLACE and no IF NOT EXISTS anywhere in the install script's sources
# (CVE-2022-2625), every SECURITY DEFINER function with a pinned search_path
# in the same statement.
set -uo pipefail
cd "$IPAI_SRC/src/sql" || exit 1
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/# /'; }

first=$(ls *.sql | sort | head -1)
if head -20 "$first" | grep -qE '^\\echo Use "CREATE EXTENSION ipai_saas".*\\quit$'; then
	ok "the install script starts with the \\echo guard ($first)"
else
	nok "the install script starts with the \\echo guard ($first)"
fi

# strip -- comments before looking
hits=$(for f in *.sql; do sed 's/--.*$//' "$f" | grep -inE 'create[[:space:]]+or[[:space:]]+replace' | sed "s/^/$f:/"; done)
[ -z "$hits" ] && ok "no CREATE OR REPLACE in the install script" || nok "no CREATE OR REPLACE in the install script" "$hits"
hits=$(for f in *.sql; do sed 's/--.*$//' "$f" | grep -inE 'if[[:space:]]+not[[:space:]]+exists' | sed "s/^/$f:/"; done)
[ -z "$hits" ] && ok "no IF NOT EXISTS in the install script" || nok "no IF NOT EXISTS in the install script" "$hits"

# every CREATE FUNCTION statement that says SECURITY DEFINER also sets search_path
bad=$(perl -0777 -ne '
	while (/(CREATE\s+FUNCTION\s+(\S+?)\s*\(.*?)(\$\$|AS\s+\x27)/gsi) {
		my ($head, $name) = ($1, $2);
		print "$ARGV: $name\n" if $head =~ /SECURITY\s+DEFINER/i && $head !~ /SET\s+search_path\s*=\s*pg_catalog,\s*pg_temp/i;
	}' *.sql)
[ -z "$bad" ] && ok "every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp" ||
	nok "every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp" "$bad"
echo "1..$n"
