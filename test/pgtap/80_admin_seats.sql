-- Invitations within the plan's seats (members plus open invitations):
-- at the limit and one over, reuse, revoke, accept, and the free plan's 3.
BEGIN;
SELECT plan(16);
SET LOCAL client_min_messages = warning;

INSERT INTO ipai.organizations (id, name) VALUES ('82000000-0000-4000-8000-00000000000a', 'Seats Free');
INSERT INTO ipai.org_members (org_id, user_id, role)
VALUES ('82000000-0000-4000-8000-00000000000a', '8200000a-0000-4000-8000-000000000001', 'owner');
SELECT is((SELECT plan_id FROM ipai.organizations WHERE id = '82000000-0000-4000-8000-00000000000a'), 'free',
		  'a new organization is on the free plan (3 seats)');

SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', '8200000a-0000-4000-8000-000000000001', true);
SELECT lives_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'a@example.com')$$,
				'seat 2 of 3: invited');
SELECT lives_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'b@example.com')$$,
				'seat 3 of 3 (at the limit): invited');
SELECT throws_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'c@example.com')$$,
				 'IP005', NULL, 'seat 4 of 3 (one over): IP005');
-- the DETAIL names current and maximum
CREATE FUNCTION pg_temp.seat_error(addr text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	d text;
BEGIN
	PERFORM ipai.invite_member('82000000-0000-4000-8000-00000000000a', addr);
	RETURN 'no error';
EXCEPTION WHEN SQLSTATE 'IP005' THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
	RETURN d;
END
$$;
SELECT matches(pg_temp.seat_error('c@example.com'), '3.*3', 'the IP005 DETAIL carries current (3) and maximum (3)');
SELECT lives_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'A@example.com', 'viewer')$$,
				'inviting an invited address again at the limit reuses its seat');
RESET ROLE;
SELECT is((SELECT count(*) FROM ipai.org_invitations WHERE org_id = '82000000-0000-4000-8000-00000000000a'),
		  2::bigint, 'two invitations, none for the refused address');
SELECT is((SELECT count(*) FROM ipai.outbox WHERE org_id = '82000000-0000-4000-8000-00000000000a'
			 AND payload->>'email' = 'c@example.com'), 0::bigint, 'no outbox row for the refused address');

-- accepting moves the seat from the invitation to the membership
SELECT id AS inv_a FROM ipai.org_invitations WHERE email = 'a@example.com' \gset
SELECT payload->>'token' AS tok_a FROM ipai.outbox WHERE payload->>'invitation_id' = :'inv_a' ORDER BY id DESC LIMIT 1 \gset
SET LOCAL ROLE authenticated;
SELECT set_config('ipai.user_id', '8200000b-0000-4000-8000-000000000001', true);
SELECT lives_ok(format('SELECT ipai.accept_invitation(%L)', :'tok_a'), 'an invitation is accepted at the limit');
SELECT set_config('ipai.user_id', '8200000a-0000-4000-8000-000000000001', true);
SELECT throws_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'c@example.com')$$,
				 'IP005', NULL, 'still full after the accept: IP005');
-- revoking frees a seat
SELECT ok(ipai.revoke_invitation((SELECT id FROM ipai.org_invitations WHERE email = 'b@example.com')),
		  'an invitation is revoked');
SELECT lives_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'c@example.com')$$,
				'the freed seat is taken by a new invitation');
SELECT throws_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'd@example.com')$$,
				 'IP005', NULL, 'full again: IP005');
-- removing a member frees a seat
SELECT lives_ok($$SELECT ipai.remove_member('82000000-0000-4000-8000-00000000000a', '8200000b-0000-4000-8000-000000000001')$$,
				'a member is removed');
SELECT lives_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'd@example.com')$$,
				'the seat of the removed member is taken by a new invitation');
RESET ROLE;
-- pro has 25 seats
UPDATE ipai.organizations SET plan_id = 'pro' WHERE id = '82000000-0000-4000-8000-00000000000a';
SET LOCAL ROLE authenticated;
SELECT lives_ok($$SELECT ipai.invite_member('82000000-0000-4000-8000-00000000000a', 'e@example.com')$$,
				'on pro the fourth seat is fine');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
