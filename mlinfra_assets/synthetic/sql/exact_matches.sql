-- Synthetic rows whose features exactly equal a real row's (privacy: should be none).
SELECT count(*)
FROM {table} AS s
WHERE EXISTS (
    SELECT 1 FROM {raw} AS r WHERE {match}
)
