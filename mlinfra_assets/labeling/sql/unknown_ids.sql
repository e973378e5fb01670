-- row ids of the incoming file that are not in the raw table
SELECT i.row_id
FROM _incoming AS i
ANTI JOIN {raw_table} AS r ON CAST(r.{id_column} AS VARCHAR) = i.row_id
ORDER BY i.row_id
