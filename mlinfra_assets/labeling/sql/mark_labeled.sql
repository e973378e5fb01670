-- queue rows that got a label are no longer pending
UPDATE labeling.annotation_queue SET status = 'labeled'
WHERE status = 'pending' AND row_id IN (SELECT row_id FROM labeling.annotations)
