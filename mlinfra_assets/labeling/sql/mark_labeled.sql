-- queue rows that got a label (pending, exported to Label Studio, or skipped before) are labeled
UPDATE labeling.annotation_queue SET status = 'labeled'
WHERE status <> 'labeled' AND row_id IN (SELECT row_id FROM labeling.annotations)
