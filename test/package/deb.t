#!/usr/bin/env bash
# The Debian package (TAP), as a DBA gets it: debian/ built with
# `dpkg-buildpackage -us -uc -b` (pg_buildext, one binary package per
# version of debian/pgversions that the machine supports: here
# postgresql-15-ipai-saas), checked by lintian (no errors), installed into
# the system PostgreSQL with `apt-get install ./<deb>`, exercised on a
# throwaway cluster of the system binaries (CREATE EXTENSION ipai_saas
# CASCADE, install_schema(), the demo: test/package/smoke.sh), and removed
# again.
#
# It changes the system installation while it runs, so it refuses to start
# when anything of ipai_saas is installed there already, and it removes the
# package whatever happens; afterwards the system's extension and library
# directories must list exactly what they listed before (the staged copies
# of test/lib/common.sh are keyed by that listing).  The source tree is
# copied (what git tracks and new files it does not ignore) into a temp
# directory, since dpkg-buildpackage writes next to the tree.
set -uo pipefail
TAP_DIAG="tail -40"
. "$(dirname "$0")/../lib/tap.sh"
finish() { tap_done; exit $?; }

SRC=${IPAI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/test/lib/common.sh"
ipai_pg_dirs "$SYS_PG_CONFIG" || { nok "the system PostgreSQL ($SYS_PG_CONFIG)"; finish; }
pkg=postgresql-$SYS_PG_MAJOR-ipai-saas
listing() { ls "$PG_SHAREDIR/extension" "$PG_PKGLIBDIR" "$PG_PKGLIBDIR/bitcode" 2>/dev/null; }

for t in dpkg-buildpackage pg_buildext dh lintian; do
	command -v "$t" >/dev/null || { nok "$t is installed (test/bootstrap.sh installs it)"; finish; }
done

# nothing of ours in the system installation, from a package or by hand
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok'; then
	nok "the system PostgreSQL has no $pkg yet" "installed: remove it (apt-get remove $pkg) before the test"; finish
fi
present=$(ls -d "$PG_SHAREDIR"/extension/ipai_saas* "$PG_PKGLIBDIR"/ipai_saas.so "$PG_PKGLIBDIR"/bitcode/ipai_saas* 2>/dev/null)
if [ -n "$present" ]; then
	nok "the system PostgreSQL has no ipai_saas files yet" "found (make uninstall?): $present"; finish
fi
ok "the system PostgreSQL $SYS_PG_MAJOR has no ipai_saas installed"
before=$(listing)

top=$(mktemp -d /tmp/ipai-deb.XXXXXX)
installed=0
cleanup() {
	[ "$installed" = 1 ] && DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y -q "$pkg" >/dev/null 2>&1
	rm -rf "$top"
}
trap cleanup EXIT

debver=$(cd "$SRC" && dpkg-parsechangelog -S Version)
upstream=${debver%-*}
src="$top/ipai-saas-$upstream"
mkdir "$src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$SRC" ls-files -z -co --exclude-standard |
		tar -C "$SRC" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$src" -xf -
else
	tar -C "$SRC" --exclude=./node_modules -cf - . | tar -C "$src" -xf -
fi

extversion=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SRC/ipai_saas.control")
case "$upstream" in
"$extversion" | "$extversion".*) ok "debian/changelog's version $debver follows the extension's $extversion" ;;
*) nok "debian/changelog's version follows the control file" "debian $debver, control $extversion" ;;
esac

t0=$(date +%s)
if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$top/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - t0)) s)"
else
	nok "dpkg-buildpackage -us -uc -b" "$(tail -40 "$top/build.log")"; finish
fi
arch=$(dpkg --print-architecture)
deb="$top/${pkg}_${debver}_$arch.deb"
if [ -f "$deb" ]; then ok "it produced $(basename "$deb")"; else nok "it produced $(basename "$deb")" "$(ls "$top")"; finish; fi

# the package holds the library, the control file and every script the
# source ships (the current version's and the released ones)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
want=("$PG_PKGLIBDIR/ipai_saas.so" "$PG_SHAREDIR/extension/ipai_saas.control" "$PG_SHAREDIR/extension/ipai_saas--$extversion.sql")
for f in "$SRC"/src/sql/released/ipai_saas--*.sql; do want+=("$PG_SHAREDIR/extension/$(basename "$f")"); done
missing=""
for f in "${want[@]}"; do printf '%s\n' "$contents" | grep -qxF "$f" || missing+=" $f"; done
if [ -z "$missing" ]; then ok "it holds the library, the control file and ${#want[@]} files in all"; else nok "it holds what it should" "missing:$missing"; fi
depends=$(dpkg-deb -f "$deb" Depends)
case "$depends" in *"postgresql-$SYS_PG_MAJOR"*libssl*|*libssl*"postgresql-$SYS_PG_MAJOR"*) ok "it depends on its server and libssl: $depends" ;;
*) nok "it depends on its server and libssl" "$depends" ;; esac

if out=$(cd "$top" && lintian --fail-on error ./*.changes 2>&1); then
	ok "lintian: no errors ($(printf '%s\n' "$out" | grep -c '^W:') warnings$(printf '%s\n' "$out" | grep '^W:' | sed 's/^W: [^:]*: / /; s/ \[.*//' | sort -u | tr '\n' ',' | sed 's/,$//'))"
else
	nok "lintian: no errors" "$out"
fi

installed=1
if out=$(cd "$top" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$(basename "$deb")" 2>&1); then
	ok "apt-get install ./$(basename "$deb")"
else
	nok "apt-get install ./$(basename "$deb")" "$out"; finish
fi
if out=$(dpkg --verify "$pkg" 2>&1) && [ -z "$out" ] && [ -f "$PG_PKGLIBDIR/ipai_saas.so" ]; then
	ok "its files are in the system installation, unmodified (dpkg --verify)"
else
	nok "its files are in the system installation" "$out"
fi

if out=$(IPAI_PGBIN=$PG_BINDIR "$SRC/test/cluster.sh" run -- "$SRC/test/package/smoke.sh" 2>&1); then
	ok "on a throwaway cluster of the system binaries: $(printf '%s\n' "$out" | tail -1)"
else
	nok "CREATE EXTENSION, install_schema() and the demo on a cluster of the system binaries" "$out"
fi

if out=$(DEBIAN_FRONTEND=noninteractive apt-get remove --purge -y -q "$pkg" 2>&1); then
	installed=0
	ok "apt-get remove --purge $pkg"
else
	nok "apt-get remove --purge $pkg" "$out"
fi
if d=$(diff <(echo "$before") <(listing)); then
	ok "the system's extension and library directories list what they did before"
else
	nok "the system's extension and library directories list what they did before" "$d"
fi
finish
