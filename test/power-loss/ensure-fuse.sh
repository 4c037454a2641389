#!/usr/bin/env bash
# Makes sure the power-loss layer can run: Debian's fuse3 and python3-fusepy (for Debian's own
# /usr/bin/python3, not whatever python3 comes first on PATH), installed with apt when missing.
#
# Exit status: 0 ready; 77 cannot run here (reason on stdout: no /dev/fuse, not root, no apt);
# anything else: the installation failed (apt's output on stderr).
set -uo pipefail

PYTHON=/usr/bin/python3
ready() { [[ -x $PYTHON ]] && "$PYTHON" -c 'import fusepy' 2>/dev/null && command -v fusermount3 >/dev/null; }

if [[ ! -e /dev/fuse ]]; then echo "no /dev/fuse on this machine (FUSE not available, e.g. a container without --device /dev/fuse)"; exit 77; fi
if [[ $(id -u) -ne 0 ]]; then echo "not root: mounting the FUSE layer needs root"; exit 77; fi
ready && exit 0
if ! command -v apt-get >/dev/null; then echo "fuse3/python3-fusepy missing and no apt-get to install them"; exit 77; fi

export DEBIAN_FRONTEND=noninteractive
echo "installing fuse3 python3-fusepy with apt-get" >&2
if ! apt-get install -y --no-install-recommends fuse3 python3-fusepy >&2; then
  apt-get update >&2 && apt-get install -y --no-install-recommends fuse3 python3-fusepy >&2 || exit 1
fi
ready || { echo "fuse3/python3-fusepy installed but $PYTHON cannot import fusepy" >&2; exit 1; }
