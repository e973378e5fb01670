-- land one file's rows (registered as _incoming); a (row, label, annotator) already stored is skipped
INSERT INTO labeling.annotations
SELECT r.{id_column}, i.label, i.annotator, ?, ?, ?
FROM _incoming AS i
JOIN {raw_table} AS r ON CAST(r.{id_column} AS VARCHAR) = i.row_id
WHERE NOT EXISTS (
    SELECT 1 FROM labeling.annotations AS a
    WHERE a.row_id = r.{id_column} AND a.label = i.label AND a.annotator = i.annotator
)
