"""The dataset spec: everything dataset-specific lives in one YAML file.

`MLINFRA_SPEC` points to the file; the built-in demo's `mlinfra.yaml` is the default.
"""

from __future__ import annotations

import os
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = PROJECT_ROOT / "mlinfra.yaml"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Every column the platform adds beside a user's columns starts with this prefix; a spec
# that names a column with it is refused at load.
RESERVED_PREFIX = "_"
CADENCES = ("hourly", "daily", "weekly", "monthly")
MAX_CLASSES = 100
GENERATED_ID = "_row_id"  # the id column the platform adds when the source has none


class SpecError(ValueError):
    """The dataset spec is wrong: the message names the setting and what to do."""


def _identifier(value: str, what: str) -> str:
    if not _IDENT.match(value):
        raise ValueError(f"{what} {value!r} is not a plain SQL identifier (letters, digits, _)")
    return value


def _user_column(value: str, what: str) -> str:
    """A column the user names: a plain identifier without the platform's reserved prefix."""
    _identifier(value, what)
    if value.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"{what} {value!r} starts with {RESERVED_PREFIX!r}, which is reserved for the columns the "
            f"platform adds: rename the column in the source (or alias it in a view) and in the spec"
        )
    return value


def class_column(name: str) -> str:
    """The column suffix of a class name: letters, digits and _ kept, anything else as _."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(name))


class Source(BaseModel):
    kind: Literal["duckdb_table", "parquet", "csv"] = "duckdb_table"
    table: str | None = None
    path: str | None = None
    name: str
    # with a timestamp column: the first partition (default: the data's first day) and the
    # exclusive end (omit for an open-ended, live source); partitions are `cadence` long
    start_date: date | None = None
    end_date: date | None = None
    cadence: Literal["hourly", "daily", "weekly", "monthly"] = "daily"
    # a window of time partitions is read, validated and landed in runs of whole partitions of
    # about this many source rows each (memory is one run's; each run is its own transaction)
    ingest_chunk_rows: int = Field(1_000_000, ge=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _identifier(v, "source.name")

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        if v is not None:
            for part in v.split("."):
                _identifier(part, "source.table part")
        return v

    @model_validator(mode="after")
    def _where(self) -> Source:
        if self.kind == "duckdb_table" and not self.table:
            raise ValueError("source.kind is duckdb_table: set source.table (schema.table)")
        if self.kind in ("parquet", "csv") and not self.path:
            raise ValueError(f"source.kind is {self.kind}: set source.path")
        return self


class NumericFeature(BaseModel):
    min: float | None = None
    max: float | None = None
    nullable: bool = False


class CategoricalFeature(BaseModel):
    values: list[str] | None = None
    nullable: bool = False


class Features(BaseModel):
    numeric: dict[str, NumericFeature] = Field(default_factory=dict)
    categorical: dict[str, CategoricalFeature] = Field(default_factory=dict)

    @field_validator("numeric", "categorical", mode="before")
    @classmethod
    def _none_is_empty(cls, v: object) -> object:
        if isinstance(v, list):
            return {name: {} for name in v}
        return v or {}


class Gold(BaseModel):
    """Ground-truth labels, used for evaluation and the simulated annotator, never as a
    feature. Where they live: `table` (a warehouse table), `path` (a CSV or Parquet file),
    or neither: the source's own `column` (the target column of the user's file)."""

    column: str = "label"
    table: str | None = None
    path: str | None = None
    id_column: str | None = None  # the id column of `table` / `path` (default: the spec's id_column)

    @field_validator("column", "id_column")
    @classmethod
    def _col(cls, v: str | None) -> str | None:
        return v if v is None else _identifier(v, "gold column")

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        if v is not None:
            parts = v.split(".")
            if len(parts) != 2:
                raise ValueError(f"gold.table {v!r}: name it as schema.table")
            for part in parts:
                _identifier(part, "gold.table part")
        return v

    @model_validator(mode="after")
    def _one_place(self) -> Gold:
        if self.table and self.path:
            raise ValueError("gold: set gold.table or gold.path, not both")
        return self

    @property
    def in_source(self) -> bool:
        """The labels are a column of the source itself."""
        return self.table is None and self.path is None


class Drift(BaseModel):
    day: int | None = None
    covariate: bool = True
    concept: bool = True


class Demo(BaseModel):
    rows: int = 200_000
    customers: int = 20_000
    merchants: int = 2_000
    fraud_rate: float = 0.015
    seed: int = 7
    drift: Drift = Field(default_factory=Drift)


class Annotator(BaseModel):
    simulated: bool = False
    noise_rate: float = 0.05
    name: str = "oracle-sim"


class ActiveLearning(BaseModel):
    # uncertainty / margin / entropy (modAL.uncertainty), ranked_batch (modAL.batch),
    # committee (modAL.disagreement), random (the baseline)
    strategy: Literal["uncertainty", "margin", "entropy", "ranked_batch", "committee", "random"] = "uncertainty"
    # a batch is `batch_share` of the eligible pool, at least `batch_size` and at most
    # `max_batch_size` rows (batch_share 0: always batch_size), so that a larger warehouse
    # does not train from the same few hundred answers
    batch_size: int = Field(300, ge=1, le=100_000)
    batch_share: float = Field(0.001, ge=0.0, le=1.0)
    max_batch_size: int = Field(5_000, ge=1, le=100_000)
    seed_confidence: float = 0.95
    committee_size: int = Field(5, ge=2, le=20)
    # a bigger pool is scored on a seeded uniform sample of about this many rows (new each batch)
    max_pool_rows: int = Field(5_000_000, ge=1)

    def batch_rows(self, eligible: int) -> int:
        """Rows to queue from a pool of `eligible` rows: the pool's `batch_share`, within
        [batch_size, max(batch_size, max_batch_size)]."""
        return min(max(self.batch_size, round(self.batch_share * eligible)), max(self.batch_size, self.max_batch_size))


SYNTHESIZERS = ("gaussian_copula", "ctgan", "tvae", "copula_gan")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(>=|<=|>|<)\s*([A-Za-z_]\w*|-?[0-9.]+(?:[eE]-?[0-9]+)?)\s*$")


class SyntheticPrivacy(BaseModel):
    # median distance to the closest fit row: synthetic rows / real holdout rows; under this, blocked
    min_dcr_ratio: float = 0.8
    rows: int = 2_000  # rows per side compared (deterministic samples)


class Labeling(BaseModel):
    """Weak supervision: `class_balance` (prior per class, in the order of `classes`)
    overrides the LF module's CLASS_BALANCE; without either it is estimated (from
    annotated gold labels, else from the LFs' majority vote). The label model is fit on at
    most `fit_rows` voted rows (scaled down in proportion to their vote patterns) and
    applied to every row."""

    class_balance: list[float] | None = None
    chunk_rows: int = Field(default=50_000, gt=0)
    fit_rows: int = Field(default=100_000, gt=0)  # Snorkel builds its overlap matrix with an integer matmul: ~1 s per 100k rows


class Synthetic(BaseModel):
    synthesizer: str = "gaussian_copula"  # one of SYNTHESIZERS
    epochs: int = 100  # ctgan, tvae, copula_gan
    fit_rows: int = 20_000
    target_share: float = 0.10
    min_class_rows: int = 30  # a class with fewer labeled rows is not sampled (warning)
    quality_threshold: float = 0.8
    batch_rows: int = 5_000  # conditional sampling batch: bounds memory
    max_categories: int = 200  # more distinct values: high-cardinality text, not modeled
    metadata: dict[str, str | dict[str, str]] = Field(default_factory=dict)  # column -> sdtype
    constraints: list[str] = Field(default_factory=list)  # "amount >= 0", "low <= high"
    privacy: SyntheticPrivacy = Field(default_factory=SyntheticPrivacy)
    utility: bool = True  # TSTR vs TRTR and the model's F1 with and without synthetic rows
    # the model with / without synthetic trains on every gold row and at most this many weak and
    # synthetic rows (the same seeded share of each): two trainings, not two of the full data
    utility_rows: int = Field(default=100_000, gt=0)

    @field_validator("synthesizer")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SYNTHESIZERS:
            raise ValueError(f"synthetic.synthesizer {v!r} is unknown: choose one of {', '.join(SYNTHESIZERS)}")
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: list[str]) -> list[str]:
        for text in v:
            if not _CONSTRAINT.match(text):
                raise ValueError(
                    f"synthetic.constraints {text!r} is not `column OP number` or `column OP column` "
                    "(OP one of >=, <=, >, <)"
                )
        return v


METRICS = ("auto", "f1", "macro_f1", "accuracy")


class Training(BaseModel):
    # the figure that chooses the epoch, gates the champion, judges edge variants and
    # synthetic utility: auto = F1 of the positive class for two classes, macro-F1 for more
    metric: Literal["auto", "f1", "macro_f1", "accuracy"] = "auto"
    hidden: list[int] = Field(default_factory=lambda: [64, 32])
    epochs: int = 8
    batch_size: int = 1024
    learning_rate: float = 0.002
    weights: dict[str, float] = Field(
        default_factory=lambda: {"gold": 1.0, "weak": 0.5, "synthetic": 0.3}
    )
    # synthetic rows carry at most this share of each class's training mass (weight x soft
    # target): their weight is scaled down per class when `weights.synthetic` would give more
    synthetic_max_share: float = Field(default=0.2, ge=0.0, le=1.0)
    # mixup: each training row is blended with a random partner, lam ~ Beta(mixup, mixup); 0: off
    mixup: float = Field(default=0.0, ge=0.0)
    # an epoch draws at most this many training rows (a fresh seeded sample each epoch), so that
    # validation and early stopping come at least this often: on millions of weak rows one full
    # pass already fits the labeling functions' noise (10M demo rows: holdout F1 0.22 with full
    # passes, 0.50 with 1M-row epochs); 0: every epoch is one pass over all rows
    epoch_rows: int = Field(default=1_000_000, ge=0)
    holdout_percent: int = 10
    seed: int = 7
    promotion_margin: float = 0.01
    # two classes: the decision flags at most 1.5x the estimated positive share (the champion's
    # calibrated probabilities) of the rows of the latest this many scored partitions, so a
    # retrain after a shift does not flag several times the positives they hold; 0: no cap
    recent_partitions: int = Field(default=3, ge=0)


class Serving(BaseModel):
    # a challenger the gate would promote first scores this many live partitions beside the
    # champion as alias `shadow` (monitoring.shadow_predictions); 0: promoted at once
    shadow_days: int = Field(default=1, ge=0)
    # kept out when its predicted class shares move more than this (total variation) from the
    # champion's on the same rows, or its realized metric (where labels arrived) falls more than
    # shadow_metric_margin below the champion's
    shadow_share_margin: float = Field(default=0.1, ge=0.0, le=1.0)
    shadow_metric_margin: float = Field(default=0.02, ge=0.0)


class Edge(BaseModel):
    f1_margin: float = 0.02
    prune_amounts: list[float] = Field(default_factory=lambda: [0.5, 0.8])  # shares of Linear weights zeroed
    finetune_rows: int = 20000  # training-set rows the pruned variants are fine-tuned on
    finetune_epochs: int = 2
    finetune_learning_rate: float = 0.001
    finetune_mixup: float = Field(default=0.0, ge=0.0)  # mixup alpha of that fine-tune, as training.mixup
    seed: int = 7

    @field_validator("prune_amounts")
    @classmethod
    def _amounts(cls, v: list[float]) -> list[float]:
        bad = [a for a in v if not 0 < a < 1]
        if bad or len({round(a * 100) for a in v}) != len(v):
            raise ValueError(f"edge.prune_amounts {v}: each must be in (0, 1) and distinct in whole percent")
        return v


class Thresholds(BaseModel):
    max_quarantine_share: float = 0.05
    max_volume_ratio: float = 5.0  # a day with this many times the median daily rows fails the suite
    psi_alert: float = 0.2
    ks_alert: float = 0.1
    drift_share_alert: float = 0.3
    js_alert: float = 0.05  # Jensen-Shannon divergence (base 2) of a categorical feature
    missing_rate_alert: float = 0.1  # absolute change of a feature's share of missing values
    drift_alpha: float = 0.01  # significance of the KS / chi-squared tests, after correction
    drift_correction: Literal["holm", "bonferroni", "fdr_bh", "none"] = "holm"
    retrain_cooldown_days: int = Field(default=7, ge=0)  # drifted days this close: same event
    # feature drift asks for a retrain once this many consecutive partitions drifted (1: the
    # first drifted one); a metric drop (metric_drop) asks at once
    drift_persistence: int = Field(default=1, ge=1)
    retrain_new_gold_labels: int | None = Field(default=200, ge=1)  # this many new gold labels: retrain (null: off)
    # a partition's realized metric needs this many labeled rows that were not training rows;
    # with fewer it is "too few labels", not a number
    min_labeled_rows: int = Field(default=30, ge=1)
    # a partition whose metric (realized, else estimated without labels) is, with its whole 95%
    # interval, more than this below the scoring model's holdout figure asks for a retrain
    # (the drift sensor's event and cooldown); null: off
    metric_drop: float | None = Field(default=0.05, ge=0)
    slices: list[str] = Field(default_factory=list)


class WarehouseSettings(BaseModel):
    # duckdb: every table lives in the DuckDB file. spark: the row-heavy stages (ingest with its
    # checks, the label matrix) run on Apache Spark and write their tables as Parquet in the lake;
    # the DuckDB file holds views over them, so every other stage and every analyst reads them
    # as before (docs/engines.md)
    engine: Literal["duckdb", "spark"] = "duckdb"
    # the lake's root (relative to the spec; default: `lake/` beside the warehouse file)
    lake: str | None = None


# Spark settings the lake relies on (partition keys in UTC, timestamps DuckDB reads without a
# time zone): `spark.conf` may repeat them, not change them
SPARK_FIXED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


class SparkSettings(BaseModel):
    # a local session by default; `spark://host:7077` (a standalone cluster) or `k8s://...`
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)  # more Spark settings, passed through

    @field_validator("conf")
    @classmethod
    def _keeps_the_lake_s_settings(cls, conf: dict[str, str]) -> dict[str, str]:
        for key, value in conf.items():
            if key in SPARK_FIXED_CONF and value != SPARK_FIXED_CONF[key]:
                raise ValueError(
                    f"spark.conf.{key} is {value!r}: the lake needs {SPARK_FIXED_CONF[key]!r} (partition "
                    "keys and timestamps must read the same in DuckDB); remove the setting"
                )
        return conf


class DatasetSpec(BaseModel):
    """One dataset: where it lives, its columns, its classes and the knobs of every stage."""

    name: str
    source: Source
    # none: the platform generates `_row_id` (GENERATED_ID) from each row's content and its
    # occurrence among identical rows, so it is stable across re-reads of the same data
    id_column: str | None = None
    timestamp_column: str | None = None  # none: each ingest of the source is a batch partition
    features: Features
    classes: list[str]
    positive_class: str | None = None
    labeling_functions: str
    gold: Gold | None = None
    demo: Demo | None = None
    annotator: Annotator = Field(default_factory=Annotator)
    active_learning: ActiveLearning = Field(default_factory=ActiveLearning)
    labeling: Labeling = Field(default_factory=Labeling)
    synthetic: Synthetic = Field(default_factory=Synthetic)
    training: Training = Field(default_factory=Training)
    edge: Edge = Field(default_factory=Edge)
    serving: Serving = Field(default_factory=Serving)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)

    # path of the spec file, set by load_spec: relative paths in the spec are relative to it
    spec_path: Path | None = Field(default=None, exclude=True)

    @field_validator("labeling_functions")
    @classmethod
    def _lf_module(cls, v: str) -> str:
        if v.endswith(".py"):
            return v
        if not _MODULE.match(v):
            raise ValueError(
                f"labeling_functions {v!r} is neither a .py file (relative to the spec) nor a dotted "
                "module path (e.g. mypackage.fraud_lfs)"
            )
        return v

    @field_validator("id_column", "timestamp_column")
    @classmethod
    def _ident(cls, v: str | None) -> str | None:
        return v if v is None else _user_column(v, "column")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _identifier(v, "name")

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, v: object) -> object:
        return [str(c) for c in v] if isinstance(v, list) else v

    @field_validator("positive_class", mode="before")
    @classmethod
    def _positive_name(cls, v: object) -> object:
        return v if v is None else str(v)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        for col in self.feature_columns:
            _user_column(col, "feature")
        if len(self.classes) < 2:
            raise ValueError("classes: name at least two classes")
        if len(self.classes) > MAX_CLASSES:
            raise ValueError(f"classes: {len(self.classes)} classes, at most {MAX_CLASSES} are supported")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes {self.classes} name a class twice")
        columns = [class_column(c) for c in self.classes]
        if len(set(columns)) != len(columns):
            raise ValueError(
                f"classes {self.classes}: two names differ only in characters other than letters, "
                "digits and _ (they would share a column); rename one"
            )
        if self.timestamp_column is None and (self.source.start_date or self.source.end_date):
            raise ValueError("source.start_date / end_date need a timestamp_column: set one or drop them")
        if self.timestamp_column is not None and self.source.start_date is None:
            raise ValueError("timestamp_column is set: set source.start_date (the first partition)")
        named = [c for c in (self.id_column, self.timestamp_column) if c]
        clash = sorted(set(named) & set(self.feature_columns))
        if clash or len(set(named)) != len(named):
            raise ValueError(f"columns {clash or named} are named twice (id, timestamp and features must differ)")
        if self.gold is not None and self.gold.in_source and self.gold.column in self.feature_columns:
            raise ValueError(
                f"gold.column {self.gold.column!r} is also a feature: the target can never be a feature"
            )
        if self.id_column is None:
            self.id_column = GENERATED_ID
        if self.positive_class is not None and self.positive_class not in self.classes:
            raise ValueError(f"positive_class {self.positive_class!r} is not one of classes {self.classes}")
        both = set(self.features.numeric) & set(self.features.categorical)
        if both:
            raise ValueError(f"features {sorted(both)} are listed as numeric and categorical")
        for col in self.thresholds.slices:
            if col not in self.features.categorical:
                raise ValueError(f"thresholds.slices: {col!r} is not a categorical feature")
        if self.annotator.simulated and self.gold is None:
            raise ValueError("annotator.simulated needs gold: the simulated annotator answers from it")
        if self.warehouse.engine == "spark":
            self._spark_supported()
        return self

    def _spark_supported(self) -> None:
        """What the Spark engine reads today; each refusal names the setting and the way out."""
        if self.source.kind == "csv":
            raise ValueError(
                "warehouse.engine spark reads Parquet files or a warehouse table, not CSV (type inference "
                "differs between the engines): convert source.path to Parquet or use engine duckdb"
            )
        if self.timestamp_column is None:
            raise ValueError(
                "warehouse.engine spark needs a timestamp_column (batch partitions run on duckdb only): "
                "set timestamp_column or use engine duckdb"
            )
        if self.id_generated:
            raise ValueError(
                "warehouse.engine spark needs an id_column in the source (generated ids are computed by "
                "DuckDB): set id_column or use engine duckdb"
            )

    # ---- derived names, used by every stage -------------------------------------------
    @property
    def numeric(self) -> list[str]:
        return list(self.features.numeric)

    @property
    def categorical(self) -> list[str]:
        return list(self.features.categorical)

    @property
    def feature_columns(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def source_columns(self) -> list[str]:
        """The source's columns the platform reads (id and timestamp where the spec has them)."""
        return [c for c in (self.id_column, self.timestamp_column) if c] + self.feature_columns

    @property
    def has_timestamp(self) -> bool:
        return self.timestamp_column is not None

    @property
    def id_generated(self) -> bool:
        """The source has no id column: the platform generates `_row_id` while reading it."""
        return self.id_column == GENERATED_ID

    @property
    def metric(self) -> str:
        """The training metric: `f1` (positive class), `macro_f1` or `accuracy`."""
        if self.training.metric != "auto":
            return self.training.metric
        return "f1" if self.n_classes == 2 else "macro_f1"

    @property
    def root(self) -> Path:
        """The folder the spec's relative paths start from (the spec file's folder)."""
        return self.spec_path.parent if self.spec_path else PROJECT_ROOT

    def resolve(self, path: str) -> str:
        """A path of the spec (source.path, gold.path, LF file) relative to the spec's folder."""
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (self.root / p))

    @property
    def raw_table(self) -> str:
        return f"raw.{self.source.name}"

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def positive_index(self) -> int:
        """Index of the class that F1 and PR-AUC are reported for (the last class by default)."""
        return self.classes.index(self.positive_class) if self.positive_class else self.n_classes - 1

    @property
    def prob_columns(self) -> list[str]:
        return [f"prob_{class_column(c)}" for c in self.classes]

    @property
    def calibrated_columns(self) -> list[str]:
        """monitoring.predictions' calibrated probability columns (`calibrated_<class>`)."""
        return [f"calibrated_{class_column(c)}" for c in self.classes]

    def class_index(self, name: object) -> int:
        """The index of a class given by name (or by its index, as an int or a digit string)."""
        text = str(name)
        if text in self.classes:
            return self.classes.index(text)
        raise KeyError(text)


def load_spec(path: str | os.PathLike[str] | None = None) -> DatasetSpec:
    """Read and validate a spec file; errors name the file and the setting."""
    path = Path(path or os.environ.get("MLINFRA_SPEC") or DEFAULT_SPEC)
    if not path.exists():
        raise SpecError(f"dataset spec {path} does not exist: set MLINFRA_SPEC to your spec file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        spec = DatasetSpec.model_validate(raw)
    except yaml.YAMLError as exc:
        raise SpecError(f"dataset spec {path} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(f"dataset spec {path} is invalid: {problems}") from exc
    spec.spec_path = path.resolve()
    return spec


@lru_cache(maxsize=4)
def _cached(path: str) -> DatasetSpec:
    return load_spec(path)


def current_spec() -> DatasetSpec:
    """The spec named by MLINFRA_SPEC (or the demo's), read once per process."""
    return _cached(str(os.environ.get("MLINFRA_SPEC") or DEFAULT_SPEC))
