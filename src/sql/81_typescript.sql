-- ipai.typescript_types(): TypeScript declarations of schema ipai, made
-- from the catalog, so the Edge layer and the web client's types
-- (packages/saas-types) are generated, never hand-written, and cannot
-- drift from the database.
--
-- The output follows the layout of `supabase gen types typescript`
-- (a Database type with Tables {Row, Insert, Update}, Views {Row},
-- Functions {Args, Returns}, Enums and CompositeTypes per schema), so
-- supabase-js accepts it as createClient<Database>(...), plus short
-- aliases.  Objects whose names start with "_" are internal and left out.
-- Everything is ordered by name (columns by position, overloads by their
-- argument list), so the same catalog always gives the same text.

-- A property name as TypeScript wants it: bare when it is an identifier.
CREATE FUNCTION ipai._ts_prop(name text) RETURNS text
	LANGUAGE plpgsql IMMUTABLE STRICT
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF name OPERATOR(pg_catalog.~) '^[A-Za-z_$][A-Za-z0-9_$]*$' THEN
		RETURN name;
	END IF;
	RETURN pg_catalog.to_jsonb(name)::text;
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_prop(text) FROM PUBLIC;

-- The TypeScript type of a PostgreSQL type (without "| null").  Numbers
-- (including bigint and numeric, as PostgREST returns them), booleans,
-- Json for json/jsonb, arrays, enums and row types of schema ipai by
-- reference into Database; every other scalar is a string (its text
-- form); pseudo-types are unknown.
CREATE FUNCTION ipai._ts_type(t oid) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	y record;
	elem text;
	rel record;
BEGIN
	SELECT ty.typname, ty.typtype, ty.typcategory, ty.typelem, ty.typbasetype,
		   ty.typnamespace, ty.typrelid, ty.typlen
	  INTO y FROM pg_catalog.pg_type ty WHERE ty.oid OPERATOR(pg_catalog.=) t;
	IF NOT FOUND THEN
		RETURN 'unknown';
	END IF;
	IF y.typtype OPERATOR(pg_catalog.=) 'd' THEN
		RETURN ipai._ts_type(y.typbasetype);
	END IF;
	IF y.typcategory OPERATOR(pg_catalog.=) 'A' AND y.typelem OPERATOR(pg_catalog.<>) 0 THEN
		elem := ipai._ts_type(y.typelem);
		IF pg_catalog.strpos(elem, '|') OPERATOR(pg_catalog.>) 0 THEN
			elem := '(' OPERATOR(pg_catalog.||) elem OPERATOR(pg_catalog.||) ')';
		END IF;
		RETURN elem OPERATOR(pg_catalog.||) '[]';
	END IF;
	IF y.typtype OPERATOR(pg_catalog.=) 'e' THEN
		IF y.typnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace THEN
			RETURN pg_catalog.format('Database["ipai"]["Enums"][%s]', pg_catalog.to_jsonb(y.typname::text));
		END IF;
		RETURN (SELECT pg_catalog.string_agg(pg_catalog.to_jsonb(e.enumlabel::text)::text, ' | ' ORDER BY e.enumsortorder)
				  FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t);
	END IF;
	IF y.typtype OPERATOR(pg_catalog.=) 'c' THEN
		SELECT c.relname::text AS relname, c.relkind, c.relnamespace INTO rel
		  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) y.typrelid;
		IF rel.relnamespace OPERATOR(pg_catalog.=) 'ipai'::regnamespace
		   AND rel.relname OPERATOR(pg_catalog.!~) '^_' THEN
			RETURN pg_catalog.format('Database["ipai"][%s][%s]%s',
				CASE WHEN rel.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::"char"[]) THEN '"Tables"'
					 WHEN rel.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::"char"[]) THEN '"Views"'
					 ELSE '"CompositeTypes"' END,
				pg_catalog.to_jsonb(rel.relname),
				CASE WHEN rel.relkind OPERATOR(pg_catalog.=) 'c' THEN '' ELSE '["Row"]' END);
		END IF;
		RETURN 'Record<string, unknown>';
	END IF;
	RETURN CASE
		WHEN y.typname OPERATOR(pg_catalog.=) 'bool' THEN 'boolean'
		WHEN y.typname OPERATOR(pg_catalog.=) ANY ('{int2,int4,int8,float4,float8,numeric,oid,money}'::name[]) THEN 'number'
		WHEN y.typname OPERATOR(pg_catalog.=) ANY ('{json,jsonb}'::name[]) THEN 'Json'
		WHEN y.typname OPERATOR(pg_catalog.=) 'void' THEN 'undefined'
		WHEN y.typname OPERATOR(pg_catalog.=) 'record' THEN 'Record<string, unknown>'
		WHEN y.typtype OPERATOR(pg_catalog.=) 'p' THEN 'unknown'
		ELSE 'string' END;
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_type(oid) FROM PUBLIC;

