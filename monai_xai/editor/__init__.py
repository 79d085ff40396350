"""Browser attention editor: an expert paints an ABN's attention map, sees the prediction under the edited
map, and saves it as a corrected map the multi-scale bundle's fine-tuning reads.

.. code-block:: bash

    python -m monai_xai.editor --config_file "['bundles/abn_classification/configs/train.json', \\
        'configs/datasets/busi_binary.json']" --checkpoint runs/abn/busi/checkpoints/best.pt \\
        --output_dir runs/corrections/busi

then open the URL it prints, ``http://127.0.0.1:8765/?token=...``: the server answers nothing without that
start-up token, nor requests naming a foreign host or coming from a foreign page (see :mod:`.app`).

The web app (:func:`create_app`) needs the ``editor`` extra (FastAPI, uvicorn) and imports it lazily.
"""

from monai_xai.editor.app import create_app
from monai_xai.editor.datalist import CorrectionTable
from monai_xai.editor.session import ORDERS, SPLITS, EditorSession, RequestError, encode_png, load_session

__all__ = [
    "ORDERS",
    "SPLITS",
    "CorrectionTable",
    "EditorSession",
    "RequestError",
    "create_app",
    "encode_png",
    "load_session",
]
