-- rows that may be queued: not holdout, not annotated, never queued (at most ? rows).
-- No ORDER BY: rows stream in table order (DuckDB preserves insertion order), so the
-- chunked scoring never holds the pool in memory.
SELECT r.{id_column} AS row_id, {features}
FROM {raw_table} AS r
WHERE NOT {holdout}
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotations)
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotation_queue)
LIMIT ?
