-- test/soak/period_move/setup.sql: wrappers that log each call (storm.consume,
-- storm.record, storm.bulk, storm.hold, storm.check) and storm.inv(org),
-- the invariants of one organization's current period; from a storm written
-- from the SPEC (see run.sh).
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ipai_saas CASCADE; SELECT ipai.create_supabase_roles(); SELECT ipai.install_schema();
CREATE SCHEMA storm;
CREATE TABLE storm.log(id bigserial primary key, ts timestamptz default clock_timestamp(), pid int default pg_backend_pid(), tag text, op text, key text, q bigint, res text, detail text);
CREATE TABLE storm.mon(ts timestamptz default clock_timestamp(), org uuid, used bigint, held bigint, lim bigint);
-- wrapper: consume, catch everything, log
CREATE FUNCTION storm.consume(tag text, o uuid, q bigint, key text default null) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE r text; d text;
BEGIN
  SELECT reason INTO r FROM ipai.consume_entitlement(o,'ai_runs',q,key);
  INSERT INTO storm.log(tag,op,key,q,res) VALUES(tag,'consume',key,q,r);
  RETURN r;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  INSERT INTO storm.log(tag,op,key,q,res,detail) VALUES(tag,'consume',key,q,SQLSTATE,SQLERRM||' | '||coalesce(d,''));
  RETURN SQLSTATE;
END $f$;
CREATE FUNCTION storm.record(tag text, o uuid, q bigint, key text default null) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE r boolean; d text;
BEGIN
  r := ipai.record_usage(o,'ai_runs',q,key);
  INSERT INTO storm.log(tag,op,key,q,res) VALUES(tag,'record',key,q,r::text);
  RETURN r::text;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  INSERT INTO storm.log(tag,op,key,q,res,detail) VALUES(tag,'record',key,q,SQLSTATE,SQLERRM||' | '||coalesce(d,''));
  RETURN SQLSTATE;
END $f$;
-- invariants for one org/feature, current period
CREATE FUNCTION storm.inv(o uuid) RETURNS TABLE(org uuid, counter_used bigint, view_used bigint, events_in_window bigint, own_events bigint, counter_held bigint, active_holds bigint, lim bigint, over boolean, ok boolean) LANGUAGE plpgsql AS $f$
DECLARE ps timestamptz; pe timestamptz;
BEGIN
  SELECT p.period_start, p.period_end INTO ps, pe FROM ipai.usage_period(o, now()) p;
  org := o;
  SELECT c.used, c.held INTO counter_used, counter_held FROM ipai.usage_counters c WHERE c.org_id=o AND c.feature='ai_runs' AND c.period_start=ps;
  SELECT v.used INTO view_used FROM ipai.org_usage_current v WHERE v.org_id=o AND v.feature='ai_runs' AND v.period_start=ps;
  SELECT coalesce(sum(quantity),0) INTO events_in_window FROM ipai.usage_events e WHERE e.org_id=o AND e.feature='ai_runs' AND e.occurred_at>=ps AND e.occurred_at<pe;
  SELECT coalesce(sum(quantity),0) INTO own_events FROM ipai.usage_events e WHERE e.org_id=o AND e.feature='ai_runs' AND e.period_start=ps;
  SELECT coalesce(sum(quantity),0) INTO active_holds FROM ipai.usage_holds h WHERE h.org_id=o AND h.feature='ai_runs' AND h.status='active' AND h.expires_at>now() AND h.period_start=ps;
  SELECT pe2.max_quantity INTO lim FROM ipai.plan_entitlements pe2 JOIN ipai.organizations g ON g.plan_id=pe2.plan_id WHERE g.id=o AND pe2.feature='ai_runs';
  over := lim IS NOT NULL AND coalesce(counter_used,0) > lim;
  ok := coalesce(counter_used,0)=events_in_window AND coalesce(view_used,0)=events_in_window AND NOT over;
  RETURN NEXT;
