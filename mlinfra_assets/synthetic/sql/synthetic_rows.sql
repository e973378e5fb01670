-- The staged synthetic batches, minus any row whose features exactly equal a real row's
-- (a synthesizer must not hand back copies of real records). Parameter: parquet files.
SELECT s.*
FROM read_parquet(?) AS s
WHERE NOT EXISTS (
    SELECT 1 FROM {raw} AS r WHERE {match}
)
ORDER BY s._synthetic_id
