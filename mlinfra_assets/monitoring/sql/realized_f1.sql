-- Realized quality per partition once annotations arrive: the window's predictions joined with
-- the gold labels (labeling.gold_labels) of the same rows; F1 of the positive class $positive.
-- F1 is NULL when it is undefined (no positive predicted and none labeled).
SELECT p._partition,
       count(*) AS labeled_rows,
       count(*) FILTER (WHERE p.prediction = $positive AND g.label = $positive) AS tp,
       count(*) FILTER (WHERE p.prediction = $positive AND g.label <> $positive) AS fp,
       count(*) FILTER (WHERE p.prediction <> $positive AND g.label = $positive) AS fn,
       string_agg(DISTINCT p.model_version, ',' ORDER BY p.model_version) AS model_versions
FROM monitoring.predictions p
JOIN labeling.gold_labels g ON CAST(g.row_id AS VARCHAR) = CAST(p.row_id AS VARCHAR)
WHERE p._partition >= $start AND p._partition < $end AND g.label >= 0
GROUP BY p._partition
ORDER BY p._partition
