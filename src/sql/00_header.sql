-- ipai_saas install script, built by the Makefile from src/sql/*.sql in
-- name order.  The extension ships code only: the tables come from
-- ipai.install_schema(), see src/sql/20_install_schema.sql.
\echo Use "CREATE EXTENSION ipai_saas" to load this file. \quit
