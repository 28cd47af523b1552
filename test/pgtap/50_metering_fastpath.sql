-- Metering fast path (src/usage_direct.c): when it runs, when it gives way
-- to the SPI path, and that what a DBA adds to the tables still works on
-- it: columns with defaults, CHECK constraints, indexes, triggers; a view
-- or a Citus table in place of a table falls back to SPI.
BEGIN;
SELECT plan(26);
SET LOCAL client_min_messages = warning;

INSERT INTO ipai.organizations (id, name, plan_id, timezone) VALUES
	('5f000000-0000-4000-8000-000000000001', 'Fast free', 'free', 'UTC'),
	('5f000000-0000-4000-8000-000000000002', 'Fast pro', 'pro', 'UTC');
INSERT INTO ipai.billing_customers (org_id, stripe_customer_id)
VALUES ('5f000000-0000-4000-8000-000000000002', 'cus_Fast');
CREATE FUNCTION pg_temp.used(org uuid) RETURNS bigint LANGUAGE sql AS
	$$ SELECT (ipai.check_entitlement(org, 'ai_runs')).current $$;

SELECT is(ipai._usage_fast_path(), NULL, 'the fast path runs by default');
SET LOCAL ipai.usage_fast_path = off;
SELECT is(ipai._usage_fast_path(), 'ipai.usage_fast_path is off', 'ipai.usage_fast_path = off: the SPI path');
RESET ipai.usage_fast_path;
SAVEPOINT ro;
SET LOCAL transaction_read_only = on;
SELECT is(ipai._usage_fast_path(), 'the transaction is read-only', 'a read-only transaction: the SPI path');
ROLLBACK TO ro;
SET LOCAL session_replication_role = replica;
SELECT is(ipai._usage_fast_path(), 'session_replication_role is not origin',
		  'session_replication_role = replica: the SPI path (other triggers fire)');
RESET session_replication_role;

SELECT is((SELECT reason FROM ipai.consume_entitlement('5f000000-0000-4000-8000-000000000002', 'ai_runs', 2)),
		  'unlimited', 'a metered consume on the fast path');
SELECT is((SELECT count(*) FROM ipai.outbox WHERE org_id = '5f000000-0000-4000-8000-000000000002'
			 AND dedupe_key = payload->>'identifier' AND (payload->>'value')::int = 2
			 AND payload->>'stripe_customer_id' = 'cus_Fast' AND attempts = 0 AND sent_at IS NULL),
		  1::bigint, 'its meter event is in the outbox, as the SPI path writes it');

-- a column a DBA adds: a constant default is written, another default
-- (computed by the SPI statement) makes the fast path give way
ALTER TABLE ipai.usage_events ADD COLUMN dba_source text NOT NULL DEFAULT 'app';
SELECT is(ipai._usage_fast_path(), NULL, 'a column with a constant default: still the fast path');
SELECT ipai.record_usage('5f000000-0000-4000-8000-000000000001', 'ai_runs', 1, 'fast-col');
SELECT is((SELECT dba_source FROM ipai.usage_events WHERE idempotency_key = 'fast-col'), 'app',
		  'its default is written');
ALTER TABLE ipai.usage_events ALTER COLUMN dba_source SET DEFAULT current_user;
SELECT is(ipai._usage_fast_path(), 'a column default other than a constant or now()',
		  'a column whose default is computed: the SPI path');
SELECT ipai.record_usage('5f000000-0000-4000-8000-000000000001', 'ai_runs', 1, 'spi-col');
SELECT is((SELECT dba_source FROM ipai.usage_events WHERE idempotency_key = 'spi-col'), 'postgres',
		  'which computes it');
ALTER TABLE ipai.usage_events DROP COLUMN dba_source;
SELECT is(ipai._usage_fast_path(), NULL, 'the column dropped: the fast path again');

-- a CHECK constraint: evaluated on the fast path, with the executor's error
ALTER TABLE ipai.usage_events ADD CONSTRAINT dba_small CHECK (quantity < 1000) NOT VALID;
SELECT is(ipai._usage_fast_path(), NULL, 'a CHECK constraint: still the fast path');
SELECT throws_ok($$SELECT ipai.record_usage('5f000000-0000-4000-8000-000000000002', 'ai_runs', 5000)$$,
				 '23514', 'new row for relation "usage_events" violates check constraint "dba_small"',
				 'which enforces it with the executor''s error');
ALTER TABLE ipai.usage_events DROP CONSTRAINT dba_small;

