"""The artifact format: the description travels inside the file, hostile archives are refused before anything in
them runs, and an artifact always comes from the checkpoint it names."""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from helpers import run_litquant, tiny
from torch import nn

from litquant.artifacts.description import describe
from litquant.artifacts.errors import ArtifactError, UnsafeArtifactError
from litquant.artifacts.files import file_sha256, sidecar_path
from litquant.artifacts.loading import LoadedModel, load_artifact, load_model, read_description
from litquant.artifacts.pt2_file import MAX_ENTRY_BYTES
from litquant.artifacts.saving import save_pt2
from litquant.quantization import QuantizeConfig
from litquant.quantization.pt2e import export_program


class _Payload:
    """Unpickling this writes a marker file: what a malicious artifact would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real litquant ``.pt2`` of a tiny MNIST-shaped model (``[N,1,28,28]`` → ``[N,10]``, dynamic batch)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt2"
    return save_pt2(export_program(model, (torch.randn(2, 1, 28, 28),)), path, describe("fp32", "fp32"))


def _entries(source: Path) -> tuple[str, list[tuple[str, bytes]]]:
    with zipfile.ZipFile(source) as archive:
        root = archive.namelist()[0].split("/")[0]
        return root, [(info.filename[len(root) + 1:], archive.read(info)) for info in archive.infolist()]


def _write(target: Path, root: str, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in entries:
            archive.writestr(f"{root}/{name}", data)
    return target


def _evil_config(path_name: str) -> bytes:
    return json.dumps({"config": {"evil": {"path_name": path_name, "is_param": False, "use_pickle": True,
                                           "tensor_meta": None}}}).encode()


#: Entry kinds the loader reads: (name torch reads, what it holds in the attack, payload entries it points to).
KINDS = {
    "sample inputs": ("data/sample_inputs/model.pt", None, ()),
    "weights config": ("data/weights/model_weights_config.json", _evil_config("weight_99"),
                       ("data/weights/weight_99",)),
    "constants config": ("data/constants/model_constants_config.json", _evil_config("tensor_99"),
                         ("data/constants/tensor_99",)),
    "opaque object": ("data/constants/model_constants_config.json", _evil_config("opaque_obj_0"),
                      ("data/constants/opaque_obj_0",)),
    "custom object": ("data/constants/model_constants_config.json", _evil_config("custom_obj_0"),
                      ("data/constants/custom_obj_0",)),
    "legacy .pt": ("data/weights/model.pt", None, ()),
}


def _craft(source: Path, target: Path, kind: str, variant: str, evil: bytes) -> Path:
    """``source`` with a malicious copy of the ``kind`` entry: beside the real one under a case-variant name, or
    as one of three same-named entries (the malicious one first, in the middle or last)."""
    name, content, payloads = KINDS[kind]
    content = evil if content is None else content
    root, entries = _entries(source)
    real = dict(entries).get(name, content)
    position = next((i for i, (n, _) in enumerate(entries) if n == name), len(entries))
    rest = [(n, d) for n, d in entries if n != name] + [(p, evil) for p in payloads]
    if variant == "case variant":
        stem, dot, suffix = name.rpartition(".")
        group = [(name, real), (f"{stem}{dot}{suffix.upper()}", content)]
    else:
        group = [(name, real), (name, real)]
        group.insert(("first", "middle", "last").index(variant.split()[-1]), (name, content))
    return _write(target, root, rest[:position] + group + rest[position:])


@pytest.mark.parametrize("variant", ("case variant", "duplicate first", "duplicate middle", "duplicate last"))
@pytest.mark.parametrize("kind", KINDS)
def test_crafted_entries_are_refused_and_nothing_runs(tiny_artifact: Path, tmp_path: Path, kind: str,
                                                      variant: str) -> None:
    marker = tmp_path / "marker.txt"
    crafted = _craft(tiny_artifact, tmp_path / "crafted.pt2", kind, variant, pickle.dumps(_Payload(marker)))
    for read in (lambda: load_artifact(crafted, compile=False), lambda: read_description(crafted)):
        with pytest.raises(UnsafeArtifactError, match="refused to load") as refused:
            read()
        assert "\n" not in str(refused.value)
    assert not marker.exists()


@pytest.mark.parametrize(("kind", "variant"), (("sample inputs", "duplicate middle"),
                                              ("weights config", "case variant"),
                                              ("opaque object", "duplicate first")))
def test_the_attacks_are_real_without_the_checks(tiny_artifact: Path, tmp_path: Path, kind: str,
                                                 variant: str) -> None:
    """torch's own reader, handed such a crafted file directly, unpickles the malicious payload."""
    marker = tmp_path / "marker.txt"
    crafted = _craft(tiny_artifact, tmp_path / "crafted.pt2", kind, variant, pickle.dumps(_Payload(marker)))
    with contextlib.suppress(Exception):  # whether it then fails does not matter: the payload ran
        torch.export.load(crafted)
    assert marker.read_text() == "code ran"


