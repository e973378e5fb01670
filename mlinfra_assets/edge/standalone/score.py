"""Score a CSV with the edge ONNX file: numpy and onnxruntime only (no torch, no pandas).

The ONNX file holds the preprocessing (imputation, category codes, standardization) and
names its classes in its metadata; every graph input is a raw column of the CSV.

    python score.py edge_model.onnx rows.csv scores.csv --id-column txn_id

Writes the id column (if given), `prob_<class>` per class (characters other than letters,
digits and _ in a class name written as _, as the platform's columns) and `predicted`
(the argmax class, by its name).
Empty, `nan`, `NA` or `null` numeric cells are missing (the model imputes them); categorical
cells are read as text, and values not seen in training score as unknown.
"""

import argparse
import csv
import itertools
import json
import re
import sys

import numpy as np
import onnxruntime as ort

MISSING = {"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"}


def load(model_path):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    classes = json.loads(session.get_modelmeta().custom_metadata_map.get("classes", "null"))
    if not classes:
        sys.exit(f"{model_path}: no `classes` metadata; is this the edge model (edge_model.onnx)?")
    return session, classes


def column(values, onnx_type, name):
    if onnx_type == "tensor(string)":
        return np.asarray(values, dtype=object)
    if onnx_type != "tensor(float)":
        raise SystemExit(f"model input {name} has type {onnx_type}; this scorer feeds float and string columns")
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        v = v.strip()
        try:
            out[i] = np.nan if v in MISSING else float(v)
        except ValueError:
            raise SystemExit(f"column {name}: {v!r} is not a number") from None
    return out


def score_rows(session, rows, header):
    feeds = {}
    for inp in session.get_inputs():
        if inp.name not in header:
            raise SystemExit(f"the CSV has no column {inp.name!r}, which the model needs (has: {', '.join(header)})")
        j = header[inp.name]
        feeds[inp.name] = column([r[j] for r in rows], inp.type, inp.name)
    return session.run(None, feeds)[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Score a CSV with the edge ONNX model (numpy + onnxruntime only).")
    ap.add_argument("model", help="edge_model.onnx")
    ap.add_argument("csv", help="input CSV with a header row holding the raw feature columns")
    ap.add_argument("out", help="output CSV")
    ap.add_argument("--id-column", help="a column copied to the output to identify rows")
    ap.add_argument("--batch-size", type=int, default=65536)
    args = ap.parse_args(argv)
    session, classes = load(args.model)
    n = 0
    with open(args.csv, newline="") as src, open(args.out, "w", newline="") as dst:
        reader = csv.reader(src)
        header = {name: j for j, name in enumerate(next(reader))}
        if args.id_column and args.id_column not in header:
            raise SystemExit(f"--id-column {args.id_column!r} is not a column of {args.csv}")
        writer = csv.writer(dst)
        probs = [f"prob_{re.sub(r'[^A-Za-z0-9_]', '_', str(c))}" for c in classes]
        writer.writerow(([args.id_column] if args.id_column else []) + probs + ["predicted"])
        while True:
            rows = list(itertools.islice(reader, args.batch_size))
            if not rows:
                break
            probs = score_rows(session, rows, header)
            ids = [r[header[args.id_column]] for r in rows] if args.id_column else None
            for i, p in enumerate(probs):
                writer.writerow(([ids[i]] if ids else []) + [repr(float(x)) for x in p] + [classes[int(p.argmax())]])
            n += len(rows)
    print(f"scored {n} rows of {args.csv} into {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
