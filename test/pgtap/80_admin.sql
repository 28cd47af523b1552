-- Team administration: who may do what, e-mail classes, tokens, the
-- e-mail claim rule, direct table access, and the RLS of the views that
-- need no metering (invoice_history, cms_approval_queue).
BEGIN;
SELECT plan(85);
SET LOCAL client_min_messages = warning;

-- Org P (pro, so seats do not interfere): owner, admin, editor, viewer; org Q: its owner
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('81000000-0000-4000-8000-00000000000a', 'Org P', 'pro'),
	('81000000-0000-4000-8000-00000000000b', 'Org Q', 'pro');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000001', 'owner'),
	('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000002', 'admin'),
	('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000003', 'editor'),
	('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000004', 'viewer'),
	('81000000-0000-4000-8000-00000000000b', '8100000b-0000-4000-8000-000000000001', 'owner');

CREATE FUNCTION pg_temp.act(uid text) RETURNS void LANGUAGE sql AS $$
	SELECT set_config('ipai.user_id', coalesce(uid, ''), true);
	SELECT set_config('request.jwt.claims', '', true);
$$;
CREATE FUNCTION pg_temp.token_of(inv uuid) RETURNS text LANGUAGE sql AS $$
	SELECT payload->>'token' FROM ipai.outbox WHERE payload->>'invitation_id' = inv::text
	 ORDER BY id DESC LIMIT 1
$$;
GRANT EXECUTE ON FUNCTION pg_temp.act(text) TO PUBLIC;

-- who may invite: owner and admin, nobody else
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000004');
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'x@example.com')$$,
				 '42501', NULL, 'a viewer cannot invite');
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000003');
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'x@example.com')$$,
				 '42501', NULL, 'an editor cannot invite');
SELECT pg_temp.act('8100000b-0000-4000-8000-000000000001');
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'x@example.com')$$,
				 '42501', NULL, 'the owner of another organization cannot invite');
SELECT pg_temp.act(NULL);
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'x@example.com')$$,
				 '42501', NULL, 'nobody (no acting user) cannot invite');
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000002');
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'x@example.com', 'owner')$$,
				 '42501', NULL, 'an admin cannot invite an owner');
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'x@example.com', 'root')$$,
				 '22023', NULL, 'an unknown role is 22023');
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-0000000000ff', 'x@example.com')$$,
				 '22023', NULL, 'an unknown organization is 22023');
SELECT lives_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'x@example.com', 'admin')$$,
				'an admin invites an admin');
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000001');
SELECT lives_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'co@example.com', 'owner')$$,
				'an owner invites an owner');
RESET ROLE;
SET LOCAL ROLE anon;
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'y@example.com')$$,
				 '42501', NULL, 'anon may not call invite_member');
SELECT throws_ok($$SELECT ipai.accept_invitation('whatever')$$,
				 '42501', NULL, 'anon may not call accept_invitation');
RESET ROLE;
SET LOCAL ROLE service_role;
SELECT pg_temp.act(NULL);
SELECT lives_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'svc@example.com', 'owner')$$,
				'service_role invites, even owners');
RESET ROLE;

-- every invalid e-mail class is 22023 and writes nothing
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000002');
SELECT throws_ok(format('SELECT ipai.invite_member(%L, %L)', '81000000-0000-4000-8000-00000000000a', addr),
				 '22023', NULL, 'invalid e-mail (' || why || ') is 22023')
  FROM (VALUES ('no @', 'bad.example.com'),
			   ('two @', 'bad@@example.com'),
			   ('space inside', 'bad user@example.com'),
			   ('leading space', ' bad@example.com'),
			   ('trailing space', 'bad@example.com '),
			   ('tab', E'bad\t@example.com'),
			   ('newline', E'bad@example.com\n'),
			   ('control character', E'bad\x07@example.com'),
			   ('DEL', E'bad\x7f@example.com'),
			   ('no-break space', E'bad\u00a0@example.com'),
			   ('zero-width space', E'bad\u200b@example.com'),
			   ('no dot in the domain', 'bad@localhost'),
			   ('empty domain label', 'bad@example..com'),
			   ('trailing dot', 'bad@example.com.'),
			   ('empty local part', '@example.com'),
			   ('empty', ''),
			   ('255 characters', repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.'
								  || repeat('d', 58) || '.com'),
			   ('local part over 64', repeat('a', 65) || '@example.com')) AS t(why, addr);
