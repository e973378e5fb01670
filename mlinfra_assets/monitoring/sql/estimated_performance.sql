-- The spec's training metric of each partition of [$start, $end), estimated from the champion's
-- calibrated probabilities alone (confidence-based performance estimation): a row predicted as
-- class k is a true positive of k with probability c_k; a row predicted otherwise is a false
-- negative of k with probability c_k. From the expected counts per class come each class's F1
-- (2 A / (n_pred + A + B): A expected true positives, B expected false negatives) and the
-- metric; its variance (labels drawn from the calibrated probabilities, one class per row) by
-- the delta method: per row, sum_k g_k^2 c_k - (sum_k g_k c_k)^2, g_k the metric's derivative
-- by the row's indicator of class k. g_k depends on the row only through its predicted class,
-- so one pass over the predictions suffices: per partition and predicted class, the rows and
-- the first and second moments of the calibrated probabilities.
-- The lists in braces are generated from the spec's classes and metric
-- (estimation.estimated_sql): the first moments s<k> and second moments s<k>_<l>; each class's
-- predicted rows n<k>, expected true positives a<k> and false negatives b<k>; its F1 f1_<k> and
-- that F1's derivatives ga<k>, gb<k> by a<k> and b<k>; the metric (`estimated`, over m classes);
-- the variance's two terms per predicted class.
WITH moments AS (
    SELECT _partition, _model_version, _prediction AS pred, count(*)::DOUBLE AS rows_pred,
           {moments}
    FROM monitoring.predictions
    WHERE _partition >= $start AND _partition < $end
    GROUP BY _partition, _model_version, _prediction
),
counts AS (
    SELECT _partition, sum(rows_pred) AS n,
           string_agg(DISTINCT _model_version, ',' ORDER BY _model_version) AS model_version,
           {class_counts}
    FROM moments
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
    SELECT m._partition, sum({first_term} - ({second_term})) AS variance
    FROM moments AS m JOIN figure AS f USING (_partition)
    GROUP BY m._partition
)
SELECT f._partition, f.model_version, f.n::BIGINT AS rows, f.estimated,
       greatest(f.estimated - 1.96 * sqrt(greatest(s.variance, 0)), 0) AS estimated_low,
       least(f.estimated + 1.96 * sqrt(greatest(s.variance, 0)), 1) AS estimated_high
FROM figure AS f JOIN spread AS s USING (_partition)
ORDER BY f._partition
