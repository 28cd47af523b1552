# ipai_saas — PGXS build, plus the two commands of the README:
#   make demo   a narrated end-to-end story on a throwaway cluster
#   make test   every test suite on a throwaway cluster, one summary line
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
endif

SRCS        = $(sort $(notdir $(wildcard $(srcdir)/src/*.c)))
OBJS        = $(addprefix src/,$(SRCS:.c=.o))
SQL_SRCS    = $(sort $(wildcard $(srcdir)/src/sql/*.sql))
DATA_built  = ipai_saas--$(EXTVERSION).sql
# released versions, frozen: their full scripts and the upgrade scripts
DATA        = $(addprefix src/sql/released/,$(notdir $(wildcard $(srcdir)/src/sql/released/ipai_saas--*.sql)))
SHLIB_LINK += -lcrypto
PG_CFLAGS  += -Wall -Wextra -Wno-unused-parameter $(IPAI_CFLAGS)
EXTRA_CLEAN = ipai_saas--$(EXTVERSION).sql

PG_CONFIG  ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
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

.PHONY: deps demo test bench fuzz clean-work

FUZZ_RUNS ?= 10000000

deps:
	$(srcdir)/test/bootstrap.sh

demo: deps
	$(srcdir)/test/demo.sh

test: deps
	$(srcdir)/test/run_all.sh

bench: deps
	$(srcdir)/test/bench/run.sh

# builds, staged servers and test results live outside the clone, in
# /var/tmp/ipai_saas/<hash of the clone's path> (test/lib/common.sh)
clean-work:
	bash -c '. $(srcdir)/test/lib/common.sh && rm -rf "$$IPAI_WORK"'

# libFuzzer targets, FUZZ_RUNS executions each (make fuzz FUZZ_RUNS=100000000)
fuzz: deps
	$(srcdir)/test/fuzz/run.sh $(FUZZ_RUNS)
