"""The server a user would write without ``POST /v1/models``: FastAPI, a fresh
``torch.jit.load`` of model.ts for every request (the baseline of issue 9's serving target).

It answers ``POST /v1/models/naive/predict`` with one multipart image in field ``files``, in
the shape the real predict endpoint uses, so ``benchmarks/serve_models.py`` drives both with the
same client. One uvicorn worker, one torch thread; the endpoint is a plain ``def`` (FastAPI runs
it in its thread pool), as most hand-written servers are.

    python benchmarks/naive_model_server.py --model model.ts --classes a,b,c --size 28 --port 8123
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, UploadFile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atnas.data import ImageConfig, decode_image


def build(model: Path, classes: list[str], cfg: ImageConfig) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/models/naive/predict")
    def predict(files: list[UploadFile]) -> dict[str, Any]:
        net = torch.jit.load(str(model))  # type: ignore[no-untyped-call]  # per request
        out = []
        for f in files:
            x = torch.from_numpy(decode_image(f.file.read(), f.filename or "x.png", cfg)[None])
            with torch.inference_mode():
                p = torch.softmax(net(x.float().div_(255.0)), dim=1)[0]
            k = int(p.argmax())
            out.append({"label": classes[k], "probability": float(p[k])})
        return {"predictions": out}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--classes", required=True, help="comma-separated, in output order")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = ImageConfig(image_size=args.size, channels=args.channels)
    app = build(args.model, args.classes.split(","), cfg)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
