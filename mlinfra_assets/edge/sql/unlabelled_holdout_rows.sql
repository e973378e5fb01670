-- Holdout rows of the raw table without labels (no gold and no annotated holdout row yet):
-- enough to time the variants and compare them with fp32, not to score them.
-- {raw_table}, {id_column} and {holdout} come from the validated spec; the ? is the number of rows.
SELECT r.*
FROM {raw_table} AS r
WHERE {holdout}
ORDER BY r.{id_column}
LIMIT ?
