"""``ess pair DIR``: options and progress bar around :func:`pairing.build.build_pairs`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ess.args import UserError, non_negative_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    from pairing.build import PositiveRule
    from pairing.similarity import Falloff

    p.add_argument("folder", help="a dataset folder written by `ess render`")
    p.add_argument("--out", help="pairs file (default FOLDER/pairs.h5)")
    p.add_argument("--radius", type=float, default=1.0, help="max camera-centre distance of a pair, metres (default 1.0)")
    p.add_argument("--max-angle", type=float, default=45.0, help="max angle between viewing directions of an ESS-MB positive, degrees (default 45)")
    p.add_argument("--falloff", choices=[f.value for f in Falloff], default="gaussian", help="ESS-MW weight fall-off (default gaussian)")
    p.add_argument("--sigma-position", type=float, default=0.5, help="Gaussian fall-off scale, metres (default 0.5)")
    p.add_argument("--sigma-angle", type=float, default=22.5, help="Gaussian fall-off scale, degrees (default 22.5)")
    p.add_argument("--positive", choices=[r.value for r in PositiveRule], default="distance", help="positive rule (default distance = ESS-MB)")
    p.add_argument("--min-covisibility", type=float, default=0.3, help="covisibility threshold for --positive covisibility/both (default 0.3)")
    p.add_argument("--no-covisibility", action="store_true", help="skip covisibility (no depth is read)")
    p.add_argument("--covisibility-stride", type=int, default=4, help="pixel stride of the covisibility test (default 4)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the pretext labels (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild an existing pairs file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from envsim.store.reader import DatasetReader
    from pairing.build import PairConfig, PositiveRule, build_pairs
    from pairing.covisibility import CovisibilityConfig
    from pairing.similarity import Falloff, SimilarityConfig
    from pairing.store import PAIRS_NAME

    try:
        config = PairConfig(
            similarity=SimilarityConfig(
                radius=args.radius, max_angle_deg=args.max_angle, falloff=Falloff(args.falloff),
                sigma_position=args.sigma_position, sigma_angle_deg=args.sigma_angle,
            ),
            covisibility=CovisibilityConfig(stride=args.covisibility_stride),
            compute_covisibility=not args.no_covisibility,
            rule=PositiveRule(args.positive),
            min_covisibility=args.min_covisibility,
            seed=args.seed,
        )
        reader = DatasetReader(args.folder)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    out = Path(args.out) if args.out else reader.folder / PAIRS_NAME
    try:
        with tqdm(total=len(reader), unit="view", desc="pair", disable=args.no_progress, file=sys.stderr) as bar:
            path = build_pairs(args.folder, config=config, out=out, progress=bar.update, force=args.force)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    import numpy as np

    from pairing.store import positive_counts

    n_pairs, n_positive, per_view = positive_counts(path)  # in row blocks: never the whole file in memory
    print(
        f"{n_pairs} pairs, {n_positive} positive; positives per view: "
        f"median {int(np.sort(per_view)[len(per_view) // 2]) if len(per_view) else 0}, "
        f"{(per_view == 0).mean() * 100:.1f}% of views have none -> {path}"
    )
    return 0
