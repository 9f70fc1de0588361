# Sourced by scripts/demo, scripts/test and scripts/bench: finds a Python >= 3.12 and creates or
# reuses .venv-<version> with hotpath installed in editable mode, with the extras the caller
# names in $extras ("" for the demo: only what hotpath needs; "dev" for the tests).
# HOTPATH_PYTHON picks the interpreter (a version such as 3.13, or a path); the default is the
# version in .python-version.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want=${HOTPATH_PYTHON:-$(cat "$root/.python-version")}
find_python() {
    if [ -x "$want" ]; then echo "$want"; return; fi
    for candidate in "$(command -v "python$want" 2>/dev/null || true)" \
                     "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$want"*/bin/python3; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            echo "$candidate"; return
        fi
    done
    echo "hotpath: no Python $want found (install it with pyenv, or set HOTPATH_PYTHON)" >&2
    exit 2
}
python=$(find_python)
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv="$root/.venv-$version"
extras=${extras:-}
stamp="$venv/.installed${extras:+-$extras}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# Reinstall when the packaging or the C sources changed: an editable install builds the
# extensions once, in place.
stale=false
for source in "$root/pyproject.toml" "$root/setup.py" "$root"/hotpath/recorder/*.[ch]; do
    if [ ! -f "$stamp" ] || [ "$source" -nt "$stamp" ]; then stale=true; fi
done
if $stale; then
    echo "hotpath: first run: installing hotpath${extras:+ with its $extras tools} into $venv" \
         "(about 30 s; later runs start at once)" >&2
    log="$venv/install.log"
    target="$root${extras:+[$extras]}"
    # pip's own lines go to the log; what it collects and installs is shown as it goes.
    if ! { "$venv/bin/python" -m pip install --upgrade pip &&
           "$venv/bin/python" -m pip install -e "$target"; } 2>&1 | tee "$log" |
         { grep --line-buffered -E '^(Collecting|Building|Successfully installed)' |
           sed -u 's/^/  /' >&2 || true; }; then
        tail -n 30 "$log" >&2
        echo "hotpath: install failed; the whole log is in $log" >&2
        exit 1
    fi
    touch "$stamp"
fi
