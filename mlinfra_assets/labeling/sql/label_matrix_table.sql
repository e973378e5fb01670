-- The label matrix's table: votes RLE-compressed (mostly -1 runs; DuckDB's automatic choice
-- tries bit-packing too, which costs more CPU than the rest of the write)
CREATE OR REPLACE TABLE {table} ({columns})