RESET ROLE;
SELECT is((SELECT count(*) FROM ipai.org_invitations
			WHERE org_id = '81000000-0000-4000-8000-00000000000a' AND email LIKE 'bad%'),
		  0::bigint, 'no invitation was written for an invalid address');
SET LOCAL ROLE authenticated;
SELECT lives_ok(format('SELECT ipai.invite_member(%L, %L)', '81000000-0000-4000-8000-00000000000a',
					   repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.'
					   || repeat('d', 57) || '.com'),
				'an address of exactly 254 characters is invited');
RESET ROLE;

-- tokens: 256 bits, distinct, base64url; stored hashed only
SELECT is((SELECT count(DISTINCT ipai._new_token()) FROM generate_series(1, 1000)), 1000::bigint,
		  '1000 new tokens are all different');
SELECT ok((SELECT bool_and(t ~ '^[A-Za-z0-9_-]{43}$') FROM (SELECT ipai._new_token() AS t FROM generate_series(1, 100)) x),
		  'tokens are 43 base64url characters (256 bits)');
SELECT is(ipai._token_hash('abc'), sha256('abc'::bytea), 'the token hash is SHA-256');
SELECT ok(NOT EXISTS (SELECT 1 FROM ipai.org_invitations i JOIN ipai.outbox o
						ON o.payload->>'invitation_id' = i.id::text
					   WHERE position(convert_to(o.payload->>'token', 'UTF8') IN i.token_hash) > 0
						  OR i.token_hash <> ipai._token_hash(o.payload->>'token')),
		  'invitations keep only the hash of the token sent');

-- direct access to the tables
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000001');
SELECT throws_ok($$INSERT INTO ipai.org_invitations (org_id, email, role, token_hash)
				   VALUES ('81000000-0000-4000-8000-00000000000a', 'sneak@example.com', 'owner', sha256('x'))$$,
				 '42501', NULL, 'an owner cannot insert invitations directly');
SELECT throws_ok($$UPDATE ipai.org_invitations SET role = 'owner'$$,
				 '42501', NULL, 'an owner cannot update invitations directly');
SELECT throws_ok($$DELETE FROM ipai.org_invitations$$,
				 '42501', NULL, 'an owner cannot delete invitations directly');
SELECT throws_ok($$SELECT count(*) FROM ipai.outbox$$,
				 '42501', NULL, 'an owner cannot read the outbox (tokens)');
SELECT cmp_ok((SELECT count(*) FROM ipai.org_invitations), '>=', 3::bigint, 'an owner sees the invitations');
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000002');
SELECT cmp_ok((SELECT count(*) FROM ipai.org_invitations), '>=', 3::bigint, 'an admin sees the invitations');
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000003');
SELECT is((SELECT count(*) FROM ipai.org_invitations), 0::bigint, 'an editor sees no invitation');
SELECT pg_temp.act('8100000b-0000-4000-8000-000000000001');
SELECT is((SELECT count(*) FROM ipai.org_invitations), 0::bigint,
		  'the owner of another organization sees no invitation of this one');
RESET ROLE;

-- accepting, with and without an e-mail claim
SELECT id AS inv_x FROM ipai.org_invitations WHERE email = 'x@example.com' \gset
SELECT pg_temp.token_of(:'inv_x') AS tok_x \gset
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims',
				  '{"sub": "8100000c-0000-4000-8000-000000000001", "email": "mallory@example.com", "role": "authenticated"}', true);
SELECT throws_ok(format('SELECT ipai.accept_invitation(%L)', :'tok_x'), '42501', NULL,
				 'another signed-in address cannot use the token');
SELECT set_config('request.jwt.claims',
				  '{"sub": "8100000c-0000-4000-8000-000000000001", "email": "X@Example.com", "role": "authenticated"}', true);
SELECT is(ipai.accept_invitation(:'tok_x'), '81000000-0000-4000-8000-00000000000a'::uuid,
		  'the invited address accepts and gets the organization id');
SELECT throws_ok(format('SELECT ipai.accept_invitation(%L)', :'tok_x'), '22023', NULL,
				 'a used token is 22023');
SELECT set_config('request.jwt.claims', '', true);
RESET ROLE;
SELECT is((SELECT role::text FROM ipai.org_members
			WHERE org_id = '81000000-0000-4000-8000-00000000000a' AND user_id = '8100000c-0000-4000-8000-000000000001'),
		  'admin', 'the member has the invited role');
