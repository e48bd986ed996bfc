"""Export a built Sequential to ONNX, and run ONNX files through ONNX Runtime.

``export_onnx(model, path)`` writes one ONNX graph (default opset 17) built
with the ``onnx`` package's helper API and checked with
``onnx.checker.check_model``. The graph reads what cvtool reads: float32
images (N, H, W, C), channels last, or rows (N, D) for an MLP, with a dynamic
batch axis ``N``; it writes the network outputs: (N, K), or (N, H, W, K) maps
for a detector or segmenter. Inside, images turn to NCHW with one Transpose
before the first layer that needs it (ONNX's Conv, pooling, normalisation and
Resize are NCHW-only) and back to NHWC before a Flatten, so the flattened
order is cvtool's (H, W, C), or at the output.

Each layer becomes the ONNX nodes of its converter in
:mod:`cvtool.nn.export_layers` (that module's docstring has the table): the
Keras-course layers, batch normalisation, transposed convolution,
upsampling and the skip connections (tap, concat, add) of the detector and
segmenter. Weights are written as float32 whatever the model's dtype.

The file is self-describing: ``metadata_props`` hold the class names, the
input layout and shape, the preprocessing rule (uint8 pixels divided by 255)
and the spec. ``load_onnx(path)`` returns an :class:`OnnxModel` with the
interface ``predict`` uses on a Sequential (``input_shape``, ``output_shape``,
``class_names``, ``predict_proba``, ``predict``), run by ONNX Runtime on the
CPU; ``load_model(path)`` picks it for a .onnx path and ``Sequential.load``
otherwise. ``onnx`` and ``onnxruntime`` are imported inside the functions that need
them (the ``cvtool[onnx]`` extra), so importing cvtool never does.

Left out: float16/int8 export, NCHW graph inputs, training graphs, importing
ONNX or PyTorch weights into a Sequential.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from cvtool.errors import CvtoolError, check_int
from cvtool.nn.export_layers import Graph, converters

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis (not "flatten to 2-D") since opset 13
INSTALL_HINT = 'pip install "cvtool[onnx]"'
META_PREFIX = "cvtool."
PREPROCESS = "uint8 pixels are divided by 255; floats are used as they are"
EVAL_BATCH = 2000


def _need(module: str):
    """Import onnx or onnxruntime, or a CvtoolError saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CvtoolError(f"ONNX support needs the {module} package: {INSTALL_HINT}.") from None


# ---------------------------------------------------------------------- export
def _metadata(model) -> dict[str, str]:
    from cvtool import __version__

    meta = {
        "format": "cvtool-onnx",
        "version": __version__,
        "input_layout": "NHWC" if len(model.input_shape) == 3 else "ND",
        "input_shape": json.dumps(list(model.input_shape)),
        "class_names": json.dumps(list(model.class_names)),
        "preprocess": PREPROCESS,
        "spec": model.spec_text,
    }
    if model.meta.get("dataset"):
        meta["dataset"] = str(model.meta["dataset"])
    return {META_PREFIX + k: v for k, v in meta.items()}


