-- Team administration (SPEC section 5): invitations within seat limits,
-- member management, organization settings.
--
-- Locking: every function that changes invitations or memberships of an
-- organization locks its ipai.organizations row FOR NO KEY UPDATE first and
-- the invitation row second (the order of the keep-an-owner trigger and of
-- the seat-limit triggers), so concurrent invites, accepts and revokes of
-- one organization are serialized without deadlocks and never block
-- ordinary inserts of the organization's data (foreign-key checks take
-- KEY SHARE, which does not conflict).
--
-- Seats: the seat-limit triggers of the metering area on
-- ipai.org_invitations and ipai.org_members are the authority (members plus
-- open invitations may not exceed the plan's "seats"; SQLSTATE IP005 with
-- current and maximum in the DETAIL).  invite_member inserts a new
-- invitation only when it adds a seat, so no caller can get around them.

-- A new random token: 256 bits from pg_strong_random, base64url (token.c).
CREATE FUNCTION ipai._new_token() RETURNS text
	AS 'MODULE_PATHNAME', 'ipai_new_token'
	LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION ipai._new_token() FROM PUBLIC;

-- SHA-256 of a token: what ipai.org_invitations.token_hash stores.
CREATE FUNCTION ipai._token_hash(token text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'ipai_token_hash'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION ipai._token_hash(text) FROM PUBLIC;

-- A role name as given by a caller, checked: 22023 for NULL or unknown.
CREATE FUNCTION ipai._org_role_from_text(role text) RETURNS ipai.org_role
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF role IS NULL OR NOT role OPERATOR(pg_catalog.=) ANY (pg_catalog.enum_range(NULL::ipai.org_role)::text[]) THEN
		RAISE EXCEPTION 'unknown role "%"', role
			USING ERRCODE = '22023', HINT = 'Use owner, admin, editor or viewer.';
	END IF;
	RETURN role::ipai.org_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_role_from_text(text) FROM PUBLIC;

-- Does an address already belong to a member of org?  Known when the
-- member joined through an invitation to that address, or, on Supabase,
-- from auth.users.  (Plain PostgreSQL has no directory of users' e-mail
-- addresses; a member added by user id alone is recognised when accepting.)
CREATE FUNCTION ipai._email_is_member(org uuid, addr text) RETURNS boolean
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	found_member boolean;
BEGIN
	IF EXISTS (SELECT 1 FROM ipai.org_invitations i
				 JOIN ipai.org_members m
				   ON m.org_id OPERATOR(pg_catalog.=) i.org_id
				  AND m.user_id OPERATOR(pg_catalog.=) i.accepted_by
				WHERE i.org_id OPERATOR(pg_catalog.=) org
				  AND i.email OPERATOR(pg_catalog.=) addr
				  AND i.accepted_at IS NOT NULL) THEN
		RETURN true;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
				WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('auth.users')
				  AND a.attname OPERATOR(pg_catalog.=) 'email' AND NOT a.attisdropped)
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
				WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('auth.users')
				  AND a.attname OPERATOR(pg_catalog.=) 'id'
				  AND a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype) THEN
		EXECUTE 'SELECT EXISTS (SELECT 1 FROM auth.users u JOIN ipai.org_members m'
			' ON m.user_id OPERATOR(pg_catalog.=) u.id'
			' WHERE m.org_id OPERATOR(pg_catalog.=) $1'
			' AND pg_catalog.lower(u.email::pg_catalog.text) OPERATOR(pg_catalog.=) $2)'
			INTO found_member USING org, addr;
		RETURN found_member;
	END IF;
	RETURN false;
END
$$;
REVOKE ALL ON FUNCTION ipai._email_is_member(uuid, text) FROM PUBLIC;

