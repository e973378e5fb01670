-- Holdout rows of the raw table with their gold label (evaluation only).
-- {raw_table}, {id_column}, {gold_sql} and {holdout} come from the validated spec.
SELECT r.*, g.label AS _gold_label
FROM {raw_table} AS r
JOIN ({gold_sql}) AS g ON g.row_id = r.{id_column}
WHERE {holdout} AND g.label >= 0
ORDER BY r.{id_column}