-- The columns of a relation as the body of a TypeScript object type.
-- kind: 'row' (nullable columns are "T | null"; for views every column,
-- since PostgreSQL does not know), 'insert' (columns with a default or
-- NULL allowed are optional, generated ones never), 'update' (all
-- optional, generated ones never).
CREATE FUNCTION ipai._ts_columns(rel oid, kind text, indent text) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	is_view boolean := (SELECT c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::"char"[])
						  FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) rel);
BEGIN
	RETURN coalesce((
		SELECT pg_catalog.string_agg(
			indent OPERATOR(pg_catalog.||) ipai._ts_prop(a.attname::text) OPERATOR(pg_catalog.||)
			CASE
				WHEN kind OPERATOR(pg_catalog.<>) 'row'
					 AND (a.attidentity OPERATOR(pg_catalog.=) 'a' OR a.attgenerated OPERATOR(pg_catalog.<>) '')
					THEN '?: never'
				WHEN kind OPERATOR(pg_catalog.=) 'update'
					 OR (kind OPERATOR(pg_catalog.=) 'insert'
						 AND (NOT a.attnotnull OR a.atthasdef OR a.attidentity OPERATOR(pg_catalog.<>) ''))
					THEN '?: ' OPERATOR(pg_catalog.||) ipai._ts_type(a.atttypid)
						 OPERATOR(pg_catalog.||) CASE WHEN a.attnotnull THEN '' ELSE ' | null' END
				ELSE ': ' OPERATOR(pg_catalog.||) ipai._ts_type(a.atttypid)
					 OPERATOR(pg_catalog.||) CASE WHEN a.attnotnull AND NOT is_view THEN '' ELSE ' | null' END
			END OPERATOR(pg_catalog.||) ';',
			E'\n' ORDER BY a.attnum)
		  FROM pg_catalog.pg_attribute a
		 WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0
		   AND NOT a.attisdropped), '');
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_columns(oid, text, text) FROM PUBLIC;

-- One function's {Args, Returns} entry.
CREATE FUNCTION ipai._ts_function(fn oid, indent text) RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	p record;
	args text;
	outs text;
	ret text;
	n_in integer;
