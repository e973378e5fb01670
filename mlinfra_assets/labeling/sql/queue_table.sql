-- labeling.annotation_queue: rows chosen for annotation; row_id has the raw id column's type
CREATE SCHEMA IF NOT EXISTS labeling;
CREATE TABLE IF NOT EXISTS labeling.annotation_queue AS
SELECT {id_column} AS row_id,
       CAST(NULL AS VARCHAR) AS strategy,
       CAST(NULL AS DOUBLE) AS score,
       CAST(NULL AS INTEGER) AS rank,
       CAST(NULL AS VARCHAR) AS model_version,
       CAST(NULL AS VARCHAR) AS status,
       CAST(NULL AS VARCHAR) AS batch_id,
       CAST(NULL AS TIMESTAMP) AS queued_at
FROM {raw_table}
WHERE false
