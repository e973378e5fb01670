-- The reference rows (the feature columns and `_partition`, one row per raw row, `_ref_row`
-- numbering them): every raw row of the partitions the model was trained on, holdout included.
-- The window is the model version's recorded one (two parameters); {trained} selects it,
-- or, for a version that did not record it, the partitions the real rows of
-- training.training_set span. Taking all of those partitions' rows, not only the labelled
-- ones, keeps the reference free of the selection bias of the labeling functions (they cover
-- rows with typical amounts more often). Each comparison then takes the rows of this table
-- outside the partitions it compares (a partition is never compared with itself).
-- {target}, {columns}, {relation} are identifiers from the validated spec; {trained} is built
-- from them and the training set's columns.
CREATE OR REPLACE TEMP TABLE {target} AS
WITH trained AS ({trained})
SELECT row_number() OVER () AS _ref_row, _partition, {columns} FROM {relation}, trained
WHERE _partition BETWEEN trained.first_partition AND trained.last_partition
