"""Reads a directory of TensorBoard event files back with TensorBoard's own reader (the
EventAccumulator that `tensorboard --logdir` uses: it checks every record's CRC-32C and drops
what a SessionLog START replaces) and prints one line per scalar event: TAG STEP VALUE, the
value as Python's repr of the stored float32. Needs the `tensorboard` package (launch/pyenv.sh
installs it into .venv).

usage: tensorboard_reader.py DIR
"""
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    acc = event_accumulator.EventAccumulator(
        sys.argv[1], size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    for tag in sorted(acc.Tags()["scalars"]):
        for e in acc.Scalars(tag):
            print("scalar", tag, e.step, repr(e.value))


if __name__ == "__main__":
    main()