-- an index with an expression and a predicate: maintained
CREATE INDEX dba_double ON ipai.usage_events ((quantity * 2)) WHERE quantity > 6;
SELECT ipai.record_usage('5f000000-0000-4000-8000-000000000002', 'ai_runs', 7, 'fast-idx');
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM ipai.usage_events WHERE quantity * 2 = 14 AND quantity > 6), 1::bigint,
		  'an index a DBA added gets the entries of the fast path''s rows');
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX ipai.dba_double;

-- a trigger a DBA adds: the SPI path, which fires it
CREATE TABLE pg_temp.seen (org_id uuid, quantity bigint);
CREATE FUNCTION pg_temp.seen_event() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN INSERT INTO pg_temp.seen VALUES (NEW.org_id, NEW.quantity); RETURN NULL; END $$;
CREATE TRIGGER dba_seen AFTER INSERT ON ipai.usage_events
	FOR EACH ROW EXECUTE FUNCTION pg_temp.seen_event();
SELECT is(ipai._usage_fast_path(), 'a trigger the fast path does not know',
		  'a trigger a DBA added on usage_events: the SPI path');
SELECT ipai.consume_entitlement('5f000000-0000-4000-8000-000000000001', 'ai_runs', 3);
SELECT is((SELECT sum(quantity) FROM pg_temp.seen), 3::numeric, 'which fires it');
DROP TRIGGER dba_seen ON ipai.usage_events;
CREATE TRIGGER dba_seen AFTER INSERT ON ipai.outbox
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.seen_event();
SELECT is(ipai._usage_fast_path(), 'a trigger the fast path does not know',
		  'a trigger a DBA added on the outbox: the SPI path');
DROP TRIGGER dba_seen ON ipai.outbox;
SELECT is(ipai._usage_fast_path(), NULL, 'the triggers dropped: the fast path again');

-- another foreign key on the outbox
ALTER TABLE ipai.outbox ADD CONSTRAINT dba_plan FOREIGN KEY (org_id) REFERENCES ipai.organizations (id);
SELECT is(ipai._usage_fast_path(), 'a foreign key the fast path does not know',
		  'a foreign key it does not know: the SPI path');
ALTER TABLE ipai.outbox DROP CONSTRAINT dba_plan;

-- Citus: a table listed in pg_dist_partition (here a stand-in catalog) is
-- a shell on the coordinator, its rows live on the workers
SET LOCAL allow_system_table_mods = on;
CREATE TABLE pg_catalog.pg_dist_partition (logicalrelid regclass NOT NULL, partmethod "char");
INSERT INTO pg_catalog.pg_dist_partition VALUES ('ipai.usage_counters', 'h');
-- Citus sends a relcache invalidation of a table it distributes
ALTER TABLE ipai.usage_counters SET (fillfactor = 100);
SELECT is(ipai._usage_fast_path(), 'a table is distributed by Citus',
		  'a table in pg_dist_partition: the SPI path');
SELECT is((SELECT reason FROM ipai.consume_entitlement('5f000000-0000-4000-8000-000000000002', 'ai_runs', 1)),
		  'unlimited', 'which consumes');
DROP TABLE pg_catalog.pg_dist_partition;
ALTER TABLE ipai.usage_counters RESET (fillfactor);
RESET allow_system_table_mods;
SELECT is(ipai._usage_fast_path(), NULL, 'no Citus: the fast path again');

-- a view in the place of a table
ALTER TABLE ipai.usage_counters RENAME TO usage_counters_moved;
CREATE VIEW ipai.usage_counters AS SELECT * FROM ipai.usage_counters_moved;
SELECT is(ipai._usage_fast_path(), 'not an ordinary table', 'a view in the place of a table: the SPI path');
SELECT is((SELECT current FROM ipai.consume_entitlement('5f000000-0000-4000-8000-000000000001', 'ai_runs', 2)),
		  7::bigint, 'which consumes through the view (5 before)');
DROP VIEW ipai.usage_counters;
ALTER TABLE ipai.usage_counters_moved RENAME TO usage_counters;

-- both paths counted the same usage
SELECT is(pg_temp.used('5f000000-0000-4000-8000-000000000001'), 7::bigint,
		  'the free organization: 1 + 1 + 3 + 2 recorded on both paths');
SELECT is((SELECT ipai.refresh_org_usage()), 0, 'counters equal their events');

SELECT * FROM finish();
ROLLBACK;
