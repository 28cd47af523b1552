# ipai_saas — PGXS build, plus the commands of the README:
#   make demo       a narrated end-to-end story on a throwaway cluster
#   make test       every test suite on throwaway clusters of PostgreSQL 15
#                   and 18 (when its source is at hand), pg_upgrade 15 -> 18,
#                   the Debian package and the PGXN distribution; one
#                   summary line.  make test PG=18: one version only
#   make test-deb   the Debian package test alone
#   make test-citus the suites on a Citus cluster alone (coordinator, two workers)
#   make dist       the PGXN distribution, ipai_saas-<version>.zip
#
# `make demo` and `make test` first install what a fresh Debian 12 machine
# lacks (test/bootstrap.sh), so this file must parse before the PGXS
# headers exist: PGXS is included only when its makefile is present.

EXTENSION   = ipai_saas
EXTVERSION  = 1.3
MODULE_big  = ipai_saas

# VPATH builds (make -f /src/Makefile VPATH=/src) read sources from there
srcdir     ?= $(if $(VPATH),$(VPATH),.)
ifneq ($(VPATH),)
srcdir      = $(VPATH)
# the objects go to src/ of the build directory (pg_buildext's build-<version>)
$(shell mkdir -p src)
endif

SRCS        = $(sort $(notdir $(wildcard $(srcdir)/src/*.c)))
OBJS        = $(addprefix src/,$(SRCS:.c=.o))
SQL_SRCS    = $(sort $(wildcard $(srcdir)/src/sql/*.sql))
DATA_built  = ipai_saas--$(EXTVERSION).sql
# released versions, frozen: their full scripts and the upgrade scripts
DATA        = $(addprefix src/sql/released/,$(notdir $(wildcard $(srcdir)/src/sql/released/ipai_saas--*.sql)))
SHLIB_LINK += -lcrypto
PG_CFLAGS  += -Wall -Wextra -Wno-unused-parameter $(IPAI_CFLAGS)
PG_CPPFLAGS += -DIPAI_EXTVERSION=\"$(EXTVERSION)\"
EXTRA_CLEAN = ipai_saas--$(EXTVERSION).sql

# the usual PGXS convention: the pg_config on PATH (Debian: the newest
# server-dev package installed), or PG_CONFIG=/path/to/pg_config
PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all install installcheck:
	@echo "PostgreSQL server headers are missing: run 'make deps' (or 'make test'/'make demo', which run it)." >&2
	@exit 1
endif

# the install script: SQL sources concatenated in name order
ipai_saas--$(EXTVERSION).sql: $(SQL_SRCS)
	cat $(SQL_SRCS) > $@

.PHONY: deps demo test test-deb test-citus dist bench fuzz clean-work

FUZZ_RUNS ?= 10000000

deps:
	$(srcdir)/test/bootstrap.sh

demo: deps
	$(srcdir)/test/demo.sh

# PG=18 (or PG="15 18") picks versions; by default 15, and 18 when its
# source is present (test/lib/third_party.sh)
test: deps
	IPAI_PG="$(PG)" $(srcdir)/test/run_all.sh

test-citus: deps
	IPAI_PG=none IPAI_SUITES=citus $(srcdir)/test/run_all.sh

test-deb: deps
	IPAI_PG=none IPAI_SUITES=package IPAI_ONLY='^deb\.t$$' $(srcdir)/test/run_all.sh

# PGXN distribution: git archive of the release tag v<version> (of HEAD
# when DIST_REF=HEAD), one top-level directory ipai_saas-<version>/ as
# PGXN requires; the version comes from META.json, which a test keeps in
# step with the control file
DIST_VERSION = $(shell perl -MJSON::PP -0777 -ne 'print decode_json($$_)->{version}' $(srcdir)/META.json)
DIST_REF    ?= v$(DIST_VERSION)
dist:
	@git -C $(srcdir) rev-parse -q --verify '$(DIST_REF)^{commit}' >/dev/null || \
		{ echo "make dist: no $(DIST_REF); tag the release (git tag v$(DIST_VERSION)) or make dist DIST_REF=HEAD" >&2; exit 1; }
	git -C $(srcdir) archive --format=zip --prefix=$(EXTENSION)-$(DIST_VERSION)/ \
		-o $(CURDIR)/$(EXTENSION)-$(DIST_VERSION).zip $(DIST_REF)

bench: deps
	$(srcdir)/test/bench/run.sh

# builds, staged servers and test results live outside the clone, in
# /var/tmp/ipai_saas/<hash of the clone's path> (test/lib/common.sh)
clean-work:
	bash -c '. $(srcdir)/test/lib/common.sh && rm -rf "$$IPAI_WORK"'

# libFuzzer targets, FUZZ_RUNS executions each (make fuzz FUZZ_RUNS=100000000)
fuzz: deps
	$(srcdir)/test/fuzz/run.sh $(FUZZ_RUNS)
