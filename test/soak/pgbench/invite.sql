-- an admin invites an address; most invitations are accepted by a new user
\set i random(1, 3)
\set accept random(1, 4)
SELECT soak.invite(:i) AS token \gset
\if :accept <= 3
SELECT soak.accept(:token);
\endif
