#!/bin/bash
#PJM --rsc-list "elapse=01:00:00"
#PJM -L "node=1"
#PJM -x PJM_LLIO_GFSCACHE=/vol0004

# WHEEL tutorial "MNIST Data Analysis Workflow Using TensorFlow", estimate component.
# Changes from the published script are marked "sharin:".

# Fugaku's TensorFlow install; the directories do not exist elsewhere, so these are harmless.
export PATH=/home/apps/oss/TensorFlow-2.2.0/bin:$PATH
export LD_LIBRARY_PATH=/home/apps/oss/TensorFlow-2.2.0/lib:$LD_LIBRARY_PATH

# sharin: many systems have only python3, not python.
PYTHON=${PYTHON:-$(command -v python || command -v python3)}

# sharin: the published "---/title: .../---" lines are documentation-site markup,
# a SyntaxError in Python; they are "# title: ..." comments here.
cat  <<EOF >kerasMnist.py
import os
import numpy as np
from tensorflow import keras
from tensorflow.keras.datasets import mnist
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense, Dropout, InputLayer
from tensorflow.keras.optimizers import RMSprop

print('download data')
# title: load mnist data
# sharin: without network access, set MNIST_NPZ to a local copy of mnist.npz
# (keys x_train, y_train, x_test, y_test) and it is read with numpy.
# Do not copy it into ~/.keras/datasets: load_data() rejects a file whose
# hash differs from its own download and deletes it.
if os.environ.get('MNIST_NPZ'):
    npz = os.path.abspath(os.environ['MNIST_NPZ'])
    print('load', npz)
    with np.load(npz) as d:
        (x_train, y_train), (x_test, y_test) = (d['x_train'], d['y_train']), (d['x_test'], d['y_test'])
else:
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
print('download done')

# title: set input data
x_test   = x_test.reshape(10000, 784)
x_test   = x_test.astype('float32')
x_test  /= 255
y_test   = keras.utils.to_categorical(y_test, 10)

# title: create model
model = Sequential()
model.add(InputLayer(input_shape=(784,)))
model.add(Dense(10, activation='softmax'))
model.compile(loss='categorical_crossentropy', optimizer='rmsprop', metrics=['accuracy'])

# title: load weights
print('loadweights')
model.load_weights('param.hdf5')

# title: eval model
print('eval')
score = model.evaluate(x_test, y_test, verbose=1)
print()
print('Test loss:', score[0])
print('Test accuracy:', score[1])
EOF

# sharin: last command, so the script's exit code is python's.
"$PYTHON" kerasMnist.py > eval.log
