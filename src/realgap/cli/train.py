"""``realgap train``: train a visuomotor policy (encoder + head) on a FrameSet.

Example::

    realgap train --task reach-mug --data frames/ --encoder resnet18-e2e --head bc \\
        --out runs/bc-mug --epochs 20 --image-size 64 --camera head --seed 0

Checkpoints land in ``OUT/checkpoints/epoch-XXXX.pt`` every ``--checkpoint-every``
epochs; rerunning the same command resumes from the last one (``--no-resume`` refuses
to resume and fails instead when ``OUT`` already holds checkpoints).
"""

from __future__ import annotations

import argparse

from realgap.cli._args import seed
from realgap.cli._common import emit, show_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a policy (encoder + BC / BC-RNN / DP-C head) on a FrameSet",
                       description="Behaviour-clone a visuomotor policy from a FrameSet's frames of "
                       "one task; resumable.")
    p.add_argument("--task", required=True, help="task whose frames to train on, e.g. reach-mug")
    p.add_argument("--data", required=True, help="FrameSet directory")
    p.add_argument("--out", required=True, help="output directory (checkpoints/ inside)")
    p.add_argument("--encoder", default="resnet18-e2e",
                   help="resnet18-e2e (trained end to end) or a registry encoder name (frozen)")
    p.add_argument("--head", default="bc", help="bc, bc-rnn or dp-c")
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.add_argument("--batch-size", type=int, default=64, help="batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--encoder-weights", default=None, metavar="PATH",
                   help="checkpoint file of a frozen registry encoder (default: the standard caches)")
    p.add_argument("--image-size", type=int, default=64, help="encoder input side in px (default 64)")
    p.add_argument("--camera", default="head", help="camera the policy sees (default head)")
    p.add_argument("--domain", default="sim", help="FrameSet domain to train on; 'all' for every domain")
    p.add_argument("--history", type=int, default=10, help="BC-RNN sequence length (default 10)")
    p.add_argument("--horizon", type=int, default=8, help="DP-C action horizon (default 8)")
    p.add_argument("--seed", type=seed, default=0, help="seed of init, batches and noise (default 0)")
    p.add_argument("--checkpoint-every", type=int, default=5, help="epochs between checkpoints")
    p.add_argument("--encoder-from", default=None,
                   help="checkpoint whose end-to-end encoder is copied in and frozen")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="resume from the last checkpoint in --out (default); --no-resume fails "
                        "instead when --out already holds checkpoints")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from realgap.errors import ConfigError
    from realgap.policy import PolicyConfig, TrainConfig, train_policy
    from realgap.policy.checkpoint import list_checkpoints

    if not args.resume and list_checkpoints(args.out):
        raise ConfigError(f"--out {args.out}: already holds checkpoints and --no-resume was given; "
                          "choose a new --out")
    policy = PolicyConfig(task=args.task, encoder=args.encoder,
                          encoder_weights=(str(Path(args.encoder_weights).resolve())
                                           if args.encoder_weights else None),
                          head=args.head,
                          camera=args.camera, image_size=args.image_size,
                          history=args.history, horizon=args.horizon)
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        seed=args.seed, domain=None if args.domain == "all" else args.domain,
                        checkpoint_every=args.checkpoint_every)
    res = train_policy(Path(args.data), Path(args.out), policy, train,
                       resume=args.resume, encoder_from=args.encoder_from,
                       progress=show_progress(args))
    if res.epochs_done == 0:
        text = f"nothing to do: {res.checkpoint} already reached {args.epochs} epochs"
    else:
        text = (f"trained {res.epochs_done} epoch(s) on {res.n_frames} frames "
                f"({res.n_episodes} episodes); final loss {res.losses[-1]:.4f}")
    return emit(args, {"out": res.out_dir, "checkpoint": res.checkpoint,
                       "epochs_done": res.epochs_done, "losses": res.losses,
                       "n_frames": res.n_frames, "n_episodes": res.n_episodes},
                f"{text}\ncheckpoint: {res.checkpoint}")
