-- PSI, the two-sample KS statistic and the missing-value shares per partition and numeric
-- feature, in one pass.
-- Inputs: drift_ref_num(feature, value DOUBLE), drift_cur_num(_partition, feature, value DOUBLE).
-- PSI: bins cut at the reference's deciles: the open intervals between the distinct cuts, and
-- each cut value as a bin of its own (so a discrete or binary feature, whose deciles tie, gets
-- one bin per value instead of collapsing into one); NULL is a bin too; shares floored at $eps.
-- A value finds its bin by a search (an ASOF join on the sorted cuts), not one comparison per
-- bin: with k = the number of cuts <= value, the bin is 2k - 1 when value is the k-th cut and
-- 2k otherwise (0 below the first cut).
-- KS: max |F_ref(v) - F_cur(v)| over every value v of either sample (NULLs left out).
WITH edges AS (
    SELECT feature, unnest(cuts) AS cut, generate_subscripts(cuts, 1) AS k
    FROM (
        SELECT feature,
               list_sort(list_distinct(quantile_cont(value, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]))) AS cuts
        FROM drift_ref_num WHERE value IS NOT NULL GROUP BY feature
    )
),
ref_n AS (
    SELECT feature, count(*) AS n, count(value) AS n_values FROM drift_ref_num GROUP BY feature
),
cur_n AS (
    SELECT _partition, feature, count(*) AS n, count(value) AS n_values
    FROM drift_cur_num GROUP BY _partition, feature
),
ref_values AS (
    SELECT feature, value, count(*) AS c FROM drift_ref_num GROUP BY ALL
),
cur_values AS (
    SELECT _partition, feature, value, count(*) AS c FROM drift_cur_num GROUP BY ALL
),
ref_bins AS (
    SELECT r.feature,
           CASE WHEN r.value IS NULL THEN -1 WHEN e.k IS NULL THEN 0
                WHEN r.value = e.cut THEN 2 * e.k - 1 ELSE 2 * e.k END AS bin,
           sum(r.c) AS c
    FROM ref_values r ASOF LEFT JOIN edges e ON r.feature = e.feature AND r.value >= e.cut
    GROUP BY ALL
),
cur_bins AS (
    SELECT r._partition, r.feature,
           CASE WHEN r.value IS NULL THEN -1 WHEN e.k IS NULL THEN 0
                WHEN r.value = e.cut THEN 2 * e.k - 1 ELSE 2 * e.k END AS bin,
           sum(r.c) AS c
    FROM cur_values r ASOF LEFT JOIN edges e ON r.feature = e.feature AND r.value >= e.cut
    GROUP BY ALL
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
               greatest(coalesce(rb.c, 0) / rn.n, $eps) AS pr
        FROM grid g
        JOIN cur_n cn USING (_partition, feature)
        JOIN ref_n rn USING (feature)
        LEFT JOIN cur_bins cb USING (_partition, feature, bin)
        LEFT JOIN ref_bins rb USING (feature, bin)
    ) GROUP BY ALL
),
points AS (
    SELECT _partition, feature, value, sum(cr) AS cr, sum(cc) AS cc
    FROM (
        SELECT n._partition, r.feature, r.value, r.c AS cr, 0 AS cc
        FROM ref_values r JOIN cur_n n USING (feature)
        WHERE r.value IS NOT NULL
        UNION ALL
        SELECT _partition, feature, value, 0 AS cr, c AS cc
        FROM cur_values WHERE value IS NOT NULL
    ) GROUP BY ALL
),
ks AS (
    SELECT _partition, feature, max(abs(fr - fc)) AS ks_stat
    FROM (
        SELECT p._partition, p.feature,
               sum(p.cr) OVER w / rn.n_values AS fr,
               sum(p.cc) OVER w / cn.n_values AS fc
        FROM points p JOIN ref_n rn USING (feature) JOIN cur_n cn USING (_partition, feature)
        WHERE cn.n_values > 0
        WINDOW w AS (PARTITION BY p._partition, p.feature ORDER BY p.value
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ) GROUP BY ALL
)
SELECT cn._partition, cn.feature, psi.psi, ks.ks_stat,
       rn.n AS reference_rows, cn.n AS current_rows,
       rn.n_values AS ks_reference_n, cn.n_values AS ks_current_n,
       1 - rn.n_values / rn.n AS missing_reference,
       1 - cn.n_values / cn.n AS missing_current
FROM cur_n cn
JOIN ref_n rn USING (feature)
JOIN psi USING (_partition, feature)
LEFT JOIN ks USING (_partition, feature)
ORDER BY cn._partition, cn.feature
