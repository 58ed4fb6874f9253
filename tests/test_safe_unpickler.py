"""The restricted unpickler: its exact allow-list, and gadget pickles that must not run.

``test_skeleton_io`` tries ``os.system`` and ``builtins.eval``; an attacker with a
``.pkl`` to plant would rather reach code through the modules the reader *does* trust
(numpy, collections, builtins, _codecs). Every payload here is a real, working exploit:
each test first checks that our reader refuses it and that its side effect (a file in
``tmp_path``) did not happen, then runs the same bytes through plain ``pickle`` to show
the payload is live (so a refusal is not a broken payload's luck).

Payloads are written the way an attacker writes them: with ``__reduce__`` (the
:class:`Call` helper: unpickling it calls ``fn(*args)``, pickle's REDUCE) and, for the
opcode forms no pickler emits by itself (INST, STACK_GLOBAL with a dotted name), byte
by byte.
"""

from __future__ import annotations

import codecs
import collections
import functools
import importlib
import io
import operator
import os
import pickle
import pickletools
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from epamnet.errors import EpamnetError
from epamnet.io.skeleton import (
    ForbiddenGlobal,
    SafeUnpickler,
    _allowed_globals,
    load_annotation_file,
    load_annotations,
)

# The allow-list, stated independently of the module: the globals pickle writes for the
# skeleton format (numpy arrays, dtypes and scalars under the numpy 2 and numpy 1 module
# paths, OrderedDict, and the two helpers protocol 0-2 use for bytes values).
EXPECTED_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("builtins", "bytes"),
    ("__builtin__", "bytes"),
})

ANN = {
    "frame_dir": "S001C001P001R001A001", "label": 0, "img_shape": (64, 64), "original_shape": (64, 64),
    "total_frames": 2, "keypoint": np.ones((1, 2, 17, 2), np.float32),
    "keypoint_score": np.ones((1, 2, 17), np.float32),
}


class Call:
    """Unpickling this calls ``fn(*args)`` (pickle's REDUCE): the brick of every gadget chain.

    ``fn`` may itself be a :class:`Call` (the result of one call is called next).
    """

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __call__(self, *args: Any) -> Any:  # makes a nested Call a valid REDUCE callable
        raise AssertionError("never called: only pickled")

    def __reduce__(self):
        return (self.fn, self.args)


class _System:
    """Unpickling this runs ``touch marker`` (the inner file numpy.load is made to read)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _exec_command_importable() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module("numpy.distutils.exec_command")
        return True
    except Exception:  # noqa: BLE001 - numpy.distutils is gone for Python >= 3.12, or fails to import
        return False


def _unicode4(text: str) -> bytes:
    """Protocol 4 BINUNICODE: 'X' + 4-byte length + utf-8."""
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _wrap(gadget: Any, protocol: int) -> bytes:
    """The gadget hidden in a second annotation, after a well-formed one."""
    return pickle.dumps([ANN, {**ANN, "frame_dir": gadget}], protocol=protocol)


# ----------------------------------------------------------------------------- gadgets
# Each: tmp_path -> (pickle bytes, qualnames the refusal may name, check that it ran).
# The check is called with None after our reader refused the bytes, and with what plain
# pickle returned after it loaded them.


def g_runstring(tmp: Path, protocol: int = 2):
    """numpy.testing's ``runstring(code, dict)`` is ``exec(code, dict)``."""
    from numpy.testing._private.utils import runstring

    marker = tmp / "ran"
    code = f"open({str(marker)!r}, 'w').close()"
    return _wrap(Call(runstring, code, {}), protocol), ("numpy.testing._private.utils.runstring",), lambda _: marker.exists()


def g_runstring_inst(tmp: Path):
    """Protocol 0 INST opcode (``i``): instantiates ``module.name(*args)`` without REDUCE."""
    marker = tmp / "ran"
    code = f"open({str(marker)!r}, 'w').close()"
    data = b"(V" + code.encode("raw_unicode_escape") + b"\n(dinumpy.testing._private.utils\nrunstring\n."
    return data, ("numpy.testing._private.utils.runstring",), lambda _: marker.exists()


