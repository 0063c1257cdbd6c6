#!/bin/sh
# the input every job reads: the coefficients of y = a*x^2 + b
echo "2 1" > coefficients.txt