-- Removes the auth.invite outbox rows of an invitation that no sender has
-- claimed yet, when its token dies before it was sent (a newer token
-- replaces it, or the invitation is revoked): nobody should get a dead
-- link.  Rows a sender holds are left to it.
CREATE FUNCTION ipai._invitation_drop_unsent(org uuid, invitation uuid) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	DELETE FROM ipai.outbox o
	 WHERE o.org_id OPERATOR(pg_catalog.=) org
	   AND o.topic OPERATOR(pg_catalog.=) 'auth.invite'
	   AND o.sent_at IS NULL AND o.claimed_at IS NULL
	   AND o.payload OPERATOR(pg_catalog.->>) 'invitation_id'::text
		   OPERATOR(pg_catalog.=) invitation::text;
END
$$;
REVOKE ALL ON FUNCTION ipai._invitation_drop_unsent(uuid, uuid) FROM PUBLIC;

-- Invites email to org with role; returns the invitation id.
--
-- Only owners and admins invite (42501), only owners invite owners.  The
-- address is checked (22023) and lower-cased.  An open, unexpired
-- invitation to the same address is reused: it gets a new token (the old
-- link stops working), a new expiry and the new role, and is sent again.
-- An expired one is closed (revoke_reason 'expired') and replaced by a new
-- invitation.  A new invitation takes a seat: over the plan's seats the
-- metering trigger raises IP005 and nothing is written.  Inviting an
-- address that is already a member is 22023.  Writes one auth.invite
-- outbox row (payload email, role, org_id, token, invitation_id,
-- expires_at, organization) in the caller's transaction.
CREATE FUNCTION ipai.invite_member(org_id uuid, email text, role text, expires_in interval)
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := invite_member.org_id;
	want_role ipai.org_role;
	addr text;
	acting uuid := ipai.current_user_id();
	caller_is_owner boolean;
	inv record;
	inv_id uuid;
	token text;
	expires timestamptz;
	sends integer := 1;
	org_name text;
	refreshed boolean := false;
BEGIN
	PERFORM ipai.require_org_role(org, 'admin');
	want_role := ipai._org_role_from_text(invite_member.role);
	caller_is_owner := ipai.caller_is_privileged()
		OR ipai.org_role_of(org) OPERATOR(pg_catalog.=) 'owner';
	IF want_role OPERATOR(pg_catalog.=) 'owner' AND NOT caller_is_owner THEN
		RAISE EXCEPTION 'only an owner can invite an owner' USING ERRCODE = '42501';
	END IF;
	IF invite_member.email IS NULL THEN
		RAISE EXCEPTION 'e-mail address must not be null' USING ERRCODE = '22023';
	END IF;
	IF NOT ipai.email_is_valid(invite_member.email) THEN
		RAISE EXCEPTION 'invalid e-mail address "%"',
			pg_catalog.left(invite_member.email, 300)
			USING ERRCODE = '22023',
				  DETAIL = 'An address is local@domain, at most 254 characters, without spaces or control characters, and its domain has a dot.';
	END IF;
	addr := pg_catalog.lower(invite_member.email);
	IF expires_in IS NULL OR expires_in OPERATOR(pg_catalog.<=) interval '0'
	   OR expires_in OPERATOR(pg_catalog.>) interval '365 days' THEN
		RAISE EXCEPTION 'invitation lifetime must be positive and at most 365 days'
			USING ERRCODE = '22023';
	END IF;

	-- serializes invitations, accepts and revokes of this organization
	SELECT o.name INTO org_name FROM ipai.organizations o
	 WHERE o.id OPERATOR(pg_catalog.=) org FOR NO KEY UPDATE;

	IF ipai._email_is_member(org, addr) THEN
		RAISE EXCEPTION '"%" is already a member of this organization', addr
			USING ERRCODE = '22023',
				  HINT = 'Change the member''s role with ipai.set_member_role() instead.';
	END IF;

	token := ipai._new_token();
	expires := pg_catalog.now() OPERATOR(pg_catalog.+) expires_in;

	SELECT i.* INTO inv FROM ipai.org_invitations i
	 WHERE i.org_id OPERATOR(pg_catalog.=) org
	   AND i.email OPERATOR(pg_catalog.=) addr
	   AND i.accepted_at IS NULL AND i.revoked_at IS NULL
	   FOR UPDATE;
	IF FOUND AND inv.role OPERATOR(pg_catalog.=) 'owner' AND NOT caller_is_owner THEN
		RAISE EXCEPTION 'only an owner can change an invitation to the owner role'
			USING ERRCODE = '42501';
	END IF;
	IF FOUND AND inv.expires_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN
		-- reuse: same invitation, same seat, new token
		sends := inv.sent_count OPERATOR(pg_catalog.+) 1;
		UPDATE ipai.org_invitations i
		   SET token_hash = ipai._token_hash(token), role = want_role,
			   expires_at = expires, invited_by = coalesce(acting, i.invited_by),
			   sent_count = sends, last_sent_at = pg_catalog.now()
		 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) inv.id;
		inv_id := inv.id;
		refreshed := true;
		PERFORM ipai._invitation_drop_unsent(org, inv_id);
	ELSE
		IF FOUND THEN
			-- expired: close it; the new invitation below takes the seat anew
			UPDATE ipai.org_invitations i
			   SET revoked_at = pg_catalog.now(), revoked_by = acting, revoke_reason = 'expired'
			 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) inv.id;
			PERFORM ipai._invitation_drop_unsent(org, inv.id);
		END IF;
		INSERT INTO ipai.org_invitations (org_id, email, role, token_hash, invited_by, expires_at)
		VALUES (org, addr, want_role, ipai._token_hash(token), acting, expires)
		RETURNING id INTO inv_id;
	END IF;

	INSERT INTO ipai.outbox (org_id, topic, payload, dedupe_key)
	VALUES (org, 'auth.invite',
			pg_catalog.jsonb_build_object(
				'email', addr, 'role', want_role, 'org_id', org, 'token', token,
				'invitation_id', inv_id, 'expires_at', expires,
				'organization', org_name, 'invited_by', acting),
			pg_catalog.format('invitation:%s:%s', inv_id, sends));

	PERFORM ipai._audit(org, CASE WHEN refreshed THEN 'invitation.resend' ELSE 'invitation.create' END,
						'invitation', inv_id::text,
						CASE WHEN refreshed THEN pg_catalog.jsonb_build_object(
							'role', inv.role, 'expires_at', inv.expires_at) END,
						pg_catalog.jsonb_build_object('email', addr, 'role', want_role,
													  'expires_at', expires));
	RETURN inv_id;
