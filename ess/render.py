"""``ess render``: options, config building and the progress bar around :func:`envsim.job.driver.render_dataset`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from envsim.nav.grid import NavConfig
from envsim.nav.trajectory import TrajectoryConfig, TrajectoryMode
from envsim.render.renderer import LightingConfig, RenderConfig, SemanticMode, Shading
from envsim.scenes.scene import UpAxis
from envsim.store.shards import Compression
from ess.args import UserError, non_negative_int, parse_size, positive_int

log = logging.getLogger(__name__)
DEFAULT_VIEWS = 200


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "scenes", nargs="+", metavar="SCENE",
        help="mesh file (.glb .gltf .ply .obj, with an optional <stem>.rooms.json sidecar), a folder of them, "
        "a Habitat scene dataset (*.scene_dataset_config.json or a folder laid out like MP3D/HM3D/Gibson/Replica), "
        "a data_manifests/*.toml recipe, or procedural:N for N built-in procedural houses",
    )
    p.add_argument("--root", help="dataset root that a recipe's relative scene paths start from (default: the recipe's folder)")
    p.add_argument("--split", help="render only this split of the recipe (e.g. train, val)")
    p.add_argument("--only", action="append", metavar="PATTERN", help="render only scenes whose name matches this shell pattern (repeatable)")
    p.add_argument("--out", required=True, help="output folder (created; rerun to resume an interrupted job)")
    p.add_argument("--views", type=positive_int, help=f"views per scene (default {DEFAULT_VIEWS}; not with --poses)")
    p.add_argument("--size", type=parse_size, default=(128, 128), metavar="WxH", help="image size (default 128x128)")
    p.add_argument("--hfov", type=float, default=90.0, help="horizontal field of view, degrees (default 90)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="dataset seed (default 0)")
    p.add_argument("--up", choices=[u.value for u in UpAxis], default="y", help="up axis of the mesh files (default y)")
    p.add_argument("--poses", metavar="FILE", help='render exactly these poses: JSON [{"position": [x,y,z], "rotation": [w,x,y,z]}, ...], camera-to-world, Y-up world')
    g = p.add_argument_group("agent and trajectories")
    g.add_argument("--mode", choices=[m.value for m in TrajectoryMode], default="random_walk", help="how the agent moves (default random_walk)")
    g.add_argument("--views-per-trajectory", type=positive_int, default=50, help="steps per trajectory (default 50)")
    g.add_argument("--step-size", type=float, default=0.25, help="metres between views (default 0.25)")
    g.add_argument("--max-turn", type=float, default=20.0, help="max heading change per step, degrees (default 20)")
    g.add_argument("--camera-height", type=float, default=1.5, help="camera height above the floor, metres (default 1.5)")
    g.add_argument("--pitch-jitter", type=float, default=0.0, help="std-dev of camera pitch, degrees (default 0)")
    g.add_argument("--roll-jitter", type=float, default=0.0, help="std-dev of camera roll, degrees (default 0)")
    g.add_argument("--uniform-starts", action="store_true",
                   help="start trajectories anywhere on the floor (default: in every annotated room, by floor area)")
    g.add_argument("--agent-radius", type=float, default=0.1, help="metres (default 0.1)")
    g.add_argument("--agent-height", type=float, default=1.5, help="headroom the agent needs, metres (default 1.5)")
    g.add_argument("--max-climb", type=float, default=0.2, help="largest step between floor cells, metres (default 0.2)")
    g.add_argument("--cell-size", type=float, default=0.05, help="navigable grid cell, metres (default 0.05)")
    g = p.add_argument_group("rendering and output")
    g.add_argument("--max-depth", type=float, default=20.0, help="depth range, metres; farther is 0 (default 20)")
    g.add_argument("--semantic", choices=[m.value for m in SemanticMode], default="none", help="per-pixel ids to store (default none)")
    g.add_argument(
        "--shading", choices=[m.value for m in Shading], default=Shading.AUTO.value,
        help="auto: flat where the asset asks for it (Habitat \"shader_type\": \"flat\", as HM3D does), lit elsewhere "
        "(default); lit: half-Lambert lighting everywhere; flat: the texture and vertex colours themselves, as Habitat "
        "shows scans",
    )
    g.add_argument("--light-jitter", action="store_true",
                   help="vary the light per view (ESS lighting augmentation; on flat surfaces only the brightness varies)")
    g.add_argument("--light-variants", type=positive_int, default=1, help="render each pose N times under different lights (implies --light-jitter; default 1)")
    g.add_argument("--shard-size", type=positive_int, default=1000, help="views per shard (default 1000)")
    g.add_argument("--depth-dtype", choices=["float32", "float16"], default="float32", help="depth storage (default float32)")
    g.add_argument("--compression", choices=[c.value for c in Compression], default="lzf", help="image compression (default lzf; lz4 needs hdf5plugin to read)")
    g.add_argument("--batch", type=positive_int, default=32, help="views per ray-casting call (default 32)")
    from envsim.render.renderer import Backend

    g.add_argument(
        "--backend", choices=[b.value for b in Backend], default=Backend.OPEN3D.value,
        help="ray casting: open3d (CPU, Embree; default), mitsuba (Mitsuba 3: a CUDA GPU when one works, with "
        "shading on the GPU too, else the CPU through LLVM; pip install 'ess-toolkit[gpu]'), auto (mitsuba on a "
        "working CUDA GPU, else open3d). On a GPU use a large --batch, e.g. 1024",
    )
    g = p.add_argument_group("execution (the output is the same bytes whatever is chosen here)")
    g.add_argument(
        "--executor", choices=["local", "ray"], default="local",
        help="local: worker processes on this machine (default); ray: one task per shard on a Ray cluster "
        "(pip install 'ess-toolkit[ray]'; --out must be on a filesystem every node sees at the same path)",
    )
    g.add_argument(
        "--workers", type=positive_int,
        help="local: worker processes (default: one per core when the job is large enough to pay for starting "
        "them, about 50 million rays each, and at most one per shard to render; 1 = render in this process); "
        "ray: CPUs of the local Ray instance started when no --address is given",
    )
    g.add_argument("--address", help="Ray cluster to attach to (ray://HEAD:10001, auto, HOST:6379); default: RAY_ADDRESS or a local Ray instance")
    g.add_argument(
        "--repair", action="store_true",
        help="check the dataset already in --out as `ess verify` does, delete its bad shards and render only those again",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_executor(args: argparse.Namespace):
    """The :class:`~envsim.job.executor.ExecutorConfig` from parsed options (UserError on bad values)."""
    from envsim.job.executor import make_executor_config

    try:
        return make_executor_config(kind=args.executor, workers=args.workers, address=args.address)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def build_config(args: argparse.Namespace):
    """The resolved :class:`~envsim.job.config.DatasetConfig` from parsed options (UserError on bad values)."""
    from envsim.job import DatasetConfig

    width, height = args.size
    try:
        return DatasetConfig(
            seed=args.seed,
            shard_size=args.shard_size,
            depth_dtype=args.depth_dtype,
            compression=Compression(args.compression),
            render=RenderConfig(
                width=width, height=height, hfov_deg=args.hfov, max_depth=args.max_depth,
                semantic=SemanticMode(args.semantic), batch_views=args.batch, backend=args.backend,
                lighting=LightingConfig(jitter=args.light_jitter or args.light_variants > 1),
                shading=Shading(args.shading),
            ),
            light_variants=args.light_variants,
            navigation=NavConfig(
                cell_size=args.cell_size, agent_radius=args.agent_radius, agent_height=args.agent_height,
                max_climb=args.max_climb,
            ),
            trajectory=TrajectoryConfig(
                mode=TrajectoryMode(args.mode), views=DEFAULT_VIEWS if args.views is None else args.views, views_per_trajectory=args.views_per_trajectory,
                step_size=args.step_size, max_turn_deg=args.max_turn, camera_height=args.camera_height,
                pitch_jitter_deg=args.pitch_jitter, roll_jitter_deg=args.roll_jitter,
                starts_by_room=not args.uniform_starts,
            ),
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def apply_recipe(args: argparse.Namespace) -> argparse.Namespace:
    """When SCENE is a ``data_manifests/*.toml`` recipe: its options become defaults (the command line
    still wins) and its scenes replace it."""
    recipes = [s for s in args.scenes if s.endswith(".toml")]
    if not recipes:
        return args
    if len(args.scenes) > 1:
        raise UserError("give a recipe (.toml) alone, without other scenes")
    from envsim.job.recipe import RecipeError, load_recipe

    probe = argparse.ArgumentParser(add_help=False)
    add_arguments(probe)
    known = {a.dest for a in probe._actions}
    try:
        recipe = load_recipe(recipes[0], root=args.root, known_options=known - {"scenes", "out", "root"})
    except RecipeError as exc:
        raise UserError(str(exc)) from exc
    probe.set_defaults(**recipe.options)
    new = probe.parse_args(getattr(args, "_sub_argv", []))
    new.scenes = list(recipe.scenes)
    new.recipe = recipe.path
    new.splits = recipe.splits
    new.recipe_root = args.root or str(Path(recipe.path).parent)
    return new


def select_scenes(sources: list, args: argparse.Namespace) -> tuple[list, dict[str, tuple[str, ...]]]:
    """Apply ``--only`` and ``--split`` to the resolved scenes; the recipe's splits as concrete names."""
    import fnmatch

    from envsim.job.recipe import RecipeError, resolve_splits

    spec = getattr(args, "splits", None) or {}
    try:
        splits = resolve_splits(spec, [s.name for s in sources], [s.path for s in sources],
                                root=getattr(args, "recipe_root", None))
    except RecipeError as exc:
        raise UserError(str(exc)) from exc
    if args.split:
        if args.split not in splits:
            raise UserError(f"--split {args.split}: the recipe defines {sorted(splits) or 'no splits'}")
        keep = set(splits[args.split])
        sources = [s for s in sources if s.name in keep]
    if args.only:
        sources = [s for s in sources if any(fnmatch.fnmatchcase(s.name, p) for p in args.only)]
    if not sources:
        raise UserError("no scene left after --split/--only; `ess inspect` on the dataset lists scene names")
    names = {s.name for s in sources}
    splits = {k: tuple(n for n in v if n in names) for k, v in splits.items()}
    return sources, {k: v for k, v in splits.items() if v}


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from envsim.job import load_poses, render_dataset, resolve_sources

    if args.poses and args.views is not None:
        raise UserError("--views and --poses do not go together: the poses file says which views to render in every scene")
    args = apply_recipe(args)
    config = build_config(args)
    executor = build_executor(args)
    try:
        sources, splits = select_scenes(resolve_sources(args.scenes, up=UpAxis(args.up)), args)
        poses = load_poses(args.poses) if args.poses else None
        total = len(sources) * (len(poses.position) if poses is not None else config.trajectory.views) * config.light_variants
        with tqdm(total=total, unit="view", desc="render", disable=args.no_progress, file=sys.stderr) as bar:
            manifest = render_dataset(
                sources, config=config, out=args.out, poses=poses, splits=splits, progress=bar.update,
                executor=executor, repair=args.repair,
            )
    except ValueError as exc:
        log.debug("render failed", exc_info=True)
        raise UserError(str(exc)) from exc
    except ImportError as exc:  # an optional extra (--backend mitsuba, --executor ray) is not installed
        raise UserError(str(exc).splitlines()[0]) from exc
    print(
        f"{manifest['total_samples']} views of {len(manifest['scene_names'])} scene(s) in "
        f"{len(manifest['shards'])} shard(s) at {args.out}"
    )
    return 0
