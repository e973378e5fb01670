-- synthetic.synthetic_rows with no row (no class is under the target share), typed like raw.
SELECT CAST(NULL AS VARCHAR) AS synthetic_id, {features}, CAST(NULL AS INTEGER) AS label,
       CAST(NULL AS VARCHAR) AS synthesizer_version
FROM {raw} AS r
LIMIT 0
