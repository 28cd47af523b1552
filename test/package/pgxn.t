#!/usr/bin/env bash
# The PGXN distribution (TAP): META.json against the PGXN Meta Spec 1.0
# (test/package/pgxn_meta.pl, whose checks are shown to reject broken
# documents), in step with the control file, the Makefile and
# debian/changelog; `make dist` (git archive of the release tag, or of HEAD
# when the tag does not exist yet) giving the zip PGXN accepts: one
# top-level directory <name>-<version>/ with META.json and the files it
# names; and that zip installed the way PGXN users do, `pgxn install
# ./<zip>` into the system PostgreSQL, exercised on a throwaway cluster of
# the system binaries (test/package/smoke.sh) and uninstalled again
# (`pgxn uninstall`), leaving the system's directories as they were.
set -uo pipefail
TAP_DIAG="tail -40"
. "$(dirname "$0")/../lib/tap.sh"
finish() { tap_done; exit $?; }

SRC=${IPAI_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/test/lib/common.sh"
check="$SRC/test/package/pgxn_meta.pl"
meta="$SRC/META.json"
top=$(mktemp -d /tmp/ipai-pgxn.XXXXXX)
installed=""
cleanup() {
	if [ -n "$installed" ]; then
		(cd "$top" && pgxn uninstall --pg_config "$SYS_PG_CONFIG" --make make "./$installed") >/dev/null 2>&1
	fi
	rm -rf "$top"
}
trap cleanup EXIT

# --- META.json --------------------------------------------------------------
if out=$(perl "$check" "$meta" 2>&1); then
	ok "META.json follows the PGXN Meta Spec"
else
	nok "META.json follows the PGXN Meta Spec" "$out"
fi

# the checker fails documents that break the spec, one rule at a time
broken=0
rejected=0
missed=""
while IFS='|' read -r what code; do
	[ -n "$what" ] || continue
	broken=$((broken + 1))
	perl -MJSON::PP -e 'my $j = JSON::PP->new->utf8->canonical->pretty; local $/; open my $f, "<", $ARGV[0] or die; my $m = $j->decode(<$f>); '"$code"'; print $j->encode($m)' \
		"$meta" >"$top/broken.json" || { missed+=" ($what: could not build)"; continue; }
	if perl "$check" "$top/broken.json" >/dev/null 2>&1; then missed+=" ($what)"; else rejected=$((rejected + 1)); fi
done <<'CASES'
no name|delete $m->{name}
no version|delete $m->{version}
no abstract|delete $m->{abstract}
no maintainer|delete $m->{maintainer}
no license|delete $m->{license}
no provides|delete $m->{provides}
no meta-spec|delete $m->{"meta-spec"}
a version that is not semver|$m->{version} = "1.2"
an unknown license identifier|$m->{license} = "gpl"
a name with a space|$m->{name} = "ipai saas"
an extension without its version|delete $m->{provides}{ipai_saas}{version}
an extension without its file|delete $m->{provides}{ipai_saas}{file}
meta-spec 2.0.0|$m->{"meta-spec"}{version} = "2.0.0"
an unknown top-level key|$m->{requires} = {}
an unknown prereq phase|$m->{prereqs}{install} = {requires => {PostgreSQL => "15.0.0"}}
a prereq version that is not a range|$m->{prereqs}{runtime}{requires}{PostgreSQL} = "15"
an unknown release status|$m->{release_status} = "final"
an absolute docfile|$m->{provides}{ipai_saas}{docfile} = "/README.md"
CASES
if [ "$rejected" = "$broken" ]; then
	ok "the checker rejects all $broken documents that break one rule of the spec"
else
	nok "the checker rejects documents that break the spec" "accepted:$missed"
fi

# in step: the distribution's version is the extension's as semver
field() { perl -MJSON::PP -e 'local $/; open my $f, "<", $ARGV[1] or die; my $m = decode_json(<$f>); my $v = eval "\$m->$ARGV[0]"; print defined $v ? $v : ""' "$1" "$meta"; }
control=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SRC/ipai_saas.control")
makefile=$(sed -n 's/^EXTVERSION *= *//p' "$SRC/Makefile")
debian=$(cd "$SRC" && dpkg-parsechangelog -S Version 2>/dev/null)
semver=$control
case "$semver" in *.*.*) ;; *.*) semver=$semver.0 ;; *) semver=$semver.0.0 ;; esac
dist_version=$(field '{version}')
ext_version=$(field '{provides}{ipai_saas}{version}')
if [ "$dist_version" = "$semver" ] && [ "$ext_version" = "$semver" ] && [ "$makefile" = "$control" ] &&
	[ "${debian%-*}" = "$semver" ]; then
	ok "versions in step: control $control, Makefile $makefile, META.json $dist_version (provides $ext_version), debian $debian"
else
	nok "versions in step" "control $control (semver $semver), Makefile $makefile, META.json $dist_version, provides $ext_version, debian/changelog $debian"
