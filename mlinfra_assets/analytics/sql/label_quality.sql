-- analytics.label_quality: one row per labeling function (coverage, overlaps, conflicts, accuracy
-- against gold where gold exists), next to the class balance of the weak labels it produced.
-- Example: SELECT lf, coverage, emp_acc FROM analytics.label_quality ORDER BY emp_acc NULLS LAST;
CREATE OR REPLACE VIEW analytics.label_quality AS
WITH weak AS (
    SELECT count(*) AS weak_rows,
           avg(CASE WHEN label = {positive_index} THEN 1.0 ELSE 0.0 END) AS weak_positive_share,
           avg(CASE WHEN label = -1 THEN 1.0 ELSE 0.0 END) AS weak_abstain_share,
           avg(confidence) AS weak_mean_confidence,
           max(label_model_version) AS label_model_version
    FROM labeling.weak_labels
)
SELECT s.lf, s.polarity, s.coverage, s."overlaps",  -- OVERLAPS is a keyword: quoted
       s.conflicts, s.correct, s.incorrect, s.emp_acc,
       s.correct + s.incorrect AS gold_rows_voted,
       w.weak_rows, w.weak_positive_share, w.weak_abstain_share, w.weak_mean_confidence,
       w.label_model_version
FROM labeling.lf_summary s
CROSS JOIN weak w