-- the new member now sees their organization, through RLS
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000c-0000-4000-8000-000000000001');
SELECT is((SELECT name FROM ipai.organizations), 'Org P', 'the new member sees the organization');
RESET ROLE;

-- without an e-mail claim (psql, Odoo) the token alone is the proof
SELECT id AS inv_co FROM ipai.org_invitations WHERE email = 'co@example.com' \gset
SELECT pg_temp.token_of(:'inv_co') AS tok_co \gset
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000c-0000-4000-8000-000000000002');
SELECT is(ipai.accept_invitation(:'tok_co'), '81000000-0000-4000-8000-00000000000a'::uuid,
		  'without an e-mail claim whoever holds the token accepts');
RESET ROLE;
SELECT is((SELECT role::text FROM ipai.org_members WHERE user_id = '8100000c-0000-4000-8000-000000000002'),
		  'owner', 'an owner invitation makes an owner');

-- wrong and expired tokens change nothing
SELECT id AS inv_svc FROM ipai.org_invitations WHERE email = 'svc@example.com' \gset
SELECT pg_temp.token_of(:'inv_svc') AS tok_svc \gset
UPDATE ipai.org_invitations SET expires_at = now() - interval '1 second' WHERE id = :'inv_svc';
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000c-0000-4000-8000-000000000003');
SELECT throws_ok(format('SELECT ipai.accept_invitation(%L)', :'tok_svc'), '22023', 'invitation has expired',
				 'an expired token is 22023');
SELECT throws_ok(format('SELECT ipai.accept_invitation(%L)', :'tok_svc' || 'x'), '22023', 'invitation token is not valid',
				 'a wrong token is 22023');
SELECT throws_ok(format('SELECT ipai.accept_invitation(%L)', upper(:'tok_svc')), '22023', 'invitation token is not valid',
				 'tokens are case-sensitive');
RESET ROLE;
SELECT is((SELECT count(*) FROM ipai.org_members WHERE user_id = '8100000c-0000-4000-8000-000000000003'),
		  0::bigint, 'nothing was added by the refused accepts');
SELECT ok((SELECT accepted_at IS NULL AND revoked_at IS NULL FROM ipai.org_invitations WHERE id = :'inv_svc'),
		  'the expired invitation is untouched');

-- custom lifetimes
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000001');
SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'short@example.com', 'viewer', '1 hour') AS inv_short \gset
RESET ROLE;
SELECT is((SELECT expires_at - created_at FROM ipai.org_invitations WHERE id = :'inv_short'), interval '1 hour',
		  'an invitation can have its own lifetime');
SELECT is((SELECT expires_at - created_at FROM ipai.org_invitations WHERE id = :'inv_x'), interval '7 days',
		  'the default lifetime is 7 days');
SET LOCAL ROLE authenticated;
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'z@example.com', 'viewer', '-1 day')$$,
				 '22023', NULL, 'a negative lifetime is 22023');
RESET ROLE;

-- member management, roles
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000003');
SELECT throws_ok($$SELECT ipai.set_member_role('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000004', 'admin')$$,
				 '42501', NULL, 'an editor cannot change roles');
SELECT throws_ok($$SELECT ipai.remove_member('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000004')$$,
				 '42501', NULL, 'an editor cannot remove members');
SELECT throws_ok($$SELECT ipai.update_organization_settings('81000000-0000-4000-8000-00000000000a', name => 'Nope')$$,
				 '42501', NULL, 'an editor cannot change settings');
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000002');
SELECT throws_ok($$SELECT ipai.remove_member('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000001')$$,
				 '42501', NULL, 'an admin cannot remove an owner');
SELECT throws_ok($$SELECT ipai.transfer_ownership('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000002')$$,
				 '42501', NULL, 'an admin cannot take ownership');
SELECT lives_ok($$SELECT ipai.set_member_role('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000004', 'editor')$$,
				'an admin promotes a viewer');
SELECT throws_ok($$SELECT ipai.update_organization_settings('81000000-0000-4000-8000-00000000000a', timezone => 'Atlantis/Capital')$$,
				 '22023', NULL, 'an invalid time zone is 22023');
