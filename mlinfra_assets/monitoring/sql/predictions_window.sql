-- The raw rows of a window, with the columns the model scores.
-- {id_column}, {features}, {relation} are identifiers from the validated spec.
SELECT CAST({id_column} AS VARCHAR) AS _row_id, _partition, {features}
FROM {relation}
WHERE _partition >= ? AND _partition < ?
ORDER BY _partition, {id_column}