END
$$;
REVOKE ALL ON FUNCTION ipai.invite_member(uuid, text, text, interval) FROM PUBLIC;

-- The SPEC's form: an invitation valid for 7 days.
CREATE FUNCTION ipai.invite_member(org_id uuid, email text, role text DEFAULT 'editor')
	RETURNS uuid
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RETURN ipai.invite_member(org_id, email, role, interval '7 days');
END
$$;
REVOKE ALL ON FUNCTION ipai.invite_member(uuid, text, text) FROM PUBLIC;

-- Accepts an invitation for the acting user; returns the organization id.
--
-- The token must belong to an open invitation that has not expired; the
-- acting user becomes a member with the invited role, once: the invitation
-- is marked accepted in the same transaction, and concurrent accepts of one
-- token are serialized on the invitation row, so exactly one succeeds.
-- When the caller's JWT carries an "email" claim (Supabase Auth), it must
-- be the invited address (42501 otherwise).  Without one (psql, Odoo, a
-- service), the token alone is the proof: whoever holds it may accept.
-- Errors change nothing: 42501 without an acting user or for another
-- address, 22023 for an empty, unknown, replaced, revoked, used or expired
-- token and when the user is already a member.
CREATE FUNCTION ipai.accept_invitation(token text) RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	acting uuid := ipai.current_user_id();
	h bytea;
	org uuid;
	inv record;
	found_inv boolean := false;
	claims text;
	claim_email text;
