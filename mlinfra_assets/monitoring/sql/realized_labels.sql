-- The window's stored predictions of the rows that annotators labeled (labeling.gold_labels):
-- partition, predicted class index, labeled class index, model version. Few rows (annotations).
SELECT p._partition, p._prediction AS predicted, g.label, p._model_version
FROM monitoring.predictions p
JOIN labeling.gold_labels g ON CAST(g.row_id AS VARCHAR) = CAST(p._row_id AS VARCHAR)
WHERE p._partition >= $start AND p._partition < $end AND g.label >= 0
ORDER BY p._partition
