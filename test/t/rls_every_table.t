#!/usr/bin/env bash
# Row-level security over every table of schema ipai (TAP): loads the
# fixtures of every area (test/fixtures/rls/*.sql) into a fresh database and
# runs the generated checks of rls_every_table.sql.
set -euo pipefail
db=ipai_rls_$$
psql -X -q -d postgres -c "CREATE DATABASE $db TEMPLATE ipai_template" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
for f in "$IPAI_SRC"/test/fixtures/rls/*.sql; do
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$f" >/dev/null
done
psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -f "$IPAI_SRC/test/t/rls_every_table.sql"
