# Sourced by scripts that run Python tools.

# python_venv DIR REQUIREMENTS: makes the venv DIR (if missing) and installs REQUIREMENTS into
# it, again only when that file changed since the last install (a copy is kept in DIR).
python_venv() {
    local venv=$1 requirements=$2
    if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$venv/.requirements"; then
        echo "== preparing $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/.requirements"
    fi
}
