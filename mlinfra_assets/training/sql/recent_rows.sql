-- The rows the decision's cap looks at (training.dataset.Recent): a seeded sample of at most
-- `limit` (the last parameter) of the raw rows of the latest scored partitions (the first, a
-- list), holdout rows left out (the gate judges on them). The order by a hash of the id and the
-- seed (the second parameter) is the same on every run and thread count. Identifiers: the spec.
SELECT {raw_features}
FROM {raw_table} AS r
WHERE r._partition IN (SELECT unnest(?)) AND NOT {holdout}
ORDER BY hash(CAST(r.{id} AS VARCHAR) || ?), CAST(r.{id} AS VARCHAR)
LIMIT ?
