-- Hostile objects that an unqualified name or operator inside ipai_saas
-- would pick up if anything resolved through the caller's search_path.
-- Each attacker function counts its calls in public.attack_calls.
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
CREATE FUNCTION public.format(text, VARIADIC "any") RETURNS text LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN 'x'; END $$;
CREATE FUNCTION public.jsonb_build_object(VARIADIC "any") RETURNS jsonb LANGUAGE plpgsql AS
$$ BEGIN PERFORM nextval('public.attack_calls'); RETURN '{}'; END $$;
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
