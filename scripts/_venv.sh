# Sourced by the entry scripts: make sure .venv exists and holds this project with the given extras.
# Re-running is cheap: the install is skipped while pyproject.toml and the extras are unchanged.
set -euo pipefail
ensure_venv() {
    local extras="${1:-}"
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    if [ ! -x .venv/bin/python ]; then
        echo "[setup] creating .venv"
        python3 -m venv .venv
    fi
    local stamp=".venv/.monai_xai-$(cat pyproject.toml | sha1sum | cut -c1-12)-${extras:-base}"
    if [ ! -f "$stamp" ]; then
        echo "[setup] installing monai-xai ${extras:+with extras [$extras] }into .venv (first run: a few minutes)"
        local t0=$SECONDS
        # pip's notes about unused local index folders are noise here; real errors still show.
        .venv/bin/python -m pip install --quiet --editable "$spec" 2> >(grep -v "^WARNING: Location" >&2)
        touch "$stamp"
        echo "[setup] installed in $((SECONDS - t0)) s"
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
}
