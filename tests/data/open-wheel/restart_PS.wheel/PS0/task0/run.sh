echo {{ time }}
pwd > hoge.txt