-- A deterministic sample of training.training_set for the pruned variants' fine-tune.
-- The ? is the number of rows.
SELECT *
FROM training.training_set
ORDER BY hash(_row_id), _row_id
LIMIT ?
