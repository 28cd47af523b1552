-- Tenancy: membership helpers used by every policy and function, the
-- organization life cycle, and the triggers that guard membership.

-- Organizations where the acting user holds at least min_role.  Policies
-- call it as (SELECT ipai.user_org_ids(...)) so it runs once per statement.
-- SECURITY DEFINER: it must read org_members whatever the caller's grants.
CREATE FUNCTION ipai.user_org_ids(min_role ipai.org_role DEFAULT 'viewer')
	RETURNS uuid[]
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	uid uuid := ipai.current_user_id();
	ids uuid[];
BEGIN
	IF uid IS NULL THEN
		RETURN '{}';
	END IF;
	SELECT coalesce(array_agg(m.org_id), '{}') INTO ids
	  FROM ipai.org_members m
	 WHERE m.user_id OPERATOR(pg_catalog.=) uid
	   AND m.role OPERATOR(pg_catalog.>=) min_role;
	RETURN ids;
END
$$;
REVOKE ALL ON FUNCTION ipai.user_org_ids(ipai.org_role) FROM PUBLIC;

-- Does the acting user hold at least min_role in org?
CREATE FUNCTION ipai.is_org_member(org_id uuid, min_role ipai.org_role DEFAULT 'viewer')
	RETURNS boolean
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	-- read here, not in the query: on Citus the query runs on a worker
	uid uuid := ipai.current_user_id();
BEGIN
	RETURN EXISTS (SELECT 1 FROM ipai.org_members m
					WHERE m.org_id OPERATOR(pg_catalog.=) is_org_member.org_id
					  AND m.user_id OPERATOR(pg_catalog.=) uid
					  AND m.role OPERATOR(pg_catalog.>=) min_role);
END
$$;
REVOKE ALL ON FUNCTION ipai.is_org_member(uuid, ipai.org_role) FROM PUBLIC;

-- The acting user's role in org, or NULL.
CREATE FUNCTION ipai.org_role_of(org_id uuid) RETURNS ipai.org_role
	LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	uid uuid := ipai.current_user_id();
BEGIN
	RETURN (SELECT m.role FROM ipai.org_members m
			 WHERE m.org_id OPERATOR(pg_catalog.=) org_role_of.org_id
			   AND m.user_id OPERATOR(pg_catalog.=) uid);
END
$$;
REVOKE ALL ON FUNCTION ipai.org_role_of(uuid) FROM PUBLIC;

-- Raises unless the caller may act on org with at least min_role:
-- 22023 when org does not exist (or is NULL), 42501 when the acting user is
-- not a member with that role.  Privileged callers (superuser, service_role)
-- pass.  Functions call this first, before revealing anything.
CREATE FUNCTION ipai.require_org_role(org_id uuid, min_role ipai.org_role DEFAULT 'viewer')
	RETURNS void
	LANGUAGE plpgsql STABLE SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	have ipai.org_role;
	uid uuid;
