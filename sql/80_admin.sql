-- Team administration: invitations, member management, organization
-- settings, and the error texts callers see.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- Org "Admin Regress": user ...01 owner, ...02 admin, ...03 editor, ...04 viewer
-- (on pro: the seat limit is not the subject here)
INSERT INTO ipai.organizations (id, name, plan_id) VALUES
	('80000000-0000-4000-8000-000000000001', 'Admin Regress', 'pro'),
	('80000000-0000-4000-8000-000000000002', 'Other Org', 'free');
INSERT INTO ipai.org_members (org_id, user_id, role) VALUES
	('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001', 'owner'),
	('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000002', 'admin'),
	('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000003', 'editor'),
	('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000004', 'viewer'),
	('80000000-0000-4000-8000-000000000002', '8000000a-0000-4000-8000-000000000009', 'owner');

-- e-mail plausibility, class by class
SELECT addr, ipai.email_is_valid(addr) AS valid
  FROM (VALUES ('ann@example.com'), ('Ann.Lee+tag@Example.CO.uk'), ('a@b.co'),
			   ('ünïcode@bücher.example'),
			   ('annexample.com'),                          -- no @
			   ('ann@@example.com'), ('ann@ex@ample.com'),  -- more than one @
			   ('ann lee@example.com'), (' ann@example.com'), ('ann@example.com '),
			   (E'ann\t@example.com'), (E'ann@example.com\n'), (E'ann\x01@example.com'),
			   (E'ann\u00a0lee@example.com'),               -- no-break space
			   (E'ann\u0085@example.com'),                  -- C1 control (NEL)
			   ('ann@localhost'), ('ann@example'),          -- no dot in the domain
			   ('ann@example.'), ('ann@.example.com'), ('ann@example..com'),
			   ('ann@-example.com'), ('ann@example.c'), ('ann@example.123'),
			   ('.ann@example.com'), ('ann.@example.com'), ('an..n@example.com'),
			   ('@example.com'), ('ann@'), (''), ('"ann"@example.com'),
			   ('ann@[127.0.0.1]')) AS t(addr);
-- zero-width space, right-to-left override (unaligned: psql's display width
-- of such characters changes with its Unicode tables, as in 18)
\pset format unaligned
SELECT addr, ipai.email_is_valid(addr) AS valid
  FROM (VALUES (E'ann\u200b@example.com'), (E'ann\u202e@example.com')) AS t(addr);
\pset format aligned
-- length: 254 characters pass, 255 do not
SELECT length(a) AS len, ipai.email_is_valid(a) AS valid
  FROM (SELECT repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.'
			   || repeat('d', 57) || '.com' AS a) x
UNION ALL
SELECT length(a), ipai.email_is_valid(a)
  FROM (SELECT repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.'
			   || repeat('d', 58) || '.com' AS a) x;

SET ROLE authenticated;

-- who may invite
SET ipai.user_id = '8000000a-0000-4000-8000-000000000004';	-- viewer
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new@example.com');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000003';	-- editor
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new@example.com');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000009';	-- owner of another org
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new@example.com');
SELECT ipai.invite_member('80000000-0000-4000-8000-00000000dead', 'new@example.com');
SELECT ipai.invite_member(NULL, 'new@example.com');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';	-- admin
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new@example.com', 'owner');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new@example.com', 'superuser');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new@example.com', NULL);

-- every invalid e-mail class is 22023, nothing written
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new.example.com');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new user@example.com');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', E'new\n@example.com');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'new@example');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.' || repeat('d', 58) || '.com');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', NULL);
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'ok@example.com', 'editor', '0 days');
RESET ROLE;
SELECT count(*) AS invitations, (SELECT count(*) FROM ipai.outbox WHERE org_id = '80000000-0000-4000-8000-000000000001') AS outbox
  FROM ipai.org_invitations WHERE org_id = '80000000-0000-4000-8000-000000000001';

