#!/usr/bin/env bash
# Build the documentation site with warnings as errors (mkdocs build --strict), into a
# temporary folder unless one is given: scripts/build_docs.sh [SITE_DIR].
# Needs the docs extra: python -m pip install -e '.[docs]'.
set -euo pipefail
cd "$(dirname "$0")/.."

site=${1:-}
if [ -z "$site" ]; then
    site=$(mktemp -d)
    trap 'rm -rf "$site"' EXIT
fi
export NO_MKDOCS_2_WARNING=1   # Material's notice about its successor, not a warning about these docs
mkdocs build --strict --site-dir "$site"
echo "scripts/build_docs.sh: built into $site"
