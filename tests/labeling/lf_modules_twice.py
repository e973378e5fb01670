"""An LF module that writes one LF's SQL form twice (a test fixture: loading must fail)."""

from mlinfra_assets.labeling.forms import sql_labeling_function

big = sql_labeling_function("big", "CASE WHEN amount > 100 THEN 1 END")
big_again = sql_labeling_function("big", "CASE WHEN amount > 200 THEN 1 END")
