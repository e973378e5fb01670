-- The reference rows (the feature columns, one row per raw row): every raw row of the days the model was
-- trained on (the real rows of training.training_set span them), holdout included. Taking
-- all of those days' rows, not only the labelled ones, keeps the reference free of the
-- selection bias of the labeling functions (they cover rows with typical amounts more often).
-- {target}, {columns}, {relation}, {id} are identifiers from the validated spec.
CREATE OR REPLACE TEMP TABLE {target} AS
WITH trained_days AS (
    SELECT min(r._partition) AS first_day, max(r._partition) AS last_day
    FROM {relation} AS r
    WHERE CAST(r.{id} AS VARCHAR) IN (
        SELECT row_id FROM training.training_set WHERE source <> 'synthetic'
    )
)
SELECT {columns} FROM {relation}, trained_days
WHERE _partition BETWEEN trained_days.first_day AND trained_days.last_day
