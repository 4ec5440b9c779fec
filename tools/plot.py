#!/usr/bin/python3
"""Plots polyhead runs from their metrics.jsonl, several runs overlaid.

Interpreter and packages: Debian's /usr/bin/python3 with python3-matplotlib (3.6) and
python3-yaml (.ci/run installs both through launch/deps.sh). Draws with the non-interactive
Agg backend, so it needs no display.

  tools/plot.py RUN_DIR [RUN_DIR ...] --out FILE.png [--labels NAME ...] [--size WxH]

Panels: loss (train, and validation on evaluation steps) against step and against tokens,
learning rate, gradient norm, tokens/s, and each of these that some run logs: MFU, peak RSS,
the task metric (task_accuracy, mlm_accuracy and sentence_accuracy on one accuracy panel, BLEU
on its own). A panel that no run has data for is left out with a note.

Tokens are consumed_samples x model.seq_len (from the run's config.yaml): the positions the
step's samples fill. For a GPT that is exactly the tokens it trains on; for the
encoder-decoder it is the decoder's target positions and for BERT the sequence positions,
padding included, so an upper bound of the real tokens that tokens/s counts there.

Each run is labelled with its directory name, or with --labels (one per run). Bad input (a
directory without metrics.jsonl, an empty or malformed line, an --out that cannot be written)
gets one message naming the file (and line) and exit status 1.
"""

import argparse
import json
import math
import os
import sys

PROG = "plot"


class PlotError(Exception):
    """Bad input: reported as one line and exit status 1."""


def load_metrics(run_dir):
    """The records of RUN_DIR/metrics.jsonl, as a list of dicts with numbers (None for null)."""
    if not os.path.isdir(run_dir):
        raise PlotError(f"{run_dir}: not a directory")
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise PlotError(f"{path}: no such file (a run directory has one once `polyhead train` "
                        f"has logged a step)")
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise PlotError(f"{path}: cannot read: {e}") from None
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last record
    if not lines:
        raise PlotError(f"{path}: empty (no step logged yet)")
    records = []
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not line.strip():
            raise PlotError(f"{where}: empty line")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise PlotError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
        if not isinstance(record, dict):
            raise PlotError(f"{where}: not a JSON object")
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise PlotError(f"{where}: no integer \"step\"")
        for key, value in record.items():
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, float))):
                raise PlotError(f"{where}: \"{key}\" is not a number")
        records.append(record)
    return records


