"""Evaluates generator presets on the synthetic benchmark: one table row per preset."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from smis_layers.data.labels import DEFAULT_LABEL_CONVENTION
from smis_layers.data.synthetic import HELD_OUT_SEED
from smis_layers.metrics.flops import generator_flops
from smis_layers.utils.deprecation import renamed_keywords
from smis_layers.utils.validation import require_positive_int

#: (key, column title, format) of `markdown_table`'s default columns; arrows give the better
#: direction.
COLUMNS = (
    ("preset", "preset", "{}"),
    ("fid_segmenter", "domain FID ↓", "{:.2f}"),
    ("miou", "mIoU ↑", "{:.3f}"),
    ("pixel_accuracy", "pixel acc. ↑", "{:.3f}"),
    ("miou_standard_prior", "mIoU, N(0, 1) codes ↑", "{:.3f}"),
    ("mcsd_l1", "mCSD L1 ↑", "{:.4f}"),
    ("mocd_l1", "mOCD L1 ↓", "{:.4f}"),
    ("mcsd_segmenter", "mCSD seg ↑", "{:.4f}"),
    ("mocd_segmenter", "mOCD seg ↓", "{:.4f}"),
    ("diversity_l1", "diversity L1 ↑", "{:.4f}"),
    ("swap_region_transfer", "swap transfer ↑", "{:.3f}"),
    ("swap_leakage", "swap leakage ↓", "{:.3f}"),
    ("code_nats", "code nats/image", "{:.1f}"),
    ("params_generator", "G params", "{:,}"),
    ("params_encoder", "E params", "{:,}"),
    ("generator_gflops", "G GFLOPs", "{:.2f}"),
    ("images_per_s", "images/s (batch 16)", "{:.1f}"),
)


def _seed_list(seed: int, count: int) -> list[int]:
    rng = np.random.default_rng([int(seed), 0xE7A1])
    return [int(s) for s in rng.integers(0, 2**31 - 1, count)]


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


def _generate_all(model, labels, seed: int, batch_size: int, prior: str = "auto") -> np.ndarray:
    batches = [labels[i : i + batch_size] for i in range(0, len(labels), batch_size)]
    seeds = _seed_list(seed, len(batches))
    return np.concatenate(
        [
            np.asarray(model.generate(b, z=model.sample_z(len(b), seed=s, prior=prior)))
            for s, b in zip(seeds, batches, strict=True)
        ]
    )


@renamed_keywords(masks="labels")
def images_per_second(model, labels, batch_size: int = 16, repeats: int = 3) -> float:
    """Inference throughput of `model.generate` (codes drawn inside) at `batch_size`: one
    warm-up call, then the best of `repeats` timed calls."""
    require_positive_int("repeats", repeats)
    labels = np.asarray(labels)
    batch = np.resize(labels, (batch_size, *labels.shape[1:]))
    model.generate(batch, seed=0)
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        model.generate(batch, seed=r + 1)
        best = min(best, time.perf_counter() - start)
    return batch_size / best


def evaluate_presets(
    presets: Sequence[str | os.PathLike],
    n_images: int = 64,
    seed: int = 0,
    segmenter: str | os.PathLike = "segmenter_shapes64",
    progress: bool = True,
    num_samples: int = 6,
    flops: Callable | None = None,
    batch_size: int = 16,
    reference: bool = True,
    timing_repeats: int = 3,
    timing_batch_size: int = 16,
    diversity_images: int | None = None,
) -> list[dict]:
    """Evaluates generator presets on held-out synthetic label maps; one dict (table row) per
    preset.

    The held-out data are samples 0 .. n_images - 1 of `SyntheticShapes(image_size, num_classes,
    seed=1000 + seed)` (size and classes from each model). For each preset
    (`smis_layers.presets.load_preset`):

    - `fid_segmenter`: Fréchet distance of the segmenter's pooled features (`features`) of the
      generated images (one code per label map) and of the real images (a "domain FID"; with few
      images it is biased upwards, compare rows measured with the same `n_images`);
    - `miou`, `pixel_accuracy`: segmenter predictions on the generated images vs the label maps;
    - `miou_standard_prior`: the mIoU of images whose codes are drawn from N(0, 1), the paper's
      sampling (`sample_z(prior="standard")`), instead of the preset's fitted code prior;
    - `mcsd_l1`, `mocd_l1`, `mcsd_segmenter`, `mocd_segmenter`: `class_specific_diversity` with
      `num_samples` codes per (image, class) of the first `diversity_images` label maps,
      scored with `masked_l1_distance` and with `masked_feature_distance(segmenter.feature_maps)`;
    - `diversity_l1`, `diversity_segmenter`: `overall_diversity` with `num_samples` codes;
    - `swap_*`: `appearance_swap_score` (masked L1): `swap_region_transfer`, `swap_leakage`,
      `swap_target_distance`, `swap_reconstruction_distance`, ...;
    - `code_nats`: `code_information(...)["nats_per_image"]`, the KL of the encoder's codes of
      the held-out real images to the prior: near 0 means the posterior collapsed (encoded
      codes say little about the image; a model's region colour channels are not counted);
      `code_nats_per_class` lists it per class (present classes only);
    - `params_encoder`, `params_generator` (`model.parameter_counts()`), `images_per_s` of
      `generate` at batch `timing_batch_size` (16) on this machine, and `generator_gflops` =
      `flops(model)` / 1e9, the generator's (decoder's) forward FLOPs per image.

    With `reference`, a first row "real images" holds the same segmenter scores for real
    images: the FID between two disjoint real sets of the same size (the floor of the domain FID
    at this `n_images`) and the segmenter's mIoU / pixel accuracy on real images (the ceiling).

    Args:
        presets: preset folders or zoo names of generators with GroupDNet's API.
        n_images: held-out label maps (>= 2).
        seed: fixes the held-out data, the codes and the donor appearances: deterministic.
        segmenter: the `ShapesSegmenter` preset (folder or zoo name).
        progress: print the stages and show progress bars.
        num_samples: codes per (image, class) for mCSD / mOCD and per label map for diversity.
        diversity_images: the label maps (the first ones) behind mCSD / mOCD and the overall
            diversity, which cost `num_samples` x classes images per label map and, being
            per-image means, need fewer images than the FID; default (None): all `n_images`.
        flops: callable model -> generator FLOPs per image; default: the analytic count
            `generator_flops(model, "decoder")` of `smis_layers.metrics.flops`.
        batch_size: images per `generate` call.
        reference: add the "real images" row.
        timing_repeats: timed `generate` calls for `images_per_s` (best of them, after one
            warm-up call); 0 skips the timing.
        timing_batch_size: batch of the timed calls (16 for the reported tables).

    Returns:
        list of dicts (see `markdown_table`).

    Examples:
        >>> rows = evaluate_presets(["groupdnet_shapes64", "vspade_shapes64"], n_images=64, seed=0)
        >>> print(markdown_table(rows))
    """
    from smis_layers.data.synthetic import SyntheticShapes
    from smis_layers.metrics.code_usage import code_information
    from smis_layers.metrics.disentanglement import appearance_swap_score
    from smis_layers.metrics.distances import masked_feature_distance, masked_l1_distance
    from smis_layers.metrics.diversity import class_specific_diversity, overall_diversity
    from smis_layers.metrics.fid import FrechetDistance
    from smis_layers.metrics.segmentation import SegmentationScores
    from smis_layers.models.segmenter import ShapesSegmenter
    from smis_layers.presets import load_preset

    presets = [presets] if isinstance(presets, (str, os.PathLike)) else list(presets)
    require_positive_int("n_images", n_images)
    if n_images < 2:
        raise ValueError(f"`n_images` must be >= 2 (FID covariances); received {n_images}")
    if diversity_images is None:
        diversity_images = n_images
    require_positive_int("diversity_images", diversity_images)
    if diversity_images > n_images:
        raise ValueError(
            f"`diversity_images` must be at most `n_images` ({n_images}); received "
            f"{diversity_images}"
        )
    seg = load_preset(segmenter, expected_class=ShapesSegmenter)
    distances = {
        "l1": masked_l1_distance(),
        "segmenter": masked_feature_distance(seg.feature_maps, name="segmenter"),
    }
    datasets, rows = {}, []

    def held_out(size, classes):
        key = (size, classes)
        if key not in datasets:
            data = SyntheticShapes(image_size=size, num_classes=classes, seed=HELD_OUT_SEED + seed)
            datasets[key] = (data, data.batch(np.arange(n_images)))
        return datasets[key]

    def segmenter_scores(images, labels):
        metric = SegmentationScores(seg.num_classes)
        metric.update_state(labels, seg.predict_labels(images, batch_size))
        return {k: float(np.asarray(v)) for k, v in metric.result().items()}

    def domain_fid(real, generated):
        fid = FrechetDistance(seg.features)
        for i in range(0, len(real), batch_size):
            fid.update_state(real[i : i + batch_size], generated[i : i + batch_size])
        return float(np.asarray(fid.result()))

    for preset in presets:
        name = Path(preset).name if Path(preset).is_dir() else str(preset)
        _say(progress, f"[{name}] loading")
        model = load_preset(preset)
        if model.label_convention != DEFAULT_LABEL_CONVENTION:
            raise ValueError(
                f"Preset {name} was trained on {model.label_convention} labels; this evaluation "
                "draws the synthetic benchmark's labels (identity labels), which that model's "
                "classes do not mean"
            )
        if model.num_classes != seg.num_classes:
            raise ValueError(
                f"Preset {name} has {model.num_classes} classes; the segmenter {segmenter} "
                f"has {seg.num_classes}"
            )
        height, width = model.image_size
        if height != width:
            raise ValueError(
                f"Preset {name} generates {height}x{width} images; the synthetic "
                "benchmark is square"
            )
        data, batch = held_out(height, model.num_classes)
        labels, real = batch["masks"], batch["images"]
        if reference and not rows:
            _say(progress, "[real images] reference scores")
            other = data.batch(np.arange(n_images, 2 * n_images))["images"]
            rows.append(
                {
                    "preset": "real images",
                    "fid_segmenter": domain_fid(real, other),
                    **{
                        k: v
                        for k, v in segmenter_scores(real, labels).items()
                        if k in ("miou", "pixel_accuracy")
                    },
                }
            )
        _say(progress, f"[{name}] generating {n_images} images")
        generated = _generate_all(model, labels, seed, batch_size)
        scores = segmenter_scores(generated, labels)
        row = {
            "preset": name,
            "class_name": type(model).__name__,
            "n_images": n_images,
            "seed": seed,
            "fid_segmenter": domain_fid(real, generated),
            "miou": scores["miou"],
            "pixel_accuracy": scores["pixel_accuracy"],
        }
        _say(progress, f"[{name}] generating {n_images} images from N(0, 1) codes")
        standard = _generate_all(model, labels, seed, batch_size, prior="standard")
        row["miou_standard_prior"] = segmenter_scores(standard, labels)["miou"]
        row["diversity_images"] = diversity_images
        diversity_args = (model, labels[:diversity_images], distances, num_samples, seed)
        diversity_kwargs = {"batch_size": batch_size, "progress": progress}
        _say(progress, f"[{name}] mCSD / mOCD ({num_samples} codes per image and class)")
        diversity = class_specific_diversity(*diversity_args, **diversity_kwargs)
        for key, value in diversity.items():
            row[f"mcsd_{key}"], row[f"mocd_{key}"] = value["mcsd"], value["mocd"]
        _say(progress, f"[{name}] overall diversity")
        overall = overall_diversity(*diversity_args, **diversity_kwargs)
        for key, value in overall.items():
            row[f"diversity_{key}"] = value["diversity"]
        _say(progress, f"[{name}] appearance swap")
        swap = appearance_swap_score(
            model, data, n_images, seed, batch_size=batch_size, progress=progress
        )
        row.update({f"swap_{k}": v for k, v in swap.items()})
        information = code_information(model, real, labels, batch_size=batch_size)
        row["code_nats"] = information["nats_per_image"]
        row["code_nats_per_class"] = [
            None if np.isnan(v) else round(float(v), 3) for v in information["nats_present_class"]
        ]
        counts = model.parameter_counts()
        row["params_encoder"] = int(counts["encoder"])
        row["params_generator"] = int(counts["generator"])
        count = flops(model) if flops is not None else generator_flops(model, "decoder")
        row["generator_gflops"] = float(count) / 1e9
        if timing_repeats:
            row["images_per_s"] = images_per_second(
                model, labels, timing_batch_size, timing_repeats
            )
        rows.append(row)
    return rows


#: Row keys that describe how a row was measured rather than what was measured.
_SETTINGS = ("n_images", "diversity_images", "seed")


def combine_seeds(runs: Sequence[Sequence[dict]]) -> list[dict]:
    """One row per preset from `evaluate_presets` rows of several seeds: the mean of every
    number, its spread as `<key>_std` (the sample standard deviation over the seeds, where it
    varies) and the seeds as `seeds`.

    Args:
        runs: for each seed, the rows `evaluate_presets` returned (the same presets in the same
            order).

    Returns:
        list of dicts; `markdown_table` shows a spread as "mean ± std".

    Examples:
        >>> runs = [evaluate_presets(["vspade_shapes64"], n_images=256, seed=s) for s in range(3)]
        >>> print(markdown_table(combine_seeds(runs)))
    """
    if not runs:
        raise ValueError("`runs` must hold the rows of at least one seed; received none")
    names = [[row["preset"] for row in rows] for rows in runs]
    if any(n != names[0] for n in names):
        raise ValueError(f"every seed's rows must name the same presets; received {names}")
    combined = []
    for rows in zip(*runs, strict=True):
        row = {}
        for key, value in rows[0].items():
            values = [r.get(key) for r in rows]
            if key == "seed":
                row["seeds"] = values
            elif isinstance(value, bool) or not isinstance(value, int | float | list):
                row[key] = value
            elif isinstance(value, int) and len(set(values)) == 1:
                row[key] = value  # parameter counts and settings
            elif isinstance(value, list):
                row[key] = [_mean_present(items) for items in zip(*values, strict=True)]
            else:
                numbers = np.array(values, dtype=float)
                row[key] = float(np.mean(numbers))
                if len(numbers) > 1 and key not in _SETTINGS:
                    row[f"{key}_std"] = float(np.std(numbers, ddof=1))
        combined.append(row)
    return combined


def _mean_present(values) -> float | None:
    present = [float(v) for v in values if v is not None]
    return round(float(np.mean(present)), 3) if present else None


def markdown_table(results: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of `evaluate_presets` (or `combine_seeds`) rows; a value with a
    `<key>_std` shows as "mean ± std".

    Args:
        results: the rows.
        columns: keys to show (default: those of `COLUMNS` present in any row, in that order);
            missing values show as "-".
    """
    titles = {key: (title, fmt) for key, title, fmt in COLUMNS}
    if columns is None:
        columns = [key for key, _, _ in COLUMNS if any(key in row for row in results)]

    def cell(row, key):
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        fmt = titles.get(key, (key, "{}"))[1]
        try:
            text = fmt.format(value)
            spread = row.get(f"{key}_std")
            return text if spread is None else f"{text} ± {fmt.format(spread)}"
        except (ValueError, TypeError):
            return str(value)

    header = [titles.get(key, (key, ""))[0] for key in columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row, key) for key in columns) + " |" for row in results]
    return "\n".join(lines)
