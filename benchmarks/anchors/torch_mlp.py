"""Anchor for `cvtool train-mlp --layers 784,30,10 --batch-size 10` (Nielsen's network).

    python benchmarks/anchors/torch_mlp.py DATA_FOLDER EPOCHS [THREADS]

PyTorch (CPU), torch.set_num_threads(THREADS, default 2). Loads the gzipped IDX
files, scales pixels to [0, 1] (float32), trains [784, 30, 10] with sigmoid
hidden and output units and Nielsen's cross-entropy cost (summed over the 10
outputs, averaged over the mini-batch: BCE-with-logits, sum / batch), plain SGD
eta 0.5, mini-batch 10, a fresh shuffle per epoch, cvtool's default init
(weights N(0, 1/n_in), biases N(0, 1)); keeps the running training cost and
accuracy of the epoch's mini-batches (as cvtool prints them); tests once.
Prints one JSON line.
"""

import json
import math
import sys
import time

import numpy as np
import torch
from _idx import load
from torch import nn

t_start = time.perf_counter()
folder, epochs = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
torch.manual_seed(0)
x_train, y_train, x_test, y_test = load(folder)
x_train = torch.from_numpy(x_train.reshape(len(x_train), -1).astype(np.float32) / np.float32(255))
x_test = torch.from_numpy(x_test.reshape(len(x_test), -1).astype(np.float32) / np.float32(255))
y_train = torch.from_numpy(y_train.astype(np.int64))
y_test = torch.from_numpy(y_test.astype(np.int64))
targets = torch.eye(10)[y_train]

net = nn.Sequential(nn.Linear(784, 30), nn.Sigmoid(), nn.Linear(30, 10))
with torch.no_grad():
    for m in net:
        if isinstance(m, nn.Linear):
            m.weight.normal_(0.0, 1.0 / math.sqrt(m.in_features))
            m.bias.normal_(0.0, 1.0)
opt = torch.optim.SGD(net.parameters(), lr=0.5)
bce = nn.BCEWithLogitsLoss(reduction="sum")
batch = 10
history = []
n = len(x_train)
for _epoch in range(epochs):
    t0 = time.perf_counter()
    order = torch.randperm(n)
    total, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
    for i in range(0, n, batch):
        idx = order[i : i + batch]
        xb, tb = x_train[idx], targets[idx]
        out = net(xb)
        loss = bce(out, tb) / len(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)
        correct += (out.detach().argmax(1) == y_train[idx]).sum()
    history.append(
        {
            "train_cost": float(total) / n,
            "train_accuracy": int(correct) / n,
            "seconds": time.perf_counter() - t0,
        }
    )
with torch.no_grad():
    pred = net(x_test).argmax(1)
accuracy = float((pred == y_test).float().mean())
print(
    json.dumps(
        {
            "accuracy": accuracy,
            "epoch_seconds": [h["seconds"] for h in history],
            "history": history,
            "seconds": time.perf_counter() - t_start,
        }
    )
)
