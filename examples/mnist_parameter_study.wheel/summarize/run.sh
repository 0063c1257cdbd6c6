#!/bin/bash
# Collect the gathered eval logs of every instance into one table (results.md).
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
"$PYTHON" - <<'EOF'
import glob, re
rows = []
for path in glob.glob('results/eval_bs*.log'):
    text = open(path).read()
    bs = int(re.search(r'eval_bs(\d+)', path).group(1))
    loss = float(re.findall(r'Test loss: ([0-9.eE+-]+)', text)[-1])
    acc = float(re.findall(r'Test accuracy: ([0-9.eE+-]+)', text)[-1])
    rows.append((bs, loss, acc))
rows.sort()
lines = ['| batch size | test loss | test accuracy |', '|---:|---:|---:|']
lines += [f'| {bs} | {loss:.4f} | {acc:.4f} |' for bs, loss, acc in rows]
open('results.md', 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
EOF
