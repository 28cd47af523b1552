SELECT length(ipai._new_token()), ipai._token_hash('') = sha256(''::bytea), ipai._token_hash(repeat('x', 100000)) = sha256(repeat('x', 100000)::bytea);

SELECT ipai.email_is_valid(e) FROM unnest(ARRAY[E'a\u200b@b.co', E'\u00e9@b\u00fccher.example', 'a@b.c' || chr(12354), E'a\u00a0@b.co']) e;

SET ipai.user_id = '11111111-1111-4111-8111-111111111111';

SELECT ipai.invite_member(id, 'Valgrind@Example.com', 'viewer') IS NOT NULL FROM ipai.organizations WHERE name = 'Valgrind Org';

SELECT length(ipai.typescript_types()) > 1000;

RESET ipai.user_id;

