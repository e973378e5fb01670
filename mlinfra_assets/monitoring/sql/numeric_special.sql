-- The special buckets of each numeric input, read from the fine histograms:
-- (a) a bucket holding one of the reference's decile cuts (PSI bins split inside it), and
-- (b) a bucket inside which the KS maximum may lie. Every value of a lower bucket is smaller
-- than every value of a higher one, so the empirical CDFs after the last occupied bucket
-- <= b are exact: D_b = |F_ref(b) - F_cur(b)|, and the KS statistic is at least
-- max_b D_b. Inside bucket b each CDF climbs from its value after the previous bucket to its
-- value after b, so |F_ref - F_cur| there is at most
-- max(F_ref(b) - F_cur(b-1), F_cur(b) - F_ref(b-1)); a bucket whose bound cannot beat the
-- lower bound is taken whole, the others are refined value by value (numeric_values.sql),
-- except a bucket holding one distinct value (on both sides): it is a single point already.
WITH cuts AS (
    SELECT feature, lo, inv, unnest(cuts) AS cut FROM drift_num_stats
),
cur_n AS (
    SELECT _partition, feature, coalesce(sum(c) FILTER (WHERE b IS NOT NULL), 0) AS m
    FROM drift_num_cur_hist GROUP BY ALL
),
grid AS (
    SELECT n._partition, h.feature, h.b
    FROM drift_num_ref_hist h JOIN cur_n n USING (feature) WHERE h.b IS NOT NULL
    UNION
    SELECT _partition, feature, b FROM drift_num_cur_hist WHERE b IS NOT NULL
),
cdf AS (
    SELECT g._partition, g.feature, g.b,
           sum(coalesce(r.c, 0)) OVER w / s.n_values AS fr,
           sum(coalesce(h.c, 0)) OVER w / n.m AS fc
    FROM grid g
    JOIN drift_num_stats s ON s.feature = g.feature
    JOIN cur_n n ON n._partition = g._partition AND n.feature = g.feature
    LEFT JOIN drift_num_ref_hist r ON r.feature = g.feature AND r.b = g.b
    LEFT JOIN drift_num_cur_hist h
        ON h._partition = g._partition AND h.feature = g.feature AND h.b = g.b
    WHERE s.n_values > 0 AND n.m > 0
    WINDOW w AS (PARTITION BY g._partition, g.feature ORDER BY g.b
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
bounds AS (
    SELECT feature, b,
           greatest(fr - coalesce(lag(fc) OVER w, 0), fc - coalesce(lag(fr) OVER w, 0)) AS bound,
           max(abs(fr - fc)) OVER (PARTITION BY _partition, feature) AS lower_bound
    FROM cdf
    WINDOW w AS (PARTITION BY _partition, feature ORDER BY b)
),
candidates AS (
    SELECT feature, b FROM bounds WHERE bound > lower_bound - 1e-12
    UNION
    SELECT feature, CAST(greatest(-1, least($buckets, floor((cut - lo) * inv))) AS INTEGER) AS b
    FROM cuts
),
spans AS (
    SELECT feature, b, min(v_min) AS v_min, max(v_max) AS v_max
    FROM (
        SELECT feature, b, v_min, v_max FROM drift_num_ref_hist
        UNION ALL
        SELECT feature, b, v_min, v_max FROM drift_num_cur_hist
    ) WHERE b IS NOT NULL GROUP BY ALL
)
SELECT feature, b FROM candidates JOIN spans USING (feature, b) WHERE v_min < v_max
