-- rows whose annotators disagree (each annotator's latest label), with the label gold_labels keeps
WITH per_annotator AS (
    SELECT row_id, annotator, arg_max(label, created_at) AS label
    FROM labeling.annotations
    GROUP BY row_id, annotator
)
SELECT p.row_id,
       string_agg(p.annotator || '=' || CAST(p.label AS VARCHAR), ', ' ORDER BY p.annotator) AS votes,
       any_value(g.label) AS gold_label
FROM per_annotator AS p
JOIN labeling.gold_labels AS g USING (row_id)
GROUP BY p.row_id
HAVING count(DISTINCT p.label) > 1
ORDER BY p.row_id
