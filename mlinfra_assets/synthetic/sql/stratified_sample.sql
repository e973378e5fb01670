-- A deterministic stratified sample of the labeled rows: at most quota[_label + 1] rows
-- per class, chosen by a salted hash of the row id. Parameters: salt, per-class quotas.
SELECT * EXCLUDE (_rank)
FROM (
    SELECT
        l.*,
        row_number() OVER (
            PARTITION BY l._label ORDER BY hash(CAST(l._row_id AS VARCHAR) || ?), l._row_id
        ) AS _rank
    FROM ({labeled}) AS l
)
WHERE _rank <= list_extract(?::BIGINT[], _label + 1)
ORDER BY _row_id
