"""Second anchor for `cvtool knn -k 5 --metric l2`: scikit-learn KNeighborsClassifier.

    python benchmarks/anchors/sklearn_knn.py DATA_FOLDER [PREDICTIONS.npy]

Loads the gzipped IDX files, fit + predict with n_neighbors=5 (algorithm 'auto',
which is brute force at 784 features; n_jobs left at its default), prints one JSON line.
"""

import json
import sys
import time

import numpy as np
from _idx import load
from sklearn.neighbors import KNeighborsClassifier

t0 = time.perf_counter()
x_train, y_train, x_test, y_test = load(sys.argv[1])
x_train = x_train.reshape(len(x_train), -1).astype(np.float32)
x_test = x_test.reshape(len(x_test), -1).astype(np.float32)
clf = KNeighborsClassifier(n_neighbors=5).fit(x_train, y_train)
pred = clf.predict(x_test)
if len(sys.argv) > 2:
    np.save(sys.argv[2], pred)
print(json.dumps({"accuracy": float((pred == y_test).mean()), "seconds": time.perf_counter() - t0}))
