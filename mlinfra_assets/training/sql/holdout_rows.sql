-- The evaluation holdout: raw rows under the holdout predicate with their gold label.
SELECT CAST(r.{id} AS VARCHAR) AS row_id, {raw_features}, CAST(g.label AS INTEGER) AS label
FROM {raw_table} AS r
JOIN ({gold_sql}) AS g ON CAST(g.row_id AS VARCHAR) = CAST(r.{id} AS VARCHAR)
WHERE {holdout} AND g.label BETWEEN 0 AND {last_class}
ORDER BY row_id
