#!/usr/bin/env python3
"""Check the result of the mnist_tensorflow.wheel example.

Usage: python examples/check_mnist.py PATH_TO_eval.log

Reads the "Test loss:" and "Test accuracy:" lines that the estimate component
writes to eval.log, prints them, and exits 1 unless the figures reproduce the
WHEEL tutorial (published: loss 0.27075, accuracy 0.927).
"""
import re
import sys

ACC_MIN, ACC_MAX = 0.925, 0.935
LOSS_MAX = 0.29

# Python 3 "Test loss: 0.27" and the tutorial's Python 2 "('Test loss:', 0.27)".
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def find(text, label):
    found = re.findall(r"Test " + label + r":'?,?\s*(" + NUMBER + ")", text)
    return float(found[-1]) if found else None


def main(argv):
    if len(argv) != 2:
        print("usage: python check_mnist.py PATH_TO_eval.log", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        print(f"FAIL: cannot read {argv[1]}: {e}")
        return 1
    loss, acc = find(text, "loss"), find(text, "accuracy")
    problems = []
    if loss is None:
        problems.append("no 'Test loss:' line")
    if acc is None:
        problems.append("no 'Test accuracy:' line")
    if problems:
        print(f"FAIL: {argv[1]}: " + "; ".join(problems))
        return 1
    print(f"MNIST test loss {loss:.4f}, accuracy {acc:.4f}")
    if not ACC_MIN <= acc <= ACC_MAX:
        problems.append(f"accuracy {acc:.4f} outside [{ACC_MIN}, {ACC_MAX}]")
    if not loss <= LOSS_MAX:
        problems.append(f"loss {loss:.4f} above {LOSS_MAX}")
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print("OK: reproduces the tutorial (published loss 0.27075, accuracy 0.927)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
