"""The signature of a model with several inputs or outputs: read from a program, kept in the description, parsed
into exactly its fields, checked against the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from litquant.artifacts.description import ArtifactDescription, describe
from litquant.artifacts.errors import ArtifactError
from litquant.artifacts.signature import Signature, SignatureError, check_signature, program_signature
from litquant.quantization.pt2e import export_program


class TwoInTwoOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(2, 3)

    def forward(self, image: torch.Tensor, *, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.a(image) + self.b(rows)
        return {"embedding": hidden, "logits": hidden * 2}


@pytest.fixture(scope="module")
def signature() -> Signature:
    program = export_program(TwoInTwoOut(), (torch.randn(2, 4),), {"rows": torch.randn(2, 2)})
    return program_signature(program)


def test_a_program_signature_lists_every_input_and_output(signature: Signature) -> None:
    assert [(s.name, s.shape, s.keyword) for s in signature.inputs] == [
        ("image", ("batch", 4), False), ("rows", ("batch", 2), True)]
    assert [(s.name, s.shape) for s in signature.outputs] == [("embedding", ("batch", 3)), ("logits", ("batch", 3))]
    assert signature.structure == "dict" and signature.logits == "logits" and signature.logits_index == 1


def test_the_description_keeps_the_signature(signature: Signature) -> None:
    description = describe("ptq", "int8", signature=signature)
    again = ArtifactDescription.from_json(description.to_json())
    assert again.signature == signature
    assert again.input.names == ("image", "rows") and again.output.name == "logits"


def test_a_description_without_signature_still_reads() -> None:
    description = ArtifactDescription.from_json(describe("ptq", "int8").to_json())
    assert description.signature is None and description.output.shape == ("batch", 10)


@pytest.mark.parametrize(("change", "message"), [
    ({"structure": "list"}, "output structure"),
    ({"logits": "missing"}, "not one of the outputs"),
    ({"inputs": [{"name": "x; rm", "shape": ["batch", 4], "dtype": "float32"}]}, "not an identifier"),
    ({"inputs": [{"name": "x", "shape": ["batch", -1], "dtype": "float32"}]}, "positive sizes"),
    ({"inputs": [{"name": "x", "shape": ["batch", 4], "dtype": "object"}]}, "dtype"),
    ({"outputs": []}, "list of 1 to"),
])
def test_a_signature_that_litquant_does_not_write_is_refused(signature: Signature, change: dict,
                                                            message: str) -> None:
    data = {**signature.to_dict(), **change}
    with pytest.raises(SignatureError, match=message):
        Signature.from_dict(data)
    description = {**describe("ptq", "int8", signature=signature).to_dict(), "signature": data}
    with pytest.raises(ArtifactError, match=message):
        ArtifactDescription.from_dict(description)


def test_check_signature_names_the_difference(signature: Signature) -> None:
    inputs = [("", ["batch", 4], "float32"), ("", ["batch", 2], "float32")]
    outputs = [(["batch", 3], "float32"), (["batch", 3], "float32")]
    assert check_signature(signature, inputs, outputs) is None
    assert "inputs" in check_signature(signature, inputs[:1], outputs)
    assert "outputs" in check_signature(signature, inputs, [(["batch", 5], "float32"), *outputs[1:]])