BEGIN
	IF acting IS NULL THEN
		RAISE EXCEPTION 'accepting an invitation needs an acting user'
			USING ERRCODE = '42501',
				  HINT = 'Sign in (JWT sub) or set ipai.user_id.';
	END IF;
	IF token IS NULL OR token OPERATOR(pg_catalog.=) '' THEN
		RAISE EXCEPTION 'invitation token must not be empty' USING ERRCODE = '22023';
	END IF;
	h := ipai._token_hash(token);

	-- lock order: organization, then invitation (as invite_member)
	SELECT i.org_id INTO org FROM ipai.org_invitations i
	 WHERE i.token_hash OPERATOR(pg_catalog.=) h;
	IF FOUND THEN
		PERFORM 1 FROM ipai.organizations o
		 WHERE o.id OPERATOR(pg_catalog.=) org FOR NO KEY UPDATE;
		SELECT i.* INTO inv FROM ipai.org_invitations i
		 WHERE i.org_id OPERATOR(pg_catalog.=) org
		   AND i.token_hash OPERATOR(pg_catalog.=) h
		   FOR UPDATE;
		found_inv := FOUND;
	END IF;
	IF NOT found_inv THEN
		RAISE EXCEPTION 'invitation token is not valid'
			USING ERRCODE = '22023',
				  DETAIL = 'No invitation has this token; a newer invitation to the same address replaces the token of an older one.',
				  HINT = 'Ask an administrator of the organization for a new invitation.';
	END IF;
	IF inv.accepted_at IS NOT NULL THEN
		RAISE EXCEPTION 'invitation has already been accepted'
			USING ERRCODE = '22023', DETAIL = 'An invitation can be accepted once.';
	END IF;
	IF inv.revoked_at IS NOT NULL THEN
		RAISE EXCEPTION 'invitation has been revoked'
			USING ERRCODE = '22023',
				  HINT = 'Ask an administrator of the organization for a new invitation.';
	END IF;
	IF inv.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
		RAISE EXCEPTION 'invitation has expired'
			USING ERRCODE = '22023',
				  DETAIL = pg_catalog.format('It expired at %s.', inv.expires_at),
				  HINT = 'Ask an administrator of the organization to invite you again.';
	END IF;

	-- the signed-in user's address must be the invited one
	claims := pg_catalog.current_setting('request.jwt.claims', true);
	IF claims IS NOT NULL AND claims OPERATOR(pg_catalog.<>) '' THEN
		claim_email := claims::jsonb OPERATOR(pg_catalog.->>) 'email'::text;
	END IF;
	IF claim_email IS NULL THEN
		claim_email := NULLIF(pg_catalog.current_setting('request.jwt.claim.email', true), '');
	END IF;
	IF claim_email IS NOT NULL AND claim_email OPERATOR(pg_catalog.<>) '' AND
	   pg_catalog.lower(claim_email) OPERATOR(pg_catalog.<>) inv.email THEN
		RAISE EXCEPTION 'invitation is for another e-mail address'
			USING ERRCODE = '42501',
				  DETAIL = 'The e-mail address of the signed-in user is not the invited address.',
				  HINT = 'Sign in with the invited address.';
	END IF;

	IF EXISTS (SELECT 1 FROM ipai.org_members m
				WHERE m.org_id OPERATOR(pg_catalog.=) org
				  AND m.user_id OPERATOR(pg_catalog.=) acting) THEN
		RAISE EXCEPTION 'user is already a member of this organization'
			USING ERRCODE = '22023',
				  HINT = 'An administrator can change the role with ipai.set_member_role().';
	END IF;

	-- accepted first: the seat moves from the invitation to the membership
	UPDATE ipai.org_invitations i
	   SET accepted_at = pg_catalog.now(), accepted_by = acting
	 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) inv.id;
	INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (org, acting, inv.role);
	PERFORM ipai._audit(org, 'invitation.accept', 'invitation', inv.id::text, NULL,
						pg_catalog.jsonb_build_object('email', inv.email, 'role', inv.role,
													  'user_id', acting));
	RETURN org;
END
$$;
REVOKE ALL ON FUNCTION ipai.accept_invitation(text) FROM PUBLIC;

-- Revokes an open invitation: true when revoked now, false when it was
-- already revoked.  Owners and admins of its organization (only owners for
-- an owner invitation); an accepted invitation cannot be revoked (remove
-- the member instead); an unknown id is 22023.
CREATE FUNCTION ipai.revoke_invitation(invitation_id uuid) RETURNS boolean
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid;
	inv record;