BEGIN
	IF org_id IS NULL THEN
		RAISE EXCEPTION 'organization id must not be null' USING ERRCODE = '22023';
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM ipai.organizations o
					WHERE o.id OPERATOR(pg_catalog.=) require_org_role.org_id)) THEN
		RAISE EXCEPTION 'organization "%" does not exist', org_id USING ERRCODE = '22023';
	END IF;
	IF ipai.caller_is_privileged() THEN
		RETURN;
	END IF;
	-- the acting user read here, not in the query (on Citus a worker's)
	uid := ipai.current_user_id();
	SELECT m.role INTO have FROM ipai.org_members m
	 WHERE m.org_id OPERATOR(pg_catalog.=) require_org_role.org_id
	   AND m.user_id OPERATOR(pg_catalog.=) uid;
	IF have IS NULL THEN
		RAISE EXCEPTION 'permission denied for organization'
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('The acting user is not a member of organization %s.', org_id);
	END IF;
	IF have OPERATOR(pg_catalog.<) min_role THEN
		RAISE EXCEPTION 'permission denied for organization'
			USING ERRCODE = '42501',
				  DETAIL = pg_catalog.format('This needs role %s or higher in organization %s; the acting user is %s.',
											 min_role, org_id, have);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION ipai.require_org_role(uuid, ipai.org_role) FROM PUBLIC;

-- Writes one audit_log row; internal, called by the extension's functions.
CREATE FUNCTION ipai._audit(org_id uuid, action text, object_type text, object_id text,
							old_values jsonb DEFAULT NULL, new_values jsonb DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	-- distributed by organization on Citus: rows of no organization (secret
	-- rotation) carry the nil uuid there
	INSERT INTO ipai.audit_log (org_id, actor_id, actor_role, action, object_type,
								object_id, old_values, new_values)
	VALUES (CASE WHEN _audit.org_id IS NULL AND ipai.is_distributed()
				 THEN '00000000-0000-0000-0000-000000000000'::uuid ELSE _audit.org_id END,
			ipai.current_user_id(), session_user, action, object_type,
			object_id, old_values, new_values);
END
$$;
REVOKE ALL ON FUNCTION ipai._audit(uuid, text, text, text, jsonb, jsonb) FROM PUBLIC;

CREATE FUNCTION ipai.create_organization(name text,
										 owner uuid DEFAULT ipai.current_user_id(),
										 billing_email text DEFAULT NULL,
										 timezone text DEFAULT 'UTC')
	RETURNS uuid
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	new_id uuid;
	default_plan text;
	acting uuid := ipai.current_user_id();
BEGIN
	IF name IS NULL OR name OPERATOR(pg_catalog.!~) '\S' THEN
		RAISE EXCEPTION 'organization name must not be empty' USING ERRCODE = '22023';
	END IF;
	IF pg_catalog.length(name) OPERATOR(pg_catalog.>) 200 THEN
		RAISE EXCEPTION 'organization name is too long'
			USING ERRCODE = '22023', DETAIL = 'At most 200 characters are allowed.';
	END IF;
	IF owner IS NULL THEN
		RAISE EXCEPTION 'organization owner must not be null'
			USING ERRCODE = '22023',
				  HINT = 'Pass owner, or act as a user (JWT sub or the ipai.user_id setting).';
	END IF;
	IF NOT ipai.caller_is_privileged()
	   AND (acting IS NULL OR acting OPERATOR(pg_catalog.<>) owner) THEN
		RAISE EXCEPTION 'permission denied to create an organization for another user'
			USING ERRCODE = '42501';
	END IF;
	IF billing_email IS NOT NULL THEN
		billing_email := ipai.normalize_email(billing_email);
	END IF;

	-- (the default plan read first: Citus takes no subquery in an INSERT)
	SELECT p.id INTO default_plan FROM ipai.plans p WHERE p.is_default;
	INSERT INTO ipai.organizations (name, billing_email, timezone, plan_id, created_by)
	VALUES (pg_catalog.regexp_replace(name, '^\s+|\s+$', '', 'g'), billing_email, coalesce(timezone, 'UTC'),
			coalesce(default_plan, 'free'), coalesce(acting, owner))
	RETURNING id INTO new_id;

	INSERT INTO ipai.org_members (org_id, user_id, role) VALUES (new_id, owner, 'owner');

	PERFORM ipai._audit(new_id, 'organization.create', 'organization', new_id::text, NULL,
						pg_catalog.jsonb_build_object('name', pg_catalog.regexp_replace(name, '^\s+|\s+$', '', 'g'), 'owner', owner));
	RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION ipai.create_organization(text, uuid, text, text) FROM PUBLIC;

-- Adds user_id to org with role (text, validated: 22023 for an unknown
-- role).  Admins and owners add members; only owners add owners (the
-- membership guard trigger enforces it for tenants).  Seat limits apply
-- (enforced where members are inserted).
CREATE FUNCTION ipai.add_member(org_id uuid, user_id uuid, role text DEFAULT 'viewer')
	RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	PERFORM ipai.require_org_role(add_member.org_id, 'admin');
	IF user_id IS NULL THEN
		RAISE EXCEPTION 'user id must not be null' USING ERRCODE = '22023';
	END IF;
	IF role IS NULL OR NOT role OPERATOR(pg_catalog.=) ANY (pg_catalog.enum_range(NULL::ipai.org_role)::text[]) THEN
		RAISE EXCEPTION 'unknown role "%"', role
			USING ERRCODE = '22023', HINT = 'Use owner, admin, editor or viewer.';
	END IF;
	INSERT INTO ipai.org_members (org_id, user_id, role)
	VALUES (add_member.org_id, add_member.user_id, add_member.role::ipai.org_role);
END
$$;
REVOKE ALL ON FUNCTION ipai.add_member(uuid, uuid, text) FROM PUBLIC;

-- Trigger: organizations.timezone must be a zone the server knows by name.
CREATE FUNCTION ipai._organizations_check_timezone() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF NOT ipai._timezone_is_valid(NEW.timezone) THEN
		RAISE EXCEPTION 'invalid time zone "%"', NEW.timezone
			USING ERRCODE = '22023',
				  HINT = 'Use a name from pg_timezone_names, such as "Asia/Manila" or "UTC".';
	END IF;
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		NEW.updated_at := pg_catalog.now();
	END IF;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION ipai._organizations_check_timezone() FROM PUBLIC;

-- Trigger (BEFORE, each row) on org_members for unprivileged writers:
-- org_id and user_id never change, roles are valid, and only an owner may
-- grant the owner role or change or remove another owner.  Trusted code
-- (SECURITY DEFINER functions of the extension, service_role) skips this.
CREATE FUNCTION ipai._org_members_guard() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	acting uuid;
	acting_role ipai.org_role;
	org uuid := CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD.org_id ELSE NEW.org_id END;
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		IF NEW.org_id OPERATOR(pg_catalog.<>) OLD.org_id
		   OR NEW.user_id OPERATOR(pg_catalog.<>) OLD.user_id THEN
			RAISE EXCEPTION 'cannot move a membership to another organization or user'
				USING ERRCODE = '22023', HINT = 'Delete the membership and insert a new one.';
		END IF;
		NEW.updated_at := pg_catalog.now();
	END IF;
	IF ipai._current_role_is_privileged() THEN
		RETURN CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD ELSE NEW END;
	END IF;

	acting := ipai.current_user_id();
	acting_role := ipai.org_role_of(org);
	IF acting_role IS DISTINCT FROM 'owner'::ipai.org_role THEN
		IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' AND NEW.role OPERATOR(pg_catalog.=) 'owner' THEN
			RAISE EXCEPTION 'only an owner can grant the owner role' USING ERRCODE = '42501';
		END IF;
		IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' AND OLD.role OPERATOR(pg_catalog.=) 'owner'
		   AND NOT (TG_OP OPERATOR(pg_catalog.=) 'DELETE'
					AND OLD.user_id OPERATOR(pg_catalog.=) acting) THEN
			RAISE EXCEPTION 'only an owner can change or remove an owner' USING ERRCODE = '42501';
		END IF;
	END IF;
	RETURN CASE WHEN TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN OLD ELSE NEW END;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_members_guard() FROM PUBLIC;

-- Trigger (AFTER, each row): an organization always keeps an owner.  The
-- organization row is locked first, so two owners demoting each other at
-- the same time are serialized and the second one is refused.  Deleting
-- the organization itself (cascade) is allowed.
CREATE FUNCTION ipai._org_members_keep_owner() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF OLD.role OPERATOR(pg_catalog.<>) 'owner'
	   OR (TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.role OPERATOR(pg_catalog.=) 'owner') THEN
		RETURN NULL;
	END IF;
	PERFORM 1 FROM ipai.organizations o
	 WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RETURN NULL;			-- the organization is being deleted
	END IF;
	IF NOT (EXISTS (SELECT 1 FROM ipai.org_members m
					WHERE m.org_id OPERATOR(pg_catalog.=) OLD.org_id
					  AND m.role OPERATOR(pg_catalog.=) 'owner')) THEN
		RAISE EXCEPTION 'an organization must keep at least one owner'
			USING ERRCODE = '23514',
				  HINT = 'Make another member owner first, or delete the organization.';
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_members_keep_owner() FROM PUBLIC;

-- Trigger (AFTER, each row): every membership change is audited, whoever
-- makes it (functions or plain INSERT/UPDATE/DELETE).
CREATE FUNCTION ipai._org_members_audit() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
		PERFORM ipai._audit(NEW.org_id, 'member.add', 'member', NEW.user_id::text, NULL,
							pg_catalog.jsonb_build_object('role', NEW.role));
	ELSIF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
		IF NEW.role OPERATOR(pg_catalog.<>) OLD.role THEN
			PERFORM ipai._audit(NEW.org_id, 'member.role', 'member', NEW.user_id::text,
								pg_catalog.jsonb_build_object('role', OLD.role),
								pg_catalog.jsonb_build_object('role', NEW.role));
		END IF;
	ELSE
		-- not when the whole organization goes
		IF EXISTS (SELECT 1 FROM ipai.organizations o WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id) THEN
			PERFORM ipai._audit(OLD.org_id, 'member.remove', 'member', OLD.user_id::text,
								pg_catalog.jsonb_build_object('role', OLD.role), NULL);
		END IF;
	END IF;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION ipai._org_members_audit() FROM PUBLIC;

-- Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only tables.  A
-- superuser can still disable the trigger deliberately.
CREATE FUNCTION ipai._append_only() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RAISE EXCEPTION 'table %.% is append-only', TG_TABLE_SCHEMA, TG_TABLE_NAME
		USING ERRCODE = '42501', DETAIL = pg_catalog.format('%s is not allowed.', TG_OP);
END
$$;
REVOKE ALL ON FUNCTION ipai._append_only() FROM PUBLIC;

-- True when the current role (inside SECURITY DEFINER code: the definer)
-- is a superuser or has BYPASSRLS.  Triggers use it to trust the
-- extension's own functions.
CREATE FUNCTION ipai._current_role_is_privileged() RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_current_role_is_privileged'
	LANGUAGE C STABLE PARALLEL SAFE;

-- Is name one of the server's time zone names (pg_timezone_names)?  Cached
-- per backend in C: reading pg_timezone_names costs tens of milliseconds.
CREATE FUNCTION ipai._timezone_is_valid(name text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_timezone_is_valid'
	LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- E-mail addresses: plausibility check and normalised form.
CREATE FUNCTION ipai.email_is_valid(email text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'ipai_email_is_valid'
	LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- lower-cased and trimmed; 22023 when not a plausible address
CREATE FUNCTION ipai.normalize_email(email text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	e text := pg_catalog.lower(email);
BEGIN
	IF email IS NULL OR NOT ipai.email_is_valid(e) THEN
		RAISE EXCEPTION 'invalid e-mail address "%"', email USING ERRCODE = '22023';
	END IF;
	RETURN e;
END
$$;

-- EXECUTE grants of this file's functions to the Supabase roles; called by
-- ipai.install_schema() on every run (the roles may not exist when the
-- extension is created), like every other ipai._grants_<area>() function.
CREATE FUNCTION ipai._grants_tenancy() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.user_org_ids(ipai.org_role) TO anon, authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.is_org_member(uuid, ipai.org_role) TO anon, authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.org_role_of(uuid) TO anon, authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.require_org_role(uuid, ipai.org_role) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.add_member(uuid, uuid, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai.create_organization(text, uuid, text, text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_tenancy() FROM PUBLIC;
