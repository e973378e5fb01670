-- rows that may be queued: not holdout, not annotated, never queued (capped, seeded hash order)
SELECT r.{id_column} AS row_id, {features}
FROM {raw_table} AS r
WHERE NOT {holdout}
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotations)
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotation_queue)
ORDER BY hash(r.{id_column}, ?)
LIMIT ?
