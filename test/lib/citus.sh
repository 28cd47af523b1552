# citus.sh — Citus for the test matrix, built from its source archive
# (sourced by the Citus scripts after common.sh).
#
# The archive is CITUS_SRC (default ../shared/third_party/citus-*.tar.gz
# next to the clone, with its patch for PostgreSQL 15.20's headers,
# CITUS_PATCH, default the citus-*-pg15.patch beside it).  Citus 13 is the
# last line that supports PostgreSQL 15, the system's server here.
#
# ipai_citus_build: builds Citus against the system PostgreSQL 15 into a
# private tree, once per machine: $IPAI_THIRD_PARTY_CACHE/<16 hex of the
# archive's and patch's SHA-256 and this recipe>/citus, holding
# usr/lib/postgresql/15/lib/citus*.so and usr/share/postgresql/15/extension/citus*
# (DESTDIR layout), so that ipai_citus_stage can copy it into a staged
# server.  Concurrent runs wait for one another (flock).  Prints the tree.
# Returns 2, saying why on stderr, when the archive is missing (the caller
# skips), 1 when the build fails (its log is kept next to the tree).
#
# ipai_citus_stage KIND COPT: ipai_stage KIND-citus COPT (the extension
# built into a staged copy of the system server, see common.sh) with
# Citus added; prints its bin directory.

IPAI_CITUS_RECIPE="citus r1: configure --without-libcurl; pg15 patch; make -j2; DESTDIR install"

ipai_citus_sources() {
	CITUS_ARCHIVE=${CITUS_SRC:-$(ipai_first_match "$IPAI_THIRD_PARTY/citus-*.tar.gz")}
	CITUS_PATCH_FILE=${CITUS_PATCH-$(ipai_first_match "$IPAI_THIRD_PARTY/citus-*-pg15.patch")}
	if [ ! -f "$CITUS_ARCHIVE" ]; then
		echo "missing the Citus source (CITUS_SRC${CITUS_ARCHIVE:+=$CITUS_ARCHIVE}; looked in IPAI_THIRD_PARTY=$IPAI_THIRD_PARTY)" >&2
		return 2
	fi
}

ipai_citus_build() {
	local key dir log src
	ipai_citus_sources || return 2
	key=$( (sha256sum "$CITUS_ARCHIVE" | cut -d' ' -f1
		[ -f "$CITUS_PATCH_FILE" ] && sha256sum "$CITUS_PATCH_FILE" | cut -d' ' -f1
		echo "$IPAI_CITUS_RECIPE"; "$SYS_PG_CONFIG" --version) | sha256sum | cut -c1-16)
	dir="$IPAI_THIRD_PARTY_CACHE/$key"
	log="$dir/citus-build.log"
	(
		umask 022
		mkdir -p "$IPAI_THIRD_PARTY_CACHE" && chmod 0755 "$IPAI_WORK_BASE" "$IPAI_THIRD_PARTY_CACHE" 2>/dev/null
		mkdir -p "$dir"
		flock 9
		[ -f "$dir/citus/.done" ] && exit 0
		echo "building Citus from $(basename "$CITUS_ARCHIVE") (once per machine, about a minute)" >&2
		export DEBIAN_FRONTEND=noninteractive
		missing=()
		for p in liblz4-dev libzstd-dev libkrb5-dev libcurl4-openssl-dev autoconf; do
			dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
		done
		if [ ${#missing[@]} -gt 0 ]; then
			apt-get install -y -q "${missing[@]}" >"$dir/apt.log" 2>&1 ||
				{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >"$dir/apt.log" 2>&1; } ||
				{ echo "could not install ${missing[*]}" >&2; exit 1; }
		fi
		rm -rf "$dir/src" "$dir/citus"
		mkdir -p "$dir/src"
		tar -xzf "$CITUS_ARCHIVE" -C "$dir/src" --strip-components=1 || exit 1
		cd "$dir/src" || exit 1
		if [ -f "$CITUS_PATCH_FILE" ]; then
			patch -p1 <"$CITUS_PATCH_FILE" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
		fi
		{
			./configure --without-libcurl PG_CONFIG="$SYS_PG_CONFIG" &&
			make -j2 &&
			make install DESTDIR="$dir/citus"
		} >>"$log" 2>&1 || { grep -E 'error|Error' "$log" | head -20 >&2; exit 1; }
		rm -rf "$dir/src"
		touch "$dir/citus/.done"
	) 9>"$dir.lock" || return 1
	echo "$dir/citus"
}

ipai_citus_stage() {
	local kind=$1 copt=$2 tree bin stage
	tree=$(ipai_citus_build) || return $?
	bin=$(ipai_stage "$kind-citus" "$copt") || return 1
	stage="$IPAI_WORK/stage/$kind-citus"
	# the staged server finds lib/ and share/ relative to its binary
	cp -a "$tree"/usr/lib/postgresql/. "$stage/usr/lib/postgresql/"
	cp -a "$tree"/usr/share/postgresql/. "$stage/usr/share/postgresql/"
	echo "$bin"
}