def to_onnx(model, *, opset: int = DEFAULT_OPSET):
    """An ``onnx.ModelProto`` of a built Sequential, checked by ``onnx.checker``.

    Parameters
    ----------
    model : Sequential
        Built (``build`` or ``load``); any backend and dtype (weights go out as float32).
    opset : int
        The ai.onnx opset, MIN_OPSET (13) up to what the installed onnx knows;
        default 17.

    Returns
    -------
    onnx.ModelProto with input 'input' (N, *input_shape) float32 (images NHWC)
    and output 'output' (N, *output_shape) float32, N dynamic.

    Raises
    ------
    CvtoolError
        A layer that has no ONNX counterpart (named), an unbuilt model, an
        opset out of range, or onnx not installed.
    """
    onnx = _need("onnx")
    from onnx import TensorProto, helper, numpy_helper

    check_int("opset", opset, low=MIN_OPSET, high=onnx.defs.onnx_opset_version())
    if getattr(model, "xp", None) is None:
        raise CvtoolError("Build or load the model before exporting it to ONNX.")
    exporters = converters()
    g = Graph(helper, numpy_helper, model.input_shape)
    for name, layer in zip(model.layer_names(), model.layers, strict=True):
        fn = exporters.get(type(layer))
        if fn is None:
            raise CvtoolError(
                f"Layer {name!r} ({type(layer).__name__}) cannot be exported to ONNX; "
                f"exportable: {', '.join(sorted(cls.__name__ for cls in exporters))}."
            )
        fn(g, layer, name)
    if g.layout == "nchw":  # a model that ends on an image (no flatten): back to cvtool's NHWC
        g.to_layout("nhwc")
    if not g.nodes or g.name == "input":  # only identities: the graph still needs one node
        g.add("Identity", [g.name], "identity")
    g.nodes[-1].output[0] = "output"
    batch = "N"
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                            [batch, *model.input_shape])]  # fmt: skip
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                             [batch, *model.output_shape])]  # fmt: skip
    graph = helper.make_graph(g.nodes, "cvtool_sequential", inputs, outputs, g.inits)
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="cvtool",
        doc_string=f"cvtool Sequential: {model.spec_text}",
    )  # fmt: skip
    # The IR version the opset needs, not the newest the onnx package writes, so older
    # runtimes read the file (onnx's own table; make_model picks its newest).
    proto.ir_version = min(proto.ir_version, _ir_version(onnx, opset))
    helper.set_model_props(proto, _metadata(model))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _ir_version(onnx, opset: int) -> int:
    for entry in onnx.helper.VERSION_TABLE:  # (release, ir_version, ai.onnx opset, ...)
        if entry[2] >= opset:
            return entry[1]
    return onnx.IR_VERSION


def export_onnx(model, path, *, opset: int = DEFAULT_OPSET, overwrite: bool = False) -> dict:
    """Write a built Sequential to an ONNX file (opset 17 by default), atomically.

    Parameters
    ----------
    model : Sequential
        A built or loaded model.
    path : str or os.PathLike
        The output file; it must end in .onnx.
    opset : int
        The ai.onnx opset (see :func:`to_onnx`); default 17.
    overwrite : bool
        Replace an existing `path`; without it an existing file is an error.

    Returns
    -------
    dict with path, opset, ir_version, bytes, nodes (ONNX operator names in
    order), input_shape and output_shape (with None for the batch axis).

    Raises
    ------
    CvtoolError
        As :func:`to_onnx`, a path not ending in .onnx, or an existing path
        without `overwrite`.
    """
    from cvtool.fileio import atomic_path

    path = check_output(path, overwrite=overwrite)
    proto = to_onnx(model, opset=opset)
    payload = proto.SerializeToString()
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return {
        "path": str(path),
        "opset": opset,
        "ir_version": int(proto.ir_version),
        "bytes": len(payload),
        "nodes": [node.op_type for node in proto.graph.node],
        "input_shape": [None, *model.input_shape],
        "output_shape": [None, *model.output_shape],
    }


def check_output(path, *, overwrite: bool = False) -> Path:
    """`path` as a Path if an ONNX file may be written there (checked before any work):
    a name ending in .onnx, then the one output rule of ``cvtool.fileio.check_output``."""
    from cvtool import fileio

    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise CvtoolError(f"ONNX files end in .onnx. Got {str(path)!r}; e.g. model.onnx.")
    return fileio.check_output(path, overwrite=overwrite, what="ONNX output")


def export_file(model_path, out, *, opset: int = DEFAULT_OPSET, overwrite: bool = False) -> dict:
    """Load a cvtool model file (.npz) and export it to `out` (what ``cvtool export`` runs).

    The output is checked before the model is read. Returns :func:`export_onnx`'s
    dict with ``model`` (the input path) and ``spec`` added.

    Raises
    ------
    CvtoolError
        As :func:`export_onnx`, and the loader's error for a file that is not a
        cvtool model.
    """
    from cvtool.nn.model import Sequential

    check_output(out, overwrite=overwrite)
    check_int("opset", opset, low=MIN_OPSET, high=_need("onnx").defs.onnx_opset_version())
    model = Sequential.load(model_path, backend_name="numpy")
    info = export_onnx(model, out, opset=opset, overwrite=overwrite)
    return {"model": str(model_path), "spec": model.spec_text, **info}


