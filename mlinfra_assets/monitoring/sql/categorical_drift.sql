-- PSI and the chi-squared statistic per partition and categorical feature, in one pass.
-- Inputs: drift_ref_cat(feature, value VARCHAR), drift_cur_cat(_partition, feature, value VARCHAR).
-- Categories: the union of both samples (NULL is the category '(null)'); a category the
-- reference never saw gets the share $eps there, so new categories raise PSI and chi-squared.
-- chi2 = sum over categories of (observed - expected)^2 / expected, expected = current rows
-- times the reference share.
WITH ref AS (
    SELECT feature, coalesce(value, '(null)') AS category, count(*) AS c
    FROM drift_ref_cat GROUP BY ALL
),
cur AS (
    SELECT _partition, feature, coalesce(value, '(null)') AS category, count(*) AS c
    FROM drift_cur_cat GROUP BY ALL
),
ref_n AS (SELECT feature, sum(c) AS n FROM ref GROUP BY feature),
cur_n AS (SELECT _partition, feature, sum(c) AS n FROM cur GROUP BY ALL),
grid AS (
    SELECT n._partition, r.feature, r.category FROM cur_n n JOIN ref r USING (feature)
    UNION
    SELECT _partition, feature, category FROM cur
),
shares AS (
    SELECT g._partition, g.feature, g.category, cn.n AS current_rows, rn.n AS reference_rows,
           coalesce(cc.c, 0) AS observed,
           greatest(coalesce(cc.c, 0) / cn.n, $eps) AS pc,
           greatest(coalesce(rc.c, 0) / rn.n, $eps) AS pr,
           rc.c IS NULL AS is_new
    FROM grid g
    JOIN cur_n cn USING (_partition, feature)
    JOIN ref_n rn USING (feature)
    LEFT JOIN cur cc USING (_partition, feature, category)
    LEFT JOIN ref rc USING (feature, category)
)
SELECT _partition, feature,
       sum((pc - pr) * ln(pc / pr)) AS psi,
       sum(power(observed - current_rows * pr, 2) / (current_rows * pr)) AS chi2_stat,
       count(*) - 1 AS chi2_dof,
       count(*) FILTER (WHERE is_new) AS new_categories,
       any_value(reference_rows) AS reference_rows,
       any_value(current_rows) AS current_rows
FROM shares
GROUP BY ALL
ORDER BY _partition, feature
