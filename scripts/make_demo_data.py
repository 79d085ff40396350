"""Write the built-in phantom dataset (images, lesion masks, labels.csv, splits.json).

python scripts/make_demo_data.py --out demo_data/phantom2d
python scripts/make_demo_data.py --out demo_data/phantom3d --spatial-dims 3 --size 32
python scripts/make_demo_data.py --out demo_data/imbalanced --class-ratio 8 --no-marker   # 1 : 8, no shortcut
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="demo_data/phantom2d")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=400)
    parser.add_argument("--n-test", type=int, default=600)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--spatial-dims", type=int, default=2, choices=(2, 3))
    parser.add_argument("--shortcut-agreement", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--class-ratio", type=float, default=1.0, help="class 0 images per class 1 image (8: a 1 : 8 dataset)"
    )
    parser.add_argument("--no-marker", action="store_true", help="phantoms without the shortcut marker")
    args = parser.parse_args()
    if args.class_ratio <= 0:
        parser.error(f"--class-ratio must be positive, got {args.class_ratio}")

    from monai_xai.data.synthetic import write_demo_dataset

    start = time.perf_counter()
    csv_path = write_demo_dataset(
        args.out,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        size=args.size,
        spatial_dims=args.spatial_dims,
        shortcut_agreement=args.shortcut_agreement,
        seed=args.seed,
        positive_fraction=1.0 / (1.0 + args.class_ratio),
        marker=not args.no_marker,
    )
    n = args.n_train + args.n_val + args.n_test
    print(
        f"wrote {n} phantoms ({args.spatial_dims}D, {args.size}px) to {csv_path.parent} "
        f"in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