BEGIN
	IF invitation_id IS NULL THEN
		RAISE EXCEPTION 'invitation id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT i.org_id INTO org FROM ipai.org_invitations i
	 WHERE i.id OPERATOR(pg_catalog.=) invitation_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'invitation "%" does not exist', invitation_id USING ERRCODE = '22023';
	END IF;
	PERFORM ipai.require_org_role(org, 'admin');

	PERFORM 1 FROM ipai.organizations o
	 WHERE o.id OPERATOR(pg_catalog.=) org FOR NO KEY UPDATE;
	SELECT i.* INTO inv FROM ipai.org_invitations i
	 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) invitation_id
	   FOR UPDATE;
	IF inv.accepted_at IS NOT NULL THEN
		RAISE EXCEPTION 'invitation has already been accepted'
			USING ERRCODE = '22023',
				  HINT = 'Remove the member with ipai.remove_member() instead.';
	END IF;
	IF inv.revoked_at IS NOT NULL THEN
		RETURN false;
	END IF;
	IF inv.role OPERATOR(pg_catalog.=) 'owner' AND NOT ipai.caller_is_privileged()
	   AND ipai.org_role_of(org) IS DISTINCT FROM 'owner'::ipai.org_role THEN
		RAISE EXCEPTION 'only an owner can revoke an owner invitation' USING ERRCODE = '42501';
	END IF;
	UPDATE ipai.org_invitations i
	   SET revoked_at = pg_catalog.now(), revoked_by = ipai.current_user_id(), revoke_reason = 'revoked'
	 WHERE i.org_id OPERATOR(pg_catalog.=) org AND i.id OPERATOR(pg_catalog.=) invitation_id;
	PERFORM ipai._invitation_drop_unsent(org, invitation_id);
	PERFORM ipai._audit(org, 'invitation.revoke', 'invitation', invitation_id::text,
						pg_catalog.jsonb_build_object('email', inv.email, 'role', inv.role), NULL);
	RETURN true;
END
$$;
REVOKE ALL ON FUNCTION ipai.revoke_invitation(uuid) FROM PUBLIC;

-- Changes a member's role.  Runs as the caller, so the table's rules apply:
-- owners and admins change roles (42501 otherwise), only owners grant the
-- owner role or change an owner, and the last owner cannot be demoted
-- (23514).  Unknown role or non-member: 22023.  Audited by the membership
-- trigger.
CREATE FUNCTION ipai.set_member_role(org_id uuid, user_id uuid, role text) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	want_role ipai.org_role;
	cur ipai.org_role;
BEGIN
	PERFORM ipai.require_org_role(set_member_role.org_id, 'admin');
	want_role := ipai._org_role_from_text(set_member_role.role);
	IF set_member_role.user_id IS NULL THEN
		RAISE EXCEPTION 'user id must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT m.role INTO cur FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) set_member_role.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) set_member_role.user_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" is not a member of this organization', set_member_role.user_id
			USING ERRCODE = '22023';
	END IF;
	IF cur OPERATOR(pg_catalog.=) want_role THEN
		RETURN;
	END IF;
	UPDATE ipai.org_members m SET role = want_role
	 WHERE m.org_id OPERATOR(pg_catalog.=) set_member_role.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) set_member_role.user_id;
END
$$;
REVOKE ALL ON FUNCTION ipai.set_member_role(uuid, uuid, text) FROM PUBLIC;

-- Removes a member.  Owners and admins remove others (only owners remove
-- an owner); every member may remove themselves (leave).  The last owner
-- cannot go (23514).  Non-member: 22023.  Runs as the caller; audited by
-- the membership trigger.
CREATE FUNCTION ipai.remove_member(org_id uuid, user_id uuid) RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF remove_member.user_id IS NULL THEN
		PERFORM ipai.require_org_role(remove_member.org_id, 'viewer');
		RAISE EXCEPTION 'user id must not be null' USING ERRCODE = '22023';
	END IF;
	IF remove_member.user_id IS NOT DISTINCT FROM ipai.current_user_id() THEN
		PERFORM ipai.require_org_role(remove_member.org_id, 'viewer');
	ELSE
		PERFORM ipai.require_org_role(remove_member.org_id, 'admin');
	END IF;
	PERFORM 1 FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) remove_member.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) remove_member.user_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" is not a member of this organization', remove_member.user_id
			USING ERRCODE = '22023';
	END IF;
	DELETE FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) remove_member.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) remove_member.user_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'permission denied to remove this member' USING ERRCODE = '42501';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai.remove_member(uuid, uuid) FROM PUBLIC;

