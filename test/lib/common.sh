# common.sh — shared by the test, demo and benchmark scripts (source it).
#
# ipai_stage KIND COPT: builds this tree out of tree in .build/KIND with the
# given compiler flags and installs it into a private copy of PostgreSQL in
# .stage/KIND (the server finds share/ and lib/ relative to its binary), so
# tests never touch the system installation and several checkouts can test
# side by side.  Prints the staged bin directory.

IPAI_SRC=${IPAI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export IPAI_SRC
SYS_PGBIN=/usr/lib/postgresql/15/bin
SYS_PGLIB=/usr/lib/postgresql/15
SYS_PGSHARE=/usr/share/postgresql/15

ipai_stage() {
	local kind=$1 copt=$2
	local build="$IPAI_SRC/.build/$kind" stage="$IPAI_SRC/.stage/$kind"
	local want have=""

	# a new copy whenever the system server or its extensions change
	want=$( (stat -c '%n %Y %s' "$SYS_PGBIN/postgres"; ls "$SYS_PGSHARE/extension" "$SYS_PGLIB/lib") | md5sum)
	[ -f "$stage/.stamp" ] && have=$(cat "$stage/.stamp")
	if [ "$want" != "$have" ]; then
		rm -rf "$stage"
		mkdir -p "$stage/usr/lib/postgresql" "$stage/usr/share/postgresql"
		cp -a "$SYS_PGLIB" "$stage/usr/lib/postgresql/"
		cp -a "$SYS_PGSHARE" "$stage/usr/share/postgresql/"
		echo "$want" > "$stage/.stamp"
	fi

	# objects of a plain in-tree `make` would satisfy the VPATH build as
	# up to date (without coverage or -Werror): clear them first
	if ls "$IPAI_SRC"/src/*.o "$IPAI_SRC"/*.so >/dev/null 2>&1; then
		echo "removing in-tree build products (make clean) before the staged build" >&2
		make -s -C "$IPAI_SRC" clean >/dev/null 2>&1 || rm -f "$IPAI_SRC"/src/*.o "$IPAI_SRC"/src/*.bc "$IPAI_SRC"/*.so
	fi
	mkdir -p "$build/src"
	# backends (user postgres) write coverage data next to the objects
	chmod 0777 "$build/src"
	make -s -C "$build" -f "$IPAI_SRC/Makefile" VPATH="$IPAI_SRC" with_llvm=no autodepend=yes \
		COPT="$copt"\
		all >&2
	# scripts of an earlier version (built before a version bump) would
	# shadow the released ones: the install brings back what is current
	rm -f "$stage$SYS_PGSHARE"/extension/ipai_saas--*.sql
	make -s -C "$build" -f "$IPAI_SRC/Makefile" VPATH="$IPAI_SRC" with_llvm=no autodepend=yes \
		COPT="$copt"\
		DESTDIR="$stage" install >&2
	echo "$stage/usr/lib/postgresql/15/bin"
}