BEGIN
	SELECT pr.proname, pr.prorettype, pr.proretset, pr.pronargs, pr.pronargdefaults,
		   coalesce(pr.proallargtypes, (pr.proargtypes::oid[])[:]) AS types,
		   coalesce(pr.proargmodes, pg_catalog.array_fill('i'::"char", ARRAY[pr.pronargs])) AS modes,
		   pr.proargnames AS names
	  INTO p FROM pg_catalog.pg_proc pr WHERE pr.oid OPERATOR(pg_catalog.=) fn;

	-- input arguments, in order; the last pronargdefaults of them are optional
	WITH a AS (
		SELECT k.ord, p.types[k.ord] AS typ, p.modes[k.ord] AS mode,
			   coalesce(NULLIF(p.names[k.ord], ''), '$' OPERATOR(pg_catalog.||) k.ord) AS name
		  FROM pg_catalog.generate_series(1, pg_catalog.cardinality(p.types)) AS k(ord)
	), i AS (
		SELECT a.*, pg_catalog.row_number() OVER (ORDER BY a.ord) AS pos FROM a
		 WHERE a.mode OPERATOR(pg_catalog.=) ANY ('{i,b,v}'::"char"[])
	)
	SELECT pg_catalog.string_agg(
			   indent OPERATOR(pg_catalog.||) '    ' OPERATOR(pg_catalog.||) ipai._ts_prop(i.name)
			   OPERATOR(pg_catalog.||)
			   CASE WHEN i.pos OPERATOR(pg_catalog.>) (p.pronargs OPERATOR(pg_catalog.-) p.pronargdefaults)
					THEN '?: ' ELSE ': ' END
			   OPERATOR(pg_catalog.||) ipai._ts_type(i.typ) OPERATOR(pg_catalog.||) ';',
			   E'\n' ORDER BY i.ord),
		   pg_catalog.count(*)::integer
	  INTO args, n_in FROM i;

	-- output columns (OUT, INOUT, TABLE)
	SELECT pg_catalog.string_agg(
			   indent OPERATOR(pg_catalog.||) '    ' OPERATOR(pg_catalog.||)
			   ipai._ts_prop(coalesce(NULLIF(p.names[k.ord], ''), 'column' OPERATOR(pg_catalog.||) k.ord))
			   OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) ipai._ts_type(p.types[k.ord])
			   OPERATOR(pg_catalog.||) ' | null;',
			   E'\n' ORDER BY k.ord)
	  INTO outs
	  FROM pg_catalog.generate_series(1, pg_catalog.cardinality(p.types)) AS k(ord)
	 WHERE p.modes[k.ord] OPERATOR(pg_catalog.=) ANY ('{o,b,t}'::"char"[]);

	IF outs IS NOT NULL THEN
		ret := E'{\n' OPERATOR(pg_catalog.||) outs OPERATOR(pg_catalog.||) E'\n'
			   OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  }';
	ELSE
		ret := ipai._ts_type(p.prorettype);
	END IF;
	IF p.proretset THEN
		ret := CASE WHEN pg_catalog.strpos(ret, '|') OPERATOR(pg_catalog.>) 0 AND outs IS NULL
					THEN '(' OPERATOR(pg_catalog.||) ret OPERATOR(pg_catalog.||) ')' ELSE ret END
			   OPERATOR(pg_catalog.||) '[]';
	END IF;

	RETURN indent OPERATOR(pg_catalog.||) E'{\n'
		OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  Args: '
		OPERATOR(pg_catalog.||) CASE WHEN n_in OPERATOR(pg_catalog.=) 0 THEN 'Record<PropertyKey, never>'
			ELSE E'{\n' OPERATOR(pg_catalog.||) args OPERATOR(pg_catalog.||) E'\n'
				 OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  }' END
		OPERATOR(pg_catalog.||) E';\n'
		OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '  Returns: '
		OPERATOR(pg_catalog.||) ret OPERATOR(pg_catalog.||) E';\n'
		OPERATOR(pg_catalog.||) indent OPERATOR(pg_catalog.||) '}';
END
$$;
REVOKE ALL ON FUNCTION ipai._ts_function(oid, text) FROM PUBLIC;

-- The declarations, as one text ending in a newline.  Regenerate the
-- committed copy with:
--   psql -X -A -t -c 'SELECT ipai.typescript_types()' -o packages/saas-types/src/ipai.d.ts
CREATE FUNCTION ipai.typescript_types() RETURNS text
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	out text;
	tables text;
	views text;
	functions text;
	enums text;
	composites text;
	ipai_ns oid := 'ipai'::regnamespace;
	empty constant text := '      [_ in never]: never;';
