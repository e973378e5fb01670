-- The one pass over the predictions that confidence-based performance estimation needs: per
-- partition of [$start, $end) and predicted class, the rows and the first and second moments of
-- the champion's calibrated probabilities (s<k> = sum of calibrated_<k>, s<k>_<l> = sum of
-- calibrated_<k> * calibrated_<l>; the list in braces is generated from the spec's classes and
-- metric by estimation.moments_sql). Every figure of the estimate and its interval follows from
-- these few rows per partition (estimation.estimate_from_moments). A partition's predictions
-- come from one scoring run (scoring.replace_window replaces whole partitions), so from one
-- model version: any_value names it without grouping by the string (grouping by it cost a
-- tenth of the query). Where the time goes (2026-12-07, DuckDB 2.0.1, 600k rows in 6 partitions):
-- the grouped scan is ~3/4 of the call and near DuckDB's floor (count(*) alone grouped the same
-- way costs ~85% of this query; any_value and the second moment ~3-10% each), planning ~1/5
-- (PREPARE/EXECUTE saves nothing: the statement is re-planned at each EXECUTE), fetch and the
-- closed form the rest. Slower variants measured: one group per partition with the predicted
-- class as a factor or a FILTER, one query per partition, fetching the rows to numpy, fsum,
-- min() for the version, the hash aggregate instead of the perfect one. These comment lines
-- are left out of the text sent to DuckDB (estimation.moments_sql).
SELECT _partition, _prediction AS pred, count(*) AS rows_pred, any_value(_model_version) AS model_version,
       {moments}
FROM monitoring.predictions
WHERE _partition >= $start AND _partition < $end
GROUP BY _partition, _prediction
