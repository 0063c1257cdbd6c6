sleep 20
pwd > output.txt