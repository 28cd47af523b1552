-- consume (keyless or with a reused idempotency key), check, record
\set i random(1, 3)
\set k random(0, 400)
\set what random(1, 10)
\if :what <= 5
SELECT soak.consume(:i, :k);
\elif :what <= 8
SELECT soak.check(:i, :k);
\else
SELECT soak.record(:k);
\endif
