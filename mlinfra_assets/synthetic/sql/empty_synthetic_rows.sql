-- A synthetic rows table with no row (nothing sampled, or rows withheld by the gates), typed like
-- the staged batches: _synthetic_id, the features (typed like raw), _label, _synthesizer_version.
SELECT CAST(NULL AS VARCHAR) AS _synthetic_id, {features}, CAST(NULL AS INTEGER) AS _label,
       CAST(NULL AS VARCHAR) AS _synthesizer_version
FROM {raw} AS r
LIMIT 0
