"""SQL files of the labeling stage, loaded by relative path.

Only identifiers from the validated spec are formatted into the text (`{id_column}`,
`{raw_table}`); values are always bound as `?` parameters.
"""

from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"


def load_sql(name: str, **identifiers: str) -> str:
    """The text of `sql/<name>.sql` with the spec's identifiers filled in."""
    return (SQL_DIR / f"{name}.sql").read_text().format(**identifiers)
