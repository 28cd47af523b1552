-- Tenancy: SQLSTATEs of bad input, and who may do what, by role.
BEGIN;
SELECT plan(27);

SET LOCAL client_min_messages = warning;
-- A is on pro: its members exceed the free plan's 3 seats (metering)
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('a0000000-0000-4000-8000-000000000000', 'A', 'pro'),
	('b0000000-0000-4000-8000-000000000000', 'B', 'free');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('a0000000-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000f', 'owner'),
	('a0000000-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000a', 'admin'),
	('a0000000-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000e', 'editor'),
	('a0000000-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000c', 'viewer'),
	('b0000000-0000-4000-8000-000000000000', 'b0000000-0000-4000-8000-00000000000f', 'owner');

-- bad input
SELECT throws_ok($$SELECT ipai.create_organization(NULL, gen_random_uuid())$$, '22023',
				 'organization name must not be empty', 'NULL organization name is 22023');
SELECT throws_ok($$SELECT ipai.create_organization('', gen_random_uuid())$$, '22023', NULL, 'empty name is 22023');
SELECT throws_ok($$SELECT ipai.create_organization(E' \t ', gen_random_uuid())$$, '22023', NULL, 'blank name is 22023');
SELECT throws_ok($$SELECT ipai.create_organization('x', NULL)$$, '22023', NULL, 'NULL owner is 22023');
SELECT throws_ok($$SELECT ipai.create_organization('x', gen_random_uuid(), NULL, 'Nowhere/Land')$$,
				 '22023', NULL, 'unknown time zone is 22023');
SELECT throws_ok($$SELECT ipai.add_member('a0000000-0000-4000-8000-000000000000', gen_random_uuid(), 'superhero')$$,
				 '22023', 'unknown role "superhero"', 'unknown role name is 22023');
SELECT throws_ok($$SELECT ipai.add_member(gen_random_uuid(), gen_random_uuid(), 'viewer')$$,
				 '22023', NULL, 'unknown organization is 22023');
SELECT is((SELECT count(*) FROM ipai.organizations), 2::bigint, 'no organization was half-created');

SELECT throws_ok($$SET LOCAL request.jwt.claims = 'nope'; SELECT ipai.current_user_id()$$, '22023',
				 NULL, 'claims that are not JSON are 22023');
SELECT throws_ok($$SET LOCAL request.jwt.claims = '{"sub": "x"}'; SELECT ipai.current_user_id()$$, '22023',
				 NULL, 'a sub that is not a uuid is 22023');
SELECT throws_ok($$SET LOCAL request.jwt.claims = '{"sub": true}'; SELECT ipai.current_user_id()$$, '22023',
				 NULL, 'a sub that is not a string is 22023');
SELECT is((SELECT ipai.current_user_id() FROM (SELECT set_config('request.jwt.claims', '{"iss":"x"}', true)) s),
		  NULL, 'claims without sub mean no user');
SELECT set_config('request.jwt.claims', '', true);

-- role matrix on org A
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', 'a0000000-0000-4000-8000-00000000000c', true);
SELECT is((SELECT count(*) FROM ipai.org_members), 4::bigint, 'a viewer sees the members of its organization');
SELECT throws_ok($$SELECT ipai.add_member('a0000000-0000-4000-8000-000000000000', gen_random_uuid(), 'viewer')$$,
				 '42501', NULL, 'a viewer cannot add members');
SELECT is((SELECT count(*) FROM ipai.organizations WHERE name = 'B'), 0::bigint, 'a viewer of A does not see B');

SELECT set_config('ipai.user_id', 'a0000000-0000-4000-8000-00000000000e', true);
SELECT throws_ok($$SELECT ipai.add_member('a0000000-0000-4000-8000-000000000000', gen_random_uuid(), 'viewer')$$,
				 '42501', NULL, 'an editor cannot add members');

SELECT set_config('ipai.user_id', 'a0000000-0000-4000-8000-00000000000a', true);
SELECT lives_ok($$SELECT ipai.add_member('a0000000-0000-4000-8000-000000000000',
										 'a0000000-0000-4000-8000-0000000000d1', 'editor')$$,
				'an admin adds an editor');
SELECT throws_ok($$SELECT ipai.add_member('a0000000-0000-4000-8000-000000000000', gen_random_uuid(), 'owner')$$,
				 '42501', 'only an owner can grant the owner role', 'an admin cannot add an owner');
SELECT throws_ok($$SELECT ipai.add_member('b0000000-0000-4000-8000-000000000000', gen_random_uuid(), 'viewer')$$,
				 '42501', NULL, 'an admin of A cannot add members to B');
SELECT throws_ok($$UPDATE ipai.org_members SET role = 'viewer'
					WHERE user_id = 'a0000000-0000-4000-8000-00000000000f'$$,
				 '42501', NULL, 'an admin cannot demote the owner');
SELECT throws_ok($$UPDATE ipai.organizations SET plan_id = 'pro'$$, '42501', NULL,
				 'nobody but billing changes the plan');
SELECT lives_ok($$UPDATE ipai.organizations SET billing_email = 'ops@a.example'
				   WHERE id = 'a0000000-0000-4000-8000-000000000000'$$, 'an admin changes settings');

SELECT set_config('ipai.user_id', 'a0000000-0000-4000-8000-00000000000f', true);
SELECT lives_ok($$SELECT ipai.add_member('a0000000-0000-4000-8000-000000000000',
										 'a0000000-0000-4000-8000-0000000000d2', 'owner')$$,
				'an owner adds an owner');
SELECT lives_ok($$DELETE FROM ipai.org_members WHERE user_id = 'a0000000-0000-4000-8000-00000000000f'$$,
				'an owner may leave while another owner remains');
SELECT set_config('ipai.user_id', 'a0000000-0000-4000-8000-0000000000d2', true);
SELECT throws_ok($$DELETE FROM ipai.org_members WHERE user_id = 'a0000000-0000-4000-8000-0000000000d2'$$,
				 '23514', NULL, 'the last owner cannot leave');

-- anon
RESET ROLE;
SET LOCAL ROLE anon;
SELECT throws_ok($$SELECT count(*) FROM ipai.organizations$$, '42501', NULL, 'anon cannot read organizations');
SELECT throws_ok($$SELECT ipai.create_organization('x', gen_random_uuid())$$, '42501', NULL,
				 'anon cannot create organizations');

SELECT * FROM finish();
ROLLBACK;
