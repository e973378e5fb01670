-- share of annotated gold labels that agree with the spec's gold: 1 - annotator noise
SELECT avg(CAST(g.label = o.label AS DOUBLE))
FROM labeling.gold_labels AS g
JOIN ({gold_sql}) AS o ON CAST(g.row_id AS VARCHAR) = CAST(o.row_id AS VARCHAR)
