"""One pad-and-chunk loop for both compiled runners: any batch through a model built for a few batch sizes."""

from __future__ import annotations

import torch

from litquant.artifacts.batching import run_padded


def _recording(calls: list[tuple[int, int]]):
    def call(size: int, x: torch.Tensor, *, scale: torch.Tensor | None = None):
        calls.append((size, len(x)))
        assert len(x) == size  # every call gets exactly a built size
        doubled = x * 2 if scale is None else x * scale
        return {"doubled": doubled, "sum": doubled.sum(dim=1)}
    return call


def test_padded_up_to_the_next_size_and_cut_back() -> None:
    calls: list[tuple[int, int]] = []
    x = torch.arange(15.0).reshape(5, 3)
    out = run_padded(_recording(calls), (1, 8, 32), x)
    assert calls == [(8, 8)]
    torch.testing.assert_close(out["doubled"], x * 2)
    torch.testing.assert_close(out["sum"], (x * 2).sum(dim=1))


def test_larger_inputs_run_in_chunks_of_the_largest_size_and_are_joined() -> None:
    calls: list[tuple[int, int]] = []
    x = torch.randn(21, 3)
    scale = torch.full((21, 3), 3.0)
    out = run_padded(_recording(calls), (1, 8), x, scale=scale)
    assert calls == [(8, 8), (8, 8), (8, 8)]  # 8 + 8 + 5 padded to 8
    torch.testing.assert_close(out["doubled"], x * 3)


def test_an_exact_size_is_not_padded_and_an_empty_batch_keeps_its_shape() -> None:
    calls: list[tuple[int, int]] = []
    x = torch.randn(1, 3)
    assert run_padded(lambda size, t: t + 1, (1, 8), x).data_ptr() != x.data_ptr()
    run_padded(_recording(calls), (1, 8), x)
    assert calls == [(1, 1)]
    empty = run_padded(lambda size, t: t * 2, (1, 8), torch.empty(0, 3))
    assert empty.shape == (0, 3)
