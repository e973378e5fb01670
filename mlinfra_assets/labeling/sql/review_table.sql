-- labeling.label_review: likely wrong labels (registered as _review), replaced on each run
CREATE OR REPLACE TABLE labeling.label_review AS
SELECT row_id, source, given_label, suggested_label, label_quality,
       CAST(? AS TIMESTAMP) AS reviewed_at
FROM _review
