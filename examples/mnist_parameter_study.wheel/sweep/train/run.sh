#!/bin/bash
#PJM --rsc-list "elapse=01:00:00"
#PJM -L "node=1"
#PJM -x PJM_LLIO_GFSCACHE=/vol0004

# WHEEL tutorial "MNIST Data Analysis Workflow Using TensorFlow", train component,
# as a parameter study: {{ batch_size }} below is filled in for each instance
# (parameterSetting.json of the sweep component). MNIST_EPOCHS (default 20) shortens a trial run.
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
x_train  = x_train.reshape(60000, 784)
x_test   = x_test.reshape(10000, 784)
x_train  = x_train.astype('float32')
x_test   = x_test.astype('float32')
x_train /= 255
x_test  /= 255
y_train  = keras.utils.to_categorical(y_train, 10)
y_test   = keras.utils.to_categorical(y_test, 10)

# title: create model
model = Sequential()
model.add(InputLayer(input_shape=(784,)))
model.add(Dense(10, activation='softmax'))
model.compile(loss='categorical_crossentropy', optimizer='rmsprop', metrics=['accuracy'])


# title: train model
print('start learning')
epochs = int(os.environ.get('MNIST_EPOCHS', '20'))
batch_size = {{ batch_size }}
history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=1, validation_data=(x_test, y_test))

# title: save weights
print('save weights')
# sharin: Keras 3 save_weights() only accepts names ending in .weights.h5;
# model.save() writes legacy HDF5 under the workflow's file name param.hdf5,
# which load_weights() in the estimate component still reads.
model.save('param.hdf5')

# sharin: the learning curve of this instance, for the viewer
import json
with open('history.json', 'w') as f:
    json.dump({k: [float(x) for x in v] for k, v in history.history.items()}, f)
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(history.history['accuracy'], label='train')
ax.plot(history.history['val_accuracy'], label='test')
ax.set_xlabel('epoch')
ax.set_ylabel('accuracy')
ax.set_title('batch size ' + str(batch_size))
ax.legend()
fig.tight_layout()
fig.savefig('curve.png', dpi=80)
EOF

# sharin: last command, so the script's exit code is python's.
"$PYTHON" kerasMnist.py > learn.log
