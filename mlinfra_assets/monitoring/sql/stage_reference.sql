-- The reference rows (the feature columns, one row per raw row): every raw row of the partitions
-- the model was trained on (the real rows of training.training_set span them), holdout included.
-- Taking all of those partitions' rows, not only the labelled ones, keeps the reference free of
-- the selection bias of the labeling functions (they cover rows with typical amounts more often).
-- {exclude} leaves the compared partitions out (batches: a batch is never compared with itself).
-- {target}, {columns}, {relation}, {id}, {set_id}, {set_source} are identifiers from the
-- validated spec and the training set's columns.
CREATE OR REPLACE TEMP TABLE {target} AS
WITH trained AS (
    SELECT min(r._partition) AS first_partition, max(r._partition) AS last_partition
    FROM {relation} AS r
    WHERE CAST(r.{id} AS VARCHAR) IN (
        SELECT CAST({set_id} AS VARCHAR) FROM training.training_set WHERE {set_source} <> 'synthetic'
    )
)
SELECT {columns} FROM {relation}, trained
WHERE _partition BETWEEN trained.first_partition AND trained.last_partition {exclude}
