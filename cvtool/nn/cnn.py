"""Models for the trainers: from specs, presets or Nielsen's sizes; fine-tuning, augmentation.

- :func:`mlp_model` builds an (unbuilt) Sequential from Nielsen's layer sizes
  (``784,30,10``, the output activation matching the cost) or from a spec;
- :func:`cnn_model` builds an (unbuilt) :class:`~cvtool.nn.model.Sequential` from
  an architecture spec or one of the presets in :data:`cvtool.nn.spec.PRESETS`.
- :func:`finetune_model` reuses a saved model: it returns a built model with
  the saved weights copied in, the first N parametrised layers frozen, and the
  classifier (the last dense layer) optionally replaced by a new one with a
  different number of classes, freshly initialised.
- :func:`augmentation` returns a ``transform`` for ``fit`` that trains on
  randomly flipped, shifted and rotated copies of each mini-batch
  (``cvtool.augment``); evaluation and prediction see the images as they are.
- :func:`conv_filters` returns the first convolution's kernels as images, for
  ``cvtool show filters``.

Left out: partial loading by layer name, learning-rate warm-up, mixed
precision.
"""

from __future__ import annotations

import numpy as np

from cvtool import backend
from cvtool.errors import CvtoolError
from cvtool.nn import spec as S
from cvtool.shapes import flatten_output

# Default learning rates per optimiser; fine-tuning uses a tenth of them.
DEFAULT_ETA = {"adam": 1e-3, "momentum": 0.01, "sgd": 0.1}
FINETUNE_FACTOR = 0.1
DEFAULT_PRESET = "nielsen-ch6"


def default_eta(optimizer: str, finetune: bool = False) -> float:
    """The learning rate used when none is given (a tenth of it when fine-tuning)."""
    if optimizer not in DEFAULT_ETA:
        raise CvtoolError(
            f"The 'optimizer' parameter must be one of {', '.join(DEFAULT_ETA)}. "
            f"Got {optimizer!r} instead."
        )
    return DEFAULT_ETA[optimizer] * (FINETUNE_FACTOR if finetune else 1.0)


def spec_text(arch: str | None, preset: str | None, default: str) -> str:
    """The spec text from --arch or --preset (at most one), else `default` (a preset name)."""
    if arch is not None and preset is not None:
        raise CvtoolError("Give the network as --arch SPEC or as --preset NAME, not both.")
    if preset is not None:
        if preset not in S.PRESETS:
            raise CvtoolError(
                f"The 'preset' parameter must be one of {', '.join(S.PRESETS)}. "
                f"Got {preset!r} instead."
            )
        return S.PRESETS[preset]
    if arch is not None:
        return S.PRESETS.get(arch.strip(), arch)
    return S.PRESETS.get(default, default)


def cnn_model(text: str, input_shape: tuple[int, ...], init: str | None = None):
    """An unbuilt Sequential from spec text; the spec's input (if any) must fit the data.

    Parameters
    ----------
    text : architecture spec (or '@file').
    input_shape : (H, W, C) of the dataset's images; (H, W) means one channel.
    init : initialiser name for every conv/dense layer (None: each layer's default).
    """
    from cvtool.nn.model import Sequential

    input_shape = tuple(input_shape) + ((1,) if len(input_shape) == 2 else ())
    specs = S.parse_spec(text)
    if specs[0].kind == "input":
        given = tuple(specs[0]["shape"])
        if flatten_output(given) != flatten_output(input_shape):
            raise CvtoolError(
                f"The spec's input {'x'.join(map(str, given))} does not fit the dataset's images "
                f"{'x'.join(map(str, input_shape))}."
            )
    else:
        shape = "x".join(map(str, input_shape))
        specs = [S.LayerSpec("input", {"shape": tuple(input_shape)}, f"input:{shape}"), *specs]
    text = ", ".join(s.text for s in specs)
    return Sequential.from_spec(specs, init=init, spec_text=text)


