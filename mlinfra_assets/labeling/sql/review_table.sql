-- labeling.label_review: likely wrong labels (registered as _review), replaced on each run
CREATE OR REPLACE TABLE labeling.label_review AS
SELECT row_id,
       CAST(source AS VARCHAR) AS source,
       CAST(given_label AS VARCHAR) AS given_label,
       CAST(suggested_label AS VARCHAR) AS suggested_label,
       CAST(label_quality AS DOUBLE) AS label_quality,
       CAST(? AS TIMESTAMP) AS reviewed_at
FROM _review
