-- The raw rows of a window, with the columns the model scores.
-- {id_column}, {features}, {relation} are identifiers from the validated spec.
SELECT {id_column} AS row_id, _partition, {features}
FROM {relation}
WHERE _partition >= ? AND _partition < ?
ORDER BY _partition, {id_column}
