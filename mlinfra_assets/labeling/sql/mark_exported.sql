-- queue rows pushed to Label Studio (registered as _pushed) are exported
UPDATE labeling.annotation_queue SET status = 'exported'
WHERE status = 'pending' AND row_id IN (SELECT row_id FROM _pushed)
