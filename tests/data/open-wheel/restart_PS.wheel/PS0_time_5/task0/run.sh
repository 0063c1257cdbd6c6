sleep 5
pwd > output.txt