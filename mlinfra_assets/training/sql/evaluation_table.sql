-- training.evaluation: one row per model version, slice value and metric; appended per evaluation.
CREATE TABLE IF NOT EXISTS training.evaluation (
    model_version VARCHAR NOT NULL,
    slice VARCHAR NOT NULL,
    slice_value VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE,
    champion_version VARCHAR,
    decision VARCHAR NOT NULL,
    evaluated_at TIMESTAMP NOT NULL
)
