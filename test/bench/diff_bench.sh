#!/usr/bin/env bash
# diff_bench.sh — benchmark of ipai.diff_words (prints figures, not a test):
#   - a 100 KB CMS-like document with 1% of its words edited, ipai.diff_words
#     (all rows fetched by a Node client) versus jsdiff's diffWordsWithSpace
#     in the same Node process, as a ratio (goal: at least 3x faster);
#   - the same at 1 MB;
#   - two unrelated 1 MB documents, where the work budget must keep the
#     call within about 2 s (exits 1 when it does not).
#
# With PGHOST etc. set (e.g. under `test/cluster.sh run -- test/bench/diff_bench.sh`
# with IPAI_PGBIN at a staged build) it uses that server and creates the
# extension in PGDATABASE if needed.  Without PGHOST it builds an optimized
# staged copy and runs itself on a throwaway cluster.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
export IPAI_SRC=$SRC

if [ -z "${PGHOST:-}" ]; then
	. "$SRC/test/lib/common.sh"
	pgbin=$(ipai_stage opt "-O2")
	exec env IPAI_PGBIN="$pgbin" "$SRC/test/cluster.sh" run -- "$0" "$@"
fi

psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS ipai_saas CASCADE" >/dev/null
exec node "$SRC/test/bench/diff_bench.js"
