-- queue rows nobody has labeled yet (pending or exported), in the order people should see them
SELECT q.row_id, q.status, q.score, q."rank", q.batch_id, {features}
FROM labeling.annotation_queue AS q
JOIN {raw_table} AS r ON r.{id_column} = q.row_id
WHERE q.status IN ('pending', 'exported')
ORDER BY q.queued_at, q."rank", q.row_id