-- an admin invites; the address is lower-cased; the outbox row carries the token
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'Nina@Example.COM') AS nina \gset
RESET ROLE;
SELECT email, role, invited_by, expires_at - created_at AS lifetime, sent_count,
	   length(token_hash) AS hash_bytes, accepted_at IS NULL AS open
  FROM ipai.org_invitations WHERE id = :'nina';
SELECT topic, payload->>'email' AS email, payload->>'role' AS role,
	   payload->>'org_id' AS org_id, payload->>'invitation_id' = :'nina' AS same_invitation,
	   length(payload->>'token') AS token_chars, payload->>'token' ~ '^[A-Za-z0-9_-]{43}$' AS base64url,
	   dedupe_key = 'invitation:' || :'nina' || ':1' AS dedupe
  FROM ipai.outbox WHERE payload->>'invitation_id' = :'nina';
-- the token is stored only as its hash
SELECT ipai._token_hash(payload->>'token') = i.token_hash AS hash_matches,
	   position(convert_to(payload->>'token', 'UTF8') IN i.token_hash) = 0 AS token_not_stored
  FROM ipai.outbox o JOIN ipai.org_invitations i ON i.id = :'nina'
 WHERE o.payload->>'invitation_id' = :'nina';
SELECT payload->>'token' AS nina_token1 FROM ipai.outbox WHERE payload->>'invitation_id' = :'nina' \gset

-- a second invitation to the same address reuses the invitation: new token,
-- new role, sent again; the unsent row with the dead token is withdrawn
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'nina@example.com', 'viewer') = :'nina' AS reused;
RESET ROLE;
SELECT count(*) AS open_invitations, max(role::text) AS role, max(sent_count) AS sent_count
  FROM ipai.org_invitations WHERE org_id = '80000000-0000-4000-8000-000000000001' AND email = 'nina@example.com';
SELECT count(*) AS outbox_rows, max(dedupe_key) = 'invitation:' || :'nina' || ':2' AS dedupe
  FROM ipai.outbox WHERE payload->>'invitation_id' = :'nina';
SELECT payload->>'token' AS nina_token2 FROM ipai.outbox WHERE payload->>'invitation_id' = :'nina' \gset
SELECT :'nina_token1' <> :'nina_token2' AS new_token;

-- accepting: no user, empty, wrong and replaced tokens change nothing
SET ROLE authenticated;
RESET ipai.user_id;
SELECT ipai.accept_invitation(:'nina_token2');
SET ipai.user_id = '8000000b-0000-4000-8000-000000000001';
SELECT ipai.accept_invitation('');
SELECT ipai.accept_invitation(NULL);
SELECT ipai.accept_invitation('not-a-token');
SELECT ipai.accept_invitation(:'nina_token1');
-- a JWT whose email claim is another address is refused
SET request.jwt.claims = '{"sub": "8000000b-0000-4000-8000-000000000001", "email": "someone.else@example.com"}';
SELECT ipai.accept_invitation(:'nina_token2');
-- the invited address (any case) accepts, once
SET request.jwt.claims = '{"sub": "8000000b-0000-4000-8000-000000000001", "email": "NINA@example.com"}';
SELECT ipai.accept_invitation(:'nina_token2');
SELECT ipai.accept_invitation(:'nina_token2');
RESET request.jwt.claims;
RESET ROLE;
SELECT role FROM ipai.org_members
 WHERE org_id = '80000000-0000-4000-8000-000000000001' AND user_id = '8000000b-0000-4000-8000-000000000001';
SELECT accepted_by, accepted_at IS NOT NULL AS accepted FROM ipai.org_invitations WHERE id = :'nina';
SELECT action, object_type, new_values->>'email' AS email, new_values->>'role' AS role
  FROM ipai.audit_log
 WHERE org_id = '80000000-0000-4000-8000-000000000001' AND action LIKE 'invitation.%' ORDER BY id;
