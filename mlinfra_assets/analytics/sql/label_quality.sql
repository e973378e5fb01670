-- analytics.label_quality: one row per labeling function (coverage, overlaps, conflicts, accuracy
-- against gold where gold exists), next to the class balance of the weak labels it produced
-- (weak_class_counts: rows per class name; two classes: weak_positive_share too).
-- Example: SELECT lf, coverage, emp_acc FROM analytics.label_quality ORDER BY emp_acc NULLS LAST;
CREATE OR REPLACE VIEW analytics.label_quality AS
WITH weak AS (
    SELECT count(*) AS weak_rows,
           {positive_share}
           to_json(map_from_entries(list_transform(
               map_entries(histogram(label) FILTER (WHERE label >= 0)),
               lambda e: {{'k': list_extract({class_names}, e.key + 1), 'v': e.value}}))) AS weak_class_counts,
           avg(CASE WHEN label = -1 THEN 1.0 ELSE 0.0 END) AS weak_abstain_share,
           avg(confidence) AS weak_mean_confidence,
           max(label_model_version) AS label_model_version
    FROM labeling.weak_labels
)
SELECT s.lf, s.polarity, s.coverage, s."overlaps",  -- OVERLAPS is a keyword: quoted
       s.conflicts, s.correct, s.incorrect, s.emp_acc,
       s.correct + s.incorrect AS gold_rows_voted,
       w.*
FROM labeling.lf_summary s
CROSS JOIN weak w
