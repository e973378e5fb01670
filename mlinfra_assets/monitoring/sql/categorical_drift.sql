-- PSI, the chi-squared statistic, the Jensen-Shannon divergence and the missing-value shares
-- per partition and categorical feature, in one pass.
-- Inputs: the category counts drift_cat_ref_counts(feature, category, c) and
-- drift_cat_cur_counts(_partition, feature, category, c) (categorical_counts.sql).
-- Categories: the union of both samples (NULL is the category '(null)'); a category the
-- reference never saw gets the share $eps there, so new categories raise PSI and chi-squared.
-- chi2 = sum over categories of (observed - expected)^2 / expected, expected = current rows
-- times the (floored) reference share. JS divergence (base 2, in [0, 1]) uses the plain shares:
-- 0.5 * KL(p || m) + 0.5 * KL(q || m) with m = (p + q) / 2 and 0 * log 0 = 0.
WITH ref AS (SELECT feature, category, c FROM drift_cat_ref_counts),
cur AS (SELECT _partition, feature, category, c FROM drift_cat_cur_counts),
ref_n AS (
    SELECT feature, sum(c) AS n, coalesce(sum(c) FILTER (WHERE category = '(null)'), 0) AS nulls
    FROM ref GROUP BY feature
),
cur_n AS (
    SELECT _partition, feature, sum(c) AS n,
           coalesce(sum(c) FILTER (WHERE category = '(null)'), 0) AS nulls
    FROM cur GROUP BY ALL
),
grid AS (
    SELECT n._partition, r.feature, r.category FROM cur_n n JOIN ref r USING (feature)
    UNION
    SELECT _partition, feature, category FROM cur
),
shares AS (
    SELECT g._partition, g.feature, g.category, cn.n AS current_rows, rn.n AS reference_rows,
           cn.nulls / cn.n AS missing_current, rn.nulls / rn.n AS missing_reference,
           coalesce(cc.c, 0) AS observed,
           coalesce(cc.c, 0) / cn.n AS qc,
           coalesce(rc.c, 0) / rn.n AS qr,
           rc.c IS NULL AS is_new
    FROM grid g
    JOIN cur_n cn USING (_partition, feature)
    JOIN ref_n rn USING (feature)
    LEFT JOIN cur cc USING (_partition, feature, category)
    LEFT JOIN ref rc USING (feature, category)
),
terms AS (
    SELECT *, greatest(qc, $eps) AS pc, greatest(qr, $eps) AS pr, (qc + qr) / 2 AS m
    FROM shares
)
SELECT _partition, feature,
       sum((pc - pr) * ln(pc / pr)) AS psi,
       sum(power(observed - current_rows * pr, 2) / (current_rows * pr)) AS chi2_stat,
       count(*) - 1 AS chi2_dof,
       0.5 * sum(CASE WHEN qc > 0 THEN qc * log2(qc / m) ELSE 0 END)
           + 0.5 * sum(CASE WHEN qr > 0 THEN qr * log2(qr / m) ELSE 0 END) AS js_divergence,
       count(*) FILTER (WHERE is_new) AS new_categories,
       any_value(reference_rows) AS reference_rows,
       any_value(current_rows) AS current_rows,
       any_value(missing_reference) AS missing_reference,
       any_value(missing_current) AS missing_current
FROM terms
GROUP BY ALL
ORDER BY _partition, feature
