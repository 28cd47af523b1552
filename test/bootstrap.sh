#!/usr/bin/env bash
# bootstrap.sh — install what a fresh Debian 12 machine lacks for building,
# demonstrating and testing ipai_saas: Debian packages (as root, with apt;
# debhelper, postgresql-server-dev-all and lintian build and check the
# Debian package, pgxnclient installs the PGXN distribution) and the npm
# packages named in package.json.  What building PostgreSQL 18 needs is
# installed only when its source is there (test/lib/third_party.sh).  Idempotent and quiet when
# everything is present.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)

APT_PACKAGES=(
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl libssl-dev
	make gcc clang libclang-rt-14-dev lcov valgrind
	chromium
	debhelper postgresql-server-dev-all lintian pgxnclient
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
		echo "bootstrap: run as root, or: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	echo "bootstrap: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q "${missing[@]}" >/dev/null
fi

# npm packages of the tests (test/package.json: the outside references
# Stripe's SDK, supabase-js and jsdiff, the postgres driver and Deno), in
# test/node_modules: kept out of the repository root so that Deno, running
# the Edge handlers, never sees a package.json.  Reinstall when
# test/package-lock.json changed.
if ! command -v npm >/dev/null 2>&1; then
	echo "bootstrap: node and npm are needed (apt-get install nodejs npm)" >&2
	exit 1
fi
stamp="$SRC/test/node_modules/.ipai-lock-stamp"
if [ ! -f "$stamp" ] || ! cmp -s "$SRC/test/package-lock.json" "$stamp"; then
	echo "bootstrap: installing npm packages"
	(cd "$SRC/test" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	cp "$SRC/test/package-lock.json" "$stamp"
fi