BEGIN
	SELECT pg_catalog.string_agg(
			   coalesce('      /** ' OPERATOR(pg_catalog.||)
						pg_catalog.replace(pg_catalog.obj_description(c.oid, 'pg_class'), '*/', '* /')
						OPERATOR(pg_catalog.||) E' */\n', '')
			   OPERATOR(pg_catalog.||) '      ' OPERATOR(pg_catalog.||) ipai._ts_prop(c.relname::text)
			   OPERATOR(pg_catalog.||) E': {\n'
			   OPERATOR(pg_catalog.||) E'        Row: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'row', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n'
			   OPERATOR(pg_catalog.||) E'        Insert: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'insert', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n'
			   OPERATOR(pg_catalog.||) E'        Update: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'update', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n      };',
			   E'\n' ORDER BY c.relname)
	  INTO tables
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) ipai_ns
	   AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::"char"[])
	   AND NOT c.relispartition
	   AND c.relname OPERATOR(pg_catalog.!~) '^_';

	SELECT pg_catalog.string_agg(
			   coalesce('      /** ' OPERATOR(pg_catalog.||)
						pg_catalog.replace(pg_catalog.obj_description(c.oid, 'pg_class'), '*/', '* /')
						OPERATOR(pg_catalog.||) E' */\n', '')
			   OPERATOR(pg_catalog.||) '      ' OPERATOR(pg_catalog.||) ipai._ts_prop(c.relname::text)
			   OPERATOR(pg_catalog.||) E': {\n'
			   OPERATOR(pg_catalog.||) E'        Row: {\n' OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'row', '          ')
			   OPERATOR(pg_catalog.||) E'\n        };\n      };',
			   E'\n' ORDER BY c.relname)
	  INTO views
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) ipai_ns
	   AND c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::"char"[])
	   AND c.relname OPERATOR(pg_catalog.!~) '^_';

	-- overloads of one name are a union of their {Args, Returns}
	WITH f AS (
		SELECT pr.proname::text AS name,
			   CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 1
					THEN ' ' OPERATOR(pg_catalog.||) pg_catalog.ltrim(pg_catalog.min(ipai._ts_function(pr.oid, '      ')))
					ELSE E'\n' OPERATOR(pg_catalog.||) pg_catalog.string_agg(
						'        | ' OPERATOR(pg_catalog.||) pg_catalog.ltrim(ipai._ts_function(pr.oid, '          ')),
						E'\n' ORDER BY pg_catalog.pg_get_function_identity_arguments(pr.oid)) END AS body
		  FROM pg_catalog.pg_proc pr
		 WHERE pr.pronamespace OPERATOR(pg_catalog.=) ipai_ns
		   AND pr.prokind OPERATOR(pg_catalog.=) 'f'
		   AND pr.proname OPERATOR(pg_catalog.!~) '^_'
		   AND pr.prorettype OPERATOR(pg_catalog.<>) ALL ('{trigger,event_trigger,internal,language_handler,fdw_handler,index_am_handler,tsm_handler,table_am_handler}'::regtype[]::oid[])
		   AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(pr.proargtypes::oid[]) AS t(oid)
							WHERE t.oid OPERATOR(pg_catalog.=) 'internal'::regtype)
		 GROUP BY pr.proname
	)
	SELECT pg_catalog.string_agg('      ' OPERATOR(pg_catalog.||) ipai._ts_prop(f.name)
								 OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) f.body
								 OPERATOR(pg_catalog.||) ';', E'\n' ORDER BY f.name)
	  INTO functions FROM f;

	SELECT pg_catalog.string_agg('      ' OPERATOR(pg_catalog.||) ipai._ts_prop(t.typname::text)
								 OPERATOR(pg_catalog.||) ': '
								 OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(pg_catalog.to_jsonb(e.enumlabel::text)::text, ' | ' ORDER BY e.enumsortorder)
									   FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid)
								 OPERATOR(pg_catalog.||) ';', E'\n' ORDER BY t.typname)
	  INTO enums
	  FROM pg_catalog.pg_type t
	 WHERE t.typnamespace OPERATOR(pg_catalog.=) ipai_ns AND t.typtype OPERATOR(pg_catalog.=) 'e'
	   AND t.typname OPERATOR(pg_catalog.!~) '^_';

	SELECT pg_catalog.string_agg('      ' OPERATOR(pg_catalog.||) ipai._ts_prop(c.relname::text)
								 OPERATOR(pg_catalog.||) E': {\n'
								 OPERATOR(pg_catalog.||) ipai._ts_columns(c.oid, 'row', '        ')
								 OPERATOR(pg_catalog.||) E'\n      };', E'\n' ORDER BY c.relname)
	  INTO composites
	  FROM pg_catalog.pg_class c
	 WHERE c.relnamespace OPERATOR(pg_catalog.=) ipai_ns AND c.relkind OPERATOR(pg_catalog.=) 'c'
	   AND c.relname OPERATOR(pg_catalog.!~) '^_';

	out := pg_catalog.format(
E'// TypeScript declarations of schema "ipai" (ipai_saas %s, schema version %s),\n'
'// generated from the catalog by ipai.typescript_types().  Do not edit:\n'
'// psql -X -A -t -c ''SELECT ipai.typescript_types()'' -o packages/saas-types/src/ipai.d.ts\n'
'\n'
'export type Json =\n'
'  | string\n'
'  | number\n'
'  | boolean\n'
'  | null\n'
'  | { [key: string]: Json | undefined }\n'
'  | Json[];\n'
'\n'
'export type Database = {\n'
'  ipai: {\n'
'    Tables: {\n%s\n    };\n'
'    Views: {\n%s\n    };\n'
'    Functions: {\n%s\n    };\n'
'    Enums: {\n%s\n    };\n'
'    CompositeTypes: {\n%s\n    };\n'
'  };\n'
'};\n'
'\n'
'type Schema = Database["ipai"];\n'
'\n'
'/** The row type of a table or view: Row<"organizations">. */\n'
'export type Row<T extends keyof Schema["Tables"] | keyof Schema["Views"]> =\n'
'  T extends keyof Schema["Tables"] ? Schema["Tables"][T]["Row"]\n'
'  : T extends keyof Schema["Views"] ? Schema["Views"][T]["Row"]\n'
'  : never;\n'
'/** What an INSERT takes: Insert<"cms_pages">. */\n'
'export type Insert<T extends keyof Schema["Tables"]> = Schema["Tables"][T]["Insert"];\n'
'/** What an UPDATE takes: Update<"cms_pages">. */\n'
'export type Update<T extends keyof Schema["Tables"]> = Schema["Tables"][T]["Update"];\n'
'/** An enum: Enum<"org_role">. */\n'
'export type Enum<T extends keyof Schema["Enums"]> = Schema["Enums"][T];\n'
'/** Arguments of a function: Args<"invite_member">. */\n'
'export type Args<T extends keyof Schema["Functions"]> = Schema["Functions"][T]["Args"];\n'
'/** Result of a function: Returns<"check_entitlement">. */\n'
'export type Returns<T extends keyof Schema["Functions"]> = Schema["Functions"][T]["Returns"];',
		(SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'ipai_saas'),
		ipai._schema_target_version(),
		coalesce(tables, empty), coalesce(views, empty), coalesce(functions, empty),
		coalesce(enums, empty), coalesce(composites, empty));
	RETURN out;
END
$$;
REVOKE ALL ON FUNCTION ipai.typescript_types() FROM PUBLIC;
COMMENT ON FUNCTION ipai.typescript_types() IS
	'TypeScript declarations of the tables, views, functions, enums and composite types of schema ipai';

CREATE FUNCTION ipai._grants_typescript() RETURNS void
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	GRANT EXECUTE ON FUNCTION ipai.typescript_types() TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_prop(text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_type(oid) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_columns(oid, text, text) TO authenticated, service_role;
	GRANT EXECUTE ON FUNCTION ipai._ts_function(oid, text) TO authenticated, service_role;
END
$$;
REVOKE ALL ON FUNCTION ipai._grants_typescript() FROM PUBLIC;
