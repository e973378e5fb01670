-- labeling.annotations: append-only human labels; row_id has the raw id column's type
CREATE SCHEMA IF NOT EXISTS labeling;
CREATE TABLE IF NOT EXISTS labeling.annotations AS
SELECT {id_column} AS row_id,
       CAST(NULL AS SMALLINT) AS label,
       CAST(NULL AS VARCHAR) AS annotator,
       CAST(NULL AS VARCHAR) AS source,
       CAST(NULL AS VARCHAR) AS file,
       CAST(NULL AS TIMESTAMP) AS created_at
FROM {raw_table}
WHERE false
