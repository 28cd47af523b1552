SELECT ipai.stripe_verify_signature('{"id":"evt_vg","object":"event"}'::text, ipai.stripe_sign('{"id":"evt_vg","object":"event"}'::text, 'whsec_vg', to_timestamp(1700000000)), 'whsec_vg', 300, to_timestamp(1700000005));

SELECT ipai.stripe_verify_signature('\x7b00ff007d'::bytea, ipai.stripe_sign('\x7b00ff007d'::bytea, 'whsec_vg', to_timestamp(1700000000)), 'whsec_vg', 300, to_timestamp(1700000005));

SELECT ipai.stripe_verify_signature('x'::text, h, 'whsec_vg', 300, to_timestamp(1700000005)) FROM unnest(ARRAY['', ',', 't=', 't=1700000000', 't=abc,v1=00', 't=1700000000,t=1700000000,v1=' || repeat('a', 64), 't=1700000000,v1=' || repeat('a', 63), 't=1700000000,v1=' || repeat('g', 64), 't=1700000000,v1=', 't=1700000000,v0=' || repeat('a', 64), 't=99999999999999999999,v1=' || repeat('a', 64), 't=1700000000,v1=' || repeat('a', 64) || ',']) h;

SELECT ipai.stripe_verify_signature('x'::text, 't=1700000000,' || repeat('v1=' || repeat('0', 64) || ',', 2000) || 'v0=1', 'whsec_vg', 300, to_timestamp(1700000005));

SELECT ipai.stripe_verify_signature('x'::text, 't=1,v1=00', 'whsec_vg', 300, 'infinity');

SELECT ipai.stripe_verify_signature(NULL::text, NULL, NULL);

SELECT ipai.standard_webhook_sign('{"test": 2432232314}'::text, 'msg_p5jXN8AQM9LWM0D4loKWxJek', '1614265330', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');

SELECT ipai.standard_webhook_verify('{"test": 2432232314}'::bytea, 'msg_p5jXN8AQM9LWM0D4loKWxJek', '1614265330', h, s, 300, to_timestamp(1614265335)) FROM unnest(ARRAY['v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', 'v1,', 'v1,g0hM9', '  v1a,x v2,y ', 'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', '']) h, unnest(ARRAY['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'v1,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw']) s;

SELECT ipai.standard_webhook_verify('x'::text, m, t, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw') FROM unnest(ARRAY['', 'msg_1']) m, unnest(ARRAY['', 'hello', '01', '1614265330']) t;