def g_runstring_dotted(tmp: Path):
    """Protocol 4 STACK_GLOBAL with a dotted name under the trusted module ``numpy``."""
    marker = tmp / "ran"
    code = f"open({str(marker)!r}, 'w').close()"
    data = (b"\x80\x04" + _unicode4("numpy") + _unicode4("testing._private.utils.runstring") + b"\x93"
            + _unicode4(code) + b"}\x86R.")  # STACK_GLOBAL, (code, {}), REDUCE, STOP
    return data, ("numpy.testing._private.utils.runstring",), lambda _: marker.exists()


def g_numpy_load(tmp: Path, protocol: int = 2):
    """``numpy.load(path, None, True)``: allow_pickle is positional, so a plain REDUCE can set it,
    and numpy then unpickles the (unrestricted) file it names."""
    marker, inner = tmp / "ran", tmp / "inner.pkl"
    inner.write_bytes(pickle.dumps(_System(marker)))
    return _wrap(Call(np.load, str(inner), None, True), protocol), ("numpy.load",), lambda _: marker.exists()


def g_numpy_load_opcodes(tmp: Path):
    """The same, written by hand: PROTO 4, STACK_GLOBAL numpy.load, (path, None, True), REDUCE."""
    marker, inner = tmp / "ran", tmp / "inner.pkl"
    inner.write_bytes(pickle.dumps(_System(marker)))
    data = (b"\x80\x04" + _unicode4("numpy") + _unicode4("load") + b"\x93"
            + _unicode4(str(inner)) + b"N\x88\x87R.")  # NONE, NEWTRUE, TUPLE3
    return data, ("numpy.load",), lambda _: marker.exists()


def g_numpy_private_load(tmp: Path, protocol: int = 2):
    """The same function under the private module path it is defined in."""
    marker, inner = tmp / "ran", tmp / "inner.pkl"
    inner.write_bytes(pickle.dumps(_System(marker)))
    data = (b"\x80\x04" + _unicode4("numpy.lib._npyio_impl") + _unicode4("load") + b"\x93"
            + _unicode4(str(inner)) + b"N\x88\x87R.")
    return data, ("numpy.lib._npyio_impl.load",), lambda _: marker.exists()


def g_numpy_save(tmp: Path, protocol: int = 2):
    """``numpy.save(path, data)`` writes a file where the pickle says."""
    marker = tmp / "ran.npy"
    return _wrap(Call(np.save, str(marker), [1, 2, 3]), protocol), ("numpy.save",), lambda _: marker.exists()


def g_numpy_memmap(tmp: Path, protocol: int = 2):
    """``numpy.memmap(path, 'uint8', 'w+', 0, (4,))`` creates (or truncates) a file."""
    marker = tmp / "ran"
    return _wrap(Call(np.memmap, str(marker), "uint8", "w+", 0, (4,)), protocol), ("numpy.memmap",), lambda _: marker.exists()


def g_numpy_fromfile(tmp: Path, protocol: int = 2):
    """``numpy.fromfile(path, 'uint8')`` reads any file into the loaded annotations."""
    secret = tmp / "secret"
    secret.write_bytes(b"token")
    data = pickle.dumps(Call(np.fromfile, str(secret), "uint8"), protocol=protocol)

    def read_it(obj: Any) -> bool:
        return isinstance(obj, np.ndarray) and obj.tobytes() == b"token"

    return data, ("numpy.fromfile",), read_it


def g_exec_command(tmp: Path):
    """``numpy.distutils.exec_command.exec_command(cmd)`` runs a shell command (protocol 0, by hand)."""
    marker = tmp / "ran"
    data = b"cnumpy.distutils.exec_command\nexec_command\n(Vtouch " + str(marker).encode() + b"\ntR."
    return data, ("numpy.distutils.exec_command.exec_command",), lambda _: marker.exists()