fi
req=$(field '{prereqs}{runtime}{requires}{PostgreSQL}')
if [ "$req" = 15.0.0 ]; then ok "it requires PostgreSQL 15.0.0 or later, the oldest version tested"; else nok "it requires PostgreSQL >= 15" "$req"; fi
for k in file docfile; do
	f=$(field "{provides}{ipai_saas}{$k}")
	[ -f "$SRC/$f" ] && ok "the extension's $k $f exists" || nok "the extension's $k exists" "$f"
done

# --- make dist ----------------------------------------------------------------
if ! git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
	echo "# SKIP make dist: $SRC is not a git work tree (make dist archives a git tag)"
	finish
fi
ref=v$dist_version
if git -C "$SRC" rev-parse -q --verify "$ref^{commit}" >/dev/null; then
	refnote="the tag $ref"
else
	ref=HEAD
	refnote="HEAD: no tag v$dist_version yet"
fi
zip="ipai_saas-$dist_version.zip"
if out=$(make -s -C "$top" -f "$SRC/Makefile" VPATH="$SRC" DIST_REF="$ref" dist 2>&1) && [ -f "$top/$zip" ]; then
	ok "make dist wrote $zip ($refnote)"
else
	nok "make dist wrote $zip" "$out"; finish
fi
entries=$(unzip -Z1 "$top/$zip")
tops=$(printf '%s\n' "$entries" | cut -d/ -f1 | sort -u)
if [ "$tops" = "ipai_saas-$dist_version" ]; then ok "one top-level directory ipai_saas-$dist_version/ ($(printf '%s\n' "$entries" | grep -vc '/$') files)"; else nok "one top-level directory" "$tops"; fi
missing=""
for f in META.json Makefile ipai_saas.control README.md "$(field '{provides}{ipai_saas}{file}')" src/ipai_saas.c; do
	printf '%s\n' "$entries" | grep -qxF "ipai_saas-$dist_version/$f" || missing+=" $f"
done
if [ -z "$missing" ]; then ok "it holds META.json, the Makefile, the control file, the README and the sources"; else nok "it holds what PGXN needs" "missing:$missing"; fi
junk=$(printf '%s\n' "$entries" | grep -E '/(node_modules|\.ci|\.git)/|\.(o|so|gcda|zip)$' | head -5)
[ -z "$junk" ] && ok "no build products, node_modules or CI files in it" || nok "no build products in it" "$junk"
unzip -q -o "$top/$zip" "ipai_saas-$dist_version/META.json" -d "$top/unzipped" &&
	out=$(perl "$check" "$top/unzipped/ipai_saas-$dist_version/META.json" 2>&1) &&
	ok "the META.json in the zip follows the spec" || nok "the META.json in the zip follows the spec" "$out"

# --- pgxn install --------------------------------------------------------------
if ! command -v pgxn >/dev/null; then
	nok "pgxnclient is installed (test/bootstrap.sh installs it)"; finish
fi
ipai_pg_dirs "$SYS_PG_CONFIG" || { nok "the system PostgreSQL"; finish; }
listing() { ls "$PG_SHAREDIR/extension" "$PG_PKGLIBDIR" "$PG_PKGLIBDIR/bitcode" 2>/dev/null; }
present=$(ls -d "$PG_SHAREDIR"/extension/ipai_saas* "$PG_PKGLIBDIR"/ipai_saas.so "$PG_PKGLIBDIR"/bitcode/ipai_saas* 2>/dev/null)
if [ -n "$present" ]; then
	nok "the system PostgreSQL has no ipai_saas files yet" "found (a package, make install?): $present"; finish
fi
before=$(listing)
installed=$zip
if out=$(cd "$top" && pgxn install --pg_config "$SYS_PG_CONFIG" --make make "./$zip" 2>&1); then
	ok "pgxn install ./$zip into PostgreSQL $SYS_PG_MAJOR"
else
	nok "pgxn install ./$zip" "$out"; finish
fi
if out=$(IPAI_PGBIN=$PG_BINDIR "$SRC/test/cluster.sh" run -- "$SRC/test/package/smoke.sh" 2>&1); then
	ok "on a throwaway cluster of the system binaries: $(printf '%s\n' "$out" | tail -1)"
else
	nok "CREATE EXTENSION, install_schema() and the demo on a cluster of the system binaries" "$out"
fi
if out=$(cd "$top" && pgxn uninstall --pg_config "$SYS_PG_CONFIG" --make make "./$zip" 2>&1); then
	installed=""
	ok "pgxn uninstall ./$zip"
else
	nok "pgxn uninstall ./$zip" "$out"
fi
if d=$(diff <(echo "$before") <(listing)); then
	ok "the system's extension and library directories list what they did before"
else
	nok "the system's extension and library directories list what they did before" "$d"
fi
finish