def mlp_model(layers: str, input_size: int, *, activation: str = "sigmoid",
              cost: str = "cross-entropy", init: str | None = None):  # fmt: skip
    """An unbuilt Sequential from Nielsen's sizes ('784,30,10') or a spec text / preset.

    Parameters
    ----------
    layers : '784,30,10' (sizes: hidden layers use `activation`, the output
        layer the cost's matching activation: sigmoid for cross-entropy,
        softmax for log-likelihood, else `activation`), or a spec, preset or '@file'.
    input_size : values per example of the data (784 for 28x28 images); the
        first size must equal it.
    """
    from cvtool.nn.losses import get_loss
    from cvtool.nn.model import Sequential

    layers = S.read_spec_text(layers).strip()  # '-', '@file', a path or <(...) hold the text
    text = S.PRESETS.get(layers, layers)
    if ":" not in text and any(p.strip().isdigit() for p in text.split(",")):  # 784,30,10
        specs = S.layers_from_sizes(text, activation)
        if specs[0]["shape"] != (input_size,):
            raise CvtoolError(
                f"The first --layers size must be the input size {input_size}. "
                f"Got {specs[0]['shape'][0]} in {layers!r}."
            )
        out_act = get_loss(cost).fused or activation  # the cost's matching output activation
        last = specs[-1]
        specs[-1] = S.LayerSpec("dense", {**last.args, "activation": out_act},
                                f"dense:{last['units']}:{out_act}")  # fmt: skip
        return Sequential.from_spec(specs, init=init)
    return Sequential.from_spec(S.parse_spec(text), (input_size,), init=init)


def make_model(arch: str | None = None, preset: str | None = None, image_shape=(28, 28, 1), *,
               init: str | None = None, init_from=None, freeze: int = 0,
               replace_head: int | None = None, xp=None, backend_name: str | None = None,
               dtype="float32", seed: int | None = 0):  # fmt: skip
    """train-cnn's model: from --arch or --preset (default nielsen-ch6), or fine-tuned.

    With `init_from` (a saved model) the result is :func:`finetune_model`'s
    (built, weights copied, `freeze` layers frozen, head replaced); otherwise an
    unbuilt :func:`cnn_model` for images of `image_shape`. Option combinations
    that make no sense are refused here. A fine-tuned model is built on `xp`, or
    on ``backend.get_xp(backend_name)``.
    """
    if init_from is None:
        if freeze or replace_head is not None:
            raise CvtoolError("--freeze and --replace-head need --init-from MODEL.")
        return cnn_model(spec_text(arch, preset, DEFAULT_PRESET), image_shape, init=init)
    if arch is not None or preset is not None:
        raise CvtoolError("--init-from takes the saved model's network; drop --arch/--preset.")
    if xp is None:
        xp = backend.get_xp(backend_name)
    return finetune_model(init_from, freeze=freeze, replace_head=replace_head, xp=xp,
                          dtype=dtype, seed=seed)  # fmt: skip


def _head_index(specs: list) -> int:
    idx = [i for i, s in enumerate(specs) if s.kind == "dense"]
    if not idx:
        raise CvtoolError("--replace-head needs a model whose classifier is a dense layer.")
    return idx[-1]


