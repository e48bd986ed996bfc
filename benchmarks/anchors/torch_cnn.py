"""Anchor for `cvtool train-cnn --preset nielsen-ch6 --optimizer adam --batch-size 128`.

    python benchmarks/anchors/torch_cnn.py DATA_FOLDER EPOCHS [THREADS]

PyTorch (CPU), torch.set_num_threads(THREADS, default 2). Loads the gzipped IDX
files, scales pixels to [0, 1] (float32), trains cvtool's nielsen-ch6 network
(conv 20 5x5 relu, max-pool 2, conv 40 5x5 relu, max-pool 2, dense 100 relu,
dense 10 softmax; Glorot-uniform weights, zero biases as cvtool's default init)
with Adam 1e-3, mini-batch 128, a fresh shuffle per epoch, mean log-likelihood
(cross-entropy on the softmax); keeps the running training cost and accuracy of
the epoch's mini-batches (as cvtool prints them); tests once. Prints one JSON line.
"""

import json
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
x_train = torch.from_numpy(x_train.astype(np.float32) / np.float32(255)).unsqueeze(1)
x_test = torch.from_numpy(x_test.astype(np.float32) / np.float32(255)).unsqueeze(1)
y_train = torch.from_numpy(y_train.astype(np.int64))
y_test = torch.from_numpy(y_test.astype(np.int64))

net = nn.Sequential(
    nn.Conv2d(1, 20, 5),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(20, 40, 5),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(40 * 4 * 4, 100),
    nn.ReLU(),
    nn.Linear(100, 10),
)
for m in net.modules():
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
history = []
n = len(x_train)
for _epoch in range(epochs):
    t0 = time.perf_counter()
    net.train()
    order = torch.randperm(n)
    total, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
    for i in range(0, n, 128):
        idx = order[i : i + 128]
        xb, yb = x_train[idx], y_train[idx]
        out = net(xb)
        loss = loss_fn(out, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)
        correct += (out.detach().argmax(1) == yb).sum()
    history.append(
        {
            "train_cost": float(total) / n,
            "train_accuracy": int(correct) / n,
            "seconds": time.perf_counter() - t0,
        }
    )
net.eval()
with torch.no_grad():
    pred = torch.cat([net(x_test[i : i + 1000]).argmax(1) for i in range(0, len(x_test), 1000)])
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