-- Makes new_owner (already a member) an owner and steps the acting owner
-- down to admin, in one transaction.  Called by a privileged caller that
-- is not itself an owner of the organization (service_role, a DBA), every
-- other owner becomes admin, so new_owner is the only owner.  Only owners
-- transfer (42501); new_owner must be a member other than the caller
-- (22023).  Audited (and each role change by the membership trigger).
CREATE FUNCTION ipai.transfer_ownership(org_id uuid, new_owner uuid) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := transfer_ownership.org_id;
	acting uuid := ipai.current_user_id();
	target_role ipai.org_role;
	acting_is_owner boolean;
	previous uuid[];
BEGIN
	PERFORM ipai.require_org_role(org, 'owner');
	IF new_owner IS NULL THEN
		RAISE EXCEPTION 'new owner must not be null' USING ERRCODE = '22023';
	END IF;
	SELECT m.role INTO target_role FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) org AND m.user_id OPERATOR(pg_catalog.=) new_owner;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" is not a member of this organization', new_owner
			USING ERRCODE = '22023', HINT = 'Invite the user first.';
	END IF;
	IF new_owner IS NOT DISTINCT FROM acting THEN
		RAISE EXCEPTION 'cannot transfer ownership to yourself' USING ERRCODE = '22023';
	END IF;
	acting_is_owner := ipai.org_role_of(org) IS NOT DISTINCT FROM 'owner'::ipai.org_role;

	IF target_role OPERATOR(pg_catalog.<>) 'owner' THEN
		UPDATE ipai.org_members m SET role = 'owner'
		 WHERE m.org_id OPERATOR(pg_catalog.=) org AND m.user_id OPERATOR(pg_catalog.=) new_owner;
	END IF;
	WITH stepped AS (
		UPDATE ipai.org_members m SET role = 'admin'
		 WHERE m.org_id OPERATOR(pg_catalog.=) org
		   AND m.role OPERATOR(pg_catalog.=) 'owner'
		   AND m.user_id OPERATOR(pg_catalog.<>) new_owner
		   AND (NOT acting_is_owner OR m.user_id OPERATOR(pg_catalog.=) acting)
		RETURNING m.user_id
	)
	SELECT pg_catalog.array_agg(s.user_id ORDER BY s.user_id) INTO previous FROM stepped s;

	PERFORM ipai._audit(org, 'organization.transfer_ownership', 'organization', org::text,
						pg_catalog.jsonb_build_object('owners', coalesce(previous, '{}')),
						pg_catalog.jsonb_build_object('owner', new_owner));
END
$$;
REVOKE ALL ON FUNCTION ipai.transfer_ownership(uuid, uuid) FROM PUBLIC;

