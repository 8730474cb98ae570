"""The minimal in-process server that ``benchmarks/serve.py`` measures ``litquant serve`` against.

FastAPI on uvicorn, one process, the same multipart ``file`` field, the same image framing
(:func:`litquant.images.decode_image`), the ONNX Runtime model called in the handler, a JSON answer: nothing
around the model. Its session does not spin idle threads, as litquant's does not: a spinning pool beside the
load generator on a shared CPU makes it several times slower, and a weak baseline flatters. ``POST /echo``
reads the body and answers a constant: the HTTP round trip alone.

    python benchmarks/serve_baseline.py MODEL.onnx PORT
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime
import uvicorn
from fastapi import FastAPI, Request, UploadFile

from litquant.data import DATASETS
from litquant.images import decode_image

app = FastAPI()
options = onnxruntime.SessionOptions()
options.add_session_config_entry("session.intra_op.allow_spinning", "0")
session = onnxruntime.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
mean, std = DATASETS["mnist"].mean, DATASETS["mnist"].std


@app.post("/predict")
async def predict(file: UploadFile) -> dict:
    pixels = decode_image(await file.read())
    x = ((pixels.astype(np.float32) / 255.0 - mean) / std)[None]
    logits = session.run(None, {input_name: x})[0][0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    return {"label": int(probabilities.argmax()), "probabilities": probabilities.tolist()}


@app.post("/echo")
async def echo(request: Request) -> dict:
    await request.body()
    return {"ok": True}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
