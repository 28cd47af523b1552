-- reserve, work a little, then finalize (below, at or above the hold),
-- release, or leave it to expire
\set i random(1, 3)
\set q random(1, 5)
\set ttl random(50, 2000)
\set how random(1, 3)
\set actual random(0, 7)
SELECT soak.reserve(:i, :q, :ttl) AS hold \gset
\sleep 20 ms
SELECT soak.close_hold(:i, :hold, :how, :actual);
