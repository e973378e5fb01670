-- labeling.gold_labels: one label per annotated row (rule in labeling/assets/human.py), with its
-- class name from labeling.classes (written just before, from the spec)
CREATE OR REPLACE VIEW labeling.gold_labels AS
WITH per_annotator AS (
    -- an annotator who labeled a row again counts once, with their latest label
    SELECT row_id, annotator, arg_max(label, created_at) AS label, max(created_at) AS labeled_at
    FROM labeling.annotations
    GROUP BY row_id, annotator
),
tally AS (
    SELECT row_id, label, count(*) AS votes, max(labeled_at) AS latest
    FROM per_annotator
    GROUP BY row_id, label
),
totals AS (
    SELECT row_id, count(*) AS n_annotations FROM labeling.annotations GROUP BY row_id
)
SELECT t.row_id, t.label, c.class, n.n_annotations
FROM tally AS t
JOIN totals AS n USING (row_id)
LEFT JOIN labeling.classes AS c ON c.label = t.label
QUALIFY row_number() OVER (PARTITION BY t.row_id ORDER BY t.votes DESC, t.latest DESC, t.label) = 1
