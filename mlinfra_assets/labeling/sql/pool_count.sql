-- how many rows may be queued (the pool of pool.sql before its sample)
SELECT count(*)
FROM {raw_table} AS r
WHERE NOT {holdout}
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotations)
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotation_queue)
