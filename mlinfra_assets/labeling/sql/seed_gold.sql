-- annotated gold labels outside the holdout, with their features
SELECT g.row_id, g.label, {features}
FROM labeling.gold_labels AS g
JOIN {raw_table} AS r ON r.{id_column} = g.row_id
WHERE NOT {holdout}
