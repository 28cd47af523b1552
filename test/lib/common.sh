# common.sh — shared by the test, demo and benchmark scripts (source it).
#
# IPAI_WORK: where builds, staged servers and test results go.  Outside the
# clone, because the servers run as the postgres user, who may not enter
# the clone's directory (root's home, a mktemp -d directory: mode 700).
# Default /var/tmp/ipai_saas/<12 hex digits of the SHA-256 of the clone's
# path>, so several clones test side by side; every directory on the way
# is root's and mode 755.  `make clean-work` removes it.
#
# ipai_stage KIND COPT [PG_CONFIG]: builds this tree out of tree in
# $IPAI_WORK/build/KIND with the given compiler flags against the
# PostgreSQL installation PG_CONFIG describes (default the system's 15) and
# installs it into a private copy of that installation in
# $IPAI_WORK/stage/KIND (the server finds share/ and lib/ relative to its
# binary), so tests never touch the installation itself.  Prints the staged
# bin directory.
#
# ipai_pg_dirs PG_CONFIG: sets PG_BINDIR, PG_SHAREDIR, PG_PKGLIBDIR of an
# installation; the harness knows PostgreSQL by these, never by a fixed path.

IPAI_SRC=${IPAI_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export IPAI_SRC
# the tests' npm packages (test/package.json), for node scripts run from
# anywhere
export NODE_PATH="$IPAI_SRC/test/node_modules${NODE_PATH:+:$NODE_PATH}"
# the system's PostgreSQL (Debian 12: 15), the default of every script
SYS_PG_MAJOR=${IPAI_SYS_PG_MAJOR:-15}
SYS_PG_CONFIG=${IPAI_SYS_PG_CONFIG:-/usr/lib/postgresql/$SYS_PG_MAJOR/bin/pg_config}
IPAI_WORK_BASE=${IPAI_WORK_BASE:-/var/tmp/ipai_saas}
IPAI_WORK=${IPAI_WORK:-$IPAI_WORK_BASE/$(realpath "$IPAI_SRC" | tr -d '\n' | sha256sum | cut -c1-12)}
export IPAI_WORK

# ipai_workdir: creates $IPAI_WORK (and the default base) mode 755, and
# refuses one that another user owns or may write to, since the postgres
# user will execute what is staged there.
ipai_workdir() {
	local d dirs=("$IPAI_WORK")
	case "$IPAI_WORK" in "$IPAI_WORK_BASE"/*) dirs=("$IPAI_WORK_BASE" "$IPAI_WORK") ;; esac
	for d in "${dirs[@]}"; do
		if [ ! -d "$d" ]; then
			mkdir -p "$(dirname "$d")" && mkdir -m 0755 "$d" || return 1
		fi
		if [ "$(stat -c %u "$d")" != "$(id -u)" ] || [ -n "$(find "$d" -maxdepth 0 -perm /022)" ]; then
			echo "$d is owned by another user or writable by others: remove it, or set IPAI_WORK" >&2
			return 1
		fi
	done
}

ipai_pg_dirs() {
	PG_BINDIR=$("$1" --bindir) && PG_SHAREDIR=$("$1" --sharedir) &&
		PG_PKGLIBDIR=$("$1" --pkglibdir) || return 1
	[ -x "$PG_BINDIR/postgres" ] || { echo "$1: no server in $PG_BINDIR" >&2; return 1; }
}

ipai_stage() {
	local kind=$1 copt=$2 pgconfig=${3:-$SYS_PG_CONFIG}
	local build="$IPAI_WORK/build/$kind" stage="$IPAI_WORK/stage/$kind"
	local want have="" root roots
	# the postgres user reads and executes what is staged
	umask 022
	ipai_workdir || return 1
	ipai_pg_dirs "$pgconfig" || return 1
	# what is copied: the directory holding bin/ and lib/ (Debian:
	# /usr/lib/postgresql/15, a source build: its prefix), and share/ when
	# it lies elsewhere (Debian: /usr/share/postgresql/15)
	roots=("$(dirname "$PG_BINDIR")")
	case "$PG_SHAREDIR/" in "${roots[0]}"/*) ;; *) roots+=("$PG_SHAREDIR") ;; esac

	# a new copy whenever the server or its extensions change
	want=$( (stat -c '%n %Y %s' "$PG_BINDIR/postgres"; ls "$PG_SHAREDIR/extension" "$PG_PKGLIBDIR") | md5sum)
	[ -f "$stage/.stamp" ] && have=$(cat "$stage/.stamp")
	if [ "$want" != "$have" ]; then
		rm -rf "$stage"
		for root in "${roots[@]}"; do
			mkdir -p "$stage$(dirname "$root")"
			cp -a "$root" "$stage$(dirname "$root")/"
		done
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
		PG_CONFIG="$pgconfig" COPT="$copt" \
		all >&2 || return 1
	# scripts of an earlier version (built before a version bump) would
	# shadow the released ones: the install brings back what is current
	rm -f "$stage$PG_SHAREDIR"/extension/ipai_saas--*.sql
	make -s -C "$build" -f "$IPAI_SRC/Makefile" VPATH="$IPAI_SRC" with_llvm=no autodepend=yes \
		PG_CONFIG="$pgconfig" COPT="$copt" \
		DESTDIR="$stage" install >&2 || return 1
	echo "$stage$PG_BINDIR"
}

. "$IPAI_SRC/test/lib/third_party.sh"