-- no audit row carries a token
SELECT count(*) AS audit_rows_with_token FROM ipai.audit_log
 WHERE coalesce(old_values, '{}') ? 'token' OR coalesce(new_values, '{}') ? 'token'
	OR new_values::text LIKE '%' || :'nina_token2' || '%';

-- the new member cannot be invited again
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'NINA@example.com');
-- an existing member accepting another invitation to the organization
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'omar@example.com', 'viewer') AS omar \gset
RESET ROLE;
SELECT payload->>'token' AS omar_token FROM ipai.outbox WHERE payload->>'invitation_id' = :'omar' \gset
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000003';
SELECT ipai.accept_invitation(:'omar_token');

-- expired: refused, nothing changes; inviting again replaces the invitation
RESET ROLE;
UPDATE ipai.org_invitations SET expires_at = now() - interval '1 minute' WHERE id = :'omar';
SET ROLE authenticated;
SET ipai.user_id = '8000000b-0000-4000-8000-000000000002';
\set VERBOSITY terse
SELECT ipai.accept_invitation(:'omar_token');
\set VERBOSITY default
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'omar@example.com', 'viewer') <> :'omar' AS replaced;
RESET ROLE;
SELECT revoked_at IS NOT NULL AS closed, revoke_reason FROM ipai.org_invitations WHERE id = :'omar';
SELECT count(*) AS open_for_omar FROM ipai.org_invitations
 WHERE email = 'omar@example.com' AND accepted_at IS NULL AND revoked_at IS NULL;
SELECT count(*) AS members_added FROM ipai.org_members
 WHERE user_id = '8000000b-0000-4000-8000-000000000002';

-- revoking: admins, once; the token then fails
SELECT id AS omar2 FROM ipai.org_invitations
 WHERE email = 'omar@example.com' AND revoked_at IS NULL \gset
SELECT payload->>'token' AS omar2_token FROM ipai.outbox WHERE payload->>'invitation_id' = :'omar2' \gset
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000003';
\set VERBOSITY terse
SELECT ipai.revoke_invitation(:'omar2');
\set VERBOSITY default
SELECT ipai.revoke_invitation('80000000-0000-4000-8000-00000000beef');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.revoke_invitation(:'omar2') AS revoked;
SELECT ipai.revoke_invitation(:'omar2') AS revoked_again;
SELECT ipai.revoke_invitation(:'nina');
SET ipai.user_id = '8000000b-0000-4000-8000-000000000002';
SELECT ipai.accept_invitation(:'omar2_token');
RESET ROLE;
-- the unsent auth.invite row of a revoked invitation is withdrawn
SELECT count(*) AS outbox_rows FROM ipai.outbox WHERE payload->>'invitation_id' = :'omar2';

-- owner invitations: only owners
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000001';
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'co-owner@example.com', 'owner') AS coowner \gset
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000001', 'co-owner@example.com', 'viewer');
SELECT ipai.revoke_invitation(:'coowner');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000001';
SELECT ipai.revoke_invitation(:'coowner') AS revoked;

-- member management
-- an editor may not change roles; an admin may not touch owners
SET ipai.user_id = '8000000a-0000-4000-8000-000000000003';
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000004', 'editor');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000004', 'editor');
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000004', 'owner');
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001', 'admin');
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000004', 'boss');
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-0000000000ff', 'viewer');
SELECT ipai.remove_member('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001');
-- the last owner can neither be demoted nor removed, not even by themselves
SET ipai.user_id = '8000000a-0000-4000-8000-000000000001';
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001', 'admin');
SELECT ipai.remove_member('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001');
-- a member below admin may leave, but not remove others
SET ipai.user_id = '8000000a-0000-4000-8000-000000000004';	-- editor now
SELECT ipai.remove_member('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000003');
SET ipai.user_id = '8000000b-0000-4000-8000-000000000001';
SELECT ipai.remove_member('80000000-0000-4000-8000-000000000001', '8000000b-0000-4000-8000-000000000001');
-- transfer of ownership: owners only, to a member
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.transfer_ownership('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000002');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000001';
SELECT ipai.transfer_ownership('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-0000000000ff');
SELECT ipai.transfer_ownership('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001');
SELECT ipai.transfer_ownership('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000002');
SELECT user_id, role FROM ipai.org_members
 WHERE org_id = '80000000-0000-4000-8000-000000000001' ORDER BY role DESC, user_id;