# ---------------------------------------------------------------------- runtime
class OnnxModel:
    """An ONNX file run by ONNX Runtime, with the interface ``predict`` uses on a Sequential.

    Attributes
    ----------
    path : Path
    input_shape : tuple of int
        Per-example input shape (no batch axis), e.g. (28, 28, 1) or (784,).
    output_shape : tuple of int
        Per-example output shape, e.g. (10,).
    class_names : tuple of str
        From the file's metadata ('cvtool.class_names'); empty when absent.
    meta : dict
        The file's metadata_props (str -> str).
    """

    dtype = np.dtype(np.float32)

    def __init__(self, session, path: Path):
        self.session, self.path = session, path
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        meta = session.get_modelmeta().custom_metadata_map
        self.meta = dict(meta)
        self.input_shape = self._shape(inp.shape, "input", META_PREFIX + "input_shape")
        self.output_shape = self._shape(out.shape, "output", None)
        names = meta.get(META_PREFIX + "class_names")
        try:
            self.class_names = tuple(str(n) for n in json.loads(names)) if names else ()
        except (ValueError, TypeError):
            self.class_names = ()
        if inp.type != "tensor(float)":
            raise CvtoolError(f"{path}: cvtool runs float32 ONNX inputs; this one is {inp.type}.")

    def _shape(self, dims, what: str, key: str | None) -> tuple[int, ...]:
        if key and key in self.meta:
            try:
                return tuple(int(d) for d in json.loads(self.meta[key]))
            except (ValueError, TypeError):
                pass
        rest = list(dims[1:])
        if not all(isinstance(d, int) and d > 0 for d in rest):
            raise CvtoolError(
                f"{self.path}: the ONNX {what} shape {list(dims)} has dynamic sizes beyond "
                "the batch axis; cvtool needs fixed sizes."
            )
        return tuple(rest)

    def prepare(self, x) -> np.ndarray:
        """Inputs as float32 (N, *input_shape): uint8 divided by 255, as a Sequential does."""
        x = np.asarray(x)
        x = x.astype(np.float32) / np.float32(255) if x.dtype == np.uint8 else x.astype(np.float32)
        per = math.prod(self.input_shape)
        if x.ndim == 0 or math.prod(x.shape[1:]) != per:
            raise CvtoolError(
                f"Inputs of shape {tuple(x.shape[1:])} do not fit the model's input shape "
                f"{self.input_shape} ({per} values per example)."
            )
        return np.ascontiguousarray(x.reshape((x.shape[0], *self.input_shape)))

    def predict_proba(self, x, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Network outputs (N, *output_shape) float32 for inputs x (N, ...)."""
        x = self.prepare(x)
        outs = [self.session.run([self.output_name], {self.input_name: x[i : i + batch_size]})[0]
                for i in range(0, len(x), batch_size)]  # fmt: skip
        return np.concatenate(outs) if outs else np.zeros((0, *self.output_shape), np.float32)

    def predict(self, x, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Predicted class indices (N,)."""
        return self.predict_proba(x, batch_size).argmax(axis=1)

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r}, input_shape={self.input_shape})"


def load_onnx(path, *, threads: int | None = None) -> OnnxModel:
    """An ONNX file ready to run on ONNX Runtime's CPU provider.

    Parameters
    ----------
    path : str or os.PathLike
        An .onnx file (cvtool's export, or any single-input float32 classifier).
    threads : int, optional
        ONNX Runtime's intra-op threads; None lets it choose.

    Raises
    ------
    CvtoolError
        onnxruntime not installed (says what to install), the file missing, or
        not an ONNX model ONNX Runtime can load.
    """
    from cvtool.errors import check_path

    path = check_path(path, "Model file")
    ort = _need("onnxruntime")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = check_int("threads", threads, low=1)
    opts.log_severity_level = 3  # errors only: warnings would go to stderr on every run
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        first = " ".join(str(exc).split())[:200]
        raise CvtoolError(f"{path} is not an ONNX model ONNX Runtime can run: {first}") from None
    return OnnxModel(session, path)


def load_model(path, *, backend_name: str | None = None):
    """A model to predict with: an .onnx file as an :class:`OnnxModel`, anything else
    through ``Sequential.load`` (on `backend_name`).

    Both offer ``input_shape``, ``output_shape``, ``class_names``, ``predict_proba``
    and ``predict``, which is all ``cvtool predict`` uses. ONNX files always run on
    ONNX Runtime's CPU provider (`backend_name` does not apply to them).
    """
    if Path(path).suffix.lower() == ".onnx":
        return load_onnx(path)
    from cvtool.nn.model import Sequential

    return Sequential.load(path, backend_name=backend_name)
