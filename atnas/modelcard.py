"""The model card: a ``README.md`` beside an exported model that says what it is and how to use it.

It gives the architecture layer by layer, the data it was adapted on, its support (and query)
figures, its cost, how to load it in three lines (TorchScript and ONNX Runtime), and where it
came from (the job, supernet and spec when a service made it).

Example:
    >>> card = model_card(space, enc, cost, classes, 28, metrics, {"job": "j1"})  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from atnas.cost import ArchCost
from atnas.space import Encode, SearchSpace


def model_card(
    space: SearchSpace,
    encode: Encode,
    cost: ArchCost,
    classes: list[str],
    image_size: int,
    metrics: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> str:
    """The card as Markdown.

    Args:
        space: the search space the encode belongs to (input channels).
        encode: the chosen architecture.
        cost: its per-layer cost (:func:`atnas.cost.arch_cost`).
        classes: class names in output order.
        image_size: input height and width.
        metrics: the ``metrics.json`` content (support/query figures, latency, search timings);
            missing keys are shown as "n/a".
        provenance: what made the model (``job``, ``supernet``, ``dataset``, ``spec``...);
            empty for a local run.
    """
    c, s = space.in_channels, image_size
    parts = [
        f"# Few-shot classifier: {len(classes)} classes, {encode.key()}\n",
        "Made by atnas (across-task neural architecture search): "
        "a subnet searched for this task from a meta-trained supernet, then adapted on the "
        "task's support images.\n",
        *_fallback_note(metrics),
        *(f"**Warning:** {w}.\n" for w in metrics.get("warnings") or []),
        "## How to use it\n",
        f"Input: float32 images, shape (B, {c}, {s}, {s}) (NCHW), values in [0, 1], any batch "
        f"size B. Output: logits of shape (B, {len(classes)}), classes in the order of "
        "`model.json` and of the table below.\n",
        "TorchScript:\n",
        "```python\nimport torch\n"
        'model = torch.jit.load("model.ts")\n'
        f"logits = model(torch.rand(1, {c}, {s}, {s}))\n```\n",
        "ONNX Runtime (input `images`, output `logits`):\n",
        "```python\nimport numpy as np, onnxruntime as ort\n"
        'session = ort.InferenceSession("model.onnx")\n'
        f'logits = session.run(["logits"], {{"images": np.random.rand(1, {c}, {s}, {s})'
        '.astype("float32")})[0]\n```\n',
        "## Architecture\n",
        _layers_table(cost, len(classes)),
        "## Data\n",
        _data_section(classes, metrics, provenance),
        "## Figures\n",
        _figures_section(metrics),
        "## Cost\n",
        _cost_section(cost, metrics),
        "## Provenance\n",
        _provenance_section(provenance, metrics),
    ]
    return "\n".join(parts)


def _layers_table(cost: ArchCost, n_way: int) -> str:
    rows = [
        "| layer | op | width (in → out) | input | params | MACs |",
        "| ---: | --- | --- | --- | ---: | ---: |",
    ]
    for layer in cost.layers:
        h, w = layer.input_hw
        rows.append(
            f"| {layer.index} | {layer.op} | {layer.in_width} → {layer.width} | {h}×{w} "
            f"| {layer.params:,} | {layer.macs:,} |"
        )
    layer_params = sum(layer.params for layer in cost.layers)
    layer_macs = sum(layer.macs for layer in cost.layers)
    width = cost.layers[-1].width if cost.layers else 0
    rows.append(
        f"| head | global average pool + linear | {width} → {n_way} | 1×1 "
        f"| {cost.params - layer_params:,} | {cost.flops - layer_macs:,} |"
    )
    rows.append(f"| **total** | | | | **{cost.params:,}** | **{cost.flops:,}** |")
    note = (
        "Each layer is followed by group normalisation (no running statistics), ReLU and 2× "
        "down-sampling; its params and MACs include the normalisation."
    )
    return "\n".join(rows) + "\n\n" + note + "\n"


def _data_section(
    classes: list[str], metrics: Mapping[str, Any], provenance: Mapping[str, Any]
) -> str:
    lines = []
    if "dataset" in provenance:
        name = provenance.get("dataset_filename")
        lines.append(f"- Dataset: `{provenance['dataset']}`" + (f" ({name})" if name else ""))
    support = metrics.get("support_images")
    query = metrics.get("query_images")
    lines.append(f"- Support images (used to search and adapt): {_n(support)}")
    lines.append(f"- Query images (used only to report accuracy): {_n(query)}")
    lines.append(f"- Classes ({len(classes)}), in output order:")
    lines += [f"  {i}. {name}" for i, name in enumerate(classes)]
    return "\n".join(lines) + "\n"


def _figures_section(metrics: Mapping[str, Any]) -> str:
    fitness = metrics.get("fitness") or {}
    floors = metrics.get("floors") or {}
    lines = [
        f"- Support accuracy after adaptation: {_pct(metrics.get('support_acc'))}",
        f"- Support hold-out accuracy the search ranked it by: {_pct(fitness.get('acc'))}",
        f"- Query accuracy: {_pct(metrics.get('query_acc'))}",
    ]
    for where in ("support", "query"):
        f = floors.get(where)
        if f:
            lines.append(
                f"- Floors on the {where} set: nearest pixel centroid "
                f"{_pct(f.get('pixel_centroid'))}, nearest feature prototype "
                f"{_pct(f.get('feature_prototype'))}, this model {_pct(f.get('model'))}"
            )
    if "model_beats_floors" in floors:
        lines.append(f"- Beats both floors: {'yes' if floors['model_beats_floors'] else 'no'}")
    gens = metrics.get("generations") or []  # the initial population, then each generation
    lines.append(
        f"- Search: {max(len(gens) - 1, 0)} generations after the initial population, "
        f"{_n(metrics.get('evaluations'))} candidates scored, "
        f"{_secs(metrics.get('search_seconds'))} search + {_secs(metrics.get('adapt_seconds'))} "
        "adaptation"
    )
    return "\n".join(lines) + "\n"


def _cost_section(cost: ArchCost, metrics: Mapping[str, Any]) -> str:
    measured = metrics.get("cost") or {}
    latency = measured.get("latency_ms")
    device = metrics.get("device", "n/a")
    return (
        f"- Parameters: {cost.params:,}\n"
        f"- MACs per image: {cost.flops:,}\n"
        "- Latency at batch 1: "
        + (f"{latency:.3f} ms on {device}" if isinstance(latency, int | float) else "n/a")
        + " (measured during the search)\n"
    )


def _provenance_section(provenance: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    lines = []
    for key, label in (("job", "Job"), ("supernet", "Supernet (meta_train job)")):
        if key in provenance:
            lines.append(f"- {label}: `{provenance[key]}`")
    if "spec" in provenance:
        spec = json.dumps(provenance["spec"], indent=2, sort_keys=True)
        lines.append(f"- Spec:\n\n```json\n{spec}\n```")
    if not lines:
        lines.append("- Made by a local run (`atnas search`), not by a service job.")
    if "search_config" in metrics:
        lines.append(
            "- Search settings: `" + json.dumps(metrics["search_config"], sort_keys=True) + "`"
        )
    return "\n".join(lines) + "\n"


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "n/a"


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "n/a"


def _secs(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "n/a"


def _fallback_note(metrics: Mapping[str, Any]) -> list[str]:
    """A warning paragraph when the model files hold the pixel centroid, not the subnet, and
    a note when they hold both multiplied."""
    if metrics.get("model") == "subnet_x_pixels":
        return [
            "The model's logits are the adapted subnet's log-probabilities plus "
            f"{metrics.get('pixel_expert')} times those of nearest centroid on the support "
            "images' raw pixels (a second expert, kept in the model files; on images unlike "
            "the meta-training ones it recovers what the features lose).\n"
        ]
    if metrics.get("model") != "pixel_centroid":
        return []
    check = (metrics.get("floors") or {}).get("check") or {}
    return [
        "**This model is the nearest-centroid classifier on raw pixels, not the subnet below.** "
        f"On held-out support images it scored {_pct(check.get('pixel_acc'))} against the "
        f"adapted subnet's {_pct(check.get('model_acc'))}, so the search shipped it instead: "
        "the meta-trained features did not fit these images. The architecture and cost "
        "sections describe the subnet it replaced.\n"
    ]
