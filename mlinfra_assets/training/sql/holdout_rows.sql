-- The evaluation holdout: raw rows under the holdout predicate with their label (class index)
-- from {labels_sql}: the spec's gold labels, or without gold the human annotations.
-- Platform columns start with `_` (_row_id, _label): a feature may be named `label`.
SELECT CAST(r.{id} AS VARCHAR) AS _row_id, {raw_features}, CAST(g.label AS INTEGER) AS _label
FROM {raw_table} AS r
JOIN ({labels_sql}) AS g ON CAST(g.row_id AS VARCHAR) = CAST(r.{id} AS VARCHAR)
WHERE {holdout} AND g.label BETWEEN 0 AND {last_class}
ORDER BY _row_id