def finetune_model(
    path,
    *,
    freeze: int = 0,
    replace_head: int | None = None,
    xp=None,
    dtype="float32",
    seed: int | None = 0,
):
    """A built Sequential that starts from the weights saved in `path`.

    Parameters
    ----------
    path : a model file written by ``Sequential.save``.
    freeze : the first `freeze` parametrised layers are not trained.
    replace_head : if given, the last dense layer is replaced by a new dense
        layer with this many units (same activation), freshly initialised.
    xp, dtype, seed : backend module, dtype and initialisation seed of the
        new model (the seed only matters for a replaced head).

    Returns
    -------
    Sequential, built (initialised from `seed`), with the saved weights copied
    into every layer before the (replaced) head and the first layers frozen.
    Pass it to ``fit`` (or ``run_training``) as it is; do not build it again.
    """
    from cvtool.nn.model import Sequential

    base = Sequential.load(path, backend_name="numpy")
    specs = S.parse_spec(base.spec_text)
    if replace_head is not None:
        if not isinstance(replace_head, int) or replace_head < 1:
            raise CvtoolError(
                f"The 'replace-head' parameter must be an int >= 1 (classes). Got {replace_head!r}."
            )
        h = _head_index(specs)
        act = specs[h].args.get("activation", "identity")
        args = {**specs[h].args, "units": replace_head}
        specs[h] = S.LayerSpec("dense", args, f"dense:{replace_head}:{act}")
    model = Sequential.from_spec(specs, spec_text=", ".join(s.text for s in specs))
    saved = [{k: backend.to_numpy(v) for k, v in layer.params.items()} for layer in base.layers]
    n_param = len(base.param_layers)
    if not isinstance(freeze, int) or not 0 <= freeze < n_param:
        raise CvtoolError(
            f"The 'freeze' parameter must be in 0..{n_param - 1} for {path} "
            f"({n_param} layers with weights; at least one must train). Got {freeze!r} instead."
        )
    model.build(xp, dtype, seed)
    if len(model.layers) != len(saved):
        raise CvtoolError(f"{path}: the saved layers do not match its spec; file damaged?")
    head = max(i for i, layer in enumerate(model.layers) if layer.params)
    for i, (layer, params) in enumerate(zip(model.layers, saved, strict=True)):
        if replace_head is not None and i >= head:
            break  # the new head keeps its fresh initialisation
        for k, v in params.items():
            layer.params[k][...] = model.xp.asarray(v, dtype=model.dtype)
    model.freeze(freeze)
    model.meta["finetuned_from"] = str(path)
    model.meta["frozen_layers"] = freeze
    return model


def augmentation(seed: int, rotation=10.0, shift=2.0, hflip=0.5):
    """A ``transform`` for ``fit`` that randomly flips, shifts and rotates each mini-batch.

    Each call gets a fresh random flip (probability ``hflip``), shift (up to
    ``shift`` pixels each way) and rotation (up to ``rotation`` degrees) per
    image, drawn from one generator seeded with `seed` (same seed, same
    sequence of batches). ``fit`` applies it to training mini-batches only, so
    evaluation, validation and prediction see the images as they are.

    Returns
    -------
    transform : callable (m, H, W, C) -> (m, H, W, C), for ``fit(transform=...)``.
    settings : dict of the settings, e.g. for the model's metadata.
    """
    from cvtool.augment import random_affine_batch

    rng = backend.host_rng([seed, 6])

    def transform(x):
        return random_affine_batch(x, rng, rotation=rotation, shift=shift, hflip=hflip)

    return transform, {"rotation": rotation, "shift": shift, "hflip": hflip}


def conv_filters(model, max_filters: int = 64) -> tuple[np.ndarray, list[str], dict]:
    """The first convolution's kernels as images.

    Returns
    -------
    images : (K, K_h, K_w) float64 for one input channel, (K, K_h, K_w, 3) for RGB,
        else the mean over input channels; K = min(filters, max_filters).
    titles : K labels.
    info : layer name, filters, kernel, channels.
    """
    from cvtool.nn.conv import Conv2D

    if not isinstance(max_filters, int) or max_filters < 1:
        raise CvtoolError(f"The 'max-filters' parameter must be >= 1. Got {max_filters!r}.")
    names = model.layer_names()
    idx = next((i for i, layer in enumerate(model.layers) if isinstance(layer, Conv2D)), None)
    if idx is None:
        raise CvtoolError("The model has no convolution; 'show filters' draws conv kernels.")
    W = np.asarray(backend.to_numpy(model.layers[idx].params["W"]), np.float64)  # (Kh, Kw, C, F)
    kh, kw, c, f = W.shape
    k = min(f, max_filters)
    images = W[..., :k].transpose(3, 0, 1, 2)  # (K, Kh, Kw, C)
    images = images if c == 3 else images.mean(axis=3)
    titles = [f"filter {j}" for j in range(k)]
    info = {"layer": names[idx], "filters": f, "shown": k, "kernel": [kh, kw], "channels": c}
    return images, titles, info
