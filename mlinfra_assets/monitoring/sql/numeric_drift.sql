-- PSI, the two-sample KS statistic and the missing-value shares per partition and numeric
-- input, from the fine histograms (drift_num_ref_hist, drift_num_cur_hist), the value-level
-- counts of the special buckets (drift_num_ref_values, drift_num_cur_values; see
-- numeric_special.sql) and the reference statistics (drift_num_stats).
-- A "point" is either a whole ordinary bucket (value NULL, or its value when it holds only
-- one) or one distinct value of a special bucket; points sort by (bucket, value), which is
-- the order of the values themselves.
-- PSI: bins cut at the reference's deciles: the open intervals between the distinct cuts, and
-- each cut value as a bin of its own (a discrete or binary feature, whose deciles tie, gets
-- one bin per value); NULL is a bin too (-1); shares floored at $eps. With k = the number of
-- cuts <= value, the bin is 2k - 1 when value is the k-th cut and 2k otherwise; a bucket
-- taken whole with several values holds no cut, so its bin is 2 * (cuts in lower buckets).
-- KS: max |F_ref - F_cur| over the points (NULLs left out); exact, see numeric_special.sql and
-- the ks CTE.
WITH stats AS (
    SELECT feature, n, n_values, cuts,
           list_transform(cuts, lambda x: CAST(greatest(-1, least($buckets, floor((x - lo) * inv))) AS INTEGER)) AS cut_buckets
    FROM drift_num_stats
),
cur_n AS (
    SELECT _partition, feature, sum(c) AS n, coalesce(sum(c) FILTER (WHERE b IS NOT NULL), 0) AS n_values
    FROM drift_num_cur_hist GROUP BY ALL
),
spans AS (  -- a bucket of one distinct value (both sides) is the point of that value
    SELECT feature, b, CASE WHEN min(v_min) = max(v_max) THEN min(v_min) END AS single
    FROM (
        SELECT feature, b, v_min, v_max FROM drift_num_ref_hist
        UNION ALL
        SELECT feature, b, v_min, v_max FROM drift_num_cur_hist
    ) WHERE b IS NOT NULL GROUP BY ALL
),
ref_points AS (
    SELECT h.feature, h.b, sp.single AS value, h.c
    FROM drift_num_ref_hist h JOIN spans sp USING (feature, b)
    ANTI JOIN drift_num_special s USING (feature, b)
    UNION ALL
    SELECT feature, b, value, c FROM drift_num_ref_values
),
cur_points AS (
    SELECT h._partition, h.feature, h.b, sp.single AS value, h.c
    FROM drift_num_cur_hist h JOIN spans sp USING (feature, b)
    ANTI JOIN drift_num_special s USING (feature, b)
    UNION ALL
    SELECT _partition, feature, b, value, c FROM drift_num_cur_values
),
ref_bins AS (
    SELECT p.feature,
           CASE WHEN p.value IS NULL THEN 2 * len(list_filter(s.cut_buckets, lambda x: x < p.b))
                ELSE 2 * len(list_filter(s.cuts, lambda x: x <= p.value))
                     - CAST(list_contains(s.cuts, p.value) AS INTEGER) END AS bin,
           sum(p.c) AS c
    FROM ref_points p JOIN stats s USING (feature)
    GROUP BY ALL
    UNION ALL
    SELECT feature, -1 AS bin, c FROM drift_num_ref_hist WHERE b IS NULL
),
cur_bins AS (
    SELECT p._partition, p.feature,
           CASE WHEN p.value IS NULL THEN 2 * len(list_filter(s.cut_buckets, lambda x: x < p.b))
                ELSE 2 * len(list_filter(s.cuts, lambda x: x <= p.value))
                     - CAST(list_contains(s.cuts, p.value) AS INTEGER) END AS bin,
           sum(p.c) AS c
    FROM cur_points p JOIN stats s USING (feature)
    GROUP BY ALL
    UNION ALL
    SELECT _partition, feature, -1 AS bin, c FROM drift_num_cur_hist WHERE b IS NULL
),
grid AS (
    SELECT n._partition, b.feature, b.bin FROM cur_n n JOIN ref_bins b USING (feature)
    UNION
    SELECT _partition, feature, bin FROM cur_bins
),
psi AS (
    SELECT _partition, feature, sum((pc - pr) * ln(pc / pr)) AS psi
    FROM (
        SELECT g._partition, g.feature,
               greatest(coalesce(cb.c, 0) / cn.n, $eps) AS pc,
               greatest(coalesce(rb.c, 0) / s.n, $eps) AS pr
        FROM grid g
        JOIN cur_n cn USING (_partition, feature)
        JOIN stats s USING (feature)
        LEFT JOIN cur_bins cb USING (_partition, feature, bin)
        LEFT JOIN ref_bins rb USING (feature, bin)
    ) GROUP BY ALL
),
keys AS (  -- every point of either side, ranked in value order per feature: once, not per partition
    SELECT feature, b, v, dense_rank() OVER (PARTITION BY feature ORDER BY b, v) AS r
    FROM (SELECT feature, b, coalesce(value, 0) AS v FROM ref_points
          UNION SELECT feature, b, coalesce(value, 0) AS v FROM cur_points)
),
ref_cdf AS (  -- the reference's count up to and including each of its points
    SELECT k.feature, k.r, sum(p.c) OVER (PARTITION BY k.feature ORDER BY k.r) AS cum
    FROM (SELECT feature, b, coalesce(value, 0) AS v, sum(c) AS c FROM ref_points GROUP BY ALL) p
    JOIN keys k USING (feature, b, v)
),
cur_cdf AS (
    SELECT p._partition, p.feature, k.r, p.c,
           sum(p.c) OVER (PARTITION BY p._partition, p.feature ORDER BY k.r) AS cum
    FROM (SELECT _partition, feature, b, coalesce(value, 0) AS v, sum(c) AS c FROM cur_points GROUP BY ALL) p
    JOIN keys k USING (feature, b, v)
),
ks AS (
    -- Between two consecutive current points F_cur is constant and F_ref only grows, so
    -- |F_ref - F_cur| peaks at an end: just after a current point (both CDFs there) or just
    -- before one (F_ref before it, F_cur after the previous one); before the first point F_cur is
    -- 0, after the last 1, both covered. F_ref at a rank: the reference's count at its last point
    -- at or before it (ASOF), not a join of every reference point with every partition.
    SELECT c._partition, c.feature,
           max(greatest(abs(coalesce(ra.cum, 0) / s.n_values - c.cum / cn.n_values),
                        abs(coalesce(rb.cum, 0) / s.n_values - (c.cum - c.c) / cn.n_values))) AS ks_stat
    FROM cur_cdf c
    JOIN stats s USING (feature)
    JOIN cur_n cn USING (_partition, feature)
    ASOF LEFT JOIN ref_cdf ra ON ra.feature = c.feature AND c.r >= ra.r
    ASOF LEFT JOIN ref_cdf rb ON rb.feature = c.feature AND c.r - 1 >= rb.r
    WHERE cn.n_values > 0 AND s.n_values > 0
    GROUP BY ALL
)
SELECT cn._partition, cn.feature, psi.psi, ks.ks_stat,
       s.n AS reference_rows, cn.n AS current_rows,
       s.n_values AS ks_reference_n, cn.n_values AS ks_current_n,
       1 - s.n_values / s.n AS missing_reference,
       1 - cn.n_values / cn.n AS missing_current
FROM cur_n cn
JOIN stats s USING (feature)
JOIN psi USING (_partition, feature)
LEFT JOIN ks USING (_partition, feature)
ORDER BY cn._partition, cn.feature
