-- the Edge sender: claim up to 5 rows of a topic, then mark them sent
\set t random(0, 1)
SELECT soak.claim(:t) AS ids \gset
SELECT soak.mark(:ids);