END $f$;
CREATE FUNCTION storm.mkorg(name text, lim bigint, plan_base text default 'free') RETURNS uuid LANGUAGE plpgsql AS $f$
DECLARE o uuid := gen_random_uuid(); p text := 'p_'||name;
BEGIN
  INSERT INTO ipai.plans(id,name) VALUES(p,p);
  INSERT INTO ipai.plan_entitlements(plan_id,feature,max_quantity,enforcement,counted_by,reset_period,metered,unit_price,stripe_meter_event_name)
   SELECT p,feature,CASE feature WHEN 'ai_runs' THEN lim WHEN 'seats' THEN 1000 ELSE max_quantity END,enforcement,counted_by,reset_period,metered,unit_price,stripe_meter_event_name
   FROM ipai.plan_entitlements WHERE plan_id=plan_base;
  INSERT INTO ipai.organizations(id,name,plan_id) VALUES(o,name,p);
  RETURN o;
END $f$;
-- bulk: n record_usage calls, no exception handling inside the loop (one subtransaction around all)
CREATE FUNCTION storm.bulk(tag text, o uuid, n int, q bigint, fn text default 'record') RETURNS text LANGUAGE plpgsql AS $f$
DECLARE d text; i int;
BEGIN
  BEGIN
    FOR i IN 1..n LOOP
      IF fn='record' THEN PERFORM ipai.record_usage(o,'ai_runs',q);
      ELSE PERFORM ipai.consume_entitlement(o,'ai_runs',q); END IF;
    END LOOP;
    INSERT INTO storm.log(tag,op,q,res) VALUES(tag,'bulk_'||fn,n*q,'ok');
    RETURN 'ok';
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    INSERT INTO storm.log(tag,op,q,res,detail) VALUES(tag,'bulk_'||fn,n*q,SQLSTATE,SQLERRM||' | '||coalesce(d,''));
    RETURN SQLSTATE;
  END;
END $f$;
-- hold lifecycle; act: 0 finalize<=q, 1 finalize>q, 2 finalize 0, 3 release, 4 leave (ttl short)
CREATE FUNCTION storm.hold(tag text, o uuid, q bigint, act int, actual bigint) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE h uuid; d text; b boolean;
BEGIN
  BEGIN
    h := ipai.reserve_entitlement(o,'ai_runs',q, CASE WHEN act=4 THEN interval '1 second' ELSE interval '10 minutes' END);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    INSERT INTO storm.log(tag,op,q,res,detail) VALUES(tag,'reserve',q,SQLSTATE,SQLERRM||' | '||coalesce(d,''));
    RETURN SQLSTATE;
  END;
  INSERT INTO storm.log(tag,op,key,q,res) VALUES(tag,'reserve',h::text,q,'ok');
  IF act=4 THEN RETURN 'left'; END IF;
  PERFORM pg_sleep(random()*0.01);
  BEGIN
    IF act=3 THEN b := ipai.release_hold(h);
      INSERT INTO storm.log(tag,op,key,q,res) VALUES(tag,'release',h::text,0,b::text);
    ELSE b := ipai.finalize_hold(h, actual);
      INSERT INTO storm.log(tag,op,key,q,res) VALUES(tag,'finalize',h::text,actual,b::text);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    INSERT INTO storm.log(tag,op,key,q,res,detail) VALUES(tag,CASE WHEN act=3 THEN 'release' ELSE 'finalize' END,h::text,actual,SQLSTATE,SQLERRM||' | '||coalesce(d,''));
    RETURN SQLSTATE;
  END;
  RETURN 'ok';
END $f$;
CREATE FUNCTION storm.check(tag text, o uuid) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE c record;
BEGIN
  SELECT * INTO c FROM ipai.check_entitlement(o,'ai_runs',1);
  IF c.max IS NOT NULL AND c.current > c.max THEN
    INSERT INTO storm.log(tag,op,q,res,detail) VALUES(tag,'check',c.current,'OVER',row_to_json(c)::text);
  END IF;
  RETURN c.reason;
END $f$;
GRANT USAGE ON SCHEMA storm TO authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA storm TO authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA storm TO authenticated, service_role;
