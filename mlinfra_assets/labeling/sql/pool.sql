-- rows that may be queued: not holdout (when the spec has gold), not annotated, never queued. The last two ? keep a
-- seeded uniform sample (hash of the row id and the batch's seed, out of {buckets} buckets) when the
-- pool is bigger than active_learning.max_pool_rows: rows from all over the table, not its
-- first ones. No ORDER BY: rows stream in table order (DuckDB preserves insertion order), so
-- the chunked scoring never holds the pool in memory.
SELECT r.{id_column} AS row_id, {features}
FROM {raw_table} AS r
WHERE NOT {pool_holdout}
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotations)
  AND r.{id_column} NOT IN (SELECT row_id FROM labeling.annotation_queue)
  AND hash(r.{id_column}, CAST(? AS BIGINT)) % {buckets} < ?
