"""``ess train DIR --method {moco,ess-mb,ess-mw,byol,sarl} --out RUN``: options and progress around
:func:`training.trainer.train`."""

from __future__ import annotations

import argparse
import sys

from ess.args import UserError, non_negative_int, positive_int

ARCHS = ("resnet18", "resnet50", "resnet18-cifar", "resnet18-cifar-half", "resnet18-cifar-quarter")
"""The names of :data:`training.resnet.ARCHS` (listed here so that ``--help`` needs no torch)."""
METHODS = ("moco", "ess-mb", "ess-mw", "byol", "sarl")
"""The values of :class:`training.config.TrainMethod`."""
AUX_HEADS = ("sp", "pose", "depth-order")
"""The values of :class:`training.heads.AuxHead`."""
SARL_LAMBDAS = {"sal": 100.0, "ppda": 1.0, "ram": 10.0}
"""The defaults of :class:`training.sarl.SARLConfig` (ours: the paper gives none)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a dataset folder with pairs.h5 (`ess render`, then `ess pair`)")
    p.add_argument("--method", choices=METHODS, default="moco",
                   help="objective (default moco): MoCo-v2, ESS-MB, ESS-MW, BYOL or SARL (BYOL + map losses)")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, encoder.pt, log.jsonl, loss.png, config.json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--arch", choices=ARCHS, default="resnet18",
                   help="backbone (default resnet18; the -cifar ones keep small images' resolution, -half and "
                   "-quarter are CPU-sized)")
    p.add_argument("--epochs", type=positive_int, default=10, help="default 10; with --resume, more epochs extend the run")
    p.add_argument("--schedule-epochs", type=positive_int,
                   help="length of the cosine learning-rate schedule (default --epochs; set it higher to extend the run later)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="global batch (default 64)")
    p.add_argument("--lr", type=float, help="base learning rate (default 0.03 * batch / 256)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="default 1e-4")
    p.add_argument("--moco-m", type=float, default=0.999, help="key-encoder momentum m (default 0.999)")
    p.add_argument("--temperature", type=float, default=0.2, help="InfoNCE temperature T (default 0.2)")
    p.add_argument("--queue-size", type=positive_int, help="K (default 65536 scaled to the dataset)")
    p.add_argument("--dim", type=positive_int, default=128, help="embedding dimension (default 128)")
    p.add_argument("--mlp-hidden", type=positive_int, default=2048, help="projection head width (default 2048)")
    p.add_argument("--bn-splits", type=positive_int, default=8, help="SplitBatchNorm splits (default 8; 1 = plain BN)")
    p.add_argument("--image-size", type=positive_int, help="crop size fed to the network (default: the dataset width)")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data loader processes (default 2)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="default 0")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--checkpoint-every", type=non_negative_int, default=0, help="also checkpoint every N steps (default: epoch ends)")
    p.add_argument("--light-positives", action="store_true",
                   help="the own key is the same pose under another light (datasets rendered with --light-variants)")
    p.add_argument("--no-instance-positive", action="store_true",
                   help="ess-mb/ess-mw: the spatial partner replaces the anchor's second augmentation as the own key")
    p.add_argument("--crop-min-scale", type=float, default=0.2, help="smallest crop area fraction (default 0.2, MoCo-v2)")
    p.add_argument("--jitter-strength", type=float, default=1.0, help="multiplier of MoCo-v2's colour jitter (default 1)")
    p.add_argument("--no-blur", action="store_true", help="no Gaussian blur augmentation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_method_arguments(p)


def _add_method_arguments(p: argparse.ArgumentParser) -> None:
    """BYOL's and SARL's settings and the auxiliary heads (None: the setting's default)."""
    p.add_argument("--byol-tau", type=float, help="byol/sarl: target decay at step 0, rising to 1 on a cosine (default 0.996)")
    p.add_argument("--partners", choices=["self", "spatial"],
                   help="byol: the second view is another crop of the anchor (self, default) or of its ESS spatial partner")
    for name, value in SARL_LAMBDAS.items():
        p.add_argument(f"--lambda-{name}", type=float,
                       help=f"sarl: weight of the {name.upper()} loss (default {value:g}; ours, the paper gives none)")
    p.add_argument("--aux", nargs="+", choices=AUX_HEADS, metavar="HEAD",
                   help="auxiliary heads for any method: sp (Spatial Prediction of two crops), pose (the spatial "
                   "partner's relative pose), depth-order (order of three regions); e.g. --aux sp pose")
    p.add_argument("--aux-weight", nargs="+", type=float, metavar="W",
                   help="loss weight of each --aux head, or one for all (default 1)")


def _method_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig fields of the method and head options given on the command line."""
    given = {"byol_tau": args.byol_tau, "partners": args.partners, "lambda_sal": args.lambda_sal,
             "lambda_ppda": args.lambda_ppda, "lambda_ram": args.lambda_ram,
             "aux": tuple(args.aux) if args.aux else None, "aux_weight": tuple(args.aux_weight) if args.aux_weight else None}
    return {k: v for k, v in given.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError("training needs PyTorch: pip install 'torch==2.13.0' (or this package's [train] extra)") from None
    from training.trainer import TrainConfig, TrainError, steps_per_epoch, train

    try:
        config = TrainConfig(
            method=args.method, arch=args.arch, epochs=args.epochs, schedule_epochs=args.schedule_epochs,
            batch_size=args.batch_size, lr=args.lr,
            weight_decay=args.weight_decay, moco_m=args.moco_m, temperature=args.temperature,
            queue_size=args.queue_size, dim=args.dim, mlp_hidden=args.mlp_hidden, bn_splits=args.bn_splits,
            image_size=args.image_size, workers=args.workers, seed=args.seed, device=args.device,
            checkpoint_every=args.checkpoint_every, light_positives=args.light_positives,
            crop_min_scale=args.crop_min_scale, jitter_strength=args.jitter_strength, blur=not args.no_blur,
            instance_positive=not args.no_instance_positive, **_method_settings(args),
        )
        from envsim.store.reader import DatasetReader
        from envsim.store.splits import view_splits

        reader = DatasetReader(args.data)
        n_train = int(view_splits(reader.manifest, reader.meta()).train.sum())
        total = steps_per_epoch(n_train, args.batch_size) * args.epochs
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    bar = tqdm(total=total, unit="step", desc=f"train {args.method}", disable=args.no_progress, file=sys.stderr)

    def progress(step: int, record: dict) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{record['loss']:.3f}", img_s=f"{record['images_per_s']:.0f}", refresh=False)
        bar.refresh()

    try:
        summary = train(args.data, config=config, out=args.out, resume=args.resume, progress=progress)
    except TrainError as exc:
        raise UserError(str(exc)) from exc
    except KeyboardInterrupt:
        bar.close()
        print("ess train: interrupted; checkpoint saved; continue with the same command plus --resume", file=sys.stderr)
        return 130
    finally:
        bar.close()
    if summary["status"] == "finished":
        print(f"{args.out} is finished ({summary['steps']} steps); nothing to do (give more --epochs to extend it)")
        return 0
    print(
        f"{summary['steps']} steps, final loss {summary['final_loss']:.4f}, "
        f"{summary['images_per_s']:.0f} images/s -> {args.out}"
    )
    return 0
