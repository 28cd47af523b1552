# third_party.sh — PostgreSQL servers Debian 12 does not package, built from
# source archives for the test matrix (sourced by common.sh).
#
# The archives are read from IPAI_THIRD_PARTY (default ../shared/third_party
# next to the clone), each overridable on its own:
#   PG18_SRC      postgresql-18_*.orig.tar.bz2 (or any postgresql-18 source
#                 archive with one top-level directory)
#   PG_CRON_SRC   pg_cron-*.tar.gz, built for that server
#   PGTAP_SRC     pgtap_*.orig.tar.gz, built for that server
#
# ipai_pg_build 18: builds PostgreSQL 18 (OpenSSL, libxml, ICU, lz4 and
# zstd as in Debian's server, assertions enabled) with
# contrib, pg_isolation_regress, pg_cron and pgTAP into a private prefix,
# once per machine: the prefix is
#   $IPAI_THIRD_PARTY_CACHE/<16 hex of the archives' SHA-256 and this
#   recipe>/postgresql-18
# (default cache /var/tmp/ipai_saas/third_party, root's and mode 755 like
# IPAI_WORK, since the postgres user runs these binaries), so a second run on
# the same machine, from any clone, reuses it; concurrent runs wait for one
# another (flock).  Prints the prefix's pg_config.  Returns 2, saying why on
# stderr, when an archive is missing (the caller skips), 1 when the build
# fails (its log is kept next to the prefix).

IPAI_THIRD_PARTY=${IPAI_THIRD_PARTY:-$(dirname "$IPAI_SRC")/shared/third_party}
IPAI_THIRD_PARTY_CACHE=${IPAI_THIRD_PARTY_CACHE:-$IPAI_WORK_BASE/third_party}

# bump when the build recipe below changes: the cache key includes it
IPAI_PG_RECIPE="pg18 r3: --with-openssl --with-libxml --with-icu --with-lz4 --with-zstd --enable-cassert --enable-debug; contrib; isolation; pg_cron; pgtap"

# ipai_first_match GLOB: the first existing file matching it, else empty
ipai_first_match() {
	local f
	for f in $1; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	return 0
}

# ipai_pg_sources MAJOR: sets PG_SRC_ARCHIVE, CRON_SRC_ARCHIVE,
# TAP_SRC_ARCHIVE; returns 2 and says what is missing otherwise
ipai_pg_sources() {
	local major=$1 missing=()
	case "$major" in
	18) PG_SRC_ARCHIVE=${PG18_SRC:-$(ipai_first_match "$IPAI_THIRD_PARTY/postgresql-18_*.orig.tar.bz2")} ;;
	*) echo "no recipe for PostgreSQL $major" >&2; return 2 ;;
	esac
	CRON_SRC_ARCHIVE=${PG_CRON_SRC:-$(ipai_first_match "$IPAI_THIRD_PARTY/pg_cron-*.tar.gz")}
	TAP_SRC_ARCHIVE=${PGTAP_SRC:-$(ipai_first_match "$IPAI_THIRD_PARTY/pgtap_*.orig.tar.gz")}
	[ -f "$PG_SRC_ARCHIVE" ] || missing+=(" the PostgreSQL $major source (PG${major}_SRC${PG_SRC_ARCHIVE:+=$PG_SRC_ARCHIVE})")
	[ -f "$CRON_SRC_ARCHIVE" ] || missing+=(" the pg_cron source (PG_CRON_SRC${CRON_SRC_ARCHIVE:+=$CRON_SRC_ARCHIVE})")
	[ -f "$TAP_SRC_ARCHIVE" ] || missing+=(" the pgTAP source (PGTAP_SRC${TAP_SRC_ARCHIVE:+=$TAP_SRC_ARCHIVE})")
	if [ ${#missing[@]} -gt 0 ]; then
		local IFS=';'
		echo "missing${missing[*]} (looked in IPAI_THIRD_PARTY=$IPAI_THIRD_PARTY)" >&2
		return 2
	fi
}

# ipai_pg_build_deps: the Debian packages a server build needs
ipai_pg_build_deps() {
	local p missing=()
	for p in bison flex libreadline-dev zlib1g-dev libssl-dev libxml2-dev libicu-dev liblz4-dev libzstd-dev pkg-config make gcc; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]}" >&2
		return 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
}

ipai_pg_build() {
	local major=$1 key base prefix log rc
	ipai_pg_sources "$major" || return 2
	key=$( (sha256sum "$PG_SRC_ARCHIVE" "$CRON_SRC_ARCHIVE" "$TAP_SRC_ARCHIVE" | cut -d' ' -f1
		echo "$IPAI_PG_RECIPE") | sha256sum | cut -c1-16)
	base="$IPAI_THIRD_PARTY_CACHE/$key"
	prefix="$base/postgresql-$major"
	log="$base/build.log"

	umask 022
	local d
	for d in "$IPAI_THIRD_PARTY_CACHE" "$base"; do
		[ -d "$d" ] || mkdir -p -m 0755 "$d" || return 1
		if [ "$(stat -c %u "$d")" != "$(id -u)" ] || [ -n "$(find "$d" -maxdepth 0 -perm /022)" ]; then
			echo "$d is owned by another user or writable by others: remove it" >&2
			return 1
		fi
	done
	(
		flock 9
		[ -f "$prefix/.complete" ] && exit 0
		ipai_pg_build_deps || exit 1
		echo "building PostgreSQL $major, pg_cron and pgTAP into $prefix (once per machine; log: $log)" >&2
		rm -rf "$prefix" "$base/src"
		mkdir -p "$base/src"
		ipai_pg_build_steps "$major" "$prefix" "$base/src" >"$log" 2>&1 || {
			echo "the PostgreSQL $major build failed; errors in $log:" >&2
			grep -E -i '(error|cannot|not found)' "$log" | grep -v -- '-Werror' | tail -10 >&2
			tail -3 "$log" >&2
			rm -rf "$prefix"
			exit 1
		}
		rm -rf "$base/src"
		touch "$prefix/.complete"
	) 9>"$base/.lock"
	rc=$?
	[ "$rc" -eq 0 ] || return "$rc"
	echo "$prefix/bin/pg_config"
}

