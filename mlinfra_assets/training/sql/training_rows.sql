-- The training set in a stable order (the trainer shuffles with its own seed).
SELECT * FROM training.training_set ORDER BY _source, _row_id
