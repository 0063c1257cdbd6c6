#!/bin/bash
#PJM -L elapse=0:05:00
# one sub job of the bulk job: $PJM_BULKNUM picks its rendered input, <n>.input.txt
set -eu
read -r a b < coefficients.txt
x=$(sed -n 's/^x = //p' "$PJM_BULKNUM.input.txt")
echo "x=$x y=$(( a * x * x + b ))" > "result.$PJM_BULKNUM.txt"