# the recipe: a server with OpenSSL, libxml (tests use query_to_xml), ICU,
# lz4 (webhook payloads are lz4-compressed where available: pg_upgrade from
# Debian's 15 needs it) and zstd (assertions on, to catch misuse of server
# APIs), contrib, the isolation tester (installed into pgxs as
# Debian's server-dev package does), then pg_cron and pgTAP for it
ipai_pg_build_steps() {
	local major=$1 prefix=$2 src=$3 jobs dir pgc=$2/bin/pg_config
	jobs=$(nproc 2>/dev/null || echo 2)
	# (set -e is ignored in a function called as part of ||: check each step)
	tar -xf "$PG_SRC_ARCHIVE" -C "$src" || return 1
	dir=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'postgresql-*' | head -1)
	(cd "$dir" && ./configure --prefix="$prefix" --with-openssl --with-libxml --with-icu --with-lz4 --with-zstd \
		--enable-cassert --enable-debug CFLAGS="-O2 -g") || return 1
	# the generated headers first: a parallel build once compiled src/common
	# before utils/errcodes.h existed
	make -C "$dir/src/backend" generated-headers || return 1
	make -C "$dir" -j"$jobs" || return 1
	make -C "$dir" install || return 1
	make -C "$dir/contrib" -j"$jobs" || return 1
	make -C "$dir/contrib" install || return 1
	make -C "$dir/src/test/isolation" -j"$jobs" || return 1
	make -C "$dir/src/test/isolation" install || return 1
	tar -xf "$CRON_SRC_ARCHIVE" -C "$src" || return 1
	dir=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'pg_cron-*' | head -1)
	make -C "$dir" -j"$jobs" PG_CONFIG="$pgc" || return 1
	make -C "$dir" PG_CONFIG="$pgc" install || return 1
	tar -xf "$TAP_SRC_ARCHIVE" -C "$src" || return 1
	dir=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name 'pgtap-*' | head -1)
	make -C "$dir" PG_CONFIG="$pgc" || return 1
	make -C "$dir" PG_CONFIG="$pgc" install || return 1
	[ -x "$prefix/bin/postgres" ] && [ -x "$prefix/lib/pgxs/src/test/isolation/pg_isolation_regress" ]
}

# ipai_pg_debian MAJOR VERSION: the Debian packages postgresql-MAJOR,
# postgresql-client-MAJOR and postgresql-server-dev-MAJOR of that version,
# fetched with `apt-get download` from the configured archive and unpacked
# (dpkg -x, never installed) under
#   $IPAI_THIRD_PARTY_CACHE/debian-postgresql-MAJOR-VERSION/root
# with the system's pg_cron for MAJOR copied in; once per machine.  For a
# server of another minor version than the system's (test/pg_upgrade).
# Prints its pg_config; returns 2, saying why, when the archive does not
# have that version.
ipai_pg_debian() {
	local major=$1 version=$2 base root rc
	base="$IPAI_THIRD_PARTY_CACHE/debian-postgresql-$major-$version"
	root="$base/root"
	umask 022
	mkdir -p -m 0755 "$IPAI_THIRD_PARTY_CACHE" "$base" || return 1
	(
		flock 9
		[ -f "$root/.complete" ] && exit 0
		rm -rf "$root" "$base/debs"
		mkdir -p "$base/debs" "$root"
		if ! (cd "$base/debs" && apt-get download -q "postgresql-$major=$version" \
			"postgresql-client-$major=$version" "postgresql-server-dev-$major=$version") >"$base/download.log" 2>&1; then
			echo "the archive has no PostgreSQL $major packages of version $version: $(tail -2 "$base/download.log" | tr '\n' ' ')" >&2
			exit 2
		fi
		for deb in "$base"/debs/*.deb; do dpkg -x "$deb" "$root" || exit 1; done
		cp -a /usr/lib/postgresql/"$major"/lib/pg_cron.so "$root/usr/lib/postgresql/$major/lib/" &&
			cp -a /usr/share/postgresql/"$major"/extension/pg_cron* "$root/usr/share/postgresql/$major/extension/" || exit 1
		rm -rf "$base/debs"
		touch "$root/.complete"
	) 9>"$base/.lock"
	rc=$?
	[ "$rc" -eq 0 ] || return "$rc"
	echo "$root/usr/lib/postgresql/$major/bin/pg_config"
}
