#!/bin/sh
# local: one table of the sweep and the pipeline's result
{
  echo "| sub job | result |"; echo "|---|---|"
  for f in sweep/result.*.txt; do n=${f#sweep/result.}; echo "| ${n%.txt} | $(cat "$f") |"; done
  echo; cat summary.txt
} > report.md
cat report.md