SELECT lives_ok($$SELECT ipai.update_organization_settings('81000000-0000-4000-8000-00000000000a', timezone => 'Asia/Manila')$$,
				'an admin changes the time zone');
-- two owners now (the accepted owner invitation); both may step down until one is left
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000001');
SELECT lives_ok($$SELECT ipai.set_member_role('81000000-0000-4000-8000-00000000000a', '8100000c-0000-4000-8000-000000000002', 'admin')$$,
				'an owner demotes another owner');
SELECT throws_ok($$SELECT ipai.set_member_role('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000001', 'admin')$$,
				 '23514', NULL, 'the last owner cannot be demoted');
SELECT throws_ok($$SELECT ipai.remove_member('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000001')$$,
				 '23514', NULL, 'the last owner cannot leave');
RESET ROLE;
-- a privileged transfer leaves exactly one owner
SET LOCAL ROLE service_role;
SELECT pg_temp.act(NULL);
SELECT lives_ok($$SELECT ipai.transfer_ownership('81000000-0000-4000-8000-00000000000a', '8100000a-0000-4000-8000-000000000003')$$,
				'service_role transfers ownership');
RESET ROLE;
SELECT results_eq($$SELECT user_id::text FROM ipai.org_members
					 WHERE org_id = '81000000-0000-4000-8000-00000000000a' AND role = 'owner'$$,
				  $$VALUES ('8100000a-0000-4000-8000-000000000003')$$,
				  'after a privileged transfer the new owner is the only owner');

-- on Supabase, auth.users tells which addresses are already members
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY, email character varying(255));
INSERT INTO auth.users VALUES ('8100000a-0000-4000-8000-000000000004', 'Vera@Example.com');
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000003');	-- the owner of P now
SELECT throws_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000a', 'vera@example.com')$$,
				 '22023', '"vera@example.com" is already a member of this organization',
				 'an address of a member known to auth.users cannot be invited');
SELECT pg_temp.act('8100000b-0000-4000-8000-000000000001');
SELECT lives_ok($$SELECT ipai.invite_member('81000000-0000-4000-8000-00000000000b', 'vera@example.com')$$,
				'...but the same address can be invited to another organization');
RESET ROLE;
DROP SCHEMA auth CASCADE;

-- views: a member sees only the rows of their organizations
INSERT INTO ipai.invoices (org_id, stripe_invoice_id, status, currency, amount_due, amount_paid) VALUES
	('81000000-0000-4000-8000-00000000000a', 'in_p_1', 'paid', 'usd', 12400, 12400),
	('81000000-0000-4000-8000-00000000000b', 'in_q_1', 'paid', 'jpy', 1500, 1500);
SET LOCAL ROLE authenticated;
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000003');	-- owner of P now
SELECT results_eq($$SELECT stripe_invoice_id, amount_paid_decimal FROM ipai.invoice_history$$,
				  $$VALUES ('in_p_1'::text, 124.00::numeric)$$,
				  'invoice_history: an owner sees their invoices only, in currency units');
SELECT pg_temp.act('8100000a-0000-4000-8000-000000000004');	-- editor of P
SELECT is((SELECT count(*) FROM ipai.invoice_history), 0::bigint, 'invoice_history: an editor sees no invoice');
SELECT pg_temp.act('8100000b-0000-4000-8000-000000000001');
SELECT results_eq($$SELECT stripe_invoice_id, amount_paid_decimal FROM ipai.invoice_history$$,
				  $$VALUES ('in_q_1'::text, 1500::numeric)$$,
				  'invoice_history: zero-decimal currencies are not divided');
RESET ROLE;
SELECT ok(has_table_privilege('authenticated', v, 'SELECT') AND NOT has_table_privilege('anon', v, 'SELECT'),
		  v || ': authenticated may select, anon may not')
  FROM unnest(ARRAY['ipai.billing_dashboard', 'ipai.invoice_history', 'ipai.org_dashboard',
					'ipai.cms_approval_queue']) AS v;
SELECT ok(c.reloptions @> ARRAY['security_invoker=true'], c.relname || ' is a security_invoker view')
  FROM pg_class c
 WHERE c.relnamespace = 'ipai'::regnamespace AND c.relkind = 'v'
   AND c.relname IN ('billing_dashboard', 'invoice_history', 'org_dashboard', 'cms_approval_queue')
 ORDER BY c.relname;

SELECT * FROM finish();
ROLLBACK;