-- the new owner demotes the old one further and promotes the editor
SET ipai.user_id = '8000000a-0000-4000-8000-000000000002';
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001', 'viewer');
SELECT ipai.set_member_role('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000003', 'admin');
SELECT ipai.remove_member('80000000-0000-4000-8000-000000000001', '8000000a-0000-4000-8000-000000000001');
SELECT user_id, role FROM ipai.org_members
 WHERE org_id = '80000000-0000-4000-8000-000000000001' ORDER BY role DESC, user_id;
RESET ROLE;
SELECT action, object_id, old_values, new_values FROM ipai.audit_log
 WHERE org_id = '80000000-0000-4000-8000-000000000001'
   AND (action LIKE 'member.%' OR action LIKE 'organization.%') ORDER BY id;

-- organization settings: owners and admins, validated, audited
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000003';	-- now admin
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001',
	name => '  Admin Regress Inc.  ', billing_email => 'Billing@Example.com', timezone => 'asia/manila');
SELECT name, billing_email, timezone FROM ipai.organizations WHERE id = '80000000-0000-4000-8000-000000000001';
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', timezone => 'Mars/Olympus_Mons');
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', timezone => '');
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', timezone => '+08:00');
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', name => '   ');
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', name => repeat('x', 201));
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', billing_email => 'billing at example.com');
-- a bad value among good ones changes nothing
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001',
	name => 'Renamed', timezone => 'Nowhere/Land');
SELECT name, billing_email, timezone FROM ipai.organizations WHERE id = '80000000-0000-4000-8000-000000000001';
-- '' clears the billing address; NULL arguments leave settings alone
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', billing_email => '');
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001');
SELECT name, billing_email, timezone FROM ipai.organizations WHERE id = '80000000-0000-4000-8000-000000000001';
-- non-admins and strangers
SET ipai.user_id = '8000000a-0000-4000-8000-000000000004';	-- editor
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', name => 'Hijacked');
SET ipai.user_id = '8000000a-0000-4000-8000-000000000009';	-- owner of another org
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-000000000001', name => 'Hijacked');
SELECT ipai.update_organization_settings('80000000-0000-4000-8000-00000000dead', name => 'Ghost');
RESET ROLE;
RESET ipai.user_id;
-- audited with old and new values, also when a DBA updates the table directly
UPDATE ipai.organizations SET timezone = 'Europe/Berlin' WHERE id = '80000000-0000-4000-8000-000000000001';
UPDATE ipai.organizations SET timezone = 'Europe/Berlin' WHERE id = '80000000-0000-4000-8000-000000000001';
SELECT actor_id, old_values, new_values FROM ipai.audit_log
 WHERE org_id = '80000000-0000-4000-8000-000000000001' AND action = 'organization.settings' ORDER BY id;

-- seats on the free plan (3): the owner and two invitations fill them;
-- the fourth seat is refused with current and maximum in the DETAIL
SET ROLE authenticated;
SET ipai.user_id = '8000000a-0000-4000-8000-000000000009';
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000002', 'two@example.com') IS NOT NULL AS seat_2;
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000002', 'three@example.com') IS NOT NULL AS seat_3;
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000002', 'four@example.com');
SELECT ipai.invite_member('80000000-0000-4000-8000-000000000002', 'Two@example.com', 'admin') IS NOT NULL AS reinvite_at_limit;
RESET ROLE;
RESET ipai.user_id;
SELECT email, role FROM ipai.org_invitations WHERE org_id = '80000000-0000-4000-8000-000000000002' ORDER BY email;
