-- rows to review: every gold label, and a seeded sample of weak labels (at most ? rows), with features;
-- in a fixed order (the review's folds are assigned by position: a view over Parquet, the Spark
-- engine's raw table, returned the same rows in another order from one read to the next)
SELECT g.row_id, 'annotation' AS source, g.label, {features}
FROM labeling.gold_labels AS g
JOIN {raw_table} AS r ON r.{id_column} = g.row_id
UNION ALL
SELECT * FROM (
    SELECT w.row_id, 'weak' AS source, w.label, {features}
    FROM labeling.weak_labels AS w
    JOIN {raw_table} AS r ON r.{id_column} = w.row_id
    WHERE w.label >= 0 AND NOT {holdout}
      AND w.row_id NOT IN (SELECT row_id FROM labeling.gold_labels)
    ORDER BY hash(w.row_id, ?)
    LIMIT ?
)
ORDER BY source, row_id
