-- The spec's training metric of each partition of [$start, $end), estimated from the champion's
-- calibrated probabilities alone (confidence-based performance estimation): a row predicted as
-- class k is a true positive of k with probability c_k; a row predicted otherwise is a false
-- negative of k with probability c_k. From the expected counts per class come each class's F1
-- (2 A / (n_pred + A + B): A expected true positives, B expected false negatives) and the
-- metric; its variance (labels drawn from the calibrated probabilities, one class per row) by
-- the delta method: per row, sum_k g_k^2 c_k - (sum_k g_k c_k)^2, g_k the metric's derivative
-- by the row's indicator of class k; the interval is the estimate +- 1.96 standard deviations.
-- The lists in braces below are generated from the spec's classes and metric
-- (estimation.estimated_sql): each class k's calibrated column as c<k>; its predicted rows n<k>,
-- expected true positives a<k> and false negatives b<k>; its F1 f1_<k> and that F1's
-- derivatives ga<k>, gb<k> by a<k> and b<k>; the metric (`estimated`, over m classes); the
-- two per-row sums of the variance.
WITH scored AS (
    SELECT _partition, _model_version, _prediction AS pred, {calibrated}
    FROM monitoring.predictions
    WHERE _partition >= $start AND _partition < $end
),
counts AS (
    SELECT _partition, count(*)::DOUBLE AS n,
           string_agg(DISTINCT _model_version, ',' ORDER BY _model_version) AS model_version,
           {class_counts}
    FROM scored
    GROUP BY _partition
),
per_class AS (
    SELECT *, {class_f1}
    FROM counts
),
figure AS (
    SELECT *, {estimate}
    FROM per_class
),
spread AS (
    SELECT s._partition, sum({gradient_sq} - pow({gradient_mean}, 2)) AS variance
    FROM scored AS s JOIN figure AS f USING (_partition)
    GROUP BY s._partition
)
SELECT f._partition, f.model_version, f.n::BIGINT AS rows, f.estimated,
       greatest(f.estimated - 1.96 * sqrt(greatest(s.variance, 0)), 0) AS estimated_low,
       least(f.estimated + 1.96 * sqrt(greatest(s.variance, 0)), 1) AS estimated_high
FROM figure AS f JOIN spread AS s USING (_partition)
ORDER BY f._partition
