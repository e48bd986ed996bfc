"""k-nearest-neighbour classification of images: L1, L2 and cosine distances.

``kneighbors`` finds, for every test image, the k nearest training images in
bounded memory: test rows go in chunks and training columns in blocks sized
from a memory budget (``memory_mb``), so peak memory does not grow with the
test set. ``vote`` turns neighbour labels into predictions;
``evaluate`` runs the whole experiment: choose (k, metric) on a validation
split or k-fold cross-validation of the training set, then touch the test set
once.

Modules: ``search`` (kneighbors, vote, input checks), ``kernels`` (distance
blocks and exact top-k), ``numba_l1`` (the optional compiled L1 kernel,
imported only when Numba is installed), ``prune`` and ``numba_pairs`` (the
pruned exact L2 search, with Numba), ``eval`` (the experiment, CSV output,
command-line parsing).

Rules (all equal to scikit-learn's ``KNeighborsClassifier(algorithm='brute')``
wherever scikit-learn's answer is defined):

- Distances are in the units of the input (0-255 pixels for uint8 images).
  uint8 images are compared with exact integer arithmetic, so mathematically
  equal distances are bit-equal (cosine: up to 1459 values per image, through
  the exact key -(a.b)^2 / (|a|^2 |b|^2); see ``kernels``).
- Neighbours are ordered by (distance, training index): of equally distant
  training images the one with the smaller index is nearer, also at the k-th
  place. With float images (and cosine on uint8 images of more than 1459
  values) "equal" means equal after float64 rounding: mathematically equal
  distances that round differently rank by their rounded values. (scikit-learn's brute force keeps the smaller index for L1 and L2;
  for cosine it uses ``argpartition``, whose choice among ties is unspecified.)
- Uniform vote: the class with the most neighbours; a tie between classes
  goes to the smallest label (scikit-learn's mode does the same).
- Distance vote: each neighbour weighs 1/d. If any neighbour is at distance
  0 (an exact duplicate), those neighbours get weight 1 and the others 0.
  Class weights are summed in neighbour order as scikit-learn does, and a
  tie goes to the smallest label.
- Model selection: the highest validation accuracy; a tie goes to the smaller
  k, then to the metric listed first.

Left out: approximate search, kd-trees, radius neighbours, regression.
"""

from cvtool.knn.eval import (
    choose,
    evaluate,
    load_data,
    parse_ints,
    parse_names,
    peak_rss_mb,
    stratified_folds,
    write_predictions,
)
from cvtool.knn.search import (
    DEFAULT_MEMORY_MB,
    ENGINES,
    METRICS,
    MIN_ROWS,
    WEIGHTS,
    check_k,
    flatten,
    kneighbors,
    resolve_engine,
    vote,
)

__all__ = [
    "DEFAULT_MEMORY_MB",
    "ENGINES",
    "METRICS",
    "MIN_ROWS",
    "WEIGHTS",
    "check_k",
    "choose",
    "evaluate",
    "flatten",
    "kneighbors",
    "load_data",
    "parse_ints",
    "parse_names",
    "peak_rss_mb",
    "resolve_engine",
    "stratified_folds",
    "vote",
    "write_predictions",
]
