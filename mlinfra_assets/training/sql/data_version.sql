-- Order-independent fingerprint of a table's contents: row count and the sum of row hashes.
SELECT substr(md5(count(*)::VARCHAR || ':' || coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR), 1, 16)
FROM {table} AS t