def test_a_crafted_artifact_is_refused_by_the_cli(tiny_artifact: Path, tmp_path: Path, mnist_dir: Path) -> None:
    from PIL import Image

    marker = tmp_path / "marker.txt"
    crafted = _craft(tiny_artifact, tmp_path / "crafted.pt2", "constants config", "case variant",
                     pickle.dumps(_Payload(marker)))
    Image.new("L", (28, 28), 255).save(tmp_path / "digit.png")
    for args in (["evaluate", str(crafted)], ["predict", "--model", str(crafted), str(tmp_path / "digit.png")]):
        done = run_litquant(*args, f"--data.data_dir={mnist_dir}", cwd=tmp_path, check=False, timeout=300)
        assert done.returncode == 2, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("litquant: error:")]
        assert len(errors) == 1 and "refused to load" in errors[0] and "Traceback" not in done.stderr, done.stderr
    assert not marker.exists()


def _patch_declared_size(path: Path, size: int) -> None:
    """Make the last entry of ``path`` claim ``size`` inflated bytes (local header and central directory)."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.rfind(signature)
        data[start + offset:start + offset + 4] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def _with_big_entry(source: Path, target: Path, size: int) -> Path:
    """``source`` plus an ``extra/`` entry of ``size`` zero bytes, deflated (a few hundred KB on disk)."""
    root, entries = _entries(source)
    _write(target, root, entries)
    with zipfile.ZipFile(target, "a", zipfile.ZIP_DEFLATED) as archive, \
            archive.open(f"{root}/extra/bomb.txt", "w") as bomb:
        zeros = bytes(2**20)
        for _ in range(size // 2**20):
            bomb.write(zeros)
    return target


def test_a_zip_bomb_is_refused_before_it_is_inflated(tiny_artifact: Path, tmp_path: Path) -> None:
    bomb = _with_big_entry(tiny_artifact, tmp_path / "bomb.pt2", MAX_ENTRY_BYTES + 2**20)
    assert bomb.stat().st_size < 2**20 < MAX_ENTRY_BYTES
    with pytest.raises(UnsafeArtifactError, match=r"declares 257 MiB, more than 256 MiB"):
        load_artifact(bomb, compile=False)


def test_a_bomb_that_lies_about_its_size_is_stopped_while_inflating(tiny_artifact: Path, tmp_path: Path) -> None:
    liar = tmp_path / "liar.pt2"
    root, entries = _entries(tiny_artifact)
    _write(liar, root, entries)
    with zipfile.ZipFile(liar, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{root}/extra/bomb.txt", bytes(64 * 2**20))
    _patch_declared_size(liar, 1000)  # the bomb claims 1000 bytes
    with pytest.raises(ArtifactError, match="bomb.txt") as refused:
        load_artifact(liar, compile=False)
    assert "\n" not in str(refused.value)


def test_a_huge_declared_size_is_one_line(tiny_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                          caplog: pytest.LogCaptureFixture) -> None:
    huge = tmp_path / "huge.pt2"
    huge.write_bytes(tiny_artifact.read_bytes())
    _patch_declared_size(huge, 0xF0000000)
    with pytest.raises(UnsafeArtifactError, match=r"declares 3840 MiB"):
        load_artifact(huge, compile=False)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out + caplog.text


def test_description_is_read_from_inside_and_a_stale_json_is_ignored(tiny_artifact: Path, tmp_path: Path) -> None:
    """A crash between the artifact and its JSON copy (or any stale copy) cannot mislead the loader."""
    path = tmp_path / "model.pt2"
    path.write_bytes(tiny_artifact.read_bytes())
    assert not sidecar_path(path).exists()
    assert load_artifact(path, compile=False).description.method == "fp32"  # no JSON needed
    stale = {**json.loads(sidecar_path(tiny_artifact).read_text()), "method": "ptq", "checkpoint": "old.ckpt",
             "input": {"names": ["x"], "shape": ["batch", 3, 32, 32], "dtype": "float32"}}
    sidecar_path(path).write_text(json.dumps(stale))
    loaded = load_artifact(path, compile=False)
    assert loaded.meta["method"] == "fp32" and loaded.meta["checkpoint"] is None
    assert read_description(path) == read_description(tiny_artifact)
    assert loaded(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def _with_description(source: Path, target: Path, change) -> Path:
    root, entries = _entries(source)
    edited = [(n, json.dumps(change(json.loads(d))).encode() if n == "extra/litquant.json" else d)
              for n, d in entries]
    return _write(target, root, edited)


@pytest.mark.parametrize(("change", "message"), (
    (lambda d: {**d, "input": {**d["input"], "shape": ["batch", 3, 32, 32]}}, "does not match its description"),
    (lambda d: {**d, "output": {**d["output"], "shape": ["batch", 5]}}, "does not match 10 classes"),
    (lambda d: {**d, "input": {**d["input"], "normalization": {"mean": 0.1, "std": 0}}}, "positive std"),
    (lambda d: {**d, "checkpoint_sha256": "abc"}, "not a SHA-256"),
    (lambda d: {k: v for k, v in d.items() if k != "input"}, "'input' is not an object"),
))
def test_a_wrong_or_invalid_description_is_an_error(tiny_artifact: Path, tmp_path: Path, change, message: str) -> None:
    edited = _with_description(tiny_artifact, tmp_path / "edited.pt2", change)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(edited, compile=False)


def test_an_artifact_without_a_description_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt2"
    torch.export.save(export_program(nn.Flatten().eval(), (torch.randn(2, 1, 28, 28),)), plain)
    with pytest.raises(ArtifactError, match="no litquant description inside"):
        load_artifact(plain, compile=False)


def test_a_description_that_does_not_fit_the_model_is_not_written(tmp_path: Path) -> None:
    program = export_program(nn.Sequential(nn.Flatten(), nn.Linear(784, 5)).eval(), (torch.randn(2, 1, 28, 28),))
    with pytest.raises(ArtifactError, match="does not match its description"):
        save_pt2(program, tmp_path / "five.pt2", describe("fp32", "fp32"))
    assert not list(tmp_path.iterdir())


def test_a_shape_expression_that_is_code_is_refused(tiny_artifact: Path, tmp_path: Path) -> None:
    """torch parses symbolic shapes with sympy.sympify, which evaluates Python: only arithmetic may pass."""
    marker = tmp_path / "marker.txt"
    root, entries = _entries(tiny_artifact)
    program = dict(entries)["models/model.json"].decode()
    names = set(re.findall(r'"expr_str": ("[^"]*")', program))  # the batch symbol the exporter named
    names = {json.loads(name) for name in names}
    assert names, "the dynamic batch is a symbolic expression"
    evil = f"__import__('pathlib').Path({str(marker)!r}).write_text('code ran')"
    for name in names:
        program = program.replace(json.dumps(name), json.dumps(evil))
    crafted = _write(tmp_path / "crafted.pt2", root,
                     [(n, program.encode() if n == "models/model.json" else d) for n, d in entries])
    with pytest.raises(UnsafeArtifactError, match="not plain arithmetic"):
        load_artifact(crafted, compile=False)
    assert not marker.exists()


# -- an artifact always comes from the checkpoint on the command line ---------------------------------------------
@pytest.fixture(scope="module")
def two_checkpoints(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory,
                    mnist_dir: Path) -> tuple[Path, Path]:
    """Two different checkpoints, both called ``last.ckpt``: a small trained model, and the same with the
    output layer's rows rotated (so it predicts other classes)."""

    trained = tiny_checkpoint
    root = tmp_path_factory.mktemp("runs")
    first, second = root / "run1" / "last.ckpt", root / "run2" / "last.ckpt"
    first.parent.mkdir()
    second.parent.mkdir()
    first.write_bytes(trained.read_bytes())
    checkpoint = torch.load(trained, weights_only=True)
    for key in ("model.fc2.weight", "model.fc2.bias"):
        checkpoint["state_dict"][key] = checkpoint["state_dict"][key].roll(3, dims=0)
    torch.save(checkpoint, second)
    return first, second


