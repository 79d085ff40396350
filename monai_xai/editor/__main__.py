"""``python -m monai_xai.editor``: load a trained ABN bundle and serve the attention editor.

Any ``--key value`` the editor does not know is a bundle override (``--dataset_dir``, ``--fold``, ...).
"""

from __future__ import annotations

import argparse
import ipaddress
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
    if not _is_loopback(args.host):
        logger.warning(
            "binding %s: the editor speaks plain HTTP, so anyone on the network path sees its images and "
            "its token, and with the token can save maps; keep the default 127.0.0.1 and reach a remote "
            "editor through an SSH tunnel (ssh -L %d:127.0.0.1:%d host)",
            args.host,
            args.port,
            args.port,
        )
    app = create_app(session)
    url_host = f"[{args.host}]" if ":" in args.host else args.host
    if args.host in ("0.0.0.0", "::"):  # every address: this machine reaches it by a loopback name
        url_host = "127.0.0.1"
    logger.info(
        "attention editor at http://%s:%d/?token=%s (%d samples)",
        url_host,
        args.port,
        app.state.token,
        len(session),
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def _is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the editor to this machine."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


if __name__ == "__main__":
    main()
