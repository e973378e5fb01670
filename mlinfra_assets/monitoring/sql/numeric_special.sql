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
ref_cdf AS (
    SELECT feature, b, sum(c) OVER (PARTITION BY feature ORDER BY b) AS cum
    FROM drift_num_ref_hist WHERE b IS NOT NULL
),
cur_cdf AS (
    SELECT _partition, feature, b, c, sum(c) OVER (PARTITION BY _partition, feature ORDER BY b) AS cum
    FROM drift_num_cur_hist WHERE b IS NOT NULL
),
-- Between two buckets the current side occupies F_cur stays put and F_ref only grows, so the
-- buckets only the reference occupies neither hold the lower bound's maximum (it is at an
-- end: the current bucket after them, or the one before) nor can their bound exceed it
-- (|F_ref - F_cur| at both of their ends is at most the lower bound). Only the current side's
-- buckets are read per partition, with F_ref after and just before each (ASOF on the
-- reference's CDF): not every reference bucket once per partition.
at_cur AS (
    SELECT h._partition, h.feature, h.b,
           coalesce(ra.cum, 0) / s.n_values AS fr, h.cum / n.m AS fc,
           coalesce(rb.cum, 0) / s.n_values AS fr_before, (h.cum - h.c) / n.m AS fc_before
    FROM cur_cdf h
    JOIN drift_num_stats s ON s.feature = h.feature
    JOIN cur_n n ON n._partition = h._partition AND n.feature = h.feature
    ASOF LEFT JOIN ref_cdf ra ON ra.feature = h.feature AND h.b >= ra.b
    ASOF LEFT JOIN ref_cdf rb ON rb.feature = h.feature AND h.b - 1 >= rb.b
    WHERE s.n_values > 0 AND n.m > 0
),
bounds AS (
    SELECT feature, b,
           greatest(fr - fc_before, fc - fr_before) AS bound,
           max(greatest(abs(fr - fc), abs(fr_before - fc_before))) OVER (PARTITION BY _partition, feature) AS lower_bound
    FROM at_cur
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
