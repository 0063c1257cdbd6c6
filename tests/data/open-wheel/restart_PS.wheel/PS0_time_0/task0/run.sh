sleep 0
pwd > output.txt