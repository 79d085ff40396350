# Sourced by the entry scripts: make sure .venv exists and holds this project with the given extras.
# Re-running is cheap: the install is skipped while pyproject.toml and the extras are unchanged.
set -euo pipefail

# _install VENV EXTRAS [PIP_OPTIONS...]: create VENV if absent and install this project, editable, with EXTRAS
# into it; PIP_OPTIONS go to pip install.
# torch==2.13.0 (the pin in pyproject.toml) is taken from the machine's CPU wheel that pip is set up to find.
_install() {
    local venv="$1" extras="${2:-}"
    shift 2
    local pip_options=("$@")
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    if [ ! -x "$venv/bin/python" ]; then
        echo "[setup] creating $venv"
        python3 -m venv "$venv"
    fi
    local stamp="$venv/.monai_xai-$(sha1sum < pyproject.toml | cut -c1-12)-${extras:-base}"
    if [ ! -f "$stamp" ]; then
        echo "[setup] installing monai-xai ${extras:+with extras [$extras] }into $venv (first run: a few minutes)"
        local t0=$SECONDS
        # pip's notes about unused local index folders are noise here; real errors still show.
        "$venv/bin/python" -m pip install --quiet ${pip_options[@]+"${pip_options[@]}"} --editable "$spec" \
            2> >(grep -v "^WARNING: Location" >&2)
        touch "$stamp"
        echo "[setup] installed in $((SECONDS - t0)) s"
    fi
}

# ensure_venv EXTRAS [PIP_OPTIONS...]: .venv with EXTRAS, activated.
ensure_venv() {
    _install .venv "${1:-}" "${@:2}"
    # shellcheck disable=SC1091
    source .venv/bin/activate
}

# The [deploy] extra gets a venv of its own, .venv-deploy, which the deploy tests find and run the app
# with. Beside the test extras, Holoscan would downgrade protobuf under MLflow and every `import monai`
# would load monai.deploy, and the test that monai-xai imports without the extra could not run.
ensure_deploy_venv() {
    _install .venv-deploy deploy
}

# Debian's Chromium for the Playwright editor test: Playwright's own browser download is not reachable
# from every machine. Installed only when missing and when apt-get can run as root.
ensure_chromium() {
    if [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium > /dev/null; then
        return
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
            sudo="sudo"
        else
            echo "[setup] no Chromium and no root to install it: the browser test will skip"
            return
        fi
    fi
    echo "[setup] installing Debian's chromium"
    local t0=$SECONDS
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium > /dev/null
    echo "[setup] chromium installed in $((SECONDS - t0)) s"
}
