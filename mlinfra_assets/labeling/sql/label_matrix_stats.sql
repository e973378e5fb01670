-- The storage statistics of the vote columns (min/max bounds, read without a scan)
SELECT {stats}
FROM {table}
LIMIT 1