def _predictions(model, datamodule) -> torch.Tensor:

    return torch.cat([model(images).argmax(1) for images, _ in datamodule.normalized_batches("test", 256)])


def test_same_named_checkpoints_into_one_out_make_their_own_artifacts(two_checkpoints: tuple[Path, Path],
                                                                     mnist_dir: Path, tmp_path: Path) -> None:
    from quantization_helpers import small_datamodule

    from litquant.checkpoints import load_classifier
    from litquant.quantization import quantize

    datamodule = small_datamodule(mnist_dir)
    datamodule.setup("fit")
    out = tmp_path / "out"
    for checkpoint in (*two_checkpoints, two_checkpoints[0]):
        path = quantize("onnxruntime", checkpoint, datamodule, out,
                        config=QuantizeConfig(calibration_batches=2, accuracy_batches=0), progress=False)
        sidecar_path(path).unlink()  # the description is read from inside the file
        description = read_description(path)
        assert description.checkpoint_sha256 == file_sha256(checkpoint)
        assert read_description(out / "onnxruntime.fp32.onnx").checkpoint_sha256 == file_sha256(checkpoint)
        with torch.no_grad():
            expected = _predictions(load_classifier(checkpoint).model.eval(), datamodule)
        agreement = (_predictions(load_artifact(path), datamodule) == expected).float().mean()
        assert agreement >= 0.95, (checkpoint, agreement)


