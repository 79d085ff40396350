"""``python -m monai_xai.deploy -i <input> -o <output> -m <model.ts> [--rules rules.json]``."""

from monai_xai.deploy.app import main

if __name__ == "__main__":
    main()
