-- append a batch (registered as _batch); a row ever queued, or a batch already there, is skipped
INSERT INTO labeling.annotation_queue
SELECT b.row_id, ?, b.score, b.rank, ?, 'pending', ?, ?
FROM _batch AS b
WHERE b.row_id NOT IN (SELECT row_id FROM labeling.annotation_queue)
  AND NOT EXISTS (SELECT 1 FROM labeling.annotation_queue WHERE batch_id = ?)