def test_a_model_that_is_not_a_10_class_classifier_is_refused(two_checkpoints: tuple[Path, Path],
                                                              mnist_dir: Path, tmp_path: Path) -> None:
    checkpoint = torch.load(two_checkpoints[0], weights_only=True)
    checkpoint["hyper_parameters"]["num_classes"] = 5
    for key in ("model.fc2.weight", "model.fc2.bias"):
        checkpoint["state_dict"][key] = checkpoint["state_dict"][key][:5]
    five = tmp_path / "five.ckpt"
    torch.save(checkpoint, five)
    out = tmp_path / "out"
    done = run_litquant("quantize", f"--ckpt_path={five}", "--method=onnxruntime", f"--out={out}",
                        f"--data.data_dir={mnist_dir}", *tiny(), cwd=tmp_path, check=False, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("litquant: error:")]
    assert len(errors) == 1 and "maps [N, 1, 28, 28] to [N, 5], not to [N, 10]" in errors[0], done.stderr
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_load_model_takes_an_artifact_or_a_checkpoint(tiny_artifact: Path, tiny_checkpoint: Path) -> None:
    """One loader for every command that takes any model file (predict, evaluate, bench, serve)."""
    from litquant.checkpoints import load_classifier

    artifact = load_model(tiny_artifact, runner="eager")
    assert isinstance(artifact, LoadedModel) and artifact.kind == "pt2"
    images = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(artifact(images), load_artifact(tiny_artifact, runner="eager")(images))
    checkpoint = load_model(tiny_checkpoint)
    logits = checkpoint(images)
    assert logits.is_inference()  # run under inference mode, as a loaded artifact is
    with torch.inference_mode():
        torch.testing.assert_close(logits, load_classifier(tiny_checkpoint).eval()(images))