def tokens_per_sample(run_dir):
    """model.seq_len from RUN_DIR/config.yaml; None (with a note) when there is no config.yaml."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        print(f"note: {path}: missing, so this run is left out of loss against tokens")
        return None
    import yaml
    try:
        with open(path, "r", encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise PlotError(f"{path}: cannot read: {e}") from None
    seq_len = config.get("model", {}).get("seq_len") if isinstance(config, dict) else None
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len <= 0:
        raise PlotError(f"{path}: no positive integer model.seq_len")
    return seq_len


def series(records, key, x_key="step"):
    """(xs, ys) of the records that have `key`; null values become NaN (a gap in the line)."""
    xs, ys = [], []
    for r in records:
        if key in r and r.get(x_key) is not None:
            xs.append(r[x_key])
            ys.append(math.nan if r[key] is None else r[key])
    return xs, ys


class Run:
    def __init__(self, run_dir, label):
        self.dir = run_dir
        self.label = label
        self.records = load_metrics(run_dir)
        seq_len = tokens_per_sample(run_dir)
        if seq_len is not None:
            for r in self.records:
                samples = r.get("consumed_samples")
                r["tokens"] = None if samples is None else samples * seq_len

    def has(self, key):
        return any(r.get(key) is not None for r in self.records)


# Panels against step: (title, y label, [(metric key, line style, marker)]). Metrics of
# evaluation steps get markers.
PANELS = [
    ("learning rate", "lr", [("lr", "-", None)]),
    ("gradient norm (before clipping)", "global L2 norm", [("grad_norm", "-", None)]),
    ("throughput", "tokens/s", [("tokens_per_s", "-", None)]),
]
# The panels drawn only when some run logs one of their keys (the last item names them).
OPTIONAL_PANELS = [
    ("MFU", "model FLOPs utilisation", [("mfu", "-", None)], "mfu"),
    ("peak RSS", "MiB", [("peak_rss_mb", "-", None)], "peak_rss_mb"),
    ("held-out accuracy", "accuracy",
     [("task_accuracy", "-", "o"), ("mlm_accuracy", "-", "o"), ("sentence_accuracy", ":", "o")],
     "task_accuracy, mlm_accuracy or sentence_accuracy"),
    ("BLEU", "BLEU (held-out, greedy)", [("bleu", "-", "o")], "bleu"),
]


def gray_legend(ax, entries):
    """A legend of line styles: [(label, line style, marker)]."""
    from matplotlib.lines import Line2D
    ax.legend(handles=[Line2D([], [], color="gray", linestyle=ls, marker=m, label=label)
                       for label, ls, m in entries], fontsize="small")


def draw(runs, out, size):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    panels = list(PANELS)
    for title, ylabel, keys, missing in OPTIONAL_PANELS:
        if any(run.has(key) for run in runs for key, _, _ in keys):
            panels.append((title, ylabel, keys))
        else:
            print(f"note: no run logs {missing}: the {title} panel is left out")
    rows = (len(panels) + 3) // 2  # the two loss panels first
    width, height = size if size else (1200, 90 + 300 * rows)
    dpi = 100
    fig, axes = plt.subplots(rows, 2, figsize=(width / dpi, height / dpi), dpi=dpi,
                             squeeze=False)
    axes = axes.flatten()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # Runs that follow the same curve (one config on several layouts) overlap exactly: the later
    # ones are drawn thinner so that every run stays visible.
    style = [dict(color=colors[i % len(colors)], linewidth=max(1.0, 3.2 - 1.0 * i))
             for i in range(len(runs))]

    def plot_key(ax, run, st, key, x_key, linestyle, marker):
        xs, ys = series(run.records, key, x_key)
        if xs:
            ax.plot(xs, ys, linestyle=linestyle, marker=marker, markersize=4, **st)

    for ax, x_key in zip(axes, ("step", "tokens")):
        for run, st in zip(runs, style):
            plot_key(ax, run, st, "train_loss", x_key, "-", None)
            plot_key(ax, run, st, "val_loss", x_key, "--", "o")
        ax.set_title("loss against " + x_key)
        ax.set_xlabel("step" if x_key == "step" else "tokens (consumed samples x seq_len)")
        ax.set_ylabel("mean token loss")
        gray_legend(ax, [("train", "-", None), ("validation", "--", "o")])
    for ax, (title, ylabel, keys) in zip(axes[2:], panels):
        ax.sharex(axes[0])
        for run, st in zip(runs, style):
            for key, linestyle, marker in keys:
                plot_key(ax, run, st, key, "step", linestyle, marker)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if "sentence_accuracy" in (k for k, _, _ in keys) and any(
                run.has("sentence_accuracy") for run in runs):
            gray_legend(ax, [("task or masked LM", "-", "o"), ("sentence", ":", "o")])
        if keys[0][0] == "grad_norm":
            values = [v for run in runs for v in series(run.records, "grad_norm")[1]
                      if v > 0 and not math.isnan(v)]
            if values and max(values) > 100 * min(values):
                ax.set_yscale("log")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    for ax in axes[2 + len(panels):]:
        ax.set_visible(False)
    fig.legend(handles=[Line2D([], [], **st, label=run.label) for run, st in zip(runs, style)],
               loc="upper center", ncol=min(len(runs), 4), frameon=False)
    legend_rows = (len(runs) + 3) // 4
    fig.tight_layout(rect=(0, 0, 1, 1 - (30 + 22 * legend_rows) / height))

    # Written beside the target and renamed over it: a failed write leaves no half file.
    tmp = os.path.join(os.path.dirname(os.path.abspath(out)),
                       f".{os.path.basename(out)}.{os.getpid()}.tmp")
    fmt = os.path.splitext(out)[1].lstrip(".").lower() or "png"
    try:
        if fmt == "png":
            # 256 colours without dithering: line plots look the same at a third of the size.
            from PIL import Image
            fig.canvas.draw()
            rgb = Image.frombuffer("RGBA", fig.canvas.get_width_height(),
                                   fig.canvas.buffer_rgba()).convert("RGB")
            rgb.quantize(colors=256, dither=Image.Dither.NONE).save(tmp, format="PNG",
                                                                    optimize=True)
        else:
            fig.savefig(tmp, dpi=dpi, format=fmt)
        os.replace(tmp, out)
    except OSError as e:
        raise PlotError(f"{out}: cannot write: {e.strerror or e}") from None
    except ValueError as e:  # a format Agg cannot write
        raise PlotError(f"{out}: {e}") from None
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def check_out(out):
    """Refuses an --out that cannot be written before any work is done."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fmt = os.path.splitext(out)[1].lstrip(".").lower() or "png"
    if fmt not in FigureCanvasAgg.get_supported_filetypes():
        raise PlotError(f"{out}: Agg cannot write .{fmt} files (use .png)")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise PlotError(f"{out}: cannot write: {parent} is not a directory")
    if os.path.isdir(out):
        raise PlotError(f"{out}: cannot write: it is a directory")
    if not os.access(parent, os.W_OK):
        raise PlotError(f"{out}: cannot write: {parent} is not writable")


def parse_size(text):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, got {text!r}")
    if not (200 <= w <= 10000 and 200 <= h <= 10000):
        raise argparse.ArgumentTypeError(f"{text}: each side must be 200 to 10000 pixels")
    return w, h


def main(argv):
    parser = argparse.ArgumentParser(
        prog="tools/plot.py",
        description="Plot polyhead runs (metrics.jsonl) into one image, runs overlaid.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (run.dir)")
    parser.add_argument("--out", required=True, metavar="FILE.png", help="image to write")
    parser.add_argument("--labels", nargs="+", metavar="NAME",
                        help="one legend label per run (default: the directory names)")
    parser.add_argument("--size", type=parse_size, metavar="WxH",
                        help="image size in pixels (default: 1200 wide, 300 per row of panels)")
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.runs):
        parser.error(f"--labels names {len(args.labels)} runs, but {len(args.runs)} are given")
    try:
        import matplotlib  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as e:
        raise PlotError(f"{sys.executable} has no module {e.name}: install python3-matplotlib "
                        f"and python3-yaml (Debian)") from None
    check_out(args.out)
    labels = args.labels or [os.path.basename(os.path.normpath(d)) for d in args.runs]
    if args.labels is None and len(set(labels)) < len(labels):
        labels = [os.path.normpath(d) for d in args.runs]
    runs = [Run(d, label) for d, label in zip(args.runs, labels)]
    draw(runs, args.out, args.size)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except PlotError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        sys.exit(1)
