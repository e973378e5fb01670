-- confident weak labels outside the holdout, at most ? rows per class (seeded hash order)
SELECT w.row_id, w.label, {features}
FROM labeling.weak_labels AS w
JOIN {raw_table} AS r ON r.{id_column} = w.row_id
WHERE w.confidence >= ? AND NOT {holdout}
QUALIFY row_number() OVER (PARTITION BY w.label ORDER BY hash(w.row_id, ?)) <= ?
