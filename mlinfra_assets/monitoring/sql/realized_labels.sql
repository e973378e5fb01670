-- The window's stored predictions of the rows that annotators labeled (labeling.gold_labels):
-- partition, predicted class index, labeled class index, model version, and whether the row is
-- a training row (in {training}: its label, or a weak label of it, trained the model, so it
-- says nothing of how the model does on rows it has not seen). Few rows (annotations).
SELECT p._partition, p._prediction AS predicted, g.label, p._model_version,
       t._row_id IS NOT NULL AS trained
FROM monitoring.predictions p
JOIN labeling.gold_labels g ON CAST(g.row_id AS VARCHAR) = CAST(p._row_id AS VARCHAR)
LEFT JOIN (SELECT DISTINCT CAST(_row_id AS VARCHAR) AS _row_id FROM {training}) t
       ON t._row_id = CAST(p._row_id AS VARCHAR)
WHERE p._partition >= $start AND p._partition < $end AND g.label >= 0
ORDER BY p._partition
