-- The reference rows (the feature columns and `_partition`, one row per raw row, `_ref_row`
-- numbering them): every raw row of the partitions the model was trained on, holdout included,
-- from the first to the last (two parameters, NULL for a model trained on no real row: no
-- reference). Taking all of those partitions' rows, not only the labelled ones, keeps the
-- reference free of the selection bias of the labeling functions (they cover rows with typical
-- amounts more often). Each comparison then takes the rows of this table outside the partitions
-- it compares (a partition is never compared with itself).
-- {target}, {columns}, {relation} are identifiers from the validated spec; {type} is the SQL
-- type of `_partition`.
CREATE OR REPLACE TEMP TABLE {target} AS
SELECT row_number() OVER () AS _ref_row, _partition, {columns} FROM {relation}
WHERE _partition BETWEEN CAST(? AS {type}) AND CAST(? AS {type})
