#!/bin/bash
# step 0: reads the input the stepjob forwarded to it; the steps share the stepjob's directory
read -r a b < coefficients.txt
echo $(( a + b )) > ../work.txt
