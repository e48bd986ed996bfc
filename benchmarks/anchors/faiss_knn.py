"""Anchor for `cvtool knn -k 5 --metric l2`: faiss-cpu IndexFlatL2 search + majority vote.

    python benchmarks/anchors/faiss_knn.py DATA_FOLDER [PREDICTIONS.npy [THREADS]]

Loads the gzipped IDX files, searches the 5 nearest training images (exact L2) of
every test image, votes (ties to the smallest label), prints one JSON line.
"""

import json
import sys
import time

import faiss
import numpy as np
from _idx import load

K = 5
args = sys.argv[1:]
faiss.omp_set_num_threads(int(args[2]) if len(args) > 2 and args[2] else 2)
t0 = time.perf_counter()
x_train, y_train, x_test, y_test = load(args[0])
x_train = x_train.reshape(len(x_train), -1).astype(np.float32)
x_test = x_test.reshape(len(x_test), -1).astype(np.float32)
index = faiss.IndexFlatL2(x_train.shape[1])
index.add(x_train)
_, neighbours = index.search(x_test, K)
votes = y_train[neighbours].astype(np.int64)
counts = np.zeros((len(votes), 10), np.int64)
np.add.at(counts, (np.arange(len(votes))[:, None], votes), 1)
pred = counts.argmax(1)  # ties: the smallest label
if len(args) > 1 and args[1]:
    np.save(args[1], pred)
print(json.dumps({"accuracy": float((pred == y_test).mean()), "seconds": time.perf_counter() - t0}))
