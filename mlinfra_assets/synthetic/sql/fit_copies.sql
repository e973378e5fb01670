-- Staged synthetic rows whose features exactly equal one of the synthesizer's fit rows (NULL = NULL),
-- counted before such rows are dropped: the exact-copy share of what the synthesizer sampled.
-- Parameters: the staged parquet files, the fit rows' parquet file.
SELECT count(*)
FROM read_parquet(?) AS s
WHERE EXISTS (
    SELECT 1 FROM read_parquet(?) AS r WHERE {match}
)
