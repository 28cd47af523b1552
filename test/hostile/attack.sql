-- Hostile objects that an unqualified name or operator inside ipai_saas
-- would pick up if anything resolved through the caller's search_path.
-- Each attacker function counts its calls in public.attack_calls.  The
-- workloads compare with OPERATOR(pg_catalog.=) themselves, so that only
-- calls from inside ipai_saas can reach these.
CREATE SEQUENCE public.attack_calls;
GRANT USAGE, SELECT ON SEQUENCE public.attack_calls TO PUBLIC;

CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '2000-01-01 00:00:00+00'; END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '2000-01-01 00:00:00+00'; END $$;
CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '00000000-0000-4000-8000-000000000000'; END $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN $1; END $$;
CREATE FUNCTION public.btrim(text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN $1; END $$;
CREATE FUNCTION public.length(text) RETURNS integer LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 1; END $$;
CREATE FUNCTION public.format(text, text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 'x'; END $$;
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '{}'; END $$;
CREATE FUNCTION public.to_jsonb(text) RETURNS jsonb LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '{}'; END $$;
CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN ''; END $$;
CREATE FUNCTION public.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); END $$;
CREATE FUNCTION public.hashtext(text) RETURNS integer LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 0; END $$;
CREATE FUNCTION public.digest(bytea, text) RETURNS bytea LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '\x00'; END $$;
CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '\x00'; END $$;
CREATE FUNCTION public.encode(bytea, text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 'x'; END $$;
CREATE FUNCTION public.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN ''; END $$;
CREATE FUNCTION public.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); END $$;

-- operators on text, uuid and bigint
CREATE FUNCTION public.evil_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN true; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_texteq);
CREATE FUNCTION public.evil_uuideq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN true; END $$;
CREATE OPERATOR public.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = public.evil_uuideq);
CREATE FUNCTION public.evil_int8lt(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN true; END $$;
CREATE OPERATOR public.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_int8lt);
CREATE FUNCTION public.evil_textcat(text, text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 'x'; END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_textcat);
CREATE FUNCTION public.evil_jsonb_get(jsonb, text) RETURNS jsonb LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 'null'; END $$;
CREATE OPERATOR public.-> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = public.evil_jsonb_get);
CREATE FUNCTION public.evil_jsonb_gettext(jsonb, text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 'x'; END $$;
CREATE OPERATOR public.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = public.evil_jsonb_gettext);
CREATE FUNCTION public.evil_tstzlt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN true; END $$;
CREATE OPERATOR public.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.evil_tstzlt);
CREATE OPERATOR public.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.evil_tstzlt);
CREATE FUNCTION public.evil_int4eq(integer, integer) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN true; END $$;
CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.evil_int4eq);
CREATE FUNCTION public.evil_int8eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN true; END $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_int8eq);
