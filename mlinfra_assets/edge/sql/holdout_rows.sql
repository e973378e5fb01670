-- Holdout rows of the raw table with their label (class index) in `_gold_label` (evaluation only):
-- the spec's gold labels, or without gold the human annotations (holdout.evaluation_labels).
-- {raw_table}, {id_column}, {labels_sql} and {holdout} come from the validated spec.
SELECT r.*, CAST(g.label AS INTEGER) AS _gold_label
FROM {raw_table} AS r
JOIN ({labels_sql}) AS g ON CAST(g.row_id AS VARCHAR) = CAST(r.{id_column} AS VARCHAR)
WHERE {holdout} AND g.label BETWEEN 0 AND {last_class}
ORDER BY r.{id_column}