def g_getattr_tofile(tmp: Path, protocol: int = 2):
    """``getattr(numpy.ndarray, 'tofile')(array, path)``: only getattr is outside the format."""
    marker = tmp / "ran"
    gadget = Call(np.ndarray.tofile, np.arange(3, dtype=np.uint8), str(marker))  # pickles as getattr(ndarray, 'tofile')
    return _wrap(gadget, protocol), ("builtins.getattr", "__builtin__.getattr"), lambda _: marker.exists()


def g_methodcaller(tmp: Path, protocol: int = 2):
    """``operator.methodcaller('tofile', path)(array)``."""
    marker = tmp / "ran"
    gadget = Call(operator.methodcaller("tofile", str(marker)), np.arange(3, dtype=np.uint8))
    return _wrap(gadget, protocol), ("operator.methodcaller",), lambda _: marker.exists()


def g_attrgetter(tmp: Path, protocol: int = 2):
    """``operator.attrgetter('tofile')(array)(path)``: the bound method, then called."""
    marker = tmp / "ran"
    gadget = Call(Call(operator.attrgetter("tofile"), np.arange(3, dtype=np.uint8)), str(marker))
    return _wrap(gadget, protocol), ("operator.attrgetter",), lambda _: marker.exists()


def g_partial(tmp: Path, protocol: int = 2):
    """``functools.partial(numpy.save, path)(data)``."""
    marker = tmp / "ran.npy"
    gadget = Call(functools.partial(np.save, str(marker)), [1, 2, 3])
    return _wrap(gadget, protocol), ("functools.partial",), lambda _: marker.exists()


def g_builtins_exec(tmp: Path, protocol: int = 2):
    """``builtins.exec(code)``: a neighbour of the allowed ``builtins.bytes``."""
    import builtins

    marker = tmp / "ran"
    gadget = Call(builtins.exec, f"open({str(marker)!r}, 'w').close()")
    return _wrap(gadget, protocol), ("builtins.exec", "__builtin__.exec"), lambda _: marker.exists()


def g_builtins_import(tmp: Path):
    """``getattr(__import__('os'), 'system')(cmd)`` written by hand (protocol 0)."""
    marker = tmp / "ran"
    data = (b"c__builtin__\ngetattr\n(c__builtin__\n__import__\n(Vos\ntRVsystem\ntR(Vtouch "
            + str(marker).encode() + b"\ntR.")
    return data, ("__builtin__.getattr",), lambda _: marker.exists()


def g_collections_sys(tmp: Path):
    """A dotted name under the trusted ``collections`` (protocol 4 STACK_GLOBAL): the module's own
    ``_sys.modules.get('posix')`` hands out any loaded module, here the one with ``system``."""
    data = b"\x80\x04" + _unicode4("collections") + _unicode4("_sys.modules.get") + b"\x93" + _unicode4("posix") + b"\x85R."

    def got_posix(obj: Any) -> bool:
        return getattr(obj, "__name__", None) == "posix"

    return data, ("collections._sys.modules.get",), got_posix


def g_codecs_other(tmp: Path):
    """``codecs.open(path, 'w')``: a neighbour of the allowed ``_codecs.encode`` that creates files."""
    marker = tmp / "ran"
    data = b"ccodecs\nopen\n(V" + str(marker).encode() + b"\nVw\ntR."

    def opened(obj: Any) -> bool:
        if obj is not None:
            obj.close()
        return marker.exists()

    return data, ("codecs.open",), opened


GADGETS: dict[str, Callable[..., Any]] = {
    "numpy.testing runstring": g_runstring,
    "runstring via INST": g_runstring_inst,
    "runstring via dotted STACK_GLOBAL": g_runstring_dotted,
    "numpy.load allow_pickle": g_numpy_load,
    "numpy.load by opcodes": g_numpy_load_opcodes,
    "numpy.lib._npyio_impl.load": g_numpy_private_load,
    "numpy.save": g_numpy_save,
    "numpy.memmap w+": g_numpy_memmap,
    "numpy.fromfile": g_numpy_fromfile,
    "numpy.distutils exec_command": g_exec_command,
    "builtins.getattr(ndarray, tofile)": g_getattr_tofile,
    "operator.methodcaller": g_methodcaller,
    "operator.attrgetter": g_attrgetter,
    "functools.partial": g_partial,
    "builtins.exec": g_builtins_exec,
    "__import__ + getattr": g_builtins_import,
    "collections dotted _sys": g_collections_sys,
    "codecs.open": g_codecs_other,
}


