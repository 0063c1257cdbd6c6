#!/usr/bin/env bash
# Run the WHEEL tutorial's MNIST/TensorFlow workflow end to end and print its test loss and accuracy.
#   bash scripts/mnist.sh        the tutorial's project (examples/mnist_tensorflow.wheel)
#   bash scripts/mnist.sh ps     its parameter-study variant: a sweep over the batch size, a table
#                                of the results and a viewer of the learning curves
#                                (examples/mnist_parameter_study.wheel)
#   MNIST_NPZ   a local mnist.npz (Keras layout); unset: ../shared/datasets/mnist/mnist.npz if present,
#               otherwise the normal Keras download (needs a network)
#   MNIST_WORK  where the project copy runs (default: a new temporary directory)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARIN_EXTRAS=mnist source "$repo/scripts/setup.sh"
if [ -z "${MNIST_NPZ:-}" ] && [ -f "$repo/../shared/datasets/mnist/mnist.npz" ]; then
    export MNIST_NPZ="$repo/../shared/datasets/mnist/mnist.npz"
fi
[ -n "${MNIST_NPZ:-}" ] && export MNIST_NPZ=$(realpath "$MNIST_NPZ") && echo "MNIST data: $MNIST_NPZ"
work=${MNIST_WORK:-$(mktemp -d)}
case "${1:-}" in
    "")
        sharin copy "$repo/examples/mnist_tensorflow.wheel" "$work/mnist_tensorflow.wheel"
        sharin run "$work/mnist_tensorflow.wheel"
        python "$repo/examples/check_mnist.py" "$work/mnist_tensorflow.wheel/estimate/eval.log"
        echo "project with all outputs: $work/mnist_tensorflow.wheel"
        ;;
    ps)
        sharin copy "$repo/examples/mnist_parameter_study.wheel" "$work/mnist_parameter_study.wheel"
        sharin run "$work/mnist_parameter_study.wheel"
        echo "results table: $work/mnist_parameter_study.wheel/summarize/results.md"
        echo "learning curves: $work/mnist_parameter_study.wheel/sweep/results/curve_bs*.png"
        ;;
    *) echo "usage: bash scripts/mnist.sh [ps]" >&2; exit 2 ;;
esac
