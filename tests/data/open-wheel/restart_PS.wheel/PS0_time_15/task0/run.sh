sleep 15
pwd > output.txt