@pytest.mark.parametrize("name", list(GADGETS))
def test_gadget_pickle_is_refused_before_it_runs(tmp_path: Path, name: str) -> None:
    data, qualnames, ran = GADGETS[name](tmp_path)
    pickletools.dis(data, out=io.StringIO())  # a well-formed pickle
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    before = set(os.listdir(tmp_path))

    try:
        load_annotation_file(path)
    except EpamnetError as exc:
        msg = str(exc)
    else:
        msg = "(loaded without an error)"
    assert set(os.listdir(tmp_path)) == before and not ran(None), f"{name}: the payload ran ({msg})"
    assert msg.startswith(f"{path}: refuses to load: the pickle references "), msg
    assert any(f"references {q}, which" in msg for q in qualnames), (qualnames, msg)
    assert "\n" not in msg

    # The payload is live: plain pickle runs it (skipped only for the numpy.distutils one
    # where this Python's numpy no longer ships it; the refusal above holds regardless).
    if name == "numpy.distutils exec_command" and not _exec_command_importable():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy.distutils warns on import
        result = pickle.loads(data)
    assert ran(result), f"{name}: the payload did not do its work under plain pickle"


@pytest.mark.parametrize("protocol", [0, 5])
@pytest.mark.parametrize("name", ["numpy.testing runstring", "numpy.load allow_pickle", "numpy.save",
                                  "builtins.getattr(ndarray, tofile)", "operator.methodcaller"])
def test_gadget_pickle_is_refused_under_other_protocols(tmp_path: Path, name: str, protocol: int) -> None:
    data, qualnames, ran = GADGETS[name](tmp_path, protocol)
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(EpamnetError, match="refuses to load: the pickle references ") as info:
        load_annotations(path)
    assert any(f"references {q}, which" in str(info.value) for q in qualnames), str(info.value)
    assert not ran(None)


# ----------------------------------------------------------------------------- the allow-list itself


def test_allow_list_is_exactly_the_skeleton_format_globals() -> None:
    allowed = _allowed_globals()
    assert set(allowed) == EXPECTED_ALLOWED
    resolved = {key: SafeUnpickler(io.BytesIO()).find_class(*key) for key in EXPECTED_ALLOWED}
    assert resolved[("numpy", "ndarray")] is np.ndarray and resolved[("numpy", "dtype")] is np.dtype
    assert resolved[("collections", "OrderedDict")] is collections.OrderedDict
    assert resolved[("builtins", "bytes")] is bytes and resolved[("__builtin__", "bytes")] is bytes
    for core in ("numpy._core", "numpy.core"):  # both numpy paths map to the installed numpy
        assert resolved[(f"{core}.multiarray", "_reconstruct")] is np._core.multiarray._reconstruct
        assert resolved[(f"{core}.multiarray", "scalar")] is np._core.multiarray.scalar
        assert resolved[(f"{core}.numeric", "_frombuffer")] is np._core.numeric._frombuffer
    # _codecs.encode is a latin-1-only stand-in, never the real encoder
    encode = resolved[("_codecs", "encode")]
    assert encode is not codecs.encode and encode("\xe9a", "latin1") == b"\xe9a"
    with pytest.raises(pickle.UnpicklingError):
        encode("abc", "rot13")


