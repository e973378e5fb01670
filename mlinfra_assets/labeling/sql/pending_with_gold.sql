-- pending or exported queue rows the simulated annotator (its name bound as ?) has not answered, with the gold label
SELECT q.row_id, g.label
FROM labeling.annotation_queue AS q
JOIN ({gold_sql}) AS g ON CAST(g.row_id AS VARCHAR) = CAST(q.row_id AS VARCHAR)
WHERE q.status IN ('pending', 'exported')
  AND NOT EXISTS (
      SELECT 1 FROM labeling.annotations AS a WHERE a.row_id = q.row_id AND a.annotator = ?
  )
ORDER BY q.row_id
