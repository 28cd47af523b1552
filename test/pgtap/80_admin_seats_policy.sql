-- Seats and the INSERT policy of ipai.org_members: a member who may not add
-- members gets 42501 whether or not the organization has a free seat (the
-- seat limit, IP005, is not revealed to them); admins get IP005 at the limit.
BEGIN;
SELECT plan(6);
SET LOCAL client_min_messages = warning;

INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('8e000000-0000-4000-8000-00000000000a', 'Full', 'free'),
	('8e000000-0000-4000-8000-00000000000b', 'Roomy', 'free');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('8e000000-0000-4000-8000-00000000000a', '8e000000-0000-4000-8000-0000000000a1', 'owner'),
	('8e000000-0000-4000-8000-00000000000a', '8e000000-0000-4000-8000-0000000000a2', 'admin'),
	('8e000000-0000-4000-8000-00000000000a', '8e000000-0000-4000-8000-0000000000a3', 'viewer'),
	('8e000000-0000-4000-8000-00000000000b', '8e000000-0000-4000-8000-0000000000b1', 'owner'),
	('8e000000-0000-4000-8000-00000000000b', '8e000000-0000-4000-8000-0000000000b3', 'viewer');

SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', '8e000000-0000-4000-8000-0000000000a3', true);
SELECT throws_ok($$INSERT INTO ipai.org_members (org_id, user_id, role)
				   VALUES ('8e000000-0000-4000-8000-00000000000a', gen_random_uuid(), 'viewer')$$,
				 '42501', NULL, 'a viewer of a full organization: 42501, not the seat limit');
SELECT set_config('ipai.user_id', '8e000000-0000-4000-8000-0000000000b3', true);
SELECT throws_ok($$INSERT INTO ipai.org_members (org_id, user_id, role)
				   VALUES ('8e000000-0000-4000-8000-00000000000b', gen_random_uuid(), 'viewer')$$,
				 '42501', NULL, 'a viewer of an organization with room: 42501');
SELECT set_config('ipai.user_id', '8e000000-0000-4000-8000-0000000000b1', true);
SELECT throws_ok($$INSERT INTO ipai.org_members (org_id, user_id, role)
				   VALUES ('8e000000-0000-4000-8000-00000000000a', gen_random_uuid(), 'viewer')$$,
				 '42501', NULL, 'the owner of another organization: 42501');
SELECT set_config('ipai.user_id', '8e000000-0000-4000-8000-0000000000a2', true);
SELECT throws_ok($$INSERT INTO ipai.org_members (org_id, user_id, role)
				   VALUES ('8e000000-0000-4000-8000-00000000000a', gen_random_uuid(), 'viewer')$$,
				 'IP005', NULL, 'an admin of the full organization: the seat limit');
SELECT set_config('ipai.user_id', '8e000000-0000-4000-8000-0000000000b1', true);
SELECT lives_ok($$INSERT INTO ipai.org_members (org_id, user_id, role)
				  VALUES ('8e000000-0000-4000-8000-00000000000b', '8e000000-0000-4000-8000-0000000000b4', 'editor')$$,
				'the owner of the organization with room adds a member');
RESET ROLE;
SELECT is((SELECT count(*) FROM ipai.org_members WHERE org_id::text LIKE '8e000000-%'), 6::bigint,
		  'only that member was added');

SELECT * FROM finish();
ROLLBACK;