PROBED_MODULES = [
    "numpy", "numpy._core.multiarray", "numpy._core.numeric", "numpy.core.multiarray", "numpy.core.numeric",
    "numpy.lib", "numpy.lib._npyio_impl", "numpy.lib.format", "numpy.testing", "numpy.testing._private.utils",
    "numpy.ctypeslib", "numpy.distutils.exec_command",
    "builtins", "collections", "_codecs", "codecs", "operator", "functools", "os", "posix", "subprocess",
    "pickle", "copyreg", "importlib", "sys", "io", "shutil", "types", "runpy", "ctypes",
]
DOTTED = [
    ("numpy", "testing._private.utils.runstring"), ("numpy", "ndarray.tofile"), ("numpy", "lib.format.read_array"),
    ("numpy._core.multiarray", "_reconstruct.__self__"), ("collections", "_sys.modules.get"),
    ("collections", "OrderedDict.fromkeys"), ("builtins", "bytes.fromhex"), ("__builtin__", "eval"),
    ("__builtin__", "getattr"), ("__builtin__", "__import__"), ("copy_reg", "_reconstructor"),
]


def test_every_other_global_is_refused_by_find_class() -> None:
    """All names of numpy and of the trusted and usual gadget modules: only the allow-list resolves."""
    probes = set(DOTTED)
    for module in PROBED_MODULES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                names = dir(importlib.import_module(module))
        except ImportError:
            names = ["load", "save", "exec_command", "system", "eval"]
        probes |= {(module, n) for n in names}
        if module == "builtins":
            probes |= {("__builtin__", n) for n in names}
    probes -= EXPECTED_ALLOWED
    assert len(probes) > 2000
    unpickler = SafeUnpickler(io.BytesIO())
    resolved = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module, name in sorted(probes):
            try:
                unpickler.find_class(module, name)
            except ForbiddenGlobal as exc:
                if exc.qualname != f"{module}.{name}":
                    resolved.append(f"{module}.{name} (refused as {exc.qualname})")
            except Exception as exc:  # noqa: BLE001 - looked up (and failed) instead of refused
                resolved.append(f"{module}.{name} ({type(exc).__name__})")
            else:
                resolved.append(f"{module}.{name}")
    assert resolved == [], f"{len(resolved)} globals outside the allow-list are not refused, e.g. {resolved[:8]}"


# ----------------------------------------------------------------------------- what must still load


@pytest.mark.parametrize(("protocol", "core"), [(0, "numpy._core"), (2, "numpy._core"), (5, "numpy._core"),
                                               (0, "numpy.core"), (2, "numpy.core")])
def test_numpy_typed_annotations_as_mmaction2_writes_them_still_load(tmp_path: Path, protocol: int, core: str) -> None:
    """mmengine.dump writes protocol 2; pyskl/mmaction2 annotations hold numpy arrays and scalars."""
    rng = np.random.default_rng(3)
    ann = {
        "frame_dir": "S001C001P001R001A009", "label": np.int64(8), "img_shape": (1080, 1920),
        "original_shape": (np.int64(1080), np.int64(1920)), "total_frames": np.int64(4),
        "keypoint": rng.uniform(0, 1000, (2, 4, 17, 2)).astype(np.float32),
        "keypoint_score": rng.uniform(0, 1, (2, 4, 17)).astype(np.float16),
        "box_score": np.float32(0.75), "fps": np.float64(30.0), "valid": np.bool_(True),
        "meta": collections.OrderedDict(source=b"hrnet"),
    }
    data = pickle.dumps({"split": {"xsub_train": [ann["frame_dir"]]}, "annotations": [ann]}, protocol=protocol)
    if core == "numpy.core":  # as numpy 1.x writes it (text GLOBAL opcodes: a faithful rewrite)
        data = data.replace(b"numpy._core.", b"numpy.core.")
    path = tmp_path / "ann.pkl"
    path.write_bytes(data)
    (loaded,), split = load_annotation_file(path)
    assert split == {"xsub_train": [ann["frame_dir"]]}
    for key, value in ann.items():
        assert type(loaded[key]) is type(value), key
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype
            np.testing.assert_array_equal(loaded[key], value)
        else:
            assert loaded[key] == value, key
    assert loaded["box_score"].dtype == np.float32 and loaded["label"].dtype == np.int64
