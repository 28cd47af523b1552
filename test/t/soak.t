#!/usr/bin/env bash
# The soak test at its short default inside `make test` (TAP): a mixed
# pgbench workload over the public functions for IPAI_SOAK_SECONDS (25) on
# a cluster of its own, then the invariants (see test/soak/run.sh, which
# runs 60 s by default by hand: test/soak/run.sh [SECONDS]).
exec "$IPAI_SRC/test/soak/run.sh" "${IPAI_SOAK_SECONDS:-25}"
