CREATE EXTENSION ipai_saas;

SELECT ipai.install_schema();

SET ipai.user_id = '11111111-1111-4111-8111-111111111111';

SELECT ipai.current_user_id();

SET request.jwt.claims = '{"sub": "22222222-2222-4222-8222-222222222222", "nested": {"sub": 1}, "arr": [1, {"x": null}]}';

SELECT ipai.current_user_id();

SET request.jwt.claims = '{"role": "anon"}';

SELECT ipai.current_user_id();

RESET request.jwt.claims;

SELECT ipai.caller_is_privileged(), ipai._current_role_is_privileged();

SELECT ipai.email_is_valid(e) FROM unnest(ARRAY['a@b.co', 'bad', repeat('x', 300) || '@b.co', 'jos' || chr(233) || '@example.fr']) e;

SELECT ipai.create_organization('Valgrind Org', '11111111-1111-4111-8111-111111111111');

SELECT name, status FROM ipai.health();