-- Changes an organization's settings; a NULL argument leaves that setting
-- as it is, billing_email '' clears it.  Owners and admins only (42501).
-- The name is trimmed and must not be empty (at most 200 characters), the
-- billing address must be plausible (lower-cased), the time zone must be a
-- name the server knows (pg_timezone_names; matched without regard to
-- case and stored as the server spells it): 22023 otherwise, with nothing
-- changed.  Every change is written to ipai.audit_log with old and new
-- values (action organization.settings), by a trigger, so direct UPDATEs
-- are audited too.  Runs as the caller.
CREATE FUNCTION ipai.update_organization_settings(org_id uuid, name text DEFAULT NULL,
												  billing_email text DEFAULT NULL,
												  timezone text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	org uuid := update_organization_settings.org_id;
	new_name text;
	new_email text;
	clear_email boolean := false;
	new_tz text;
BEGIN
	PERFORM ipai.require_org_role(org, 'admin');
	IF update_organization_settings.name IS NOT NULL THEN
		new_name := pg_catalog.regexp_replace(update_organization_settings.name, '^\s+|\s+$', '', 'g');
		IF new_name OPERATOR(pg_catalog.=) '' THEN
			RAISE EXCEPTION 'organization name must not be empty' USING ERRCODE = '22023';
		END IF;
		IF pg_catalog.length(new_name) OPERATOR(pg_catalog.>) 200 THEN
			RAISE EXCEPTION 'organization name is too long'
				USING ERRCODE = '22023', DETAIL = 'At most 200 characters are allowed.';
		END IF;
	END IF;
	IF update_organization_settings.billing_email OPERATOR(pg_catalog.=) '' THEN
		clear_email := true;
	ELSIF update_organization_settings.billing_email IS NOT NULL THEN
		IF NOT ipai.email_is_valid(update_organization_settings.billing_email) THEN
			RAISE EXCEPTION 'invalid e-mail address "%"',
				pg_catalog.left(update_organization_settings.billing_email, 300)
				USING ERRCODE = '22023',
					  HINT = 'Pass an empty string to clear the billing address.';
		END IF;
		new_email := pg_catalog.lower(update_organization_settings.billing_email);
	END IF;
	IF update_organization_settings.timezone IS NOT NULL THEN
		SELECT z.name INTO new_tz FROM pg_catalog.pg_timezone_names z
		 WHERE pg_catalog.lower(z.name) OPERATOR(pg_catalog.=) pg_catalog.lower(update_organization_settings.timezone)
		 ORDER BY z.name OPERATOR(pg_catalog.=) update_organization_settings.timezone DESC, z.name
		 LIMIT 1;
		IF new_tz IS NULL THEN
			RAISE EXCEPTION 'invalid time zone "%"', pg_catalog.left(update_organization_settings.timezone, 100)
				USING ERRCODE = '22023',
					  HINT = 'Use a name from pg_timezone_names, such as "Asia/Manila" or "UTC".';
		END IF;
	END IF;

	UPDATE ipai.organizations o
	   SET name = coalesce(new_name, o.name),
		   billing_email = CASE WHEN clear_email THEN NULL ELSE coalesce(new_email, o.billing_email) END,
		   timezone = coalesce(new_tz, o.timezone)
	 WHERE o.id OPERATOR(pg_catalog.=) org;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'permission denied for organization' USING ERRCODE = '42501';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai.update_organization_settings(uuid, text, text, text) FROM PUBLIC;

-- Trigger (AFTER UPDATE OF name, billing_email, timezone, when one
-- changed): audits the settings that changed, old and new.
CREATE FUNCTION ipai._organizations_audit_settings() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	old_values jsonb := '{}';
	new_values jsonb := '{}';
BEGIN
	IF OLD.name IS DISTINCT FROM NEW.name THEN
		old_values := old_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('name', OLD.name);
		new_values := new_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('name', NEW.name);
	END IF;
	IF OLD.billing_email IS DISTINCT FROM NEW.billing_email THEN
		old_values := old_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('billing_email', OLD.billing_email);
		new_values := new_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('billing_email', NEW.billing_email);
	END IF;
	IF OLD.timezone IS DISTINCT FROM NEW.timezone THEN
		old_values := old_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('timezone', OLD.timezone);
		new_values := new_values OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('timezone', NEW.timezone);
	END IF;
	PERFORM ipai._audit(NEW.id, 'organization.settings', 'organization', NEW.id::text,
						old_values, new_values);
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._organizations_audit_settings() FROM PUBLIC;

CREATE FUNCTION ipai._grants_admin() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.invite_member(uuid, text, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.invite_member(uuid, text, text, interval) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.accept_invitation(text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.revoke_invitation(uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.set_member_role(uuid, uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.remove_member(uuid, uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.transfer_ownership(uuid, uuid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.update_organization_settings(uuid, text, text, text)
		TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._org_role_from_text(text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_admin() FROM PUBLIC;
