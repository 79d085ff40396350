"""``python -m monai_xai.editor``: load a trained ABN bundle and serve the attention editor.

Any ``--key value`` the editor does not know is a bundle override (``--dataset_dir``, ``--fold``, ...).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from monai_xai.cli_args import bundle_overrides, config_file_list
from monai_xai.editor.session import SPLITS

__all__ = ["main"]

logger = logging.getLogger("monai_xai.editor")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, score the samples, and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m monai_xai.editor", description=__doc__)
    parser.add_argument("--config_file", nargs="+", required=True, help="the bundle's config list")
    parser.add_argument(
        "--checkpoint", required=True, help="trained weights, e.g. <output_dir>/checkpoints/best.pt"
    )
    parser.add_argument("--output_dir", required=True, help="where the corrected maps and labels.csv go")
    parser.add_argument("--split", default="train", choices=SPLITS, help="samples to list (default: train)")
    parser.add_argument("--datalist", help="a CSV to correct instead of the bundle's dataset_path")
    parser.add_argument("--device", help="torch device of the network (default: the bundle's)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=8765)
    args, extra = parser.parse_known_args(argv)
    overrides = bundle_overrides(extra)
    if args.datalist:
        overrides.update(dataset_source="csv", dataset_path=args.datalist)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        import uvicorn
    except ImportError as err:
        from monai_xai.editor.app import MISSING_DEPENDENCIES

        raise SystemExit(MISSING_DEPENDENCIES) from err
    from monai_xai.editor.app import create_app
    from monai_xai.editor.session import load_session

    session = load_session(
        config_file_list(args.config_file),
        args.checkpoint,
        args.output_dir,
        args.split,
        overrides,
        args.device,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "binding %s: the editor has no login, anyone who reaches the port can save maps", args.host
        )
    logger.info("attention editor at http://%s:%d/ (%d samples)", args.host, args.port, len(session))
    uvicorn.run(create_app(session), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
