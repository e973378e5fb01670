-- share of gold labels that agree with the spec's gold (the demo's oracle): 1 - annotator noise
SELECT avg(CAST(g.label = o.label AS DOUBLE))
FROM labeling.gold_labels AS g
JOIN ({gold_sql}) AS o USING (row_id)